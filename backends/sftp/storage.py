"""
The SFTP backend's storage contract (L{IStorageBackend}): containers and
objects in the shared layout under the root on the server, each request
made over the current session of the L{Connection}.
"""

import os
import posixpath

from twisted.conch.ssh import filetransfer
from twisted.internet.defer import DeferredLock, inlineCallbacks
from zope.interface import implementer

from bwscd.backends import common, layout
from bwscd.backends.sftp.connection import Connection
from bwscd.backends.sftp.digests import DIGESTS, digestsPath
from bwscd.backends.sftp.placement import Placement
from bwscd.backends.sftp.session import REMOTE_FAILURES, isDirectory, isFile, log
from bwscd.backends.sftp.ssh import Peer, findSSH, loadKey
from bwscd.backends.sftp.transfer import SFTPWriter, openReader
from bwscd.backends.sftp.tree import (
    checkObjectName,
    containerDescription,
    each,
    objectEntries,
    objectInfo,
)
from bwscd.constraints import mergeMetadata
from bwscd.errors import InsufficientStorage, NotFound
from bwscd.interfaces import IStorageBackend, IStorageSpace
from bwscd.plugins import checkOptions, parseSize


@implementer(IStorageBackend, IStorageSpace)
class SFTPBackend:
    """
    Containers and objects under C{root} on an SFTP server.  When the server
    offers C{statvfs@openssh.com}, C{reserve} bytes of free space are kept
    there: an upload that would eat into them is refused with 507 before its
    body is read.

    @param requireReserve: refuse to start on a server that can't tell its
        free space, because the operator asked for a reserve.
    """

    def __init__(self, reactor, peer: Peer, root: str, reserve: int, requireReserve: bool):
        self.description = f"sftp storage in {root} on {peer}"
        # SFTP (version 3, as OpenSSH serves it) has no locks, and a file
        # made to stand for one would outlive a crash and keep every later
        # start out: the root on the server is not locked (docs/sftp.md).
        self.lockPath = None
        self._root = root
        self._reserve = reserve
        self._connection = Connection(reactor, peer, root, requireReserve)
        self._placement = Placement(self._connection)
        # Each request on the connection's current session.
        self._guarded = self._connection.guarded
        # Metadata is read, merged and written back; this keeps two requests
        # for the same container from losing each other's changes.
        self._metadataLock = DeferredLock()

    def open(self, recover=True):
        return self._connection.open(recover)

    def containerInfo(self, container):
        return self._guarded("reading container metadata", self._containerInfo, container)

    @inlineCallbacks
    def _containerInfo(self, session, container: str):
        if not isDirectory((yield session.stat(layout.container(container)))):
            return None
        data = yield session.read(layout.containerMetadata(container))
        return (yield containerDescription(session, container, layout.decodeMetadata(data)))

    def putContainer(self, container, metadata):
        return self._guarded("creating a container", self._putContainer, container, metadata)

    @inlineCallbacks
    def _putContainer(self, session, container: str, metadata: dict[str, str]):
        layout.checkContainerName(container, session.nameMax)
        path = layout.container(container)
        created = not isDirectory((yield session.stat(path)))
        if created:
            yield session.makeDirectories(path)
        yield self._metadataLock.run(self._mergeContainerMetadata, session, container, metadata)
        return created

    def updateContainer(self, container, metadata):
        return self._guarded("updating container metadata", self._updateContainer,
                             container, metadata)

    @inlineCallbacks
    def _updateContainer(self, session, container: str, metadata: dict[str, str]):
        if not isDirectory((yield session.stat(layout.container(container)))):
            raise NotFound(f"no container {container!r}")
        merged = yield self._metadataLock.run(
            self._mergeContainerMetadata, session, container, metadata)
        return (yield containerDescription(session, container, merged))

    @inlineCallbacks
    def _mergeContainerMetadata(self, session, container: str, changes: dict[str, str]):
        path = layout.containerMetadata(container)
        data = yield session.read(path)
        current = layout.decodeMetadata(data)
        merged = mergeMetadata(current, changes)
        last = None
        if merged != current or data is None:
            yield session.write(path, layout.encodeMetadata(merged))
            last = path
        # Keep the zero-size 'complete' file in step with the Status.
        marker = layout.completeMarker(container)
        present = (yield session.stat(marker)) is not None
        complete = common.isComplete(merged)
        if complete and not present:
            yield session.write(marker, b"")
            last = marker
        elif not complete and present:
            yield session.remove(marker)
        if last is not None:
            yield session.settle(last)
        return merged

    def objectInfo(self, container, name):
        return self._guarded("reading object metadata", objectInfo, container, name)

    def replaceObjectMetadata(self, container, name, metadata):
        return self._guarded("replacing object metadata", self._replaceObjectMetadata,
                             container, name, metadata)

    @inlineCallbacks
    def _replaceObjectMetadata(self, session, container, name, metadata):
        yield self._metadataLock.run(self._writeObjectMetadata, session, container, name,
                                     metadata)
        return (yield objectInfo(session, container, name))

    @inlineCallbacks
    def _writeObjectMetadata(self, session, container, name, metadata):
        if not isFile((yield session.stat(layout.object(container, name)))):
            raise NotFound(f"no object {name!r} in container {container!r}")
        path = layout.objectMetadata(container, name)
        yield session.write(path, layout.encodeMetadata(metadata))
        yield session.settle(path)

    def openObject(self, container, name, metadata, length, writeOnce=False,
                   contentType=None):
        return self._guarded("opening an object", self._openObject,
                             container, name, metadata, length, writeOnce, contentType)

    @inlineCallbacks
    def _openObject(self, session, container, name, metadata, length, writeOnce,
                    contentType):
        if not isDirectory((yield session.stat(layout.container(container)))):
            raise NotFound(f"no container {container!r}")
        yield checkObjectName(session, container, name, writeOnce)
        free = yield session.freeSpace()
        if free is not None and (length or 0) + self._reserve > free:
            raise InsufficientStorage(
                f"not enough free space: {free} bytes free, {self._reserve} kept in reserve"
            )
        f, temporary = yield session.create()
        writer = SFTPWriter(self._connection, self._placement, session, f, temporary, container,
                            name, metadata, writeOnce, contentType)
        self._connection.writers.add(writer)
        return writer

    def deleteObject(self, container, name):
        return self._guarded("deleting an object", self._deleteObject, container, name)

    @inlineCallbacks
    def _deleteObject(self, session, container: str, name: str):
        yield self._metadataLock.acquire()
        yield self._placement.lock.acquire()
        try:
            info = yield objectInfo(session, container, name)
            if info is not None:
                # The object's file first: from then on nothing of it is visible.
                yield session.remove(layout.object(container, name))
            elif not (yield self._leftover(session, layout.objectMetadata(container, name))):
                return None
            # Otherwise a deletion cut short after the first removal left the
            # metadata, which would keep the container from ever being empty:
            # this one finishes it (and is a 404 all the same).
            yield session.removeQuietly(layout.objectMetadata(container, name))
            yield session.removeQuietly(digestsPath(container, name))
            # Directories its name made, now empty, go too (where they are
            # not empty, other objects share them).
            for directory in layout.objectDirectories(container, name):
                yield session.removeEmptyDirectory(directory)
                yield session.removeEmptyDirectory(posixpath.join(DIGESTS, directory))
            # SFTP has no directory fsync: a file's fsync commits the
            # removals before it on ext4, XFS and btrfs (see settle).  The
            # object is gone already: a failure here must not hide that.
            try:
                yield session.settle(layout.containerMetadata(container))
            except REMOTE_FAILURES as e:
                log.warn("deleted {name!r} in {container!r}, but could not sync the "
                         "removal: {error}", name=name, container=container, error=e)
            return info
        finally:
            self._placement.lock.release()
            self._metadataLock.release()

    @staticmethod
    @inlineCallbacks
    def _leftover(session, path: str):
        """Whether the file C{path} is there; not, if the server can't say (a name too long)."""
        try:
            return isFile((yield session.stat(path)))
        except filetransfer.SFTPError:
            return False

    def deleteContainer(self, container):
        return self._guarded("deleting a container", self._deleteContainer, container)

    @inlineCallbacks
    def _deleteContainer(self, session, container: str):
        yield self._metadataLock.acquire()
        yield self._placement.lock.acquire()
        try:
            top = layout.container(container)
            if not isDirectory((yield session.stat(top))):
                return False
            # A copy: upload threads discard their writers as they end.
            writing = any(w.container == container for w in list(self._connection.writers))
            own = {posixpath.basename(layout.completeMarker(container)),
                   posixpath.basename(layout.containerMetadata(container))}
            # Checked before anything is removed: a 409 leaves the container
            # as it was, metadata included.
            if writing or set((yield session.list(top))) - own:
                raise layout.containerNotEmpty(container)
            yield session.removeQuietly(layout.completeMarker(container))
            yield session.removeQuietly(layout.containerMetadata(container))
            if not (yield session.removeEmptyDirectory(top)):
                raise layout.containerNotEmpty(container)
            yield session.removeEmptyDirectory(posixpath.join(DIGESTS, top))
            return True
        finally:
            self._placement.lock.release()
            self._metadataLock.release()

    def listContainers(self, prefix, marker, limit):
        return self._guarded("listing containers", self._listContainers, prefix, marker, limit)

    @inlineCallbacks
    def _listContainers(self, session, prefix, marker, limit):
        entries = yield session.entries("")
        names = [name for name, attributes in entries
                 if not name.startswith(".") and isDirectory(attributes)]
        names = common.utf8Names(names, self._root)
        return (yield each(self._listedContainer,
                            common.chosen(names, prefix, marker, limit), session))

    @inlineCallbacks
    def _listedContainer(self, container, session):
        data = yield session.read(layout.containerMetadata(container))
        return (yield containerDescription(session, container, layout.decodeMetadata(data)))

    def listObjects(self, container, prefix, marker, limit):
        return self._guarded("listing objects", self._listObjects, container, prefix, marker,
                             limit)

    @inlineCallbacks
    def _listObjects(self, session, container, prefix, marker, limit):
        top = layout.container(container)
        if not isDirectory((yield session.stat(top))):
            raise NotFound(f"no container {container!r}")
        names = [name for name, _ in (yield objectEntries(session, top, "", prefix))]
        chosen = common.chosen(names, prefix, marker, limit)
        infos = yield each(lambda name: objectInfo(session, container, name), chosen)
        # (One that went between the listing and the look-up is left out.)
        return [info for info in infos if info is not None]

    def readObject(self, container, name, offset, length):
        return self._guarded("opening an object to read", openReader,
                             self._connection, container, name, offset, length)

    def readState(self, name):
        return self._guarded("reading service state",
                             lambda session: session.read(layout.state(name)))

    @inlineCallbacks
    def _freeSpace(self, session):
        free = yield session.freeSpace()
        return None if free is None else max(0, free - self._reserve)

    def freeSpace(self):
        return self._guarded("measuring free space", self._freeSpace)

    def writeState(self, name, data):
        return self._guarded("writing service state", self._writeState, name, data)

    @inlineCallbacks
    def _writeState(self, session, name, data):
        yield session.write(layout.state(name), data)
        yield session.settle(layout.state(name))


