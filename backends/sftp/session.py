"""
The SFTP client and its session: the requests the SFTP backend makes of the
server (remote file operations, by paths relative to the storage root), and
what they can fail with.  L{SFTPClient} speaks SFTP over ssh's stdin and
stdout (L{bwscd.backends.sftp.ssh}); L{Session} is what the rest of the
backend uses.
"""

import posixpath
import secrets
import stat
import struct

from twisted.conch.ssh import filetransfer
from twisted.conch.ssh.common import NS
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from bwscd.backends import common, layout
from bwscd.errors import SwiftError

CHUNK_SIZE = 256 << 10
"""
Bytes per SFTP write, if the server takes that many (OpenSSH: 255 KiB).
Every write costs the reactor a request, an answer and a wake-up of the
upload's thread, whatever its size.
"""

READ_SIZE = 256 << 10
"""Bytes per SFTP read, if the server says it gives that many."""

# Without limits@openssh.com, a write as large as every server must take
# (the SFTP draft: packets of 34000 bytes), and reads of a size that
# servers give whole.
_PORTABLE_CHUNK_SIZE = 32 << 10
_PORTABLE_READ_SIZE = 64 << 10

# The socket buffer between bwscd and ssh, each way: a few of the largest
# writes.  Also what bwscd writes to it at once.
SOCKET_BUFFER = 1 << 20
# What bwscd reads from it at once: Python allocates that much for every
# read, and the answers to writes are a few bytes.
_SOCKET_READ_SIZE = 128 << 10

FSYNC = b"fsync@openssh.com"
POSIX_RENAME = b"posix-rename@openssh.com"
STATVFS = b"statvfs@openssh.com"
_LIMITS = b"limits@openssh.com"

# What a request over the connection can fail with besides a refusal of
# ours: the server's answer, or the connection going away under it.
REMOTE_FAILURES = (
    filetransfer.SFTPError,
    NotImplementedError,  # the server's SSH_FX_OP_UNSUPPORTED
    EOFError,
    ConnectionLost,
    ConnectionDone,
)


# The SFTP backend logs under its package's name, from whichever module.
log = Logger(namespace=__package__)


class _WarningsOnly(Logger):
    """
    Conch logs every SFTP packet at info level: that would be thousands of
    lines, and a good part of the reactor's time, per GiB.  bwscd says
    itself what an operator needs to know about the connection.
    """

    def emit(self, level, format=None, **kwargs):
        if level in (LogLevel.warn, LogLevel.error, LogLevel.critical):
            super().emit(level, format, **kwargs)


_conchLog = _WarningsOnly()


class SFTPClient(filetransfer.FileTransferClient):
    _log = _conchLog

    def __init__(self, started, lost):
        super().__init__()
        # FileTransferBase.connectionLost closes these, and only the server
        # side sets them: without it, losing the connection would raise
        # before the requests in flight are failed.
        self.openDirs = {}
        self._started = started
        self._lost = lost
        self._received = bytearray()

    def connectionMade(self):
        # Twisted reads 64 KiB and sends 128 KiB at a time: a read or a
        # write of 255 KiB is one packet.
        self.transport.bufferSize = _SOCKET_READ_SIZE
        self.transport.SEND_LIMIT = SOCKET_BUFFER
        super().connectionMade()

    def gotServerVersion(self, serverVersion, extData):
        self._started(self, extData)

    def write(self, handle: bytes, offset: int, chunk: bytes) -> Deferred:
        """
        What L{filetransfer.ClientFile.writeChunk} sends, without copying
        C{chunk}: it copies it four times over, building the packet.
        """
        if not self.connected:
            return fail(ConnectionLost())
        requestId = self.counter
        self.counter += 1
        d = self.openRequests[requestId] = Deferred()
        self.transport.writeSequence([
            struct.pack("!LBL", 1 + 4 + len(handle) + 8 + 4 + len(chunk),
                        filetransfer.FXP_WRITE, requestId)
            + handle + struct.pack("!QL", offset, len(chunk)),
            chunk,
        ])
        return d

    def dataReceived(self, data):
        # FileTransferBase.dataReceived adds each read to what it holds and
        # slices that apart again, copying a large answer once per read:
        # here it gets one whole packet at a time.
        self._received += data
        while len(self._received) >= 4:
            end = 4 + int.from_bytes(self._received[:4], "big")
            if len(self._received) < end:
                return
            packet = bytes(self._received[:end])
            del self._received[:end]
            super().dataReceived(packet)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self._lost()



