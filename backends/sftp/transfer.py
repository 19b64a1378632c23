"""
The SFTP backend's writer and reader, which upload and download threads
call: each hands its requests to the reactor, which sends them over the
session, and keeps a few in flight so that a round trip does not cost one
wait each.  Either stops waiting for the reactor when it shuts down.
"""

import threading

from twisted.conch.ssh import filetransfer
from twisted.internet.defer import fail, inlineCallbacks, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from bwscd.backends import common, layout
from bwscd.backends.sftp.session import REMOTE_FAILURES, refuse
from bwscd.backends.sftp.tree import objectInfo
from bwscd.errors import NotFound, ServiceUnavailable
from bwscd.interfaces import IObjectReader, IObjectWriter

WRITE_WINDOW = 512 << 10
"""
Bytes of one upload sent and not yet acknowledged, at most: 2 writes of
OpenSSH's 255 KiB.  Per round trip, what one upload can send; times the
uploads at once, what they hold in memory (8 uploads at once with twice as
much took 16 MiB more).
"""

READS_IN_FLIGHT = 2
"""Reads of one download sent and not yet answered, at most."""


@implementer(IObjectWriter)
class SFTPWriter:
    """
    An object being written to a temporary file on the server, renamed into
    place on commit.

    L{write} gathers the body into writes of the session's chunk size and
    hands them to the reactor without waiting for the server, keeping up to
    L{WRITE_WINDOW} bytes of them outstanding; only when that many are does
    it block the worker thread, until half are answered, and the upload
    stops reading the client's socket meanwhile.  A write that fails is reported
    by the next call.
    """

    def __init__(self, connection, placement, session, file, temporary, container, name,
                 metadata, writeOnce, contentType):
        self._connection = connection
        # Calls on the reactor that give up at shutdown (bwscd.threads).
        self._onReactor = connection.reactorCalls.call
        self._placement = placement
        self._reactor = connection.reactor
        self.session = session
        self.file = file
        self.temporary = temporary
        self.container = container
        self.name = name
        self.metadata = metadata
        self.writeOnce = writeOnce
        self.contentType = contentType
        self._fileOpen = True
        self._gathered = bytearray()
        self._offset = 0
        self._limit = max(WRITE_WINDOW, 2 * session.chunkSize)
        # Guards what the worker thread and the reactor thread both touch:
        self._settled = threading.Condition(threading.Lock())
        self._inFlight = 0
        self._failure: Failure | None = None
        self._released = False

    def write(self, data):
        # The body arrives in pieces of a TLS read or an HTTP chunk, often
        # far smaller than a write can be: gather them, since every write
        # costs a request, an answer and a wake-up of this thread.
        self._gathered += data
        size = self.session.chunkSize
        while len(self._gathered) >= size:
            self._queue(bytes(self._gathered[:size]))
            del self._gathered[:size]

    def _queue(self, chunk: bytes) -> None:
        with self._settled:
            if self._inFlight + len(chunk) > self._limit:
                # Wait for half the writes, not one: each wake-up costs the
                # reactor thread about as much as a write.
                while (self._inFlight > self._limit // 2
                       and self._failure is None and not self._released):
                    self._settled.wait()
        self._raiseIfFailed()
        with self._settled:
            self._inFlight += len(chunk)
        self._reactor.callFromThread(self._send, self._offset, chunk)
        self._offset += len(chunk)

    def _send(self, offset: int, chunk: bytes) -> None:
        d = self.session.client.write(self.file.handle, offset, chunk)
        d.addBoth(self._written, len(chunk))

    def _written(self, result, count: int) -> None:
        with self._settled:
            self._inFlight -= count
            if isinstance(result, Failure) and self._failure is None:
                self._failure = result
            if self._inFlight <= self._limit // 2 or self._failure is not None:
                self._settled.notify_all()

    def _raiseIfFailed(self) -> None:
        if self._released:
            raise ServiceUnavailable("bwscd is shutting down")
        if self._failure is not None:
            raise self._onReactor(self._placement.writeRefusal, self.session, self._failure)

    def commit(self, digests):
        if self._gathered:
            self._queue(bytes(self._gathered))
        with self._settled:
            while self._inFlight and self._failure is None and not self._released:
                self._settled.wait()
        self._raiseIfFailed()
        placement = self._placement
        try:
            record, modified = self._onReactor(placement.finish, self, digests)
            if not self.writeOnce:
                return self._onReactor(placement.replace, self, digests, record, modified)
            return common.placeOnce(
                self.name, digests,
                lambda name: self._onReactor(placement.claim, self, name, digests, record,
                                             modified),
                lambda: self._onReactor(self.session.removeQuietly, self.temporary))
        finally:
            self._connection.writers.discard(self)

    def abort(self):
        try:
            if not self._released:
                self._onReactor(self._placement.abandon, self)
        except ServiceUnavailable:
            pass  # shutting down: the temporary file goes at the next start
        finally:
            self._connection.writers.discard(self)

    def closeFile(self):
        """Close the temporary file's handle, once; on the reactor."""
        if not self._fileOpen:
            return succeed(None)
        self._fileOpen = False
        return self.file.close()

    def release(self) -> None:
        """Stop waiting for the reactor: it is shutting down."""
        with self._settled:
            self._released = True
            self._settled.notify_all()


