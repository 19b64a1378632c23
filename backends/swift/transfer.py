"""
The Swift backend's writers and reader, which upload and download threads
call.  Each sends or reads its body itself, on a connection of its own, so
the bytes go straight between the client's thread and the store.

An object that fits in one segment goes up as one chunked C{PUT}
(L{PlainWriter}) whose body ends only on commit, after the engine verified
it; a larger one, or one whose length is not known, as segments followed by
a Static Large Object manifest written last (L{SegmentedWriter}).  Either
way the store's ETag of what it received is compared with bwscd's own MD5
before the object counts as stored.
"""

import functools
import hashlib
import json
import uuid

from twisted.logger import Logger
from zope.interface import implementer

from bwscd.backends import common, storemeta
from bwscd.backends.swift import objects
from bwscd.backends.remote import Unreachable, rangeHeaders, readerOf
from bwscd.backends.swift.upstream import StreamedPut, download
from bwscd.errors import ServiceUnavailable
from bwscd.interfaces import IObjectWriter

STORAGE = "Swift store"
"""What the log and the 503s call the store."""
log = Logger("bwscd.backends.swift")


def refusal(what: str, status: int, reason: str = "") -> Exception:
    """The API's refusal for an answer of the store that stops C{what}."""
    return common.storeRefusal(what, status, f"{status} {reason}", status == 413, log,
                               STORAGE)


def unreachable(what: str, error: Unreachable) -> ServiceUnavailable:
    return common.storageError(what, error, False, log, STORAGE)



class _Segment:
    """One segment of a large object being sent, and the MD5 of what was sent."""

    def __init__(self, put: StreamedPut, path: str):
        self.put = put
        self.path = path
        self.md5 = hashlib.md5()
        self.length = 0

    def send(self, data) -> None:
        self.put.send(data)
        self.md5.update(data)
        self.length += len(data)


class NameTaken(Exception):
    """A C{PUT} with C{If-None-Match: *} found an object under its name."""


def startPut(backend, container: str, name: str, headers: dict[str, str],
             what: str) -> StreamedPut:
    """
    A streamed C{PUT} the store agreed to take.

    @raise NameTaken: for C{If-None-Match: *}, the name holds an object.
    @raise NotFound, InsufficientStorage, ServiceUnavailable: it didn't.
    """
    try:
        put = StreamedPut(backend.account, container, name, headers)
    except Unreachable as e:
        raise unreachable(what, e)
    if put.early is not None:
        put.abandon()
        if put.early.status == 412:
            raise NameTaken(name)
        raise refusal(what, put.early.status, put.early.reason)
    return put


@implementer(IObjectWriter)
class PlainWriter(common.StoreWriter):
    """An object sent as one plain Swift object, straight to its name."""

    storage = STORAGE
    log = log

    def __init__(self, backend, put: StreamedPut, container: str, name: str,
                 metadata: dict[str, str], own: dict[str, str], contentType: str,
                 replaced: str | None, release):
        super().__init__(release)
        self._backend = backend
        self._put = put
        self.container = container
        self.name = name
        self._metadata = metadata
        self._own = own
        self._contentType = contentType
        self._replaced = replaced
        self._what = f"writing {container}/{name}"

    def _write(self, data):
        try:
            self._put.send(data)
        except Unreachable as e:
            raise unreachable(self._what, e)

    def _commit(self, digests):
        try:
            answer = self._put.finish()
        except Unreachable as e:
            raise unreachable(self._what, e)
        if answer.status == 412:
            raise ServiceUnavailable(
                f"{self.name} was stored by another upload meanwhile: send it again")
        if answer.status != 201:
            raise refusal(self._what, answer.status, answer.reason)
        stored = self._backend.storeName(self.container)
        if answer.etag() != digests.md5:
            self._backend.removeQuietly(stored, self.name)
            log.error("the store's ETag {etag} of {container}/{name} is not bwscd's MD5 "
                      "{md5}: removed, the client will send it again",
                      etag=answer.etag(), container=self.container, name=self.name,
                      md5=digests.md5)
            raise ServiceUnavailable("the store received other bytes than bwscd sent")
        info = self._backend.describe(self.container, self.name, self._metadata,
                                      self._contentType,
                                      {**self._own, storemeta.SHA256: digests.sha256})
        if self._replaced:
            self._backend.removeSegments(self._replaced)
        return info

    def _abort(self):
        self._put.abandon()


