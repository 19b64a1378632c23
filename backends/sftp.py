"""
The SFTP backend: the filesystem backend's tree (docs/layout.md) on an SSH
server, for storage that lives on another machine.  See docs/sftp.md.

One SSH connection carries every request: OpenSSH's client, ssh(1), run
as sftp(1) runs it, with the server's sftp subsystem on its stdin and
stdout.  ssh does the SSH (host key, login, encryption) in a process of its
own, on another core; the reactor only sends and reads SFTP packets.
L{SFTPBackend.open} starts it, and when it ends the backend starts it
again, waiting 1, 2, 5, 10, then 30 seconds between attempts; until then
every method fails with L{ServiceUnavailable}, so the controller keeps its
recording and retries.  The server's host key must be the one
C{known_hosts} pins, and the client logs in with one private key and
nothing else.

Files are written as the filesystem backend writes them, as far as SFTP
lets a client: under a temporary name in C{.bwscd/tmp}, fsynced with
C{fsync@openssh.com}, then renamed into place with
C{posix-rename@openssh.com}, an atomic replace, or, for evidence, with
SFTP's own rename, which never replaces.  SFTP can't fsync a directory, so
after the last rename of an operation the renamed file is fsynced again,
which commits the rename too on journalling filesystems.  The MD5 and
SHA-256, kept in extended attributes by the filesystem backend, are kept in
a tree of their own, C{.bwscd/digests/<Container>/<Object>}, written before
the object appears, with the object's Content-Type.

Listings read the remote directories, as the filesystem backend reads its
own: names come back as the layout stores them (C{:} as C{_}).  A download
keeps a few reads in flight on the handle it opened, so the object it reads
stays the same even if it is replaced meanwhile.
"""

import base64
import collections
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import secrets
import shutil
import socket
import stat
import struct
import threading

