"""
A stop signal is logged, also when it interrupts
another record's write (bwscd.service.signals).
"""

import signal
import subprocess
import sys
import textwrap
import time

# A worker whose log pipe is full, as when the main process reads it
# late: the writes block, and the stop signal arrives inside one.
CHATTY_WORKER = textwrap.dedent("""
    from twisted.internet import reactor
    from twisted.logger import Logger
    from bwscd.service import signals, workerprocess

    log = Logger()
    workerprocess.logToMainProcess()
    reactor.callWhenRunning(signals.handleStopSignals)

    def chatter():
        for line in range(3000):
            log.info("line {line} " + "x" * 100, line=line)

    reactor.callWhenRunning(chatter)
    reactor.run()
""")


def test_the_stop_signal_is_logged_when_it_interrupts_a_write():
    worker = subprocess.Popen([sys.executable, "-c", CHATTY_WORKER],
                              stderr=subprocess.PIPE)
    worker.stderr.readline()
    time.sleep(0.5)  # the pipe fills: the worker waits inside a write
    worker.send_signal(signal.SIGTERM)
    log = worker.stderr.read().decode("utf-8")
    assert worker.wait(timeout=30) == 0
    assert "line 2999" in log
    assert "Received SIGTERM, shutting down." in log