@implementer(IObjectWriter)
class SegmentedWriter(common.StoreWriter):
    """
    An object sent as segments of at most C{segmentSize} bytes into bwscd's
    own container, then made visible by a manifest naming them: for an object
    larger than the store takes in one piece, of a length not known, or of a
    name that holds one already (evidence, for which the final name is known
    only once its bytes are).
    """

    storage = STORAGE
    log = log

    def __init__(self, backend, container: str, name: str, metadata: dict[str, str],
                 own: dict[str, str], contentType: str, writeOnce: bool, segmentSize: int,
                 replaced: str | None, release):
        super().__init__(release)
        self._backend = backend
        self.container = container
        self.name = name
        self._metadata = metadata
        self._own = own
        self._contentType = contentType
        self._writeOnce = writeOnce
        self._segmentSize = segmentSize
        self._replaced = replaced
        self.upload = uuid.uuid4().hex
        self._placed = False
        self._segments: list[dict] = []
        self._current: _Segment | None = None
        self._what = f"writing {container}/{name}"

    def begin(self) -> None:
        """Record where this upload goes, so a sweep can tell its leftovers."""
        self._record()

    def _record(self, sha256: str | None = None) -> None:
        """
        The upload's record: its container and name, and once its bytes are
        known their SHA-256, which names its conflict copy.
        """
        record = {"container": self.container, "name": self.name,
                  **({"sha256": sha256} if sha256 else {})}
        self._backend.putOwn(objects.uploadPath(self.upload), json.dumps(record).encode())

    def _write(self, data):
        data = memoryview(data)
        try:
            while data:
                if self._current is None:
                    path = objects.segmentPath(self.upload, len(self._segments))
                    self._current = _Segment(
                        startPut(self._backend, self._backend.own, path, {}, self._what), path)
                room = self._segmentSize - self._current.length
                self._current.send(data[:room])
                data = data[room:]
                if self._current.length == self._segmentSize:
                    self._finishSegment()
        except Unreachable as e:
            raise unreachable(self._what, e)

    def _finishSegment(self) -> None:
        segment, self._current = self._current, None
        answer = segment.put.finish()
        if answer.status != 201:
            raise refusal(self._what, answer.status, answer.reason)
        if answer.etag() != segment.md5.hexdigest():
            raise ServiceUnavailable("the store received other bytes than bwscd sent")
        self._segments.append({"path": f"/{self._backend.own}/{segment.path}",
                               "etag": segment.md5.hexdigest(),
                               "size_bytes": segment.length})

    def _commit(self, digests):
        try:
            if self._current is not None:
                self._finishSegment()
        except Unreachable as e:
            raise unreachable(self._what, e)
        own = {**self._own, storemeta.SHA256: digests.sha256, storemeta.MD5: digests.md5,
               objects.UPLOAD: self.upload}
        headers = {"Content-Type": self._contentType,
                   **objects.metadataHeaders("Object", {**self._metadata, **own})}
        if self._writeOnce:
            headers["If-None-Match"] = "*"
        if self._segments:
            body, query = json.dumps(self._segments).encode(), {"multipart-manifest": "put"}
        else:
            body, query = b"", None
        stored = self._backend.storeName(self.container)
        if self._writeOnce and self._segments:
            self._record(digests.sha256)  # so that a sweep finds a conflict copy too

        def claim(candidate):
            answer = self._backend.call("PUT", stored, candidate, headers, body, query,
                                        what=self._what)
            if answer.status not in (201, 412):
                raise refusal(self._what, answer.status, answer.reason)
            found = self._backend.placedBy(self.container, candidate, self.upload)
            if found is None:  # taken, then deleted meanwhile
                raise ServiceUnavailable(f"{candidate} changed meanwhile: send it again")
            info, ours = found
            # A PUT sent again (the connection reset) finds its own manifest.
            self._placed = ours
            return info, ours

        if self._writeOnce:
            info = common.placeOnce(self.name, digests, claim, self._discard)
        else:
            info, _ = claim(self.name)
            if self._replaced:
                self._backend.removeSegments(self._replaced)
        self._backend.removeOwn(objects.uploadPath(self.upload))
        return info

    def _discard(self) -> None:
        self._backend.removeSegments(self.upload)

    def _abort(self):
        if self._current is not None:
            self._current.put.abandon()
            self._current = None
        try:
            if not self._placed:  # a manifest that names them is visible: they stay
                self._discard()
            self._backend.removeOwn(objects.uploadPath(self.upload))
        except Exception as e:  # the sweep at the next start removes them
            log.warn("leftovers of an aborted upload to {container}/{name} stay until the "
                     "next start: {error}", container=self.container, name=self.name, error=e)


def openReader(backend, container: str, name: str, offset: int, length: int | None):
    """
    A reader of C{length} bytes (L{None}: to the end) from C{offset}.

    @raise NotFound: no such object.
    """
    what = f"reading {container}/{name}"
    try:
        connection, answer = download(backend.account, backend.storeName(container), name,
                                      rangeHeaders(offset, length))
    except Unreachable as e:
        raise unreachable(what, e)
    return readerOf(connection, answer, offset, length,
                    lambda head: backend.completeInfo(container, name, head),
                    lambda: backend.blockingObjectInfo(container, name),
                    functools.partial(refusal, what), functools.partial(unreachable, what))