@inlineCallbacks
def closeQuietly(f):
    try:
        yield f.close()
    except REMOTE_FAILURES:
        pass


@implementer(IObjectReader)
class SFTPReader:
    """
    A range of an object, read through a handle open on the server.

    L{read} keeps up to L{READS_IN_FLIGHT} reads of the session's read size
    sent ahead of what it returns, and blocks the worker thread only while
    the next one is unanswered.  A server may answer a read with fewer
    bytes than asked: the rest is asked for again, before the reads after
    it are used.
    """

    def __init__(self, connection, session, file, info, offset, end):
        self._connection = connection
        self._reactor = connection.reactor
        self.session = session
        self.info = info
        self._file = file
        self._end = end
        self._next = offset  # the first byte not yet asked for
        self._buffer = memoryview(b"")
        # Guards what the worker thread and the reactor thread both touch:
        # the answers, and whether to stop waiting.
        self._answered = threading.Condition(threading.Lock())
        self._pending: list[list] = []  # [offset, count, answer or None], in order
        self._released = False
        self._closed = False

    def read(self, size):
        if self._closed:
            raise ValueError("read from a closed reader")
        if not self._buffer:
            self._buffer = memoryview(self._nextPiece())
        data = bytes(self._buffer[:size])
        self._buffer = self._buffer[len(data):]
        return data

    def _nextPiece(self) -> bytes:
        """The bytes of the next answered read, or C{b""} at the end."""
        while len(self._pending) < READS_IN_FLIGHT and self._next < self._end:
            count = min(self.session.readSize, self._end - self._next)
            self._ask(self._next, count)
            self._next += count
        if not self._pending:
            return b""
        request = self._pending[0]
        with self._answered:
            while request[2] is None and not self._released:
                self._answered.wait()
        if self._released:
            raise ServiceUnavailable("bwscd is shutting down")
        del self._pending[0]
        offset, count, answer = request
        if isinstance(answer, Failure):
            refuse(answer, "reading an object")
        if not answer:
            raise ServiceUnavailable(
                f"{self.info.name!r} in {self.info.container!r} is shorter on the SFTP "
                "server than when it was opened")
        if len(answer) < count:
            # A short read: ask for the rest first.
            self._ask(offset + len(answer), count - len(answer), first=True)
        return answer[:count]

    def _ask(self, offset: int, count: int, first: bool = False) -> None:
        request = [offset, count, None]
        self._pending.insert(0 if first else len(self._pending), request)
        self._reactor.callFromThread(self._send, request)

    def _send(self, request) -> None:
        try:
            d = self._file.readChunk(request[0], request[1])
        except BaseException:
            d = fail()
        d.addBoth(self._arrived, request)

    def _arrived(self, answer, request) -> None:
        if isinstance(answer, Failure) and answer.check(EOFError):
            answer = b""
        with self._answered:
            request[2] = answer
            self._answered.notify_all()

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._connection.readers.discard(self)
        self._buffer = memoryview(b"")
        if not self._released:
            # Not waited for: the server answers the reads still in flight
            # first, then closes the handle; nothing waits on either.
            self._reactor.callFromThread(closeQuietly, self._file)

    def release(self) -> None:
        """Stop waiting for the reactor: it is shutting down."""
        with self._answered:
            self._released = True
            self._answered.notify_all()


@inlineCallbacks
def openReader(session, connection, container, name, offset, length):
    """
    A reader of C{length} bytes (L{None}: to the end) from C{offset} of the
    object, through a handle open on the file it describes, tried again if
    the object is replaced meanwhile.
    """
    for _ in range(3):
        info = yield objectInfo(session, container, name)
        if info is None:
            break
        try:
            f = yield session.open(layout.object(container, name))
        except filetransfer.SFTPError as e:
            if e.code == filetransfer.FX_NO_SUCH_FILE:
                break
            raise
        try:
            # The handle holds the file it opened: if that is the one
            # described (not one renamed over it since), read it.
            attributes = yield f.getAttrs()
        except BaseException:
            yield closeQuietly(f)
            raise
        if (attributes["size"], float(attributes["mtime"])) == (
                info.digests.length, info.modified):
            end = info.digests.length if length is None else min(
                offset + length, info.digests.length)
            reader = SFTPReader(connection, session, f, info, min(offset, end), end)
            connection.readers.add(reader)
            return reader
        yield closeQuietly(f)
    else:
        raise ServiceUnavailable(f"{name!r} in {container!r} keeps changing; try again")
    raise NotFound(f"no object {name!r} in container {container!r}")
