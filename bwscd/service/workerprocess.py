"""
What runs in a worker process (C{--workers}, L{bwscd.service.workers}):
C{python -m bwscd.service.workerprocess --worker N --listening-fd FD
--connections-fd FD OPTIONS...}, a whole bwscd service whose events and
log records go to the main process.
"""

import ctypes
import json
import os
import signal
import sys

from twisted.internet import reactor, stdio
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, formatEvent, globalLogBeginner, jsonFileLogObserver
from zope.interface import implementer

from bwscd.interfaces import IEventSink
from bwscd.service.assembly import WorkerOptions, makeService

log = Logger()

_PR_SET_PDEATHSIG = 1


@implementer(IEventSink)
class MainProcessSink:
    """A worker's events, as JSON lines to the main process (on standard output)."""

    def __init__(self, output):
        self._output = output

    def emit(self, event: dict) -> None:
        self._output.write(json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n")


def _dieWithTheMainProcess() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        log.warn("this system can't end a worker with its main process")
    if os.getppid() == 1:  # the main process died before prctl
        os._exit(1)


def logToMainProcess() -> None:
    """Send the log records, as JSON on standard error, to the main process."""
    toMainProcess = jsonFileLogObserver(os.fdopen(2, "w", encoding="utf-8", buffering=1))

    def sendFormatted(event):
        # Sent with its message already formatted: JSON keeps each field's
        # str(), losing a format's precision ("{duration:.3f}").
        text = formatEvent(event).replace("{", "{{").replace("}", "}}")
        toMainProcess(dict(event, log_format=text))

    globalLogBeginner.beginLoggingTo([sendFormatted], redirectStandardIO=False)


def main(arguments: list[str]) -> None:
    """A worker, with the main process's options and its own (the module's docstring)."""
    _dieWithTheMainProcess()
    logToMainProcess()
    options = WorkerOptions()
    options.parseOptions(arguments)
    output = stdio.StandardIO(Protocol())
    options["events"] = MainProcessSink(output)
    service = makeService(options)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
