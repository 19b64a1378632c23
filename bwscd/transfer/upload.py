"""
One object upload: bytes from the socket to a backend's writer, measured
and verified on the way.

The reactor thread only queues the bytes; a worker thread hashes them (MD5
for the ETag, SHA-256 for the record) and hands them to the backend's
L{IObjectWriter}, so neither hashing nor writing nor fsync ever runs on the
reactor.  hashlib and file writes release the GIL, so uploads overlap.
When more than L{HIGH_WATER} bytes wait for the worker, reading the socket
pauses until the worker is back under L{LOW_WATER}: memory stays flat
whatever the object size.  The worker takes the bytes one piece (one
socket read's plaintext) at a time and says how far it got every
L{REPORT_EVERY} bytes, so the socket is read again as soon as there is
room, while the worker still has a piece to work on.
"""

import hashlib

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from bwscd.errors import UnprocessableEntity
from bwscd.interfaces import Digests
from bwscd.threads import HandOff

log = Logger()

# At most HIGH_WATER bytes wait per upload, plus what one socket read
# brings after reading pauses (bwscd.protocol.channel.SOCKET_READ_SIZE, 128 KiB):
# eight uploads at once hold about 4 MiB.  Reading resumes with two such
# pieces still queued, so the worker (which hashes and writes one in about
# 0.3 ms) has work while the reactor wakes, reads and decrypts the next.
HIGH_WATER = 384 << 10
LOW_WATER = 320 << 10
REPORT_EVERY = 64 << 10

_END = object()
_ABORT = object()


class Abandoned(Exception):
    """The body stopped before its end; nothing was stored."""


@implementer(IConsumer)
class Upload:
    """
    Receive an object's body into C{writer}.

    @param pool: the L{bwscd.threads.Pool} one of whose threads receives
        the body, from the start of the upload to its end.
    @param length: the declared Content-Length, or L{None} when chunked.
    @param expectedMD5: the client's ETag (lower-case hex), or L{None}.
    @param keep: keep a body of up to this many bytes in C{kept}, to be
        looked at once stored; a longer body leaves C{kept} L{None}.

    @ivar kept: the whole body if C{keep} allowed it, else L{None}; set
        before C{result} fires.
    """

    def __init__(self, reactor, pool, writer, length, expectedMD5, keep=0):
        self._reactor = reactor
        self._writer = writer
        self._length = length
        self._expectedMD5 = expectedMD5
        self._queue = HandOff()
        self._waiting = 0  # bytes queued and not yet written, reactor's view
        self._producer = None
        self._pausedProducer = False
        self._keep = keep
        self.kept: bytes | None = None
        self.result = pool.run(self._work)

    def receive(self, body):
        """
        Stream C{body} (an L{IBodyProducer}) into the object.

        @return: L{Deferred} firing with the committed L{ObjectInfo}, or
            failing with the reason nothing was stored.
        """
        self._producer = body
        try:
            received = body.startProducing(self)
        except BaseException:
            # The worker is already waiting for bytes: tell it none come.
            self._queue.put(_ABORT)
            raise
        received.addCallbacks(lambda _: self._queue.put(_END), self._abort)
        self.result.addErrback(self._stopBody, body)
        return self.result

    def _stopBody(self, reason, body):
        body.stopProducing()
        return reason

    def _abort(self, reason: Failure) -> None:
        self._queue.put(_ABORT)

    # IConsumer, on the reactor thread.

    def registerProducer(self, producer, streaming):
        self._producer = producer

    def unregisterProducer(self):
        self._producer = None

    def write(self, data: bytes) -> None:
        self._waiting += len(data)
        self._queue.put(data)
        if self._waiting > HIGH_WATER and not self._pausedProducer:
            self._pausedProducer = True
            self._producer.pauseProducing()

    def _written(self, count: int) -> None:
        self._waiting -= count
        if self._pausedProducer and self._waiting < LOW_WATER:
            self._pausedProducer = False
            self._producer.resumeProducing()

    # The worker thread.

    def _report(self, count: int) -> None:
        self._reactor.callFromThread(self._written, count)

    def _work(self):
        md5, sha256, length = hashlib.md5(), hashlib.sha256(), 0
        kept: list[bytes] | None = [] if self._keep else None
        unreported = 0
        try:
            while True:
                item = self._queue.take()
                if item is _END:
                    if kept is not None:
                        self.kept = b"".join(kept)
                    return self._commit(
                        Digests(length, md5.hexdigest(), sha256.hexdigest())
                    )
                if item is _ABORT:
                    raise Abandoned("the body ended early; nothing was stored")
                md5.update(item)
                sha256.update(item)
                self._writer.write(item)
                length += len(item)
                unreported += len(item)
                if kept is not None and length <= self._keep:
                    kept.append(item)
                else:
                    kept = None
                del item
                # A stale answer only delays the report to the next piece,
                # and an empty queue is reported before the worker waits.
                if unreported >= REPORT_EVERY or self._queue.empty():
                    self._report(unreported)
                    unreported = 0
        except BaseException:
            # The reason the upload failed is what the client must hear,
            # even if forgetting what was written fails too.
            try:
                self._writer.abort()
            except Exception:
                log.failure("could not abort an upload")
            raise

    def _commit(self, digests: Digests):
        if self._length is not None and digests.length != self._length:
            raise UnprocessableEntity(
                f"received {digests.length} bytes, Content-Length said {self._length}"
            )
        if self._expectedMD5 is not None and digests.md5 != self._expectedMD5:
            raise UnprocessableEntity(
                f"ETag mismatch: the body's MD5 is {digests.md5}, "
                f"the request said {self._expectedMD5}"
            )
        return self._writer.commit(digests)
