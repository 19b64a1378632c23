"""
One object sent to a client: bytes from a backend's reader to the socket.

The mirror of L{bwscd.transfer.upload}: a download thread reads, the reactor
thread writes.  Each read is its own call to the downloads pool, and the
next is asked for only while the client keeps up (the request pauses us as
its transport's buffer fills): memory stays flat whatever the size, and a
client that reads slowly, or not at all, holds no thread, only its reader.
"""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

CHUNK = 256 << 10


@implementer(IPushProducer)
class Download:
    """
    Send everything C{reader} yields to C{request}, then finish it.

    @param pool: the L{bwscd.threads.Pool} that reads, and closes C{reader}.
    """

    def __init__(self, pool, reader, request):
        self._pool = pool
        self._reader = reader
        self._request = request
        self._paused = False
        self._reading = False
        self._stopped = False
        self._ended = False
        self._sent = Deferred()

    def start(self):
        """
        @return: L{Deferred} firing once everything was sent (or the client
            went away) and the reader is closed.
        """
        self._request.registerProducer(self, True)
        self._readNext()
        return self._sent

    def _readNext(self) -> None:
        self._reading = True
        self._pool.run(self._reader.read, CHUNK).addCallbacks(self._arrived, self._end)

    def _arrived(self, data: bytes) -> None:
        if data and not self._stopped:
            # Still reading, to the producer's calls: the write may pause
            # or stop us, and what comes next is decided below.
            self._request.write(data)
        self._reading = False
        if not data or self._stopped:
            self._end(None)
        elif not self._paused:
            self._readNext()

    def _end(self, outcome: Failure | None) -> None:
        """Close the reader; then C{_sent} fires with C{outcome}."""
        self._ended = True
        closed = self._pool.run(self._reader.close)
        closed.addCallback(lambda _: outcome)
        closed.addBoth(self._done).chainDeferred(self._sent)

    def _done(self, result):
        self._request.unregisterProducer()
        return result

    # IPushProducer, called on the reactor thread.

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        if not (self._reading or self._ended):
            self._readNext()

    def stopProducing(self):
        self._stopped = True
        if not (self._reading or self._ended):
            self._end(None)
