"""
Faults, for real, against a running C{twistd bwscd} (see docs/faults.md).

The system controller deletes its copy of a recording as soon as bwscd
answers C{201}, so whatever goes wrong, an object answered C{201} must be on
disk, whole, and anything not answered C{201} must leave no file under its
final name (or exactly the bytes that were sent, when the C{201} itself was
lost on the way).  These tests cause the faults for real:

 1. the server killed with SIGKILL while uploads are in flight, repeatedly;
 2. clients dropping their connections in the middle of a body (FIN, RST,
    half-close), many at once;
 3. the disk filling up (a small tmpfs as the storage root; needs root);
 4. the storage refusing writes (a read-only remount, an immutable or
    unwritable container directory);
 5. the storage dying mid-upload (an ext4 image shut down with
    EXT4_IOC_SHUTDOWN; needs root), and cleanup that fails too: the last
    test pins two bugs that were found this way and fixed (see docs/faults.md).

Figures (rounds, uploads in flight, 201s checked, leftovers removed, ...)
are printed (C{pytest -s}) and, when C{BWSCD_FAULT_FIGURES} names a file,
appended to it as JSON lines.  C{BWSCD_FAULT_SEED} replays a run's random
choices; C{BWSCD_KILL_ROUNDS} sets the number of kill rounds (default 3).
"""

import fcntl
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

import pytest
from swiftclient.exceptions import ClientException

from tests.support.recording import Recording
from tests.support.server import HOST
from tests.support.storage import fileSHA256, temporaryDirectory, temporaryFiles
from tests.support.waiting import waitFor

USER = "6c1b2f7e-2d4a-4c55-9b1e-0a8f3e5d7c21"
DEVICE = "B7654321"
CAMERA = Recording(USER, DEVICE)
RECORDING = CAMERA.container
MiB = 1 << 20
CHUNK = MiB
TIMEOUT = 15.0

SEED = int(os.environ.get("BWSCD_FAULT_SEED") or random.SystemRandom().randrange(1, 2**31))
KILL_ROUNDS = int(os.environ.get("BWSCD_KILL_ROUNDS", "3"))
UPLOADERS = 8

XATTR_MD5 = "user.bwscd.md5"
XATTR_SHA256 = "user.bwscd.sha256"
ACCESS_LINE = re.compile(
    r"\[bwscd\.access#info\] \S+ (?P<account>\S+) (?P<method>[A-Z]+) (?P<path>\S+) "
    r"(?P<status>\d{3}) in="
)
ENDED_EARLY = "the body ended early; nothing was stored"


