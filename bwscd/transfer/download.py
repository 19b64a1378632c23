"""
One object sent to a client: bytes from a backend's reader to the socket.

The mirror of L{bwscd.transfer.upload}: a worker thread reads, the reactor thread
writes, and reading waits while the client is slow (the request pauses us
as its transport's buffer fills), so memory stays flat whatever the size.
"""

import threading

from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import blockingCallFromThread, deferToThreadPool
from zope.interface import implementer

CHUNK = 256 << 10


@implementer(IPushProducer)
class Download:
    """Send everything C{reader} yields to C{request}, then finish it."""

    def __init__(self, reactor, threadpool, reader, request):
        self._reactor = reactor
        self._threadpool = threadpool
        self._reader = reader
        self._request = request
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = False

    def start(self):
        """
        @return: L{Deferred} firing once everything was sent (or the client
            went away).
        """
        self._request.registerProducer(self, True)
        d = deferToThreadPool(self._reactor, self._threadpool, self._send)
        d.addBoth(self._done)
        return d

    def _send(self) -> None:
        try:
            while not self._stopped:
                self._flowing.wait()
                data = self._reader.read(CHUNK)
                if not data or self._stopped:
                    return
                blockingCallFromThread(self._reactor, self._request.write, data)
        finally:
            self._reader.close()

    def _done(self, result):
        self._request.unregisterProducer()
        return result

    # IPushProducer, called on the reactor thread.

    def pauseProducing(self):
        self._flowing.clear()

    def resumeProducing(self):
        self._flowing.set()

    def stopProducing(self):
        self._stopped = True
        self._flowing.set()
