"""
The SQLite backend: containers, objects, their metadata and the service's
own documents in one database file (the schema is in docs/sqlite.md)::

    containers(name, metadata, created)
    uploads(id, container, name, started)       one per upload, kept by its object
    chunks(upload, seq, data)                   an upload's bytes, 1 MiB a row
    objects(container, name, upload, length, md5, sha256, modified, metadata,
            content_type)
    state(name, data)

An object's bytes go into C{chunks} as they stream in, one transaction per
1 MiB row, which WAL mode with C{synchronous=NORMAL} does not fsync.  The
object appears in one transaction, run with C{synchronous=FULL}, that points
its C{objects} row at its upload (and deletes the upload it replaces): the
fsync of that commit makes the WAL durable up to and including it, every
chunk before it too.  An upload that no object row points at is unfinished:
aborted, it is deleted; cut short by a crash, the next start deletes it.

Every SQLite call runs on one thread of our own, which owns the connection:
the reactor gets L{Deferred}s from it, and an upload's worker thread hands it
each chunk and waits; a download's worker thread asks it for each piece and
waits.  A download holds on to the upload it reads: replacing the object
meanwhile leaves that upload in place, without an object row, until the
download closes (or, after a crash, the next start deletes it).

Names are TEXT in the database's UTF-8 with the default BINARY collation,
which compares their bytes: listings are ordered as the API orders them.
"""

import json
import os
import sqlite3
import time
import urllib.parse
from contextlib import contextmanager

from twisted.logger import Logger
from zope.interface import implementer

from bwscd.backends import common
from bwscd.backends.sqlitechunks import ChunkReader, ChunkWriter
from bwscd.backends.sqliteschema import (
    CONTAINERS,
    MIGRATIONS,
    OBJECT_COLUMNS,
    PAGE_SIZE,
    SCHEMA,
    SCHEMA_VERSION,
    containerRow,
    deleteUpload,
    encodeMetadata,
    listingRange,
    migrate,
    rowInfo,
)
from bwscd.constraints import mergeMetadata
from bwscd.errors import (
    Conflict,
    InsufficientStorage,
    NotFound,
    ServiceUnavailable,
    SwiftError,
)
from bwscd.interfaces import ContainerInfo, IStorageBackend, IStorageSpace, ObjectInfo
from bwscd.plugins import checkOptions, parseSize
from bwscd.threads import Pool

log = Logger()


def storageError(error: sqlite3.OperationalError, what: str) -> SwiftError:
    """
    The API's refusal for a failed SQLite operation: a full disk is 507,
    anything else (locked, I/O error) 503.
    """
    return common.storageError(what, error, error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL,
                               log)