def report(test: str, figures: dict) -> None:
    """Print a test's figures, and append them to C{$BWSCD_FAULT_FIGURES}."""
    line = json.dumps({"test": test, "seed": SEED, **figures}, sort_keys=True)
    print(f"\nFIGURES {line}")
    path = os.environ.get("BWSCD_FAULT_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# Payloads: random-looking, different for every seed, reproducible from
# (seed, size) so that a payload's digests can be computed after the fact,
# and cheap to make (slices of one random pool, each chunk stamped with the
# seed and its index).

_pool: bytes | None = None
_poolLock = threading.Lock()


def pool() -> bytes:
    global _pool
    with _poolLock:
        if _pool is None:
            _pool = os.urandom(16 * MiB)
        return _pool


class Payload:
    def __init__(self, seed: int, size: int):
        self.seed = seed
        self.size = size

    def __repr__(self):
        return f"Payload(seed={self.seed}, size={self.size})"

    def chunks(self, chunkSize=CHUNK):
        data = pool()
        for index, start in enumerate(range(0, self.size, CHUNK)):
            length = min(CHUNK, self.size - start)
            offset = (self.seed * 2654435761 + index * 40503) % (len(data) - CHUNK)
            chunk = (struct.pack(">QQ", self.seed, index) + data[offset : offset + CHUNK - 16])
            chunk = chunk[:length]
            for piece in range(0, length, chunkSize):
                yield chunk[piece : piece + chunkSize]

    def bytes(self) -> bytes:
        return b"".join(self.chunks())

    @cached_property
    def digests(self) -> tuple[str, str]:
        """(MD5, SHA-256), hex."""
        md5, sha256 = hashlib.md5(), hashlib.sha256()
        for chunk in self.chunks():
            md5.update(chunk)
            sha256.update(chunk)
        return md5.hexdigest(), sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self.digests[0]

    @property
    def sha256(self) -> str:
        return self.digests[1]


class Reader:
    """
    A payload as a file-like object: swiftclient then sends a Content-Length.
    (Given a generator and C{content_length}, python-requests sends both
    Content-Length and Transfer-Encoding: chunked, which the server rightly
    refuses with 400.)
    """

    def __init__(self, payload: Payload):
        self._chunks = payload.chunks()
        self._current = b""
        self._position = 0

    def read(self, size=-1) -> bytes:
        if self._position >= len(self._current):
            self._current = next(self._chunks, b"")
            self._position = 0
        if size is None or size < 0:
            size = len(self._current) - self._position
        data = self._current[self._position : self._position + size]
        self._position += len(data)
        return data


def put(connection, name, payload, declared, container=RECORDING):
    """
    PUT C{payload} with swiftclient: with a Content-Length when C{declared},
    else chunked from a generator.

    @return: (HTTP status or None, ETag or None, error text or None)
    """
    response = {}
    try:
        if declared:
            etag = connection.put_object(container, name, Reader(payload),
                                         content_length=payload.size, response_dict=response)
        else:
            etag = connection.put_object(container, name, payload.chunks(),
                                         response_dict=response)
        return response.get("status"), etag, None
    except ClientException as e:
        return e.http_status, None, f"{e.http_status} {e.http_reason}: {e.http_response_content!r}"[:300]
    except Exception as e:  # the connection failed: no answer at all
        return None, None, f"{type(e).__name__}: {e}"[:300]


# Files.


def xattr(path: str, name: str) -> str | None:
    try:
        return os.getxattr(path, name).decode("ascii")
    except OSError:
        return None


def objectPath(storage: str, name: str, container=RECORDING) -> str:
    return os.path.join(storage, container, name)


def metadataPath(storage: str, name: str, container=RECORDING) -> str:
    return os.path.join(storage, container, f"{container}.{name}.metadata.json")


def assertIntact(storage: str, name: str, payload: Payload, container=RECORDING) -> None:
    """The object's file holds exactly C{payload}, and its xattrs say so."""
    path = objectPath(storage, name, container)
    assert os.path.isfile(path), f"{name}: answered 201 but {path} is missing"
    assert os.path.getsize(path) == payload.size, name
    assert fileSHA256(path) == payload.sha256, f"{name}: stored bytes differ from those sent"
    assert xattr(path, XATTR_SHA256) == payload.sha256, name
    assert xattr(path, XATTR_MD5) == payload.md5, name


# The server's log.


def accessStatuses(log: str) -> list[tuple[str, str, int]]:
    return [(m["method"], m["path"], int(m["status"])) for m in ACCESS_LINE.finditer(log)]


def assertNoTraceback(log: str) -> None:
    for marker in ("Traceback", "Unhandled Error", "Unhandled error"):
        assert marker not in log, log[-5000:]


def assertNoUnexpected5xx(log: str) -> list[int]:
    """Only 503 and 507 may be a 5xx; returns every 5xx seen."""
    codes = [status for _, _, status in accessStatuses(log) if status >= 500]
    assert set(codes) <= {503, 507}, [line for line in log.splitlines() if " 50" in line]
    return codes


# Registration, as the controller does it before a recording.


def register(server) -> None:
    swift = server.connection()
    try:
        CAMERA.start(swift, status=None)
    finally:
        swift.close()


@dataclass
class Account:
    token: str
    path: str  # /v1/AUTH_...


def account(server) -> Account:
    swift = server.connection()
    try:
        url, token = swift.get_auth()
    finally:
        swift.close()
    return Account(token, urlsplit(url).path)


# Raw TLS, for what swiftclient can't do: stop in the middle, reset, Expect.


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def connect(server, reset=False, timeout=TIMEOUT) -> ssl.SSLSocket:
    sock = server.connectTLS(timeout)
    if reset:
        # close() then sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return sock


def requestHead(method, path, token, headers=()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"X-Auth-Token: {token}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def framed(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


class Reply:
    """Reads responses off a raw socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            return False
        self.buffer += data
        return True

    def read(self) -> RawResponse | None:
        """The next response, interim ones included; None if the connection ended first."""
        try:
            while b"\r\n\r\n" not in self.buffer:
                if not self._fill():
                    return None
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            response = RawResponse(int(lines[0].split(" ")[1]))
            for line in lines[1:]:
                name, _, value = line.partition(":")
                response.headers[name.strip().lower()] = value.strip()
            if response.status >= 200:
                length = int(response.headers.get("content-length", "0"))
                while len(self.buffer) < length:
                    if not self._fill():
                        return None
                response.body, self.buffer = self.buffer[:length], self.buffer[length:]
            return response
        except socket.timeout:
            return None


def serverSpoke(reply: Reply) -> bool:
    """
    Whether the server sent anything (an answer, or the end) yet.  A
    readable socket alone doesn't say: TLS 1.3 session tickets arrive after
    the handshake and carry no application data.
    """
    sock = reply.sock
    if not (sock.pending() or select.select([sock], [], [], 0)[0]):
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        data = sock.recv(65536)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return True
    finally:
        sock.settimeout(timeout)
    reply.buffer += data
    return True


# The disk-full and read-only tests: a small tmpfs as the storage root.


@dataclass
class SmallDisk:
    root: str
    _launch: object
    servers: list = field(default_factory=list)

    def launch(self, data, reserve, *arguments, port=None):
        server = self._launch(data, "--backend", f"filesystem:root={self.root}:reserve={reserve}",
                              *arguments, port=port)
        self.servers.append(server)
        return server

    def free(self) -> int:
        status = os.statvfs(self.root)
        return status.f_bavail * status.f_frsize


def mountTmpfs(tmp_path, size: str) -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a small tmpfs as the storage root")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                             str(mountpoint)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed: {result.stderr.strip() or result.returncode}")
    return str(mountpoint)


@pytest.fixture
def smallDisk(tmp_path, launch):
    """A 64 MiB tmpfs; servers launched on it are stopped before it is unmounted."""
    root = mountTmpfs(tmp_path, "64m")
    disk = SmallDisk(root, launch)
    try:
        yield disk
    finally:
        for server in disk.servers:
            server.stop()
        subprocess.run(["mount", "-o", "remount,rw", root], capture_output=True)
        subprocess.run(["chattr", "-R", "-i", root], capture_output=True)
        if subprocess.run(["umount", root], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", root], capture_output=True)


EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32), also FS_IOC_SHUTDOWN
SHUTDOWN_NOLOGFLUSH = 2  # drop the journal's uncommitted transactions: a crash


class Ext4Disk(SmallDisk):
    """An ext4 filesystem in a file, loop-mounted; it can be made to die."""

    image: str = ""

    def shutdown(self) -> None:
        """
        What a dying disk does: from now on every operation fails with EIO,
        and whatever was not committed to the journal (not fsynced) is lost.
        """
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", SHUTDOWN_NOLOGFLUSH))
        finally:
            os.close(fd)

    def remount(self) -> None:
        """Unmount and mount again: the journal is replayed, as after a reboot."""
        subprocess.run(["umount", self.root], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.root], check=True,
                       capture_output=True)


@pytest.fixture
def ext4Disk(tmp_path, launch):
    """A 128 MiB ext4 on a loop device (needs root, mkfs.ext4 and loop devices)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: loop-mounts an ext4 image as the storage root")
    image, root = tmp_path / "ext4.img", tmp_path / "ext4"
    root.mkdir()
    with open(image, "wb") as f:
        f.truncate(128 * MiB)
    for command in (["mkfs.ext4", "-q", "-F", str(image)],
                    ["mount", "-o", "loop", str(image), str(root)]):
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip(f"{command[0]} is not installed")
        if result.returncode != 0:
            pytest.skip(f"{' '.join(command[:3])} failed: {result.stderr.strip()}")
    disk = Ext4Disk(str(root), launch)
    disk.image = str(image)
    try:
        yield disk
    finally:
        for server in disk.servers:
            server.stop()
        subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)
        if subprocess.run(["umount", str(root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(root)], capture_output=True)


def temporaryBytes(storage: str) -> int:
    total = 0
    for name in temporaryFiles(storage):
        try:
            total += os.path.getsize(os.path.join(temporaryDirectory(storage), name))
        except FileNotFoundError:
            pass
    return total


def faultMidUpload(server, acct, storage, name, payload, fault):
    """
    Send the first half of C{payload} (with its Content-Length), wait until
    the server has written it to its temporary file, call C{fault}, then
    send the rest unless the server answers first.

    @return: (the answer or None if the connection ended without one,
        bytes sent)
    """
    sock = connect(server)
    sock.sendall(requestHead("PUT", f"{acct.path}/{RECORDING}/{name}", acct.token,
                             [("Content-Length", payload.size)]))
    pieces = list(payload.chunks(64 * 1024))
    half = len(pieces) // 2
    for piece in pieces[:half]:
        sock.sendall(piece)
    sent = sum(len(piece) for piece in pieces[:half])
    assert waitFor(lambda: temporaryBytes(storage) == sent), (temporaryBytes(storage), sent)
    fault()
    reply = Reply(sock)
    for piece in pieces[half:]:
        if serverSpoke(reply):
            break
        try:
            sock.sendall(piece)
        except OSError:
            break
        sent += len(piece)
    response = reply.read()
    sock.close()
    return response, sent


# 1. SIGKILL during uploads, repeatedly.


@dataclass(eq=False)
class Attempt:
    name: str
    payload: Payload
    declared: bool  # Content-Length, else chunked
    status: int | None = None
    etag: str | None = None
    error: str | None = None

    @property
    def created(self) -> bool:
        return self.status == 201


class Uploads:
    """C{UPLOADERS} threads, each uploading payloads one after another until stopped."""

    def __init__(self, server, round):
        self.server = server
        self.round = round
        self.attempts: list[Attempt] = []
        self.inFlight: set[Attempt] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._upload, args=(index,), daemon=True)
                        for index in range(UPLOADERS)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def _upload(self, index):
        rng = random.Random(f"{SEED}-{self.round}-{index}")
        connection = self.server.connection(timeout=60)
        try:
            count = 0
            while not self.stopped.is_set():
                payload = Payload(rng.randrange(1, 2**62), rng.randint(MiB, 40 * MiB))
                attempt = Attempt(f"r{self.round}-u{index}-{count}.mkv", payload,
                                  declared=(index + count) % 2 == 0)
                with self.lock:
                    if self.stopped.is_set():
                        return
                    self.attempts.append(attempt)
                    self.inFlight.add(attempt)
                attempt.status, attempt.etag, attempt.error = put(
                    connection, attempt.name, payload, attempt.declared)
                with self.lock:
                    self.inFlight.discard(attempt)
                count += 1
        finally:
            connection.close()

    def kill(self) -> list[Attempt]:
        """SIGKILL the server; returns the uploads that were in flight."""
        with self.lock:
            self.stopped.set()
            inFlight = list(self.inFlight)
            self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(30)
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "an upload thread hangs after the kill"
        return inFlight


def retry(server, attempts: list[Attempt]) -> None:
    """Upload C{attempts} again, as the controller would, 4 at a time."""

    def one(attempt):
        connection = server.connection(timeout=60)
        try:
            return put(connection, attempt.name, attempt.payload, attempt.declared)
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, attempts))
    for attempt, (status, etag, error) in zip(attempts, results):
        assert status == 201, f"retry of {attempt.name} failed: {status} {error}"
        assert etag == attempt.payload.md5, attempt.name
        attempt.status, attempt.etag, attempt.error = status, etag, None