class Session:
    """
    The requests the backend makes over one SFTP session, by paths relative
    to the root, as the shared layout names them.  Deferreds fail with what
    the server or the connection said (L{REMOTE_FAILURES}).

    @ivar ssh: the L{SSHProcess<bwscd.backends.sftp.ssh.SSHProcess>} that
        carries the session.
    """

    def __init__(self, client, extensions: dict, ssh, root: str):
        self.client = client
        self.extensions = extensions
        self.ssh = ssh
        self.root = root
        self.chunkSize = _PORTABLE_CHUNK_SIZE
        self.readSize = _PORTABLE_READ_SIZE
        self.nameMax = 255
        self.probing = False

    def can(self, extension: bytes) -> bool:
        return extension in self.extensions

    def _remote(self, relative: str) -> str:
        return posixpath.join(self.root, relative) if relative else self.root

    def _path(self, relative: str) -> bytes:
        return _encode(self._remote(relative))

    @inlineCallbacks
    def examine(self):
        """Learn the server's limits: write size and file name length."""
        if self.can(_LIMITS):
            reply = yield self.client.extendedRequest(_LIMITS, b"")
            maxRead, maxWrite = struct.unpack("!4Q", reply[:32])[1:3]
            if maxWrite:
                self.chunkSize = min(CHUNK_SIZE, maxWrite)
            if maxRead:
                self.readSize = min(READ_SIZE, maxRead)
        if self.can(STATVFS):
            self.nameMax = (yield self._statvfs())[10]

    def _statvfs(self):
        d = self.client.extendedRequest(STATVFS, NS(self._path("")))
        return d.addCallback(lambda reply: struct.unpack("!11Q", reply[:88]))

    @inlineCallbacks
    def freeSpace(self):
        """Bytes free to an unprivileged user, or L{None} if the server can't say."""
        if not self.can(STATVFS):
            return None
        fields = yield self._statvfs()
        return fields[4] * fields[1]  # f_bavail * f_frsize

    def stat(self, relative: str):
        """The attributes of C{relative} (not following a link), or L{None}."""
        return self._stat(self._remote(relative))

    @inlineCallbacks
    def _stat(self, remote: str):
        try:
            return (yield self.client.getAttrs(_encode(remote)))
        except filetransfer.SFTPError as e:
            if e.code == filetransfer.FX_NO_SUCH_FILE:
                return None
            raise

    def probe(self):
        return self.client.getAttrs(self._path(""))

    @inlineCallbacks
    def read(self, relative: str, consume=None) -> bytes | None:
        """
        The bytes of C{relative}, or L{None} if there is no such file; or
        hand them to C{consume} chunk by chunk, for a file too large to
        hold.
        """
        try:
            f = yield self.client.openFile(self._path(relative), filetransfer.FXF_READ, {})
        except filetransfer.SFTPError as e:
            if e.code == filetransfer.FX_NO_SUCH_FILE:
                return None
            raise
        chunks, offset = [], 0
        try:
            while True:
                try:
                    data = yield f.readChunk(offset, self.chunkSize)
                except EOFError:
                    break
                offset += len(data)
                if consume is None:
                    chunks.append(data)
                else:
                    consume(data)
        finally:
            yield f.close()
        return b"".join(chunks)

    @inlineCallbacks
    def create(self):
        """A new, empty temporary file: (its open handle, its relative path)."""
        relative = posixpath.join(layout.TEMPORARY, f"w-{secrets.token_hex(12)}")
        # No permissions sent: the server creates it 0666 less its umask,
        # as the filesystem backend does.
        f = yield self.client.openFile(
            self._path(relative),
            filetransfer.FXF_WRITE | filetransfer.FXF_CREAT | filetransfer.FXF_EXCL,
            {},
        )
        return f, relative

    def fsync(self, f):
        if not self.can(FSYNC):
            return succeed(None)
        return self.client.extendedRequest(FSYNC, f.handle)

    @inlineCallbacks
    def write(self, relative: str, data: bytes):
        """Replace C{relative} with C{data}, which are durable before they appear."""
        f, temporary = yield self.create()
        try:
            try:
                for offset in range(0, len(data), self.chunkSize):
                    yield f.writeChunk(offset, data[offset : offset + self.chunkSize])
                yield self.fsync(f)
            finally:
                yield f.close()
            yield self.replace(temporary, relative)
        except BaseException:
            yield self.removeQuietly(temporary)
            raise

    @inlineCallbacks
    def settle(self, relative: str):
        """
        Make what was renamed so far durable, as far as SFTP can: fsync
        C{relative}, the last file renamed.  On ext4, XFS and btrfs that
        commits the renames before it too; SFTP has no directory fsync.
        """
        if self.can(FSYNC):
            f = yield self.client.openFile(self._path(relative), filetransfer.FXF_READ, {})
            try:
                yield self.fsync(f)
            finally:
                yield f.close()

    @inlineCallbacks
    def replace(self, old: str, new: str):
        """Rename C{old} to C{new}, replacing it: atomic with posix-rename."""
        yield self.makeDirectories(posixpath.dirname(new))
        if self.can(POSIX_RENAME):
            yield self.client.extendedRequest(
                POSIX_RENAME, NS(self._path(old)) + NS(self._path(new))
            )
            return
        # SFTP's own rename never replaces: make room first, which leaves a
        # moment without the file.
        try:
            yield self.client.renameFile(self._path(old), self._path(new))
        except filetransfer.SFTPError:
            if (yield self.stat(new)) is None:
                raise
            yield self.client.removeFile(self._path(new))
            yield self.client.renameFile(self._path(old), self._path(new))

    @inlineCallbacks
    def place(self, old: str, new: str) -> bool:
        """
        Rename C{old} to C{new} unless C{new} exists: SFTP's own rename,
        which the protocol says fails then (OpenSSH makes it a hard link and
        an unlink).  C{False} if the name was taken.
        """
        yield self.makeDirectories(posixpath.dirname(new))
        try:
            yield self.client.renameFile(self._path(old), self._path(new))
        except filetransfer.SFTPError:
            if (yield self.stat(new)) is None:
                raise
            return False
        return True

    def makeDirectories(self, relative: str):
        """Create C{relative} and its missing parents, up to the root's."""
        return self._makeDirectories(self._remote(relative))

    @inlineCallbacks
    def _makeDirectories(self, remote: str):
        if (yield self._stat(remote)) is not None:
            return
        parent = posixpath.dirname(remote)
        if parent not in ("", "/", remote):
            yield self._makeDirectories(parent)
        try:
            yield self.client.makeDirectory(_encode(remote), {})
        except filetransfer.SFTPError:
            if (yield self._stat(remote)) is None:
                raise  # else another request made it first

    def remove(self, relative: str):
        return self.client.removeFile(self._path(relative))

    @inlineCallbacks
    def removeEmptyDirectory(self, relative: str):
        """Remove the directory C{relative}: C{False} if it isn't empty (or gone)."""
        try:
            yield self.client.removeDirectory(self._path(relative))
        except filetransfer.SFTPError:
            return False
        return True

    @inlineCallbacks
    def removeQuietly(self, relative: str):
        """Remove C{relative} if it can be; what can't is a leftover for L{_prepare}."""
        try:
            yield self.remove(relative)
        except REMOTE_FAILURES:
            pass

    @inlineCallbacks
    def entries(self, relative: str) -> list[tuple[str, dict]]:
        """
        The names in the directory C{relative}, with their attributes (a
        link's own, not its target's).
        """
        directory = yield self.client.openDirectory(self._path(relative))
        found = []
        try:
            while True:
                try:
                    entries = yield directory.read()
                except EOFError:
                    break
                found += [(entry[0].decode("utf-8", "surrogateescape"), entry[2])
                          for entry in entries]
        finally:
            yield directory.close()
        return [(name, attributes) for name, attributes in found if name not in (".", "..")]

    @inlineCallbacks
    def list(self, relative: str) -> list[str]:
        return [name for name, attributes in (yield self.entries(relative))]

    def open(self, relative: str):
        """An open handle to read C{relative}."""
        return self.client.openFile(self._path(relative), filetransfer.FXF_READ, {})


def _encode(path: str) -> bytes:
    # A name read from the server that isn't UTF-8 goes back as it came.
    return path.encode("utf-8", "surrogateescape")


def isDirectory(attributes: dict | None) -> bool:
    return attributes is not None and stat.S_ISDIR(attributes.get("permissions", 0))


def isFile(attributes: dict | None) -> bool:
    return attributes is not None and stat.S_ISREG(attributes.get("permissions", 0))


def refuse(reason: Failure, what: str):
    """
    Raise what to answer for a request that failed with C{reason} while
    C{what}: a refusal of ours as it is; what the server or the connection
    said, 503 (logged); anything else as it is (a bug, for a 500).
    """
    if reason.check(SwiftError) or not reason.check(*REMOTE_FAILURES):
        reason.raiseException()
    raise common.storageError(what, reason.getErrorMessage(), False, log,
                              storage="SFTP storage")