def backend(dataDirectory: str, options: dict[str, str]) -> SFTPBackend:
    """
    C{sftp:host=H:port=P:user=U:key=PATH:known_hosts=PATH:root=DIR:reserve=SIZE}:
    objects under C{root} on the SSH server C{host} (port 22 by default),
    logging in as C{user} with the private key C{key}, the server's host key
    pinned in C{known_hosts}; keeping C{reserve} bytes free there (default
    256M) if the server can tell its free space.
    """
    checkOptions("sftp", options,
                 {"host", "port", "user", "key", "known_hosts", "root", "reserve"})
    required = ("host", "user", "key", "known_hosts", "root")
    missing = [option for option in required if not options.get(option)]
    if missing:
        raise ValueError(f"sftp backend: missing option(s) {', '.join(missing)}")
    port = options.get("port", "22")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sftp backend: port={port!r} is not a TCP port")
    knownHosts = os.path.abspath(options["known_hosts"])
    if not os.path.isfile(knownHosts):
        raise ValueError(f"sftp backend: known_hosts={knownHosts}: no such file")
    if options["host"].startswith("-"):
        raise ValueError(f"sftp backend: host={options['host']!r} is not a host name")
    keyPath = os.path.abspath(options["key"])
    peer = Peer(options["host"], int(port), options["user"], loadKey(keyPath), keyPath,
                 knownHosts, findSSH())
    reserve = parseSize("sftp", "reserve", options.get("reserve", "256M"))
    from twisted.internet import reactor

    return SFTPBackend(reactor, peer, options["root"], reserve, "reserve" in options)
