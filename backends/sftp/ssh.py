"""
The ssh process and the peer: OpenSSH's client, ssh(1), run as sftp(1)
runs it, with the server's sftp subsystem on its stdin and stdout.  ssh
does the SSH (host key, login, encryption) in a process of its own, on
another core; the reactor only sends and reads SFTP packets
(L{bwscd.backends.sftp.session}).  The server's host key must be the one
C{known_hosts} pins, and the client logs in with one private key and
nothing else.  What went wrong, ssh says on stderr: read here, it becomes
L{Unusable} or L{Unreachable}.
"""

import base64
import collections
import hashlib
import os
import re
import shutil
import socket
import stat

from twisted.conch.ssh import keys
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import Factory, ProcessProtocol

from bwscd.backends.sftp.session import SFTPClient, SOCKET_BUFFER, Session

CONNECT_TIMEOUT = 30
"""Seconds to get from nothing to an SFTP session."""

CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
"""
The ciphers ssh offers first (OpenSSH's C{Ciphers}, the defaults after
them): cheaper than the default chacha20-poly1305 on a CPU with AES
instructions, for ssh and for the server.
"""


class Unusable(Exception):
    """
    The server can't be used as configured (host key, login, a missing
    feature): bwscd does not start, and a reconnection keeps failing until
    an operator steps in.
    """


class Unreachable(Exception):
    """No SFTP session with the server now; maybe later."""


class Peer:
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


class SSHProcess(ProcessProtocol):
    """
    One ssh(1) process running the server's sftp subsystem, as sftp(1) runs
    it: SFTP packets go back and forth over a socket pair that is ssh's
    stdin and stdout, while ssh, in a process of its own, checks the host
    key, logs in and encrypts.  What went wrong, it says on stderr.

    @ivar ready: fires with the L{Session}, or fails with why there is none.
    @ivar lost: fires once the socket and ssh's stderr are closed (ssh has
        ended, or is being ended), whenever that is, with why.
    """

    def __init__(self, peer: Peer, root: str):
        self._peer = peer
        self._root = root
        self._problem: Exception | None = None
        self._client = SFTPClient(self._started, self._sftpLost)
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
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
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
        self.ready.callback(Session(client, extensions, self, self._root))

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


def loadKey(path: str) -> keys.Key:
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


def findSSH() -> str:
    ssh = shutil.which("ssh")
    if ssh is None:
        raise ValueError("sftp backend: OpenSSH's client, ssh, is not installed "
                         "(on Debian: apt install openssh-client)")
    return ssh


def _sshEnvironment() -> dict[str, str]:
    """bwscd's environment without an agent to ask (and no terminal to prompt on)."""
    return {name: value for name, value in os.environ.items()
            if name not in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY")}
