"""
An object's bytes in the SQLite backend's database: written as the chunks
of an upload (L{ChunkWriter}), from the upload's worker thread, and read
back from a download's (L{ChunkReader}); each hands every step to the
database thread and waits, through the backend's methods for them
(L{SQLiteBackend._wait<bwscd.backends.sqlite.SQLiteBackend._wait>}, its
transactions, its readers' uploads).
"""

import mmap
import time

from zope.interface import implementer

from bwscd.backends import common
from bwscd.backends.sqliteschema import deleteUpload, encodeMetadata
from bwscd.errors import ServiceUnavailable, SwiftError
from bwscd.interfaces import Digests, IObjectReader, IObjectWriter, ObjectInfo

CHUNK_SIZE = 1 << 20


@implementer(IObjectWriter)
class ChunkWriter:
    """
    An object being written as an upload's chunks, made visible on commit by
    the one transaction that points its object row at them.
    """

    def __init__(self, backend, upload, container, name, metadata, writeOnce, contentType):
        self._backend = backend
        self._contentType = contentType
        self._upload = upload
        self._container = container
        self._name = name
        self._metadata = metadata
        self._writeOnce = writeOnce
        # One chunk's worth, filled and flushed over and over.  Mapped, not
        # allocated: freeing a 1 MiB malloc block makes glibc serve every
        # later block up to that size from per-thread arenas, which then
        # keep megabytes each (the filesystem backend never frees one).
        self._buffer = mmap.mmap(-1, CHUNK_SIZE)
        self._filled = 0
        self._seq = 0

    def write(self, data):
        view = memoryview(data)
        while view:
            count = min(len(view), CHUNK_SIZE - self._filled)
            self._buffer[self._filled : self._filled + count] = view[:count]
            self._filled += count
            view = view[count:]
            if self._filled == CHUNK_SIZE:
                self._flush(self._buffer)

    def _flush(self, chunk) -> None:
        self._backend._wait("writing an object", self._insert, self._seq, chunk)
        self._seq += 1
        self._filled = 0

    def _insert(self, seq: int, chunk) -> None:
        # Also while the body streams (chunked, or beside other uploads):
        # the reserve is what deleting needs to write, once this upload is
        # aborted or replaced.
        self._backend._checkSpace(len(chunk))
        with self._backend._transaction() as db:
            row = db.execute(
                "INSERT INTO chunks (upload, seq, data) VALUES (?, ?, zeroblob(?))",
                (self._upload, seq, len(chunk)),
            ).lastrowid
            with db.blobopen("chunks", "data", row) as blob:
                blob.write(chunk)

    def commit(self, digests):
        if self._filled:
            self._flush(memoryview(self._buffer)[: self._filled])
        return self._backend._wait("committing an object", self._commit, digests)

    def _commit(self, digests: Digests) -> ObjectInfo:
        backend = self._backend
        with backend._transaction(durable=True) as db:
            if not self._writeOnce:
                return self._place(db, self._name, digests)
            # In the one transaction: checking a name and taking it is atomic.
            return common.placeOnce(self._name, digests,
                                    lambda name: self._claim(db, name, digests),
                                    lambda: deleteUpload(db, self._upload))

    def _claim(self, db, name: str, digests: Digests) -> tuple[ObjectInfo, bool]:
        """Place the object under C{name} if that is free (L{common.placeOnce})."""
        existing = self._backend._objectInfo(self._container, name)
        if existing is None:
            return self._place(db, name, digests), True
        return existing, False

    def _place(self, db, name: str, digests: Digests) -> ObjectInfo:
        """Point the object row at this upload, dropping the one it replaces."""
        replaced = db.execute(
            "SELECT upload FROM objects WHERE container = ? AND name = ?",
            (self._container, name),
        ).fetchone()
        modified = time.time()
        db.execute(
            "INSERT OR REPLACE INTO objects (container, name, upload, length, md5,"
            " sha256, modified, metadata, content_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._container, name, self._upload, digests.length, digests.md5,
             digests.sha256, modified, encodeMetadata(self._metadata), self._contentType),
        )
        if replaced is not None and replaced[0] not in self._backend._reading:
            # (One being read goes when its last reader closes.)
            deleteUpload(db, replaced[0])
        return ObjectInfo(self._container, name, digests, modified, self._metadata,
                          contentType=self._contentType)

    def abort(self):
        self._backend._wait("forgetting an object", self._backend._forget, self._upload)


@implementer(IObjectReader)
class ChunkReader:
    """
    A range of an object's chunks, read from a download's worker thread,
    which hands each read to the database thread and waits.  The upload it
    reads stays until L{close}, even if the object is replaced meanwhile.
    """

    def __init__(self, backend, upload, info, offset, end):
        self._backend = backend
        self._upload = upload
        self.info = info
        self._position = offset
        self._end = end
        self._closed = False
        # The chunk last read and its rowid, for the next read to start
        # there without a look-up (database thread only).
        self._chunk: tuple[int, int] | None = None

    def read(self, size):
        if self._closed:
            raise ValueError("read from a closed reader")
        size = min(size, self._end - self._position)
        if size <= 0:
            return b""
        data = self._backend._wait("reading an object", self._read, self._position, size)
        self._position += len(data)
        return data

    def _read(self, position: int, size: int) -> bytes:
        db = self._backend._db
        pieces = []
        while size:
            seq, start = divmod(position, CHUNK_SIZE)
            if self._chunk is None or self._chunk[0] != seq:
                row = db.execute(
                    "SELECT rowid FROM chunks WHERE upload = ? AND seq = ?",
                    (self._upload, seq),
                ).fetchone()
                if row is None:
                    raise ServiceUnavailable(
                        f"chunk {seq} of {self.info.name!r} in {self.info.container!r} "
                        "is missing from the database"
                    )
                self._chunk = (seq, row[0])
            # A blob handle for this read only: one kept open would hold
            # a read transaction open under the writers' transactions.
            with db.blobopen("chunks", "data", self._chunk[1], readonly=True) as blob:
                blob.seek(start)
                piece = blob.read(size)
            if not piece:
                raise ServiceUnavailable(
                    f"chunk {seq} of {self.info.name!r} in {self.info.container!r} "
                    "is shorter than the object"
                )
            pieces.append(piece)
            position += len(piece)
            size -= len(piece)
        return b"".join(pieces)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._backend._wait("closing an object", self._backend._release, self._upload)
        except SwiftError:
            pass  # logged; an upload left over goes at the next start