def test_sigkill_during_uploads_loses_nothing_answered_201(launch, dataDirectory):
    """
    Uploads from 8 threads (1-40 MB, half with Content-Length, half chunked);
    SIGKILL at a random moment; restart on the same port.  Every 201 is on
    disk, whole (SHA-256 of the file and its xattr); nothing else is under a
    final name unless it is exactly the payload sent (a 201 lost on its way);
    the temporary directory is emptied at the start and the log says how
    many leftovers it removed; every failed upload succeeds when retried.
    """
    rng = random.Random(SEED)
    server = launch(dataDirectory)
    register(server)
    storage = server.storage
    stored: dict[str, Payload] = {}
    rounds = []
    started = time.monotonic()

    for number in range(1, KILL_ROUNDS + 1):
        uploads = Uploads(server, number)
        uploads.start()
        killAfter = rng.uniform(1.0, 3.0)
        time.sleep(killAfter)
        # A random moment, while at least half the uploaders are mid-upload.
        waitFor(lambda: len(uploads.inFlight) >= UPLOADERS // 2, timeout=10, interval=0.005)
        inFlight = uploads.kill()
        assert inFlight, "the kill came while no upload was in flight"
        attempts = uploads.attempts

        # Between the kill and the restart: what the crash left.
        leftovers = len(temporaryFiles(storage))
        unexpected = [a for a in attempts if a.status not in (201, None)]
        assert not unexpected, [(a.name, a.status, a.error) for a in unexpected]

        logBefore = len(server.log())
        server = launch(dataDirectory, port=server.port)
        startLog = server.log()[logBefore:]
        removed = re.findall(r"removed (\d+) leftover\(s\) of interrupted writes", startLog)
        removedCount = int(removed[0]) if removed else 0
        assert removedCount == leftovers, (leftovers, startLog)
        assert temporaryFiles(storage) == []

        # Every 201 is there and whole; nothing else under a final name
        # unless it is exactly the payload that was sent.
        created = [a for a in attempts if a.created]
        for attempt in created:
            assert attempt.etag == attempt.payload.md5, attempt.name
            assertIntact(storage, attempt.name, attempt.payload)
        failed = [a for a in attempts if not a.created]
        lost201 = []
        for attempt in failed:
            path = objectPath(storage, attempt.name)
            if os.path.lexists(path):
                assert fileSHA256(path) == attempt.payload.sha256, (
                    f"{attempt.name}: no 201, and its final name holds other bytes "
                    f"({os.path.getsize(path)} of {attempt.payload.size})"
                )
                assertIntact(storage, attempt.name, attempt.payload)
                lost201.append(attempt)
        names = {a.name for a in attempts} | set(stored)
        files = set(os.listdir(os.path.join(storage, RECORDING)))
        strays = {f for f in files if not f.endswith(".metadata.json") and f not in names}
        assert not strays, strays  # no conflict copies, no odd names
        orphanMetadata = sorted(
            a.name for a in failed
            if os.path.exists(metadataPath(storage, a.name))
            and not os.path.exists(objectPath(storage, a.name))
        )

        # The event log has every 201, with the SHA-256 that was sent.
        storedEvents = {}
        for event in server.events():
            if event["type"] == "clip.stored" and event["container"] == RECORDING:
                storedEvents.setdefault(event["object"], []).append(event)
        for attempt in created:
            events = storedEvents.get(attempt.name, [])
            assert [e["sha256"] for e in events] == [attempt.payload.sha256], attempt.name

        inFlightGot201 = sum(a.created for a in inFlight)
        # The controller sends the failed ones again: all succeed, once
        # stored they are whole, and no metadata file is left orphaned.
        retry(server, failed)
        for attempt in failed:
            assertIntact(storage, attempt.name, attempt.payload)
        assert not [
            a.name for a in failed if not os.path.exists(objectPath(storage, a.name))
        ]
        for attempt in lost201:
            events = [e for e in server.events()
                      if e["type"] == "clip.stored" and e["object"] == attempt.name]
            assert events[-1]["alreadyStored"] is True, attempt.name
        for attempt in attempts:
            stored[attempt.name] = attempt.payload

        rounds.append({
            "round": number,
            "killAfterSeconds": round_(killAfter),
            "attempts": len(attempts),
            "inFlightAtKill": len(inFlight),
            "inFlightThatStillGot201": inFlightGot201,
            "created201": len(created),
            "created201MB": round_(sum(a.payload.size for a in created) / MiB),
            "failed": len(failed),
            "failedDeclaredLength": sum(a.declared for a in failed),
            "failedChunked": sum(not a.declared for a in failed),
            "lost201CompleteOnDisk": len(lost201),
            "leftoversRemoved": removedCount,
            "orphanMetadataFiles": len(orphanMetadata),
            "retried201": len(failed),
        })

    # At the end, every object of every round once more.
    for name, payload in stored.items():
        assertIntact(storage, name, payload)
    log = server.log()
    assertNoTraceback(log)
    assertNoUnexpected5xx(log)
    report("sigkill", {
        "rounds": rounds,
        "objectsCheckedAtEnd": len(stored),
        "bytesCheckedAtEnd": sum(p.size for p in stored.values()),
        "seconds": round_(time.monotonic() - started),
    })
    # pytest keeps the last runs' directories: don't leave a gigabyte there.
    for name in stored:
        os.unlink(objectPath(storage, name))


def round_(value: float) -> float:
    return round(value, 2)


# 2. Clients dropping mid-body.


DROP_MODES = [  # (framing, how the client goes away)
    ("length", "close"), ("length", "reset"), ("length", "half-close"),
    ("chunked", "close"), ("chunked", "reset"), ("chunked", "half-close"),
]


@dataclass
class Dropper:
    sock: ssl.SSLSocket
    name: str
    framing: str
    how: str
    declared: int
    sent: int


def startDropper(server, acct, name, framing, how, expect, rng) -> Dropper | RawResponse:
    """
    Start an upload and send half its body; with C{expect}, only once the
    server said 100 Continue (its refusal is returned instead).
    """
    declared = rng.randint(MiB, 8 * MiB)
    half = declared // 2
    sock = connect(server, reset=(how == "reset"))
    headers = [("Content-Length", declared)] if framing == "length" else [
        ("Transfer-Encoding", "chunked")]
    if expect:
        headers.append(("Expect", "100-continue"))
    sock.sendall(requestHead("PUT", f"{acct.path}/{RECORDING}/{name}", acct.token, headers))
    if expect:
        response = Reply(sock).read()
        assert response is not None, f"{name}: no answer to Expect: 100-continue"
        if response.status != 100:
            sock.close()
            return response
    body = Payload(rng.randrange(1, 2**62), half)
    for piece in body.chunks(64 * 1024):
        sock.sendall(piece if framing == "length" else framed(piece))
    return Dropper(sock, name, framing, how, declared, half)


def drop(dropper: Dropper) -> None:
    sock = dropper.sock
    if dropper.how == "half-close":
        sock.shutdown(socket.SHUT_WR)
        # The server ends the connection; nothing but the end may come.
        response = Reply(sock).read()
        assert response is None or response.status < 500, (dropper.name, response)
    sock.close()


def test_clients_dropping_mid_body_leave_nothing(launch, dataDirectory):
    """
    Waves of raw TLS uploads (Content-Length or chunked, some with Expect:
    100-continue) stop halfway and go away: FIN, RST (SO_LINGER 0) or
    half-close.  The first two waves wait until the server has written every
    byte sent so far; the last has more uploads than the server has upload
    threads.  Afterwards the temporary directory is empty, no final name
    exists, every drop is logged, the server still stores uploads, and its
    log has no traceback.
    """
    rng = random.Random(SEED + 2)
    server = launch(dataDirectory)
    register(server)
    acct = account(server)
    storage = server.storage
    # (clients, wait for every byte, all with Expect): the last wave has
    # more clients than the server's 32 upload slots (--max-uploads).
    waves = [(24, True, False), (24, True, False), (40, False, True)]
    figures = {"waves": [], "byMode": {f"{f}/{h}": 0 for f, h in DROP_MODES}}
    dropped = 0
    for wave, (clients, everyByte, allExpect) in enumerate(waves):
        droppers, refused = [], []
        for index in range(clients):
            framing, how = DROP_MODES[(index + wave) % len(DROP_MODES)]
            started = startDropper(server, acct, f"drop-w{wave}-{index}.mkv", framing, how,
                                   expect=allExpect or index % 3 == 0, rng=rng)
            if isinstance(started, RawResponse):
                refused.append(started)
                continue
            droppers.append(started)
            figures["byMode"][f"{framing}/{how}"] += 1
        # Past the upload slots: 503, Retry-After, before the body.
        for response in refused:
            assert response.status == 503, response
            assert response.headers.get("retry-after"), response
            assert b"upload slots are busy" in response.body, response
        count = len(droppers)
        assert count + len(refused) == clients
        if not allExpect:
            assert not refused
        # Every upload is open on the server (a temporary file each) ...
        assert waitFor(lambda: len(temporaryFiles(storage)) == count), (
            len(temporaryFiles(storage)), count)
        held = len(temporaryFiles(storage))
        if everyByte:
            # ... and every byte sent so far is written: truly mid-body.
            expected = sum(d.sent for d in droppers)
            assert waitFor(lambda: temporaryBytes(storage) == expected), (
                temporaryBytes(storage), expected)
        for dropper in droppers:
            drop(dropper)
        dropped += count
        assert waitFor(lambda: temporaryFiles(storage) == []), temporaryFiles(storage)
        assert waitFor(lambda: server.log().count(ENDED_EARLY) == dropped), (
            server.log().count(ENDED_EARLY), dropped)
        figures["waves"].append({"clients": clients, "dropped": count,
                                 "refused503SlotsBusy": len(refused),
                                 "tempFilesHeld": held,
                                 "waitedForEveryByte": everyByte,
                                 "bytesSentBeforeDrop": sum(d.sent for d in droppers)})

    files = os.listdir(os.path.join(storage, RECORDING))
    assert not [f for f in files if f.startswith("drop-")], files
    assert not [f for f in files if ".drop-" in f], files  # no metadata files either
    # Still serving: an upload after all that is stored whole.
    swift = server.connection()
    swift.head_account()
    payload = Payload(rng.randrange(1, 2**62), 3 * MiB + 17)
    assert put(swift, "after-drops.mkv", payload, declared=True)[0] == 201
    swift.close()
    assertIntact(storage, "after-drops.mkv", payload)
    time.sleep(0.3)
    log = server.log()
    assertNoTraceback(log)
    assertNoUnexpected5xx(log)
    report("drops", {**figures, "dropped": dropped,
                     "endedEarlyLogLines": log.count(ENDED_EARLY)})


# 3. Disk full.


def test_disk_full(smallDisk, dataDirectory):
    """
    On a 64 MiB tmpfs: (a) with reserve=8M, an upload declaring more than the
    free space minus the reserve gets 507 before its body is read (no 100
    Continue); (b) with reserve=0, a chunked upload that runs out of space
    halfway gets 507 (or a closed connection), never 201, and leaves
    nothing; earlier objects stay whole; once space is freed the same upload
    succeeds; (c) no 5xx other than 503/507, no traceback.
    """
    rng = random.Random(SEED + 3)
    disk = smallDisk
    figures = {"tmpfsBytes": os.statvfs(disk.root).f_blocks * os.statvfs(disk.root).f_frsize}

    # (a) reserve=8M: refused before the body, whatever the client would send.
    server = disk.launch(dataDirectory, "8M")
    register(server)
    acct = account(server)
    free = disk.free()
    cases = {"intoTheReserve": free - 8 * MiB + MiB, "beyondTheDisk": free + 64 * MiB}
    figures["a"] = {"freeBytes": free, "reserveBytes": 8 * MiB}
    for label, declared in cases.items():
        sock = connect(server)
        name = f"too-big-{label}.mkv"
        sock.sendall(requestHead("PUT", f"{acct.path}/{RECORDING}/{name}", acct.token, [
            ("Content-Length", declared), ("Expect", "100-continue")]))
        response = Reply(sock).read()
        sock.close()
        assert response is not None, f"{label}: no answer"
        assert response.status != 100, f"{label}: 100 Continue for an upload that can't fit"
        assert response.status == 507, (label, response)
        assert not os.path.exists(objectPath(disk.root, name))
        figures["a"][label] = {
            "declaredBytes": declared,
            "status": response.status,
            "retryAfter": response.headers.get("retry-after"),
            "connection": response.headers.get("connection"),
            "message": response.body.decode("utf-8", "replace").strip(),
        }
    assert waitFor(lambda: temporaryFiles(disk.root) == [])
    server.stop()

    # (b) reserve=0: a chunked upload (length unknown) runs out of space.
    server = disk.launch(dataDirectory, "0", port=server.port)
    acct = account(server)
    swift = server.connection(timeout=60)
    earlier = {f"earlier-{i}.mkv": Payload(rng.randrange(1, 2**62), 4 * MiB + i)
               for i in range(3)}
    big = ("big.mkv", Payload(rng.randrange(1, 2**62), 24 * MiB))
    for name, payload in [*earlier.items(), big]:
        status, _, error = put(swift, name, payload, declared=True)
        assert status == 201, (name, error)
    freeBefore = disk.free()
    tooMuch = Payload(rng.randrange(1, 2**62), freeBefore + 8 * MiB)
    assert tooMuch.size < freeBefore + big[1].size - 4 * MiB  # fits once big.mkv is gone
    sock = connect(server, timeout=10)
    sock.sendall(requestHead("PUT", f"{acct.path}/{RECORDING}/overflow.mkv", acct.token,
                             [("Transfer-Encoding", "chunked")]))
    reply = Reply(sock)
    sent, sendError = 0, None
    for piece in tooMuch.chunks(256 * 1024):
        if serverSpoke(reply):
            break
        try:
            sock.sendall(framed(piece))
        except (socket.timeout, OSError) as e:
            sendError = f"{type(e).__name__}: {e}"
            break
        sent += len(piece)
    else:
        sock.sendall(b"0\r\n\r\n")
    response = reply.read()
    sock.close()
    outcome = "closed without an answer" if response is None else response.status
    assert outcome in (507, "closed without an answer"), (outcome, response)
    assert not os.path.exists(objectPath(disk.root, "overflow.mkv"))
    assert waitFor(lambda: temporaryFiles(disk.root) == []), temporaryFiles(disk.root)
    for name, payload in [*earlier.items(), big]:
        assertIntact(disk.root, name, payload)
    freeAfterFailure = disk.free()
    figures["b"] = {
        "freeBeforeBytes": freeBefore,
        "chunkedUploadBytes": tooMuch.size,
        "sentBeforeTheAnswer": sent,
        "sendError": sendError,
        "outcome": outcome,
        "retryAfter": response and response.headers.get("retry-after"),
        "message": response and response.body.decode("utf-8", "replace").strip(),
        "freeAfterFailureBytes": freeAfterFailure,
        "earlierObjectsIntact": len(earlier) + 1,
    }
    assert freeAfterFailure >= freeBefore - MiB  # the partial file's space is back

    # Free space by hand, as an operator would; then the same upload succeeds.
    os.unlink(objectPath(disk.root, big[0]))
    os.unlink(metadataPath(disk.root, big[0]))
    status, etag, error = put(swift, "overflow.mkv", tooMuch, declared=False)
    assert status == 201, error
    assert etag == tooMuch.md5
    assertIntact(disk.root, "overflow.mkv", tooMuch)
    for name, payload in earlier.items():
        assertIntact(disk.root, name, payload)
    swift.close()
    figures["b"]["retryAfterFreeing"] = status

    # (c) Over the whole test: only 503/507 among 5xx, no traceback.
    time.sleep(0.3)
    log = server.log()
    assertNoTraceback(log)
    figures["c"] = {"5xx": assertNoUnexpected5xx(log)}
    report("disk-full", figures)


# 4. The storage refusing writes.


def test_read_only_storage_is_503_not_500(smallDisk, dataDirectory):
    """
    The storage root remounted read-only: uploads, registrations and new
    containers get 503 with a message and Retry-After (not 500), the log
    says "storage failure"; remounted read-write, the same requests succeed.
    """
    rng = random.Random(SEED + 4)
    disk = smallDisk
    server = disk.launch(dataDirectory, "0")
    register(server)
    acct = account(server)
    swift = server.connection()
    before = Payload(rng.randrange(1, 2**62), 2 * MiB)
    assert put(swift, "before.mkv", before, declared=True)[0] == 201
    figures = {}

    remount = subprocess.run(["mount", "-o", "remount,ro", disk.root],
                             capture_output=True, text=True)
    if remount.returncode != 0:
        pytest.skip(f"mount -o remount,ro failed: {remount.stderr.strip()}")
    during = Payload(rng.randrange(1, 2**62), 2 * MiB)
    newRecording = f"{USER}_{DEVICE}_20240501T111500Z"
    try:
        results = {}
        for label, declared in (("upload/length", True), ("upload/chunked", False)):
            status, _, error = put(swift, "during.mkv", during, declared)
            results[label] = (status, error)
        for label, call in (
            ("register a device", lambda: swift.put_object(
                "Devices", "B0000002", b"", headers={"X-Object-Meta-Name": "Cam 2"})),
            ("new recording container", lambda: swift.put_container(newRecording)),
        ):
            try:
                call()
                results[label] = (201, None)
            except ClientException as e:
                results[label] = (e.http_status, e.http_response_content)
        # With Expect: 100-continue the refusal comes before the body.
        sock = connect(server)
        sock.sendall(requestHead("PUT", f"{acct.path}/{RECORDING}/during.mkv", acct.token, [
            ("Content-Length", during.size), ("Expect", "100-continue")]))
        expectResponse = Reply(sock).read()
        sock.close()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", disk.root], check=True)

    for label, (status, error) in results.items():
        assert status == 503, (label, status, error)
        assert "storage failure" in str(error), (label, error)
    assert expectResponse is not None and expectResponse.status == 503, expectResponse
    assert expectResponse.headers.get("retry-after"), expectResponse
    figures["readOnly"] = {label: {"status": s, "message": str(e)[:120]}
                           for label, (s, e) in results.items()}
    figures["readOnly"]["expect100"] = {
        "status": expectResponse.status,
        "retryAfter": expectResponse.headers.get("retry-after"),
        "message": expectResponse.body.decode().strip(),
    }
    assert not [e for e in server.events() if e.get("container") == newRecording]
    log = server.log()
    figures["storageFailureLogLines"] = log.count("storage failure")
    assert "storage failure while opening an object" in log
    assert "Read-only file system" in log

    # Writable again: everything refused above now succeeds.
    assert put(swift, "during.mkv", during, declared=True)[0] == 201
    assertIntact(disk.root, "during.mkv", during)
    assertIntact(disk.root, "before.mkv", before)
    swift.put_object("Devices", "B0000002", b"", headers={"X-Object-Meta-Name": "Cam 2"})
    swift.put_container(newRecording)
    assert [e for e in server.events() if e.get("container") == newRecording
            and e["type"] == "recording.started"]
    swift.close()
    assert temporaryFiles(disk.root) == []
    time.sleep(0.3)
    log = server.log()
    assertNoTraceback(log)
    figures["5xx"] = assertNoUnexpected5xx(log)
    report("read-only", figures)


def test_unwritable_container_directory_is_503_at_commit(launch, dataDirectory):
    """
    The recording's directory made unwritable while the server runs: as root
    immutable (chattr +i, as permissions don't stop root), otherwise mode
    0555.  The upload's body is read into the temporary directory, then the
    commit fails: 503 with a message, "storage failure" in the log, the
    temporary file removed, no final name.  Writable again, it succeeds.
    """
    rng = random.Random(SEED + 5)
    server = launch(dataDirectory)
    register(server)
    directory = os.path.join(server.storage, RECORDING)
    if os.geteuid() == 0:
        how = "chattr +i"
        result = subprocess.run(["chattr", "+i", directory], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"root ignores permissions and chattr +i failed: "
                        f"{result.stderr.strip()}")
        undo = ["chattr", "-i", directory]
    else:
        how = "chmod 0555"
        os.chmod(directory, 0o555)
        undo = ["chmod", "0755", directory]
    payload = Payload(rng.randrange(1, 2**62), 5 * MiB + 3)
    swift = server.connection()
    try:
        status, _, error = put(swift, "blocked.mkv", payload, declared=True)
        chunkedStatus, _, chunkedError = put(swift, "blocked.mkv", payload, declared=False)
        leftovers = waitFor(lambda: temporaryFiles(server.storage) == [])
    finally:
        subprocess.run(undo, check=True)
    assert status == 503 and chunkedStatus == 503, (status, error, chunkedStatus, chunkedError)
    assert "storage failure while committing an object" in error, error
    assert leftovers, temporaryFiles(server.storage)
    assert not os.path.exists(objectPath(server.storage, "blocked.mkv"))
    assert not os.path.exists(metadataPath(server.storage, "blocked.mkv"))
    log = server.log()
    assert "storage failure while committing an object" in log
    assert put(swift, "blocked.mkv", payload, declared=True)[0] == 201
    swift.close()
    assertIntact(server.storage, "blocked.mkv", payload)
    time.sleep(0.3)
    log = server.log()
    assertNoTraceback(log)
    report("unwritable-directory", {
        "how": how, "status": status, "chunkedStatus": chunkedStatus,
        "message": error, "5xx": assertNoUnexpected5xx(log),
        "retryStatus": 201,
    })


# 5. The storage dying (I/O errors), and cleanup that fails too.


def test_storage_dying_keeps_every_201(ext4Disk, dataDirectory):
    """
    On a loop-mounted ext4: objects answered 201, then an upload in flight
    when the filesystem shuts down (EXT4_IOC_SHUTDOWN without flushing the
    journal: every operation fails with EIO and what was not fsynced is
    lost, as when a disk dies or power fails).  The upload in flight gets
    no 201 and nothing answered while the disk is dead is a 2xx.  After a
    remount (journal replay) and a restart, every object answered 201 is
    there and whole with its metadata file, the temporary directory is
    emptied, and the interrupted upload succeeds when sent again.

    The status codes while the disk is dead are recorded here; that they
    must be 503 is checked by L{test_storage_failure_with_failing_cleanup_is_503}.
    """
    rng = random.Random(SEED + 6)
    disk = ext4Disk
    server = disk.launch(dataDirectory, "0")
    register(server)
    acct = account(server)
    swift = server.connection()
    stored = {f"kept-{i}.mkv": Payload(rng.randrange(1, 2**62), rng.randint(MiB, 8 * MiB))
              for i in range(6)}
    for name, payload in stored.items():
        status, _, error = put(swift, name, payload, declared=bool(len(name) % 2))
        assert status == 201, (name, error)
    midway = Payload(rng.randrange(1, 2**62), 8 * MiB)
    response, sent = faultMidUpload(server, acct, disk.root, "midway.mkv", midway,
                                    disk.shutdown)
    midwayStatus = None if response is None else response.status
    assert midwayStatus != 201
    whileDead = {
        "PUT object": put(swift, "dead.mkv", Payload(1, MiB), True)[0],
        "PUT object chunked": put(swift, "dead.mkv", Payload(1, MiB), False)[0],
    }
    for label, call in (("HEAD container", lambda: swift.head_container(RECORDING)),
                        ("HEAD object", lambda: swift.head_object(RECORDING, "kept-0.mkv")),
                        ("PUT Devices object", lambda: swift.put_object(
                            "Devices", "B0000003", b"", headers={"X-Object-Meta-Name": "C"}))):
        try:
            call()
            whileDead[label] = 200
        except ClientException as e:
            whileDead[label] = e.http_status
    swift.close()
    assert not [label for label, status in whileDead.items() if status and status < 300], whileDead

    server.stop()
    disk.remount()
    logBefore = len(server.log())
    server = disk.launch(dataDirectory, "0", port=server.port)
    removed = re.findall(r"removed (\d+) leftover", server.log()[logBefore:])
    assert temporaryFiles(disk.root) == []
    for name, payload in stored.items():
        assertIntact(disk.root, name, payload)
        assert os.path.exists(metadataPath(disk.root, name)), name
    assert not os.path.exists(objectPath(disk.root, "midway.mkv"))
    swift = server.connection()
    status, _, error = put(swift, "midway.mkv", midway, declared=True)
    swift.close()
    assert status == 201, error
    assertIntact(disk.root, "midway.mkv", midway)
    report("storage-dies", {
        "answered201BeforeTheFailure": len(stored),
        "intactAfterRemount": len(stored),
        "midwayBytesSent": sent,
        "midwayStatus": midwayStatus,
        "statusWhileDead": whileDead,
        "leftoversRemovedAtRestart": int(removed[0]) if removed else 0,
        "retryStatus": status,
    })


@pytest.mark.parametrize("fault", ["immutable-tmp", "ext4-shutdown"])
def test_storage_failure_with_failing_cleanup_is_503(fault, request, launch, dataDirectory):
    """
    A storage failure during an upload must be 503 with Retry-After and a
    message, never 500, and log no traceback, even when the temporary file
    can't be removed either: the temporary directory made immutable
    (chattr +i; mode 0555 when not root) mid-upload, so the commit fails and
    so does the cleanup; or the whole filesystem dying (EXT4_IOC_SHUTDOWN)
    mid-upload, and requests after it.
    """
    rng = random.Random(SEED + 7)
    payload = Payload(rng.randrange(1, 2**62), 8 * MiB)
    later = {}
    if fault == "ext4-shutdown":
        disk = request.getfixturevalue("ext4Disk")
        server = disk.launch(dataDirectory, "0")
        storage = disk.root
        register(server)
        response, _ = faultMidUpload(server, account(server), storage, "obj.mkv", payload,
                                     disk.shutdown)
        swift = server.connection()
        later["PUT object"] = put(swift, "later.mkv", Payload(1, MiB), True)[0]
        try:
            swift.head_container(RECORDING)
            later["HEAD container"] = 204
        except ClientException as e:
            later["HEAD container"] = e.http_status
        swift.close()
    else:
        server = launch(dataDirectory)
        storage = server.storage
        register(server)
        tmp = temporaryDirectory(storage)
        if os.geteuid() == 0:
            block, undo = ["chattr", "+i", tmp], ["chattr", "-i", tmp]
        else:
            block, undo = ["chmod", "0555", tmp], ["chmod", "0755", tmp]
        try:
            response, _ = faultMidUpload(server, account(server), storage, "obj.mkv", payload,
                                         lambda: subprocess.run(block, check=True))
        finally:
            subprocess.run(undo, check=True)
    time.sleep(0.3)
    log = server.log()
    report(f"failing-cleanup-{fault}", {
        "status": None if response is None else response.status,
        "body": None if response is None else response.body.decode("utf-8", "replace"),
        "later": later,
        "tracebacks": log.count("Traceback"),
    })
    assert response is not None and response.status == 503, response
    assert response.headers.get("retry-after") and b"storage failure" in response.body
    assert set(later.values()) <= {503}, later
    assertNoTraceback(log)
