"""
The stop signals, logged on the reactor rather than inside the handler.

Twisted's own handlers log "Received SIGTERM, shutting down." from inside
the signal handler.  A handler runs between two bytecodes of whatever the
process was doing; when that was writing another log record (a worker
relaying a line, the main process writing a worker's), the record's write
is re-entered, which the buffered file refuses: the line announcing the stop
was lost.  These handlers only schedule the stop, which then logs and stops
the reactor as Twisted's would, exit signal included.
"""

import signal

from twisted.internet import reactor
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger

log = Logger()

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def handleStopSignals() -> None:
    """
    Stop on SIGTERM (a supervisor, or the main process stopping its workers)
    and SIGINT (a terminal's ^C).  Called once the reactor runs, after it
    installed its own handlers.
    """
    for number in STOP_SIGNALS:
        signal.signal(number, _stopOnSignal)


def _stopOnSignal(number: int, frame) -> None:
    reactor.callFromThread(_stop, number)


def _stop(number: int) -> None:
    log.info("Received {name}, shutting down.", name=signal.Signals(number).name)
    # twistd ends the process by the signal that stopped it, as a supervisor
    # expects, reading it where Twisted's own handlers leave it
    # (twisted.internet.interfaces._ISupportsExitSignalCapturing).
    reactor._exitSignal = number
    try:
        reactor.stop()
    except ReactorNotRunning:  # a second signal, while stopping
        pass