@implementer(IStorageBackend, IStorageSpace)
class SQLiteBackend:
    """
    Everything in the database at C{path}.  C{reserve} bytes of free space
    are kept on its filesystem: an upload that would eat into them is
    refused with 507, before its body is read if it has a Content-Length,
    else as soon as it gets there.

    Longer than a class should be, for a reason: it is the storage contract
    (L{IStorageBackend}, thirteen methods), each as the reactor's call and
    the body the database thread runs, beside the database thread and the
    transactions they share; what is not the contract is elsewhere (the
    schema in L{bwscd.backends.sqliteschema}, the bytes in
    L{bwscd.backends.sqlitechunks}, the shared rules in L{common}).
    """

    def __init__(self, path: str, reserve: int):
        self.path = os.path.abspath(path)
        self.reserve = reserve
        self.description = f"SQLite database {self.path}"
        # Beside the database, not on it: SQLite's own locks are on the
        # database file, and some filesystems (NFS) make a flock one of them.
        self.lockPath = self.path + ".bwscd-lock"
        # Started on first use, so that building the backend (for --help,
        # or a backup that only reads) starts no thread; started after the
        # service's pools, so stopped after the upload threads are joined,
        # and none is left waiting for its abort.
        self._pool = Pool(None, "sqlite", 1, last=self._close)
        self._db: sqlite3.Connection | None = None  # only ever used on _pool's thread
        # Uploads that open readers hold, by how many: not deleted when
        # their object is replaced (only used on _pool's thread).
        self._reading: dict[int, int] = {}

    # The database thread.

    def _defer(self, what, function, *args):
        """From the reactor: run C{function} on the database thread."""
        return self._pool.run(self._guarded, what, function, *args)

    def _wait(self, what, function, *args):
        """From an upload's or a download's thread: run C{function} on the database thread."""
        return self._pool.call(self._guarded, what, function, *args)

    def _guarded(self, what, function, *args):
        try:
            return function(*args)
        except sqlite3.OperationalError as e:
            raise storageError(e, what)

    def _close(self) -> None:
        # The last connection to close checkpoints the WAL into the
        # database and removes it, leaving one self-contained file.
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connect(self, create: bool) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(self.path) + ("?mode=rwc" if create else "?mode=rw")
        # Autocommit: transactions are begun and ended here, explicitly.
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            # Only a new file takes it, and only before anything reads the
            # file: else SQLite sizes its 2 MB page cache in 4 KiB pages,
            # then holds as many 64 KiB ones (32 MB).
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            empty = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if create and version == 0 and empty:
                db.executescript(SCHEMA)
            elif version in MIGRATIONS:
                migrate(db)
            elif version != SCHEMA_VERSION:
                raise ServiceUnavailable(
                    f"{self.path} is not a bwscd database of schema version "
                    f"{SCHEMA_VERSION} (its user_version is {version})"
                )
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            # Some builds (Debian's) zero every freed page: forgetting an
            # aborted 1 GiB upload would write 1 GiB of zeros, and could not
            # be done at all on a full disk.  FAST zeroes only what is
            # rewritten anyway.
            db.execute("PRAGMA secure_delete = FAST")
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _transaction(self, durable: bool = False):
        """
        One write transaction; C{durable}: its commit returns only once it
        is on disk, and with it everything committed before.
        """
        db = self._db
        if durable:
            db.execute("PRAGMA synchronous = FULL")
        try:
            # IMMEDIATE: wait for another process's write lock here, not
            # halfway through.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # A failed COMMIT may or may not have rolled back by itself.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            if durable:
                db.execute("PRAGMA synchronous = NORMAL")

    # IStorageBackend

    def open(self, recover=True):
        return self._defer("opening the database", self._open, recover)

    def _open(self, recover: bool) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._db = self._connect(create=True)
        if not recover:
            return
        with self._transaction() as db:
            unfinished = "SELECT id FROM uploads WHERE id NOT IN (SELECT upload FROM objects)"
            db.execute(f"DELETE FROM chunks WHERE upload IN ({unfinished})")
            count = db.execute(f"DELETE FROM uploads WHERE id IN ({unfinished})").rowcount
        if count:
            log.warn(
                "removed {count} leftover(s) of interrupted writes from {path}",
                count=count,
                path=self.path,
            )

    def containerInfo(self, container):
        return self._defer("reading container metadata", self._containerInfo, container)

    def _containerInfo(self, container: str) -> ContainerInfo | None:
        row = self._db.execute(f"{CONTAINERS} WHERE c.name = ? GROUP BY c.name",
                               (container,)).fetchone()
        return None if row is None else containerRow(*row)

    def _containerMetadata(self, container: str) -> dict[str, str] | None:
        row = self._db.execute(
            "SELECT metadata FROM containers WHERE name = ?", (container,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def putContainer(self, container, metadata):
        return self._defer("creating a container", self._putContainer, container, metadata)

    def _putContainer(self, container: str, metadata: dict[str, str]) -> bool:
        with self._transaction(durable=True) as db:
            current = self._containerMetadata(container)
            if current is None:
                db.execute(
                    "INSERT INTO containers (name, metadata, created) VALUES (?, ?, ?)",
                    (container, encodeMetadata(mergeMetadata({}, metadata)), time.time()),
                )
                return True
            self._mergeContainerMetadata(db, container, current, metadata)
            return False

    def updateContainer(self, container, metadata):
        return self._defer(
            "updating container metadata", self._updateContainer, container, metadata
        )

    def _updateContainer(self, container: str, metadata: dict[str, str]) -> ContainerInfo:
        with self._transaction(durable=True) as db:
            current = self._containerMetadata(container)
            if current is None:
                raise NotFound(f"no container {container!r}")
            self._mergeContainerMetadata(db, container, current, metadata)
        return self._containerInfo(container)

    def _mergeContainerMetadata(self, db, container, current, changes) -> dict[str, str]:
        merged = mergeMetadata(current, changes)
        if merged != current:
            db.execute(
                "UPDATE containers SET metadata = ? WHERE name = ?",
                (encodeMetadata(merged), container),
            )
        return merged

    def objectInfo(self, container, name):
        return self._defer("reading object metadata", self._objectInfo, container, name)

    def _objectInfo(self, container: str, name: str) -> ObjectInfo | None:
        row = self._db.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE container = ? AND name = ?",
            (container, name),
        ).fetchone()
        return None if row is None else rowInfo(container, name, *row)

    def replaceObjectMetadata(self, container, name, metadata):
        return self._defer(
            "replacing object metadata", self._replaceObjectMetadata, container, name, metadata
        )

    def _replaceObjectMetadata(self, container, name, metadata) -> ObjectInfo:
        with self._transaction(durable=True) as db:
            updated = db.execute(
                "UPDATE objects SET metadata = ? WHERE container = ? AND name = ?",
                (encodeMetadata(metadata), container, name),
            ).rowcount
        if not updated:
            raise NotFound(f"no object {name!r} in container {container!r}")
        return self._objectInfo(container, name)

    def openObject(self, container, name, metadata, length, writeOnce=False,
                   contentType=None):
        return self._defer("opening an object", self._openObject,
                           container, name, metadata, length, writeOnce, contentType)

    def _openObject(self, container, name, metadata, length, writeOnce,
                    contentType) -> "ChunkWriter":
        if self._containerMetadata(container) is None:
            raise NotFound(f"no container {container!r}")
        self._checkSpace(length or 0)
        upload = self._db.execute(
            "INSERT INTO uploads (container, name, started) VALUES (?, ?, ?)",
            (container, name, time.time()),
        ).lastrowid
        return ChunkWriter(self, upload, container, name, metadata, writeOnce, contentType)

    def deleteObject(self, container, name):
        return self._defer("deleting an object", self._deleteObject, container, name)

    def _deleteObject(self, container: str, name: str) -> ObjectInfo | None:
        with self._transaction(durable=True) as db:
            row = db.execute(
                f"SELECT upload, {OBJECT_COLUMNS} FROM objects"
                " WHERE container = ? AND name = ?",
                (container, name),
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM objects WHERE container = ? AND name = ?",
                       (container, name))
        # Its bytes go in a transaction of their own, or later if a reader
        # still holds them: no object row points at them any more.  The
        # object is gone already: a failure here is tidying, left for the
        # next start (which deletes uploads no object points at).
        try:
            self._forget(row[0])
        except sqlite3.Error as e:
            log.warn("deleted {name!r} in {container!r}, but not its bytes yet: {error}",
                     name=name, container=container, error=e)
        return rowInfo(container, name, *row[1:])

    def deleteContainer(self, container):
        return self._defer("deleting a container", self._deleteContainer, container)

    def _deleteContainer(self, container: str) -> bool:
        with self._transaction(durable=True) as db:
            if self._containerMetadata(container) is None:
                return False
            # Objects, uploads under way, and the bytes of deleted objects
            # still being read all have an upload row.
            if db.execute("SELECT 1 FROM uploads WHERE container = ? LIMIT 1",
                          (container,)).fetchone():
                raise Conflict(f"container {container!r} still holds objects, "
                               "or uploads into it are under way")
            db.execute("DELETE FROM containers WHERE name = ?", (container,))
        return True

    def listContainers(self, prefix, marker, limit):
        return self._defer("listing containers", self._listContainers, prefix, marker, limit)

    def _listContainers(self, prefix: str, marker: str, limit: int) -> list[ContainerInfo]:
        condition, parameters = listingRange(prefix, marker, "c.name")
        rows = self._db.execute(
            f"{CONTAINERS} WHERE {condition} GROUP BY c.name ORDER BY c.name LIMIT ?",
            (*parameters, limit),
        )
        return [containerRow(*row) for row in rows]

    def listObjects(self, container, prefix, marker, limit):
        return self._defer("listing objects", self._listObjects, container, prefix, marker,
                           limit)

    def _listObjects(self, container, prefix, marker, limit) -> list[ObjectInfo]:
        if self._containerMetadata(container) is None:
            raise NotFound(f"no container {container!r}")
        condition, parameters = listingRange(prefix, marker)
        rows = self._db.execute(
            f"SELECT name, {OBJECT_COLUMNS} FROM objects"
            f" WHERE container = ? AND {condition} ORDER BY name LIMIT ?",
            (container, *parameters, limit),
        )
        return [rowInfo(container, *row) for row in rows]

    def readObject(self, container, name, offset, length):
        return self._defer("opening an object to read", self._readObject,
                           container, name, offset, length)

    def _readObject(self, container, name, offset, length) -> "ChunkReader":
        row = self._db.execute(
            f"SELECT upload, {OBJECT_COLUMNS} FROM objects WHERE container = ? AND name = ?",
            (container, name),
        ).fetchone()
        if row is None:
            raise NotFound(f"no object {name!r} in container {container!r}")
        upload, info = row[0], rowInfo(container, name, *row[1:])
        size = info.digests.length
        end = size if length is None else min(offset + length, size)
        self._reading[upload] = self._reading.get(upload, 0) + 1
        return ChunkReader(self, upload, info, min(offset, end), end)

    def readState(self, name):
        return self._defer("reading service state", self._readState, name)

    def _readState(self, name: str) -> bytes | None:
        if self._db is None:
            # Read without open(), as a backup does beside a running server:
            # connect, but create nothing.
            if not os.path.exists(self.path):
                return None
            self._db = self._connect(create=False)
        row = self._db.execute("SELECT data FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def writeState(self, name, data):
        return self._defer("writing service state", self._writeState, name, data)

    def _writeState(self, name: str, data: bytes) -> None:
        with self._transaction(durable=True) as db:
            db.execute("INSERT OR REPLACE INTO state (name, data) VALUES (?, ?)", (name, data))

    def _free(self) -> int:
        status = os.statvfs(os.path.dirname(self.path))
        (reusable,) = self._db.execute(
            "SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size"
        ).fetchone()
        return status.f_bavail * status.f_frsize + reusable

    def freeSpace(self):
        return self._defer("measuring free space", lambda: max(0, self._free() - self.reserve))

    def _checkSpace(self, length: int) -> None:
        """
        @raise InsufficientStorage: if C{length} bytes would eat into the
            reserve.  The pages that deleted chunks left inside the database
            count as free: SQLite fills them before it grows the file.
        """
        free = self._free()
        if length + self.reserve > free:
            raise InsufficientStorage(
                f"not enough free space: {free} bytes free (with the database's free "
                f"pages), {self.reserve} kept in reserve"
            )

    # For ChunkWriter and ChunkReader, on the database thread.

    def _forget(self, upload: int) -> None:
        """Delete an upload and its chunks, unless an object or a reader holds them."""
        if upload in self._reading:
            return
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM objects WHERE upload = ?", (upload,)).fetchone():
                deleteUpload(db, upload)

    def _release(self, upload: int) -> None:
        """A reader of C{upload} is done with it."""
        count = self._reading.pop(upload) - 1
        if count:
            self._reading[upload] = count
        else:
            self._forget(upload)


def backend(dataDirectory: str, options: dict[str, str]) -> SQLiteBackend:
    """
    C{sqlite:path=FILE:reserve=SIZE}: everything in the database C{path}
    (default C{DATA/storage.sqlite}), keeping C{reserve} bytes free on its
    filesystem (default 256M).
    """
    checkOptions("sqlite", options, {"path", "reserve"})
    path = options.get("path") or os.path.join(dataDirectory, "storage.sqlite")
    return SQLiteBackend(path, parseSize("sqlite", "reserve", options.get("reserve", "256M")))
