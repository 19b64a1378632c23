"""
The filesystem backend: containers as directories, objects as plain files,
in the on-disk layout of the vendor's example server, which integrators
already watch (see docs/layout.md)::

    ROOT/<Container>/                              one directory per container
    ROOT/<Container>/<Container>.metadata.json     container metadata
    ROOT/<Container>/complete                      when Status is Complete
    ROOT/<Container>/<Object>                      the object's bytes
    ROOT/<Container>/<Container>.<Object>.metadata.json

C{:} in names becomes C{_}, as in the example server.  What the example
lacks, this adds: every file is written under a temporary name in
C{ROOT/.bwscd/tmp}, fsynced, then renamed into place and its directory
fsynced, so a name only ever shows complete, durable content.  The MD5 and
SHA-256 the engine measured, and the object's Content-Type, travel with the
object's file as extended attributes (C{user.bwscd.md5},
C{user.bwscd.sha256}, C{user.bwscd.content-type}: L{bwscd.backends.xattrs}).
"""

import errno
import os
import stat
import secrets
import threading
from collections import Counter

from twisted.logger import Logger
from zope.interface import implementer

from bwscd.backends import common, layout, xattrs
from bwscd.files import fsyncDirectory, readIfExists
from bwscd.constraints import mergeMetadata
from bwscd.errors import (
    BadRequest,
    InsufficientStorage,
    NotFound,
    SwiftError,
)
from bwscd.plugins import checkOptions, parseSize
from bwscd.interfaces import (
    ContainerInfo,
    IObjectReader,
    IObjectWriter,
    IStorageBackend,
    IStorageSpace,
    ObjectInfo,
)
from bwscd.threads import Pool

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Metadata operations at once (an object's bytes are written by its
# upload's thread, read by a download thread): as many as Twisted's default
# pool, which this replaces.
STORAGE_THREADS = 10

log = Logger()


def storageError(error: OSError, what: str) -> SwiftError:
    """The API's refusal for a failed filesystem operation: out of space or quota is 507."""
    return common.storageError(what, error, error.errno in _NO_SPACE, log)


def _readMetadata(path: str) -> dict[str, str]:
    return layout.decodeMetadata(readIfExists(path))


@implementer(IStorageBackend, IStorageSpace)
class FilesystemBackend:
    """
    Containers and objects under C{root}.  C{reserve} bytes of free space are
    kept: an upload that would eat into them is refused with 507 before its
    body is read.

    Longer than a class should be, for a reason: it is the storage contract
    (L{IStorageBackend}, thirteen methods), each as the reactor's call and
    the body its thread runs, beside the durable-write steps they share;
    what is not the contract is elsewhere (L{common}, L{layout}, L{xattrs},
    L{FileWriter}).
    """

    def __init__(self, root: str, reserve: int):
        self.root = os.path.abspath(root)
        self.reserve = reserve
        self.description = f"filesystem storage in {self.root}"
        self._temporary = self._path(layout.TEMPORARY)
        self.lockPath = self._path(layout.LOCK)
        # Metadata is read, merged and written back; this keeps two requests
        # for the same container from losing each other's changes.
        self._metadataLock = threading.Lock()
        # A write-once commit checks that its name is free, then takes it.
        self._commitLock = threading.Lock()
        # Writers open per container: a container being written to is not
        # empty, even before its first object appears.
        self._writers: Counter[str] = Counter()
        self._pool = Pool(None, "storage", STORAGE_THREADS)

    # Paths, in the shared layout.

    def _path(self, relative: str) -> str:
        return os.path.join(self.root, *relative.split("/"))

    def _containerPath(self, container: str) -> str:
        return self._path(layout.container(container))

    def _containerMetadataPath(self, container: str) -> str:
        return self._path(layout.containerMetadata(container))

    def _objectPath(self, container: str, name: str) -> str:
        return self._path(layout.object(container, name))

    def _objectMetadataPath(self, container: str, name: str) -> str:
        return self._path(layout.objectMetadata(container, name))

    @property
    def _nameMax(self) -> int:
        return os.pathconf(self.root, "PC_NAME_MAX")

    def _checkObjectName(self, container: str, name: str, writeOnce: bool) -> None:
        """
        Refuse, before the body is read, a name the layout can't hold: one
        reserved for the layout's own files, one too long, or one whose path
        would need a file to be a directory or the other way round (C{a} and
        C{a/b}).
        """
        layout.checkObjectName(container, name, writeOnce, self._nameMax)
        for parent in layout.objectParents(container, name):
            parent = self._path(parent)
            if os.path.lexists(parent) and not os.path.isdir(parent):
                raise BadRequest(f"object name {name!r}: a prefix of it is an object")
        path = self._objectPath(container, name)
        if os.path.isdir(path):
            raise BadRequest(f"object name {name!r} is a prefix of other objects")

    # Durable writes.

    def _temporaryFile(self) -> tuple[int, str]:
        # Not mkstemp: its files are 0600, and integrators' tools reading the
        # storage may run as another user.  The umask decides, as for any file.
        path = os.path.join(self._temporary, f"w-{secrets.token_hex(12)}")
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path

    def _makeDirectories(self, directory: str) -> None:
        """Create C{directory} and its missing parents, durably."""
        if os.path.isdir(directory):
            return
        self._makeDirectories(os.path.dirname(directory))
        try:
            os.mkdir(directory)
        except FileExistsError:
            return  # another upload made it first
        fsyncDirectory(os.path.dirname(directory))

    def _replace(self, temporary: str, final: str) -> None:
        """Rename a synced file into place and make the rename durable."""
        directory = os.path.dirname(final)
        self._makeDirectories(directory)
        os.replace(temporary, final)
        fsyncDirectory(directory)

    def _link(self, temporary: str, final: str) -> None:
        """Like L{_replace}, but never over an existing file."""
        directory = os.path.dirname(final)
        self._makeDirectories(directory)
        os.link(temporary, final)
        os.unlink(temporary)
        fsyncDirectory(directory)

    def _writeFile(self, path: str, data: bytes) -> None:
        fd, temporary = self._temporaryFile()
        try:
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._replace(temporary, path)
        except BaseException:
            _unlinkQuietly(temporary)
            raise

    # IStorageBackend

    def open(self, recover=True):
        return self._pool.run(self._open, recover)

    def _open(self, recover: bool) -> None:
        os.makedirs(self._temporary, exist_ok=True)
        if not recover:
            return
        leftovers = os.listdir(self._temporary)
        for leftover in leftovers:
            os.unlink(os.path.join(self._temporary, leftover))
        if leftovers:
            fsyncDirectory(self._temporary)
            log.warn(
                "removed {count} leftover(s) of interrupted writes from {path}",
                count=len(leftovers),
                path=self._temporary,
            )

    def containerInfo(self, container):
        return self._pool.run(self._guarded, "reading container metadata",
                             self._containerInfo, container)

    def _containerInfo(self, container: str) -> ContainerInfo | None:
        if not os.path.isdir(self._containerPath(container)):
            return None
        return self._described(container, _readMetadata(self._containerMetadataPath(container)))

    def _described(self, container: str, metadata: dict[str, str]) -> ContainerInfo:
        """The container's info: its metadata, and what its directory holds."""
        count, used = 0, 0
        try:
            modified = os.stat(self._containerMetadataPath(container)).st_mtime
        except FileNotFoundError:  # a directory made by hand
            modified = os.stat(self._containerPath(container)).st_mtime
        for name in self._objectNames(container):
            try:
                status = os.stat(self._objectPath(container, name))
            except FileNotFoundError:
                continue  # deleted since it was listed
            count, used = count + 1, used + status.st_size
            modified = max(modified, status.st_mtime)
        return ContainerInfo(container, metadata, count, used, modified)

    def putContainer(self, container, metadata):
        return self._pool.run(self._guarded, "creating a container",
                             self._putContainer, container, metadata)

    def _putContainer(self, container: str, metadata: dict[str, str]) -> bool:
        layout.checkContainerName(container, self._nameMax)
        path = self._containerPath(container)
        created = not os.path.isdir(path)
        if created:
            self._makeDirectories(path)
        self._mergeContainerMetadata(container, metadata)
        return created

    def updateContainer(self, container, metadata):
        return self._pool.run(self._guarded, "updating container metadata",
                             self._updateContainer, container, metadata)

    def _updateContainer(self, container: str, metadata: dict[str, str]) -> ContainerInfo:
        if not os.path.isdir(self._containerPath(container)):
            raise NotFound(f"no container {container!r}")
        return self._described(container, self._mergeContainerMetadata(container, metadata))

    def _mergeContainerMetadata(self, container: str, changes: dict[str, str]):
        with self._metadataLock:
            path = self._containerMetadataPath(container)
            current = _readMetadata(path)
            merged = mergeMetadata(current, changes)
            if merged != current or not os.path.exists(path):
                self._writeFile(path, layout.encodeMetadata(merged))
            self._markComplete(container, common.isComplete(merged))
            return merged

    def _markComplete(self, container: str, complete: bool) -> None:
        """Keep the zero-size 'complete' file in step with the Status."""
        marker = self._path(layout.completeMarker(container))
        if complete and not os.path.exists(marker):
            self._writeFile(marker, b"")
        elif not complete and os.path.exists(marker):
            os.unlink(marker)
            fsyncDirectory(os.path.dirname(marker))

    def objectInfo(self, container, name):
        return self._pool.run(self._guarded, "reading object metadata",
                             self._objectInfo, container, name)

    def _objectInfo(self, container: str, name: str) -> ObjectInfo | None:
        path = self._objectPath(container, name)
        try:
            status = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:  # no such object can exist
                return None
            raise
        if not stat.S_ISREG(status.st_mode):
            return None
        return ObjectInfo(
            container,
            name,
            xattrs.storedDigests(path, status.st_size),
            status.st_mtime,
            _readMetadata(self._objectMetadataPath(container, name)),
            contentType=xattrs.storedContentType(path),
        )

    def replaceObjectMetadata(self, container, name, metadata):
        return self._pool.run(self._guarded, "replacing object metadata",
                             self._replaceObjectMetadata, container, name, metadata)

    def _replaceObjectMetadata(self, container, name, metadata) -> ObjectInfo:
        with self._metadataLock:
            if not os.path.isfile(self._objectPath(container, name)):
                raise NotFound(f"no object {name!r} in container {container!r}")
            self._writeFile(
                self._objectMetadataPath(container, name), layout.encodeMetadata(metadata)
            )
        return self._objectInfo(container, name)

    def openObject(self, container, name, metadata, length, writeOnce=False,
                   contentType=None):
        return self._pool.run(self._guarded, "opening an object", self._openObject,
                             container, name, metadata, length, writeOnce, contentType)

    def _openObject(self, container, name, metadata, length, writeOnce,
                    contentType) -> "FileWriter":
        # Found and counted at once: deleteContainer, under the same lock,
        # sees either no container or a writer into it.
        with self._commitLock:
            if not os.path.isdir(self._containerPath(container)):
                raise NotFound(f"no container {container!r}")
            self._writers[container] += 1
        try:
            self._checkObjectName(container, name, writeOnce)
            free = self._free()
            if (length or 0) + self.reserve > free:
                raise InsufficientStorage(
                    f"not enough free space: {free} bytes free, {self.reserve} kept in reserve"
                )
            fd, temporary = self._temporaryFile()
        except BaseException:
            self._writerClosed(container)
            raise
        return FileWriter(self, container, name, metadata, fd, temporary, writeOnce,
                          contentType)

    def _writerClosed(self, container: str) -> None:
        with self._commitLock:
            self._writers[container] -= 1
            if not self._writers[container]:
                del self._writers[container]

    def deleteObject(self, container, name):
        return self._pool.run(self._guarded, "deleting an object",
                             self._deleteObject, container, name)

    def _deleteObject(self, container: str, name: str) -> ObjectInfo | None:
        with self._metadataLock, self._commitLock:
            info = self._objectInfo(container, name)
            path = self._objectPath(container, name)
            if info is not None:
                # The object's file first: from then on nothing of it is visible.
                os.unlink(path)
            elif self._writers[container] or \
                    not os.path.isfile(self._objectMetadataPath(container, name)):
                # While an upload into the container is under way its metadata
                # may be placed before its bytes: not a leftover to tidy.
                return None
            # Otherwise a deletion cut short after the first unlink left the
            # metadata, which would keep the container from ever being empty:
            # this one finishes it (and is a 404 all the same).
            try:
                _unlinkIfExists(self._objectMetadataPath(container, name))
                fsyncDirectory(os.path.dirname(path))
                # Directories its name made, now empty, go too.
                for directory in layout.objectDirectories(container, name):
                    try:
                        os.rmdir(self._path(directory))
                    except OSError:
                        continue  # not empty: other objects share it
                    fsyncDirectory(os.path.dirname(self._path(directory)))
            except OSError as e:
                # The object is gone: the deletion must be reported (and
                # audited) as done; what is left is tidying.
                log.warn("deleted {path}, but could not tidy up after it: {error}",
                         path=path, error=e)
        return info

    def deleteContainer(self, container):
        return self._pool.run(self._guarded, "deleting a container",
                             self._deleteContainer, container)

    def _deleteContainer(self, container: str) -> bool:
        with self._metadataLock, self._commitLock:
            path = self._containerPath(container)
            if not os.path.isdir(path):
                return False
            own = {os.path.basename(self._path(p)) for p in (
                layout.completeMarker(container), layout.containerMetadata(container))}
            # Checked before anything is removed: a 409 leaves the container
            # as it was, metadata included.
            if self._writers[container] or set(os.listdir(path)) - own:
                raise layout.containerNotEmpty(container)
            _unlinkIfExists(self._path(layout.completeMarker(container)))
            _unlinkIfExists(self._containerMetadataPath(container))
            try:
                os.rmdir(path)
            except OSError as e:
                if e.errno != errno.ENOTEMPTY:
                    raise
                raise layout.containerNotEmpty(container)
            fsyncDirectory(self.root)
        return True

    def listContainers(self, prefix, marker, limit):
        return self._pool.run(self._guarded, "listing containers",
                             self._listContainers, prefix, marker, limit)

    def _listContainers(self, prefix, marker, limit) -> list[ContainerInfo]:
        # scandir: the entry's type comes with its name, where isdir would
        # stat each of a million containers for every page.
        with os.scandir(self.root) as entries:
            names = [e.name for e in entries if not e.name.startswith(".") and e.is_dir()]
        names = common.utf8Names(names, self.root)
        return [self._described(name, _readMetadata(self._containerMetadataPath(name)))
                for name in common.chosen(names, prefix, marker, limit)]

    def listObjects(self, container, prefix, marker, limit):
        return self._pool.run(self._guarded, "listing objects",
                             self._listObjects, container, prefix, marker, limit)

    def _listObjects(self, container, prefix, marker, limit) -> list[ObjectInfo]:
        if not os.path.isdir(self._containerPath(container)):
            raise NotFound(f"no container {container!r}")
        chosen = common.chosen(self._objectNames(container), prefix, marker, limit)
        return [info for info in (self._objectInfo(container, n) for n in chosen) if info]

    def _objectNames(self, container: str) -> list[str]:
        """The names of the objects in the container's directory, in no order."""
        top = self._containerPath(container)
        ownFiles = layout.fsName(container) + "."
        names = []
        for directory, subdirectories, files in os.walk(top):
            subdirectories[:] = common.utf8Names(subdirectories, directory)
            files = common.utf8Names(files, directory)
            relative = os.path.relpath(directory, top)
            if relative == ".":
                # The layout's own files: the marker and the metadata.
                subdirectories[:] = [d for d in subdirectories if not d.startswith(ownFiles)]
                files = [f for f in files
                         if f != layout.COMPLETE_MARKER and not f.startswith(ownFiles)]
                relative = ""
            names += [f"{relative}/{f}".lstrip("/").replace(os.sep, "/") for f in files]
        return names

    def readObject(self, container, name, offset, length):
        return self._pool.run(self._guarded, "opening an object to read",
                             self._readObject, container, name, offset, length)

    def _readObject(self, container, name, offset, length) -> "FileReader":
        info = self._objectInfo(container, name)
        if info is None:
            raise NotFound(f"no object {name!r} in {container!r}")
        f = open(self._objectPath(container, name), "rb")
        f.seek(offset)
        remaining = info.digests.length - offset if length is None else length
        return FileReader(info, f, remaining)

    def readState(self, name):
        return self._pool.run(self._guarded, "reading service state", self._readState, name)

    def _readState(self, name: str) -> bytes | None:
        return readIfExists(self._path(layout.state(name)))

    def _free(self) -> int:
        status = os.statvfs(self.root)
        return status.f_bavail * status.f_frsize

    def freeSpace(self):
        return self._pool.run(self._guarded, "measuring free space",
                              lambda: max(0, self._free() - self.reserve))

    def writeState(self, name, data):
        return self._pool.run(self._guarded, "writing service state",
                             self._writeFile, self._path(layout.state(name)), data)

    def _guarded(self, what, function, *args):
        """Run C{function}, turning filesystem errors into the API's codes."""
        try:
            return function(*args)
        except (NotADirectoryError, IsADirectoryError):
            raise BadRequest(
                f"{what}: a name is both an object and a prefix of another object"
            )
        except OSError as e:
            raise storageError(e, what)


def _unlinkQuietly(path: str) -> None:
    """
    Remove a temporary file.  One that can't be removed (the storage is
    failing) is left for the next start to clean up: the failure being
    reported already says what went wrong.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warn("left {path} for the next start to remove: {error}", path=path, error=e)


def _unlinkIfExists(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@implementer(IObjectReader)
class FileReader:
    """A range of an object's file, read from a worker thread."""

    def __init__(self, info, f, remaining):
        self.info = info
        self._file = f
        self._remaining = remaining

    def read(self, size):
        data = self._file.read(min(size, self._remaining))
        self._remaining -= len(data)
        return data

    def close(self):
        self._file.close()


@implementer(IObjectWriter)
class FileWriter:
    """An object being written to a temporary file, renamed into place on commit."""

    def __init__(self, backend, container, name, metadata, fd, temporary, writeOnce,
                 contentType):
        self._backend = backend
        self._contentType = contentType
        self._container = container
        self._name = name
        self._metadata = metadata
        self._fd = fd
        self._temporary = temporary
        self._writeOnce = writeOnce
        self._closed = False

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._backend._writerClosed(self._container)

    def write(self, data):
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            raise storageError(e, "writing an object")

    def commit(self, digests):
        try:
            xattrs.keep(self._fd, digests, self._contentType)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self._writeOnce:
                info = common.placeOnce(self._name, digests,
                                        lambda name: self._claim(name, digests),
                                        lambda: _unlinkQuietly(self._temporary))
            else:
                info = self._place(self._name, digests, self._backend._replace)
            self._close()
            return info
        except (NotADirectoryError, IsADirectoryError):
            raise BadRequest(
                f"object name {self._name!r} clashes with another object's name"
            )
        except OSError as e:
            raise storageError(e, "committing an object")

    def _place(self, name, digests, move) -> ObjectInfo:
        """
        Write the metadata, then C{move} the synced data under C{name}: when
        the object appears, its metadata is already there.
        """
        backend = self._backend
        backend._writeFile(
            backend._objectMetadataPath(self._container, name),
            layout.encodeMetadata(self._metadata),
        )
        final = backend._objectPath(self._container, name)
        move(self._temporary, final)
        modified = os.stat(final).st_mtime
        return ObjectInfo(self._container, name, digests, modified, self._metadata,
                          contentType=self._contentType)

    def _claim(self, name, digests) -> tuple[ObjectInfo, bool]:
        """Link the object under C{name} if that is free (L{common.placeOnce})."""
        backend = self._backend
        with backend._commitLock:
            existing = backend._objectInfo(self._container, name)
            if existing is None:
                return self._place(name, digests, backend._link), True
        return existing, False

    def abort(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _unlinkQuietly(self._temporary)
        self._close()


def backend(dataDirectory: str, options: dict[str, str]) -> FilesystemBackend:
    """
    C{filesystem:root=DIR:reserve=SIZE}: objects under C{root} (default
    C{DATA/storage}), keeping C{reserve} bytes free (default 256M).
    """
    checkOptions("filesystem", options, {"root", "reserve"})
    root = options.get("root") or os.path.join(dataDirectory, "storage")
    return FilesystemBackend(root, parseSize("filesystem", "reserve", options.get("reserve", "256M")))