from twisted.conch.ssh import filetransfer, keys
from twisted.conch.ssh.common import NS
from twisted.internet.defer import (
    Deferred,
    DeferredLock,
    DeferredSemaphore,
    FirstError,
    fail,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.error import ConnectionDone, ConnectionLost, ProcessExitedAlready
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from bwscd.backends import common, layout
from bwscd.constraints import mergeMetadata
from bwscd.errors import (
    BadRequest,
    InsufficientStorage,
    NotFound,
    ServiceUnavailable,
    SwiftError,
)
from bwscd.interfaces import (
    ContainerInfo,
    Digests,
    IObjectReader,
    IObjectWriter,
    IStorageBackend,
    ObjectInfo,
)
from bwscd.plugins import checkOptions, parseSize

RECONNECT_DELAYS = (1, 2, 5, 10, 30)
"""Seconds between attempts to connect again; the last one repeats."""

CONNECT_TIMEOUT = 30
"""Seconds to get from nothing to an SFTP session."""

KEEPALIVE_INTERVAL = 30
"""
Seconds between probes of an idle-looking connection.  One still
unanswered when the next is due means the link is dead: a silent network
failure is noticed within two intervals.
"""

CHUNK_SIZE = 256 << 10
"""
Bytes per SFTP write, if the server takes that many (OpenSSH: 255 KiB).
Every write costs the reactor a request, an answer and a wake-up of the
upload's thread, whatever its size.
"""

WRITE_WINDOW = 512 << 10
"""
Bytes of one upload sent and not yet acknowledged, at most: 2 writes of
OpenSSH's 255 KiB.  Per round trip, what one upload can send; times the
uploads at once, what they hold in memory (8 uploads at once with twice as
much took 16 MiB more).
"""

CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
"""
The ciphers ssh offers first (OpenSSH's C{Ciphers}, the defaults after
them): cheaper than the default chacha20-poly1305 on a CPU with AES
instructions, for ssh and for the server.
"""

READ_SIZE = 256 << 10
"""Bytes per SFTP read, if the server says it gives that many."""

READS_IN_FLIGHT = 2
"""Reads of one download sent and not yet answered, at most."""

LISTING_REQUESTS = 16
"""Objects or containers of one listing whose metadata is read at once."""

# Without limits@openssh.com, a write as large as every server must take
# (the SFTP draft: packets of 34000 bytes), and reads of a size that
# servers give whole.
_PORTABLE_CHUNK_SIZE = 32 << 10
_PORTABLE_READ_SIZE = 64 << 10

# The socket buffer between bwscd and ssh, each way: a few of the largest
# writes.  Also what bwscd writes to it at once.
_SOCKET_BUFFER = 1 << 20
# What bwscd reads from it at once: Python allocates that much for every
# read, and the answers to writes are a few bytes.
_SOCKET_READ_SIZE = 128 << 10

# Less than this free after a failed write: the remote disk filled up.
_FULL = 1 << 20

_DIGESTS = posixpath.join(layout.STATE_DIRECTORY, "digests")
_FSYNC = b"fsync@openssh.com"
_POSIX_RENAME = b"posix-rename@openssh.com"
_STATVFS = b"statvfs@openssh.com"
_LIMITS = b"limits@openssh.com"

# What a request over the connection can fail with besides a refusal of
# ours: the server's answer, or the connection going away under it.
_REMOTE_FAILURES = (
    filetransfer.SFTPError,
    NotImplementedError,  # the server's SSH_FX_OP_UNSUPPORTED
    EOFError,
    ConnectionLost,
    ConnectionDone,
)

log = Logger()


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


class Unusable(Exception):
    """
    The server can't be used as configured (host key, login, a missing
    feature): bwscd does not start, and a reconnection keeps failing until
    an operator steps in.
    """


class Unreachable(Exception):
    """No SFTP session with the server now; maybe later."""


# Connecting.


class _Peer:
    """Where to connect, as whom, and which host key to expect there."""

    def __init__(self, host: str, port: int, user: str, key: keys.Key, keyPath: str,
                 knownHosts: str, ssh: str):
        self.host = host
        self.port = port
        self.user = user
        self.key = key
        self.keyPath = keyPath
        self.knownHosts = knownHosts
        self.ssh = ssh
        # How known_hosts names the server, as ssh(1) writes it.
        self.name = host if port == 22 else f"[{host}]:{port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.name}"

    def command(self) -> list[str]:
        """
        The ssh(1) command line for an SFTP session: this key and nothing
        else, the host key checked against known_hosts and nothing else,
        and no configuration file, so that neither the user's nor the
        system's changes any of it.
        """
        return [
            self.ssh, "-F", "/dev/null",
            # debug1: the host key the server offered, its software version.
            "-v",
            "-T", "-e", "none",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={_sshPath(self.knownHosts)}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "CheckHostIP=no",
            "-o", "UpdateHostKeys=no",
            "-o", f"IdentityFile={_sshPath(self.keyPath)}",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "PreferredAuthentications=publickey",
            "-o", f"Ciphers={CIPHERS}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-p", str(self.port), "-l", self.user,
            "-s", "--", self.host, "sftp",
        ]


def _sshPath(path: str) -> str:
    """
    C{path} as the value of an ssh -o option: quoted, as ssh_config(5) reads
    a value with spaces, and its C{%} not taken for a token.
    """
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def _fingerprint(key: keys.Key) -> str:
    """C{SHA256:...}, as ssh and ssh-keygen show a key."""
    digest = hashlib.sha256(key.blob()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


# What ssh -v says on stderr that bwscd reads: the host key the server
# offered, and its software version (debug1); ssh's own messages otherwise.
_OFFERED = re.compile(r"^debug1: Server host key: (\S+) (\S+)$")
_VERSION = re.compile(r"^debug1: Remote protocol version [\d.]+, remote software version (.*)$")
_OFFENDING = re.compile(r"^Offending \S+ key in (.*):(\d+)$")
# Lines without a debug prefix that are not a reason for failing.
_CHATTER = ("OpenSSH_", "Authenticated to ", "Transferred: ", "Bytes per second: ")
# At most this much of one line of stderr is kept.
_LINE_LIMIT = 4096


class _SSHProcess(ProcessProtocol):
    """
    One ssh(1) process running the server's sftp subsystem, as sftp(1) runs
    it: SFTP packets go back and forth over a socket pair that is ssh's
    stdin and stdout, while ssh, in a process of its own, checks the host
    key, logs in and encrypts.  What went wrong, it says on stderr.

    @ivar ready: fires with the L{_Session}, or fails with why there is none.
    @ivar lost: fires once the socket and ssh's stderr are closed (ssh has
        ended, or is being ended), whenever that is, with why.
    """

    def __init__(self, peer: _Peer, root: str):
        self._peer = peer
        self._root = root
        self._problem: Exception | None = None
        self._client = _SFTPClient(self._started, self._sftpLost)
        self._open = {"sftp", "stderr"}
        self._partial = b""
        self._messages: collections.deque[str] = collections.deque(maxlen=32)
        self.offeredHostKey: str | None = None
        self.serverVersion = "version unknown"
        self._gone = False
        self.ready: Deferred = Deferred()
        self.lost: Deferred = Deferred()

    def start(self, reactor) -> None:
        """Start ssh, and the SFTP session over its stdin and stdout."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for end in (ours, theirs):
                # Room for a few writes of the largest size on the way.
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            reactor.spawnProcess(self, self._peer.ssh, self._peer.command(),
                                 env=_sshEnvironment(),
                                 childFDs={0: theirs.fileno(), 1: theirs.fileno(), 2: "r"})
            # The SFTP client says its version at once; ssh passes it on when
            # the session has started.
            reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, _Adopted(self._client))
        finally:
            # ssh has its own copy of its end, the reactor of ours.
            ours.close()
            theirs.close()

    def _started(self, client, extensions) -> None:
        self.ready.callback(_Session(client, extensions, self, self._root))

    def errReceived(self, data):
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-_LINE_LIMIT:]
        for line in lines:
            self._heard(line[:_LINE_LIMIT].decode("utf-8", "replace").rstrip("\r"))

    def _heard(self, line: str) -> None:
        if line.startswith("debug"):
            if offered := _OFFERED.match(line):
                self.offeredHostKey = f"{offered[1]} key {offered[2]}"
            elif version := _VERSION.match(line):
                self.serverVersion = version[1]
        elif line.strip() and not line.startswith(_CHATTER):
            self._messages.append(line.strip())

    def drop(self, problem: Exception) -> None:
        """End ssh at once, for C{problem}."""
        self._problem = self._problem or problem
        self.close()

    def close(self) -> None:
        """End ssh at once; L{lost} fires when it is gone."""
        if "sftp" in self._open:
            self._client.transport.abortConnection()
        # Even if both ends are closed: at shutdown the reactor closes them
        # all, and ssh runs on until it notices.
        try:
            self.transport.signalProcess("KILL")
        except ProcessExitedAlready:
            pass

    def _sftpLost(self) -> None:
        # If ssh still runs, it is of no use.
        self._closed("sftp")
        self.close()

    def childConnectionLost(self, childFD):
        if childFD == 2:
            self._closed("stderr")

    def _closed(self, end: str) -> None:
        self._open.discard(end)
        if self._open or self._gone:
            return
        self._gone = True
        if self._partial:
            self._heard(self._partial.decode("utf-8", "replace"))
        problem = self._problem or self._failure()
        if not self.ready.called:
            self.ready.errback(problem)
        self.lost.callback(problem)

    def _failure(self) -> Exception:
        """Why ssh ended, from what it said."""
        said = list(self._messages)
        offered = f"the {self.offeredHostKey}" if self.offeredHostKey else (
            "a key ssh did not name")
        name, knownHosts = self._peer.name, self._peer.knownHosts
        if "Host key verification failed." in said:
            if any(line.endswith("is marked as revoked.") for line in said):
                return Unusable(
                    f"the host key of {name} is REVOKED: the server offers {offered}, "
                    f"which {knownHosts} marks @revoked; refusing to connect")
            for line in said:
                if offending := _OFFENDING.match(line):
                    return Unusable(
                        f"the host key of {name} has CHANGED: the server offers {offered}, "
                        f"but {knownHosts} line {offending[2]} pins another key; refusing to "
                        "connect (the server may have been reinstalled, or something is "
                        "impersonating it)")
            return Unusable(
                f"the host key of {name} is not in {knownHosts}: the server offers "
                f"{offered}; if that is the server's key (ssh-keygen -lf on its host key "
                f"shows it), add it to {knownHosts}")
        if any("Permission denied (" in line for line in said):
            return Unusable(
                f"{self._peer} refused the key {_fingerprint(self._peer.key)} "
                "(is its public key in the user's authorized_keys on the server?)")
        if any(line.startswith("subsystem request failed") for line in said):
            return Unusable("the server refused to start its sftp subsystem")
        if said:
            # Such as "ssh: connect to host ... port 22: Connection refused".
            last = said[-1]
            return Unreachable(last if last.startswith("ssh: ") else f"ssh: {last}")
        return Unreachable("ssh ended without saying why")


class _Adopted(Factory):
    """Hands the reactor the one protocol made beforehand."""

    def __init__(self, protocol):
        self._protocol = protocol

    def buildProtocol(self, addr):
        return self._protocol


class _SFTPClient(filetransfer.FileTransferClient):
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
        self.transport.SEND_LIMIT = _SOCKET_BUFFER
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


# Requests.


class _Session:
    """
    The requests the backend makes over one SFTP session, by paths relative
    to the root, as the shared layout names them.  Deferreds fail with what
    the server or the connection said (L{_REMOTE_FAILURES}).
    """

    def __init__(self, client, extensions: dict, ssh: _SSHProcess, root: str):
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
        if self.can(_STATVFS):
            self.nameMax = (yield self._statvfs())[10]

    def _statvfs(self):
        d = self.client.extendedRequest(_STATVFS, NS(self._path("")))
        return d.addCallback(lambda reply: struct.unpack("!11Q", reply[:88]))

    @inlineCallbacks
    def freeSpace(self):
        """Bytes free to an unprivileged user, or L{None} if the server can't say."""
        if not self.can(_STATVFS):
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
        if not self.can(_FSYNC):
            return succeed(None)
        return self.client.extendedRequest(_FSYNC, f.handle)

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
        if self.can(_FSYNC):
            f = yield self.client.openFile(self._path(relative), filetransfer.FXF_READ, {})
            try:
                yield self.fsync(f)
            finally:
                yield f.close()

    @inlineCallbacks
    def replace(self, old: str, new: str):
        """Rename C{old} to C{new}, replacing it: atomic with posix-rename."""
        yield self.makeDirectories(posixpath.dirname(new))
        if self.can(_POSIX_RENAME):
            yield self.client.extendedRequest(
                _POSIX_RENAME, NS(self._path(old)) + NS(self._path(new))
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
        except _REMOTE_FAILURES:
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


def _isDirectory(attributes: dict | None) -> bool:
    return attributes is not None and stat.S_ISDIR(attributes.get("permissions", 0))


def _isFile(attributes: dict | None) -> bool:
    return attributes is not None and stat.S_ISREG(attributes.get("permissions", 0))


@inlineCallbacks
def _each(function, items, *args):
    """
    C{function(item, *args)} for every item, L{LISTING_REQUESTS} at a
    time: their results, in order, or the first failure.
    """
    semaphore = DeferredSemaphore(LISTING_REQUESTS)
    try:
        return (yield gatherResults(
            [semaphore.run(function, item, *args) for item in items], consumeErrors=True))
    except FirstError as e:
        e.subFailure.raiseException()


def _digestsPath(container: str, name: str) -> str:
    """
    Where an object's digests are kept: a tree beside the containers that
    mirrors theirs, so that a name that fits the one fits the other.
    """
    return posixpath.join(_DIGESTS, layout.object(container, name))


# The backend.


@implementer(IStorageBackend)
class SFTPBackend:
    """
    Containers and objects under C{root} on an SFTP server.  When the server
    offers C{statvfs@openssh.com}, C{reserve} bytes of free space are kept
    there: an upload that would eat into them is refused with 507 before its
    body is read.

    @param requireReserve: refuse to start on a server that can't tell its
        free space, because the operator asked for a reserve.
    """

    def __init__(self, reactor, peer: _Peer, root: str, reserve: int, requireReserve: bool):
        self.description = f"sftp storage in {root} on {peer}"
        # SFTP (version 3, as OpenSSH serves it) has no locks, and a file
        # made to stand for one would outlive a crash and keep every later
        # start out: the root on the server is not locked (docs/sftp.md).
        self.lockPath = None
        self._reactor = reactor
        self._peer = peer
        self._root = root
        self._reserve = reserve
        self._requireReserve = requireReserve
        self._recover = True  # set by open()
        self._session: _Session | None = None
        self._attempts = 0
        self._reconnecting = None
        self._keepalive: LoopingCall | None = None
        self._stopping = False
        self._writers: set[SFTPWriter] = set()
        self._readers: set[SFTPReader] = set()
        self._processes: set[_SSHProcess] = set()
        # Metadata is read, merged and written back; this keeps two requests
        # for the same container from losing each other's changes.
        self._metadataLock = DeferredLock()
        # A write-once commit checks that its name is free, then takes it;
        # any commit writes the metadata and the digests, then the object,
        # which must not interleave with another commit's to the same name.
        self._commitLock = DeferredLock()

    # The connection.

    @inlineCallbacks
    def _connect(self):
        """A new session, its server examined and its leftovers removed."""
        ssh = _SSHProcess(self._peer, self._root)
        ssh.start(self._reactor)
        self._processes.add(ssh)
        ssh.lost.addBoth(lambda _: self._processes.discard(ssh))
        timeout = self._reactor.callLater(
            CONNECT_TIMEOUT, ssh.drop,
            Unreachable(f"no SFTP session within {CONNECT_TIMEOUT} s"),
        )
        try:
            session = yield ssh.ready
        finally:
            if timeout.active():
                timeout.cancel()
        try:
            yield self._prepare(session)
        except BaseException:
            ssh.close()
            raise
        return session

    @inlineCallbacks
    def _prepare(self, session: _Session):
        if self._requireReserve and not session.can(_STATVFS):
            raise Unusable(
                f"reserve= was given, but {self._peer} can't tell its free space "
                "(no statvfs@openssh.com); leave reserve out to store without it"
            )
        yield session.makeDirectories(layout.TEMPORARY)
        yield session.examine()
        if not self._recover:
            return
        # Also on a reconnection: the writes of the lost session failed.
        leftovers = yield session.list(layout.TEMPORARY)
        for leftover in leftovers:
            yield session.remove(posixpath.join(layout.TEMPORARY, leftover))
        if leftovers:
            log.warn(
                "removed {count} leftover(s) of interrupted writes from {path} on {peer}",
                count=len(leftovers), path=posixpath.join(self._root, layout.TEMPORARY),
                peer=str(self._peer),
            )

    def _use(self, session: _Session) -> None:
        self._session = session
        self._attempts = 0
        session.ssh.lost.addCallback(self._lost, session)
        self._keepalive = LoopingCall(self._probe, session)
        self._keepalive.clock = self._reactor
        self._keepalive.start(KEEPALIVE_INTERVAL, now=False)

    def _probe(self, session: _Session) -> None:
        if session.probing:
            session.ssh.drop(Unreachable(
                f"no answer from the server within {KEEPALIVE_INTERVAL} s"))
            return
        session.probing = True

        def answered(result):
            session.probing = False

        session.probe().addBoth(answered)

    def _lost(self, reason, session: _Session) -> None:
        if self._session is not session:
            return
        self._session = None
        self._keepalive.stop()
        if self._stopping:
            return
        log.warn("lost the connection to the SFTP server {peer} ({reason}); "
                 "answering 503 until it is back", peer=str(self._peer), reason=reason)
        self._retry()

    def _retry(self) -> None:
        delay = RECONNECT_DELAYS[min(self._attempts, len(RECONNECT_DELAYS) - 1)]
        self._attempts += 1
        self._reconnecting = self._reactor.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnecting = None
        d = self._connect()

        def connected(session):
            if self._stopping:
                session.ssh.close()
                return
            log.info("connected again to the SFTP server {peer}", peer=str(self._peer))
            self._use(session)

        def failed(reason):
            if self._stopping:
                return
            emit = log.error if reason.check(Unusable) else log.warn
            emit("can't connect to the SFTP server {peer} ({reason}); trying again in {delay} s",
                 peer=str(self._peer), reason=reason.getErrorMessage(),
                 delay=RECONNECT_DELAYS[min(self._attempts, len(RECONNECT_DELAYS) - 1)])
            self._retry()

        d.addCallbacks(connected, failed)

    def _beforeShutdown(self) -> None:
        self._stopping = True
        if self._reconnecting is not None and self._reconnecting.active():
            self._reconnecting.cancel()

    def _duringShutdown(self) -> None:
        # The reactor has dropped every connection; next, the upload threads
        # are joined from the reactor thread, which then runs nothing more:
        # a writer waiting for the reactor must stop waiting now.
        # list() copies the set in one step: worker threads discard from it.
        for writer in list(self._writers):
            writer.release()
        for reader in list(self._readers):
            reader.release()
        # No ssh outlives bwscd.
        for ssh in list(self._processes):
            ssh.close()

    def _current(self) -> _Session:
        if self._session is None:
            raise ServiceUnavailable(
                f"the SFTP server {self._peer} is unreachable; bwscd is reconnecting"
            )
        return self._session

    def _guarded(self, what: str, function, *args, session: _Session | None = None):
        """
        Run C{function(session, *args)} on the current session (or
        C{session}), turning what the server or the connection says into
        the API's codes.
        """
        d = maybeDeferred(lambda: function(session or self._current(), *args))
        d.addErrback(self._refusal, what)
        return d

    def _refusal(self, reason: Failure, what: str):
        if reason.check(SwiftError) or not reason.check(*_REMOTE_FAILURES):
            return reason
        log.error("SFTP storage failure while {what}: {error}", what=what,
                  error=reason.getErrorMessage())
        raise ServiceUnavailable(f"SFTP storage failure while {what}")

    # IStorageBackend

    def open(self, recover=True):
        self._recover = recover
        self._reactor.addSystemEventTrigger("before", "shutdown", self._beforeShutdown)
        self._reactor.addSystemEventTrigger("during", "shutdown", self._duringShutdown)
        d = self._connect()
        d.addCallbacks(self._opened, self._unopened)
        return d

    def _unopened(self, reason: Failure):
        if reason.check(Unusable):
            return reason
        raise Unreachable(f"can't use the SFTP server {self._peer}: "
                          f"{reason.getErrorMessage()}")

    def _opened(self, session: _Session) -> None:
        log.info(
            "connected to the SFTP server {peer} ({version}); root {root}",
            peer=str(self._peer),
            version=session.ssh.serverVersion,
            root=self._root,
        )
        if not session.can(_FSYNC):
            log.warn("the SFTP server has no fsync@openssh.com: a 201 means the server "
                     "received the bytes, not that they are on its disk")
        if not session.can(_POSIX_RENAME):
            log.warn("the SFTP server has no posix-rename@openssh.com: replacing a file "
                     "(metadata, the registry) leaves a moment without it")
        if not session.can(_STATVFS):
            log.warn("the SFTP server can't tell its free space: uploads are not "
                     "refused in advance when it is full")
        self._use(session)

    def containerInfo(self, container):
        return self._guarded("reading container metadata", self._containerInfo, container)

    @inlineCallbacks
    def _containerInfo(self, session, container: str):
        if not _isDirectory((yield session.stat(layout.container(container)))):
            return None
        data = yield session.read(layout.containerMetadata(container))
        return (yield self._described(session, container, layout.decodeMetadata(data)))

    @inlineCallbacks
    def _described(self, session, container: str, metadata: dict[str, str]):
        """The container's info: its metadata, and what its directory holds."""
        top = layout.container(container)
        objects = yield self._objectEntries(session, top, "", "")
        stamp = yield session.stat(layout.containerMetadata(container))
        if stamp is None:  # a directory made by hand
            stamp = yield session.stat(top)
        modified = max([float((stamp or {}).get("mtime", 0))]
                       + [float(attributes["mtime"]) for _, attributes in objects])
        return ContainerInfo(container, metadata, len(objects),
                             sum(attributes["size"] for _, attributes in objects), modified)

    def putContainer(self, container, metadata):
        return self._guarded("creating a container", self._putContainer, container, metadata)

    @inlineCallbacks
    def _putContainer(self, session, container: str, metadata: dict[str, str]):
        layout.checkContainerName(container, session.nameMax)
        path = layout.container(container)
        created = not _isDirectory((yield session.stat(path)))
        if created:
            yield session.makeDirectories(path)
        yield self._metadataLock.run(self._mergeContainerMetadata, session, container, metadata)
        return created

    def updateContainer(self, container, metadata):
        return self._guarded("updating container metadata", self._updateContainer,
                             container, metadata)

    @inlineCallbacks
    def _updateContainer(self, session, container: str, metadata: dict[str, str]):
        if not _isDirectory((yield session.stat(layout.container(container)))):
            raise NotFound(f"no container {container!r}")
        merged = yield self._metadataLock.run(
            self._mergeContainerMetadata, session, container, metadata)
        return (yield self._described(session, container, merged))

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
        if merged.get("Status") == "Complete" and not present:
            yield session.write(marker, b"")
            last = marker
        elif merged.get("Status") != "Complete" and present:
            yield session.remove(marker)
        if last is not None:
            yield session.settle(last)
        return merged

    def objectInfo(self, container, name):
        return self._guarded("reading object metadata", self._objectInfo, container, name)

    @inlineCallbacks
    def _objectInfo(self, session, container: str, name: str):
        attributes = yield session.stat(layout.object(container, name))
        if not _isFile(attributes):
            return None
        digests, contentType = yield self._kept(session, container, name, attributes)
        metadata = yield session.read(layout.objectMetadata(container, name))
        return ObjectInfo(container, name, digests, float(attributes["mtime"]),
                          layout.decodeMetadata(metadata), contentType=contentType)

    @inlineCallbacks
    def _kept(self, session, container, name, attributes) -> tuple[Digests, str | None]:
        """
        The digests and the Content-Type kept for the object, or its digests
        computed from it and no Content-Type when there are none for the
        file that is there now (copied in or replaced by hand).
        """
        data = yield session.read(_digestsPath(container, name))
        try:
            kept = json.loads(data)
            if (kept["length"], kept["mtime"]) == (attributes["size"], attributes["mtime"]):
                return (Digests(kept["length"], kept["md5"], kept["sha256"]),
                        kept.get("contentType"))
        except (TypeError, ValueError, KeyError):
            pass  # none, or not ours
        md5, sha256 = hashlib.md5(), hashlib.sha256()

        def consume(chunk):
            md5.update(chunk)
            sha256.update(chunk)

        yield session.read(layout.object(container, name), consume)
        return Digests(attributes["size"], md5.hexdigest(), sha256.hexdigest()), None

    def replaceObjectMetadata(self, container, name, metadata):
        return self._guarded("replacing object metadata", self._replaceObjectMetadata,
                             container, name, metadata)

    @inlineCallbacks
    def _replaceObjectMetadata(self, session, container, name, metadata):
        yield self._metadataLock.run(self._writeObjectMetadata, session, container, name,
                                     metadata)
        return (yield self._objectInfo(session, container, name))

    @inlineCallbacks
    def _writeObjectMetadata(self, session, container, name, metadata):
        if not _isFile((yield session.stat(layout.object(container, name)))):
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
        if not _isDirectory((yield session.stat(layout.container(container)))):
            raise NotFound(f"no container {container!r}")
        yield self._checkObjectName(session, container, name, writeOnce)
        free = yield session.freeSpace()
        if free is not None and (length or 0) + self._reserve > free:
            raise InsufficientStorage(
                f"not enough free space: {free} bytes free, {self._reserve} kept in reserve"
            )
        f, temporary = yield session.create()
        writer = SFTPWriter(self, session, f, temporary, container, name, metadata, writeOnce,
                            contentType)
        self._writers.add(writer)
        return writer

    @inlineCallbacks
    def _checkObjectName(self, session, container, name, writeOnce):
        """
        Refuse, before the body is read, a name the layout can't hold: one
        reserved for the layout's own files, one too long, or one whose path
        would need a file to be a directory or the other way round.
        """
        layout.checkObjectName(container, name, writeOnce, session.nameMax)
        for parent in layout.objectParents(container, name):
            attributes = yield session.stat(parent)
            if attributes is not None and not _isDirectory(attributes):
                raise BadRequest(f"object name {name!r}: a prefix of it is an object")
        if _isDirectory((yield session.stat(layout.object(container, name)))):
            raise BadRequest(f"object name {name!r} is a prefix of other objects")

    def deleteObject(self, container, name):
        return self._guarded("deleting an object", self._deleteObject, container, name)

    @inlineCallbacks
    def _deleteObject(self, session, container: str, name: str):
        yield self._metadataLock.acquire()
        yield self._commitLock.acquire()
        try:
            info = yield self._objectInfo(session, container, name)
            if info is None:
                return None
            # The object's file first: from then on nothing of it is visible.
            yield session.remove(layout.object(container, name))
            yield session.removeQuietly(layout.objectMetadata(container, name))
            yield session.removeQuietly(_digestsPath(container, name))
            # Directories its name made, now empty, go too (where they are
            # not empty, other objects share them).
            for directory in layout.objectDirectories(container, name):
                yield session.removeEmptyDirectory(directory)
                yield session.removeEmptyDirectory(posixpath.join(_DIGESTS, directory))
            # SFTP has no directory fsync: a file's fsync commits the
            # removals before it on ext4, XFS and btrfs (see settle).  The
            # object is gone already: a failure here must not hide that.
            try:
                yield session.settle(layout.containerMetadata(container))
            except _REMOTE_FAILURES as e:
                log.warn("deleted {name!r} in {container!r}, but could not sync the "
                         "removal: {error}", name=name, container=container, error=e)
            return info
        finally:
            self._commitLock.release()
            self._metadataLock.release()

    def deleteContainer(self, container):
        return self._guarded("deleting a container", self._deleteContainer, container)

    @inlineCallbacks
    def _deleteContainer(self, session, container: str):
        yield self._metadataLock.acquire()
        yield self._commitLock.acquire()
        try:
            top = layout.container(container)
            if not _isDirectory((yield session.stat(top))):
                return False
            # A copy: upload threads discard their writers as they end.
            writing = any(w.container == container for w in list(self._writers))
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
            yield session.removeEmptyDirectory(posixpath.join(_DIGESTS, top))
            return True
        finally:
            self._commitLock.release()
            self._metadataLock.release()

    def listContainers(self, prefix, marker, limit):
        return self._guarded("listing containers", self._listContainers, prefix, marker, limit)

    @inlineCallbacks
    def _listContainers(self, session, prefix, marker, limit):
        entries = yield session.entries("")
        names = [name for name, attributes in entries
                 if not name.startswith(".") and _isDirectory(attributes)]
        names = common.utf8Names(names, self._root)
        return (yield _each(self._listedContainer,
                            common.chosen(names, prefix, marker, limit), session))

    @inlineCallbacks
    def _listedContainer(self, container, session):
        data = yield session.read(layout.containerMetadata(container))
        return (yield self._described(session, container, layout.decodeMetadata(data)))

    def listObjects(self, container, prefix, marker, limit):
        return self._guarded("listing objects", self._listObjects, container, prefix, marker,
                             limit)

    @inlineCallbacks
    def _listObjects(self, session, container, prefix, marker, limit):
        top = layout.container(container)
        if not _isDirectory((yield session.stat(top))):
            raise NotFound(f"no container {container!r}")
        names = [name for name, _ in (yield self._objectEntries(session, top, "", prefix))]
        chosen = common.chosen(names, prefix, marker, limit)
        infos = yield _each(lambda name: self._objectInfo(session, container, name), chosen)
        # (One that went between the listing and the look-up is left out.)
        return [info for info in infos if info is not None]

    @inlineCallbacks
    def _objectEntries(self, session, top: str, relative: str, prefix: str):
        """
        The names and attributes of the objects under C{relative} in the
        container's directory C{top}, without the layout's own files, and
        without the directories that can't hold a name starting with
        C{prefix}.
        """
        directory = posixpath.join(top, relative)
        entries = yield session.entries(directory)
        readable = set(common.utf8Names([name for name, _ in entries],
                                        posixpath.join(self._root, directory)))
        entries = [(name, attributes) for name, attributes in entries if name in readable]
        if not relative:
            # The layout's own: the 'complete' marker, and the metadata
            # files, "<Container>.<Object>.metadata.json", which are in
            # "<Container>.<a>/" for an object named "<a>/<b>".
            ownFiles = posixpath.basename(top) + "."
            entries = [(name, attributes) for name, attributes in entries
                       if name != layout.COMPLETE_MARKER and not name.startswith(ownFiles)]
        objects = []
        for name, attributes in entries:
            path = relative + name
            if _isFile(attributes):
                objects.append((path, attributes))
            elif _isDirectory(attributes):
                below = path + "/"
                if below.startswith(prefix) or prefix.startswith(below):
                    objects += yield self._objectEntries(session, top, below, prefix)
        return objects

    def readObject(self, container, name, offset, length):
        return self._guarded("opening an object to read", self._readObject,
                             container, name, offset, length)

    @inlineCallbacks
    def _readObject(self, session, container, name, offset, length):
        for _ in range(3):
            info = yield self._objectInfo(session, container, name)
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
                yield _closeQuietly(f)
                raise
            if (attributes["size"], float(attributes["mtime"])) == (
                    info.digests.length, info.modified):
                end = info.digests.length if length is None else min(
                    offset + length, info.digests.length)
                reader = SFTPReader(self, session, f, info, min(offset, end), end)
                self._readers.add(reader)
                return reader
            yield _closeQuietly(f)
        else:
            raise ServiceUnavailable(f"{name!r} in {container!r} keeps changing; try again")
        raise NotFound(f"no object {name!r} in container {container!r}")

    def readState(self, name):
        return self._guarded("reading service state",
                             lambda session: session.read(layout.state(name)))

    def writeState(self, name, data):
        return self._guarded("writing service state", self._writeState, name, data)

    @inlineCallbacks
    def _writeState(self, session, name, data):
        yield session.write(layout.state(name), data)
        yield session.settle(layout.state(name))

    # What writers ask of the reactor.

    def _commit(self, writer: "SFTPWriter", digests: Digests):
        return self._guarded("committing an object", self._commitOn, writer, digests,
                             session=writer.session)

    @inlineCallbacks
    def _commitOn(self, session, writer, digests):
        attributes = yield writer.file.getAttrs()
        if attributes["size"] != digests.length:
            raise ServiceUnavailable(
                f"the SFTP server holds {attributes['size']} bytes of the "
                f"{digests.length} sent"
            )
        yield session.fsync(writer.file)
        yield writer.closeFile()
        record = json.dumps({
            "length": digests.length, "md5": digests.md5, "sha256": digests.sha256,
            "contentType": writer.contentType,
            # The object's file keeps the time of its last write through the
            # rename: this tells the digests of this file from a stale record.
            "mtime": attributes["mtime"],
        }).encode("ascii")
        if not writer.writeOnce:
            return (yield self._commitLock.run(
                self._place, session, writer, writer.name, digests, record,
                float(attributes["mtime"]), replace=True))
        for name in (writer.name, common.conflictName(writer.name, digests.sha256)):
            yield self._commitLock.acquire()
            try:
                existing = yield self._objectInfo(session, writer.container, name)
                if existing is None:
                    placed = yield self._place(session, writer, name, digests, record,
                                               float(attributes["mtime"]), replace=False)
                    if placed is not None:
                        return placed
                    # Taken since the check, by something other than bwscd.
                    existing = yield self._objectInfo(session, writer.container, name)
            finally:
                self._commitLock.release()
            if existing.digests == digests:
                yield session.removeQuietly(writer.temporary)
                return dataclasses.replace(existing, existed=True)
        raise BadRequest(f"{writer.name!r} and its conflict copy both hold other bytes")

    @inlineCallbacks
    def _place(self, session, writer, name, digests, record, modified, replace):
        """
        Write the metadata and the digests, then rename the synced data to
        C{name}: when the object appears, they are already there.  L{None}
        if C{name} was taken (with C{replace} false).
        """
        yield session.write(layout.objectMetadata(writer.container, name),
                            layout.encodeMetadata(writer.metadata))
        yield session.write(_digestsPath(writer.container, name), record)
        final = layout.object(writer.container, name)
        if replace:
            yield session.replace(writer.temporary, final)
        elif not (yield session.place(writer.temporary, final)):
            return None
        yield session.settle(final)
        return ObjectInfo(writer.container, name, digests, modified, writer.metadata,
                          contentType=writer.contentType)

    @inlineCallbacks
    def _writeRefusal(self, session: _Session, reason: Failure):
        """What to answer for a failed write: 507 if the remote disk is full."""
        if reason.check(filetransfer.SFTPError):
            try:
                free = yield session.freeSpace()
            except _REMOTE_FAILURES:
                free = None
            if free is not None and free < _FULL:
                return InsufficientStorage("out of disk space on the SFTP server")
        log.error("SFTP storage failure while writing an object: {error}",
                  error=reason.getErrorMessage())
        return ServiceUnavailable("SFTP storage failure while writing an object")

    @inlineCallbacks
    def _abandon(self, writer: "SFTPWriter"):
        try:
            yield writer.closeFile()
        except _REMOTE_FAILURES:
            pass
        yield writer.session.removeQuietly(writer.temporary)


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

    def __init__(self, backend, session, file, temporary, container, name, metadata,
                 writeOnce, contentType):
        self._backend = backend
        self._reactor = backend._reactor
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
            raise self._onReactor(self._backend._writeRefusal, self.session, self._failure)

    def commit(self, digests):
        if self._gathered:
            self._queue(bytes(self._gathered))
        with self._settled:
            while self._inFlight and self._failure is None and not self._released:
                self._settled.wait()
        self._raiseIfFailed()
        try:
            return self._onReactor(self._backend._commit, self, digests)
        finally:
            self._backend._writers.discard(self)

    def abort(self):
        try:
            if not self._released:
                self._onReactor(self._backend._abandon, self)
        except ServiceUnavailable:
            pass  # shutting down: the temporary file goes at the next start
        finally:
            self._backend._writers.discard(self)

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

    def _onReactor(self, function, *args):
        """
        C{function(*args)} run on the reactor, its result (a Deferred's)
        returned or raised here: L{blockingCallFromThread}, except that it
        lets go when the reactor shuts down and can no longer answer.
        """
        outcome = []

        def finished(result):
            with self._settled:
                outcome.append(result)
                self._settled.notify_all()

        self._reactor.callFromThread(
            lambda: maybeDeferred(function, *args).addBoth(finished))
        with self._settled:
            while not outcome and not self._released:
                self._settled.wait()
        if not outcome:
            raise ServiceUnavailable("bwscd is shutting down")
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0]


@inlineCallbacks
def _closeQuietly(f):
    try:
        yield f.close()
    except _REMOTE_FAILURES:
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

    def __init__(self, backend, session, file, info, offset, end):
        self._backend = backend
        self._reactor = backend._reactor
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
            self._refuse(answer)
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

    def _refuse(self, reason: Failure):
        if reason.check(SwiftError) or not reason.check(*_REMOTE_FAILURES):
            reason.raiseException()
        log.error("SFTP storage failure while reading an object: {error}",
                  error=reason.getErrorMessage())
        raise ServiceUnavailable("SFTP storage failure while reading an object")

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._backend._readers.discard(self)
        self._buffer = memoryview(b"")
        if not self._released:
            # Not waited for: the server answers the reads still in flight
            # first, then closes the handle; nothing waits on either.
            self._reactor.callFromThread(_closeQuietly, self._file)

    def release(self) -> None:
        """Stop waiting for the reactor: it is shutting down."""
        with self._answered:
            self._released = True
            self._answered.notify_all()


def _loadKey(path: str) -> keys.Key:
    try:
        key = keys.Key.fromFile(path)
    except keys.EncryptedKeyError:
        raise ValueError(f"sftp backend: key={path} is protected by a passphrase; "
                         "bwscd runs unattended and needs a key without one")
    except (OSError, keys.BadKeyError) as e:
        raise ValueError(f"sftp backend: key={path} is not a readable private key ({e})")
    if key.isPublic():
        raise ValueError(f"sftp backend: key={path} is a public key; give the private key")
    info = os.stat(path)
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        # ssh would ignore it, and the login fail for no clear reason.
        raise ValueError(f"sftp backend: key={path} is open to other users (mode "
                         f"{stat.S_IMODE(info.st_mode):04o}), which ssh refuses; "
                         f"chmod 600 {path}")
    return key


def _findSSH() -> str:
    ssh = shutil.which("ssh")
    if ssh is None:
        raise ValueError("sftp backend: OpenSSH's client, ssh, is not installed "
                         "(on Debian: apt install openssh-client)")
    return ssh


def _sshEnvironment() -> dict[str, str]:
    """bwscd's environment without an agent to ask (and no terminal to prompt on)."""
    return {name: value for name, value in os.environ.items()
            if name not in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY")}


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
    peer = _Peer(options["host"], int(port), options["user"], _loadKey(keyPath), keyPath,
                 knownHosts, _findSSH())
    reserve = parseSize("sftp", "reserve", options.get("reserve", "256M"))
    from twisted.internet import reactor

    return SFTPBackend(reactor, peer, options["root"], reserve, "reserve" in options)
