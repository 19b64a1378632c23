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
    @param length: the bytes C{reader} holds: once they are written the
        download ends at once, paused or not, without a read more.
    """

    def __init__(self, pool, reader, request, length: int):
        self._pool = pool
        self._reader = reader
        self._request = request
        self._left = length
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
        if self._left > 0:
            self._readNext()
        else:
            self._close(None)
        return self._sent

    def _readNext(self) -> None:
        self._reading = True
        self._pool.run(self._readChunk).addCallbacks(self._arrived, self._close)

    def _readChunk(self) -> bytes:
        """
        On a download thread: the next chunk; at the end, the reader closed
        in the same call, so that the request is finished as soon as the
        last bytes are out, with no round trip more.
        """
        data = self._reader.read(CHUNK)
        if not data:
            self._reader.close()
        return data

    def _arrived(self, data: bytes) -> None:
        if data and not self._stopped:
            # Still reading, to the producer's calls: the write may pause
            # or stop us, and what comes next is decided below.
            self._request.write(data)
            self._left -= len(data)
        self._reading = False
        if not data:
            self._finish(None)
        elif self._stopped or self._left <= 0:
            self._close(None)
        elif not self._paused:
            self._readNext()

    def _close(self, outcome: Failure | None) -> None:
        """Close the reader on a download thread, then finish with C{outcome}."""
        self._ended = True
        closed = self._pool.run(self._reader.close)
        closed.addCallback(lambda _: outcome)
        closed.addBoth(self._finish)

    def _finish(self, outcome: Failure | None) -> None:
        self._ended = True
        # A request whose connection is lost has no channel any more, and
        # no producer registered with it.
        if self._request.channel is not None:
            self._request.unregisterProducer()
        if isinstance(outcome, Failure):
            self._sent.errback(outcome)
        else:
            self._sent.callback(None)

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
            self._close(None)
