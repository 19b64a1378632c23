"""
The engine of C{bwscd loadtest}: a W800 system controller simulator.

It reads a connection file as the controller does (token URIs, the
certificates to trust for HTTPS, the account, the container type), logs in
once per camera, registers each camera's user and device, then uploads
every camera's recordings in parallel, one recording per camera at a time:
C{PUT} the recording container (C{Status: Transferring}), C{PUT} each clip
with its MD5 as C{ETag} and the clip metadata, C{POST Status: Complete}.

It is built to cost the client little CPU, so that on a machine it shares
with the server the figures are the server's: one thread and one
keep-alive connection per camera, the standard library's C{ssl} (OpenSSL
in C, the GIL released while it encrypts), requests written by hand, every
clip sent as C{memoryview} slices of one random buffer made before the
clock starts (with C{--chunked}, of that buffer's chunked framing, made
once too), and the MD5 of that content computed once.  On a 2-core VM it
costs about 1 s of CPU per GB sent over HTTPS, most of it AES-GCM and the
kernel; a treq client (Twisted's TLS in Python, over a memory BIO) spent
2.3 to 2.9 s per GB on the same uploads.

Every clip upload sends C{Expect: 100-continue}, as a client that cares
about its bandwidth does: a refusal (401, 503, 507...) comes back before
the body, so it is counted by its status code rather than as a reset
connection.
"""

import base64
import hashlib
import http.client
import os
import random
import select
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from bwscd.config import connectionfile
from bwscd.plugins import humanSize

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
MB = 1000 * 1000

BUFFER_LIMIT = 16 * MiB
"""The random buffer: the clip size, at most this; a larger clip repeats it."""
PIECE = 1 * MiB
"""Bytes handed to one C{sendall} with Content-Length."""
CONNECT_TIMEOUT = 10
IO_TIMEOUT = 300
"""Seconds any one socket operation may take (the server fsyncs each clip)."""
EXPECT_WAIT = 5
"""Seconds to wait for C{100 Continue} before sending the body anyway."""
STALE_AFTER = 20
"""A connection idle this long is made anew before the clock starts."""
BYTES_PER_SECOND_OF_VIDEO = 5e9 / 3600
"""The integration guide's assumption: 5 GB per hour of 1080p, high bitrate."""


class LoadTestError(ValueError):
    """A load test that can't start: the message says why, in one line."""


# The connection file.


@dataclass(frozen=True)
class Target:
    """What the controller takes from a connection file."""

    tokenURIs: list[str]
    user: str
    key: str
    certificatesPEM: list[str]
    containerType: str

    def tlsContext(self) -> ssl.SSLContext | None:
        """
        Trust exactly the connection file's certificates, check the host
        name against them; L{None} when there are none (plain HTTP).
        """
        if not self.certificatesPEM:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks names
        context.load_verify_locations(cadata="\n".join(self.certificatesPEM))
        # A listed certificate is a trust anchor even if it is not
        # self-signed (a leaf or an intermediate issued by someone else).
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context


def readConnectionFile(path: str) -> Target:
    """
    @raise LoadTestError: if the file can't be read or is not a valid
        connection file.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LoadTestError(f"can't read the connection file {path}: {e.strerror}")
    try:
        document = connectionfile.validate(data)
    except connectionfile.ConnectionFileError as e:
        raise LoadTestError(f"{path}: " + "; ".join(str(e).splitlines()))
    return Target(
        tokenURIs=list(document["AuthenticationTokenURI"]),
        user=document["BlobAPIUserName"],
        key=document["BlobAPIKey"],
        certificatesPEM=[
            base64.b64decode(c).decode("ascii") for c in document.get("HTTPSCertificate", [])
        ],
        containerType=document.get("ContainerType", connectionfile.DEFAULT_CONTAINER_TYPE),
    )


# What is sent.


@dataclass(frozen=True)
class Plan:
    cameras: int
    recordingsPerCamera: int
    clipsPerRecording: int
    clipSize: int
    chunked: bool = False
    chunkSize: int = 64 * KiB
    seed: int = 0

    @property
    def recordings(self) -> int:
        return self.cameras * self.recordingsPerCamera

    @property
    def clips(self) -> int:
        return self.recordings * self.clipsPerRecording

    @property
    def bytes(self) -> int:
        return self.clips * self.clipSize

    @property
    def clipSeconds(self) -> int:
        """How long a clip of this size plays, at the guide's bitrate."""
        return max(1, round(self.clipSize / BYTES_PER_SECOND_OF_VIDEO))


class Payload:
    """
    A clip's bytes: one random buffer, repeated to C{size}, handed out as
    slices of the buffer (never copied), with its MD5 worked out once.
    With C{chunkSize}, the chunked transfer coding of the clip is prepared
    too, so that sending it chunked costs no more than sending it plain.
    """

    def __init__(self, size: int, rng: random.Random, limit: int = BUFFER_LIMIT,
                 chunkSize: int | None = None):
        self.size = size
        self._view = memoryview(rng.randbytes(min(size, limit)))
        md5 = hashlib.md5()
        for piece in self.pieces(BUFFER_LIMIT):
            md5.update(piece)
        self.md5 = md5.hexdigest()
        self.chunkSize = chunkSize
        if chunkSize is not None:
            periods, tail = divmod(size, len(self._view))
            self._framedBuffer = self._frame(len(self._view), chunkSize)
            self._framedTail = self._frame(tail, chunkSize) if tail else None
            self._periods = periods

    def pieces(self, largest: int):
        """The clip as slices of at most C{largest} bytes."""
        view, length = self._view, len(self._view)
        offset, remaining = 0, self.size
        while remaining:
            n = min(largest, remaining, length - offset)
            yield view[offset : offset + n]
            offset = (offset + n) % length
            remaining -= n

    def _frame(self, length: int, chunkSize: int):
        """
        The first C{length} bytes of the buffer as chunks, framed, in one
        piece; and where to cut it into slices of whole chunks, about
        L{PIECE} bytes each, with the clip bytes each slice holds.
        """
        chunks = [self._view[o : min(o + chunkSize, length)]
                  for o in range(0, length, chunkSize)]
        framed = memoryview(b"".join(
            part for chunk in chunks for part in (b"%x\r\n" % len(chunk), chunk, b"\r\n")))
        perSlice = max(1, PIECE // chunkSize)
        cuts, start = [], 0
        for first in range(0, len(chunks), perSlice):
            group = chunks[first : first + perSlice]
            clipBytes = sum(len(chunk) for chunk in group)
            end = start + clipBytes + sum(len(b"%x\r\n" % len(c)) + 2 for c in group)
            cuts.append((start, end, clipBytes))
            start = end
        return framed, cuts

    def framed(self):
        """
        The clip in the chunked transfer coding (without the last, empty
        chunk), as slices of the prepared framing: (slice, clip bytes in it).
        """
        parts = [self._framedBuffer] * self._periods
        if self._framedTail is not None:
            parts.append(self._framedTail)
        for framed, cuts in parts:
            for start, end, clipBytes in cuts:
                yield framed[start:end], clipBytes


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(epoch: int, separator: str = "T") -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime(f"%Y%m%d{separator}%H%M%S")


def _meta(kind: str, values: dict[str, str]) -> dict[str, str]:
    """Metadata headers as the controller writes them: percent-encoded UTF-8."""
    return {f"X-{kind}-Meta-{name}": quote(str(value), safe="") for name, value in values.items()}


@dataclass(frozen=True)
class Identity:
    """One simulated camera: its user and its serial number."""

    number: int
    user: str
    device: str


def identities(plan: Plan) -> list[Identity]:
    """The cameras' users and devices, the same for the same seed."""
    rng = random.Random(f"identities-{plan.seed}")
    batch = f"{rng.getrandbits(24):06X}"
    return [
        Identity(
            number=n,
            user=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            device=f"LT{batch}{n:04d}",
        )
        for n in range(1, plan.cameras + 1)
    ]


# HTTP, by hand over a socket: the request as one write, the body as slices.


class Interrupted(Exception):
    """The load test was stopped while a request was under way."""


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def message(self) -> str:
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return text[0][:160] if text else http.client.responses.get(self.status, "")


class _SharedReader:
    """
    The connection's one buffered reader, as http.client.HTTPResponse wants
    a socket to be: it must not close it, and a status line already read
    (while waiting for C{100 Continue}) is handed back first.
    """

    def __init__(self, reader):
        self._reader = reader
        self._unread = b""

    def makefile(self, mode="rb"):
        return self

    def unread(self, line: bytes) -> None:
        self._unread = line

    def readline(self, limit=-1):
        if self._unread:
            line, self._unread = self._unread, b""
            return line
        return self._reader.readline(limit)

    def read(self, amount=None):
        return self._reader.read(amount)

    def readinto(self, buffer):
        return self._reader.readinto(buffer)

    def read1(self, amount=-1):
        return self._reader.read1(amount)

    def peek(self, amount=0):
        return self._reader.peek(amount)

    def close(self):
        pass

    def flush(self):
        pass


class Connection:
    """One keep-alive HTTP/1.1 connection, made again when it drops."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext | None):
        if scheme == "https" and context is None:
            raise LoadTestError("an https URI, but the connection file lists no certificate")
        self.host, self.port = host, port
        self._context = context if scheme == "https" else None
        self._hostHeader = (f"[{host}]" if ":" in host else host) + f":{port}"
        self._socket = None
        self._reader = None
        self.lastUsed = 0.0

    def connect(self) -> None:
        self.close()
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = (
                self._context.wrap_socket(raw, server_hostname=self.host)
                if self._context is not None else raw
            )
        except BaseException:
            raw.close()
            raise
        sock.settimeout(IO_TIMEOUT)
        self._socket = sock
        self._reader = _SharedReader(sock.makefile("rb"))
        self.lastUsed = time.monotonic()

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
        self._socket = self._reader = None

    def refresh(self) -> None:
        """Make the connection anew if the server may have closed it as idle."""
        if self._socket is None or time.monotonic() - self.lastUsed > STALE_AFTER:
            self.connect()

    def request(
        self, method: str, path: str, headers: dict[str, str], payload: Payload | None = None,
        *, chunked: bool = False, sent=None, stop=None,
    ) -> Answer:
        """
        One request and its answer.  With a C{payload} (sent C{chunked}, in
        the chunks it was prepared with, or with Content-Length), C{sent(n)}
        is called as each slice goes out, with the clip bytes in it, and
        C{stop} (an event) interrupts the body.

        @raise OSError, http.client.HTTPException: the connection failed;
            it is closed, and made anew by the next request.
        @raise Interrupted: C{stop} was set while the body was being sent.
        """
        if self._socket is None:
            self.connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._hostHeader}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if payload is None:
            if method in ("PUT", "POST"):
                lines.append("Content-Length: 0")
        else:
            lines.append("Transfer-Encoding: chunked" if chunked
                         else f"Content-Length: {payload.size}")
            if payload.size:
                lines.append("Expect: 100-continue")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        try:
            self._socket.sendall(head)
            if payload is not None and (not payload.size or self._proceed()):
                try:
                    self._sendBody(payload, chunked, sent, stop)
                except OSError:
                    # The server may have answered (a refusal) and closed:
                    # its answer says more than the reset does.
                    answer = self._tryAnswer(method)
                    self.close()
                    if answer is None:
                        raise
                    return answer
            return self._answer(method)
        except BaseException:
            self.close()
            raise

    def _proceed(self) -> bool:
        """
        After C{Expect: 100-continue}: whether to send the body.  C{False}
        when the server answered at once (its final answer is then read
        next); C{True} on C{100 Continue}, or when it says nothing for
        L{EXPECT_WAIT} seconds.
        """
        readable = self._socket.pending() if self._context is not None else 0
        if not readable:
            readable, _, _ = select.select([self._socket], [], [], EXPECT_WAIT)
        if not readable:
            return True
        line = self._reader.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection")
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1] == b"100":
            while self._reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return True
        self._reader.unread(line)
        return False

    def _sendBody(self, payload: Payload, chunked: bool, sent, stop) -> None:
        send = self._socket.sendall
        slices = payload.framed() if chunked else (
            (piece, len(piece)) for piece in payload.pieces(PIECE))
        for data, clipBytes in slices:
            if stop is not None and stop.is_set():
                raise Interrupted()
            send(data)
            if sent is not None:
                sent(clipBytes)
        if chunked:
            send(b"0\r\n\r\n")

    def _answer(self, method: str) -> Answer:
        response = http.client.HTTPResponse(self._reader, method=method)
        response.begin()
        body = response.read()
        if response.will_close:
            self.close()
        else:
            self.lastUsed = time.monotonic()
        return Answer(response.status, response.msg, body)

    def _tryAnswer(self, method: str) -> Answer | None:
        try:
            self._socket.settimeout(2)
            return self._answer(method)
        except (OSError, http.client.HTTPException):
            return None


# The simulated cameras.


class RequestFailed(Exception):
    """A request answered with an unexpected status (or an ETag that differs)."""

    def __init__(self, key, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass
class Tally:
    """What one camera did; each camera's thread writes only its own."""

    sent: int = 0
    clipsStored: int = 0
    bytesStored: int = 0
    recordingsComplete: int = 0
    relogins: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def error(self, key, what: str, message: str) -> None:
        self.errors[key] += 1
        self.examples.setdefault(key, f"{what}: {message}")

    def add(self, other: "Tally") -> None:
        """Count what C{other} did too."""
        self.sent += other.sent
        self.clipsStored += other.clipsStored
        self.bytesStored += other.bytesStored
        self.recordingsComplete += other.recordingsComplete
        self.relogins += other.relogins
        self.latencies.extend(other.latencies)
        self.errors.update(other.errors)
        for key, example in other.examples.items():
            self.examples.setdefault(key, example)


def _connectionError(e: BaseException) -> tuple[str, str]:
    """An error key (the exception's type) and a message."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return type(e).__name__, f"certificate verify failed: {e.verify_message or e}"
    return type(e).__name__, str(e) or type(e).__name__


class Camera:
    """One simulated camera, uploading through its own connection."""

    def __init__(self, identity: Identity, test: "LoadTest"):
        self.identity = identity
        self._test = test
        self._plan = test.plan
        self.tally = Tally()
        self._auth: Connection | None = None
        self._storage: Connection | None = None
        self._token = None
        self._base = None  # the storage URL's path

    # Logging in.

    def login(self) -> None:
        """
        @raise RequestFailed: if the server refuses.
        @raise OSError, http.client.HTTPException: if it can't be reached.
        """
        test = self._test
        if self._auth is None:
            self._auth = test.connectionFor(test.tokenURI)
        path = urlsplit(test.tokenURI).path or "/"
        answer = self._auth.request("GET", path, {
            "X-Auth-User": test.target.user, "X-Auth-Key": test.target.key,
        })
        if answer.status != 200:
            raise RequestFailed(answer.status, answer.message)
        token = answer.headers.get("X-Auth-Token") or answer.headers.get("X-Storage-Token")
        storageURL = answer.headers.get("X-Storage-Url")
        if not token or not storageURL:
            raise RequestFailed("bad login answer", "no X-Auth-Token or X-Storage-Url")
        self._token = token
        parts = urlsplit(storageURL)
        self._base = parts.path.rstrip("/")
        if self._storage is None:
            self._storage = test.connectionFor(storageURL, reuse=self._auth)

    def _storageRequest(self, method, container, name=None, headers=(), payload=None,
                        stop=None):
        """A storage request with the token; logs in again once on 401."""
        path = f"{self._base}/{quote(container, safe='')}"
        if name is not None:
            path += "/" + quote(name, safe="")
        for attempt in (1, 2):
            allHeaders = {"X-Auth-Token": self._token, **dict(headers)}
            answer = self._storage.request(
                method, path, allHeaders, payload,
                chunked=self._plan.chunked, sent=self._sent, stop=stop,
            )
            if answer.status != 401 or attempt == 2:
                return answer
            self.tally.relogins += 1
            self.login()
        raise AssertionError("unreachable")

    def _sent(self, n: int) -> None:
        self.tally.sent += n

    def _expect(self, answer: Answer, *statuses: int) -> Answer:
        if answer.status not in statuses:
            raise RequestFailed(answer.status, answer.message)
        return answer

    def _attempt(self, what: str, function, *args) -> bool:
        """Run one step; count its failure, by status or by connection error."""
        try:
            function(*args)
            return True
        except Interrupted:
            raise
        except RequestFailed as e:
            self.tally.error(e.key, what, e.message)
        except (OSError, http.client.HTTPException) as e:
            key, message = _connectionError(e)
            self.tally.error(key, what, message)
        return False

    # Before the clock: log in, register the user and the camera.

    def prepare(self, registerContainers: bool) -> bool:
        if not self._attempt("login", self.login):
            return False
        return self._attempt("registration", self._register, registerContainers)

    def _register(self, registerContainers: bool) -> None:
        n, me = self.identity.number, self.identity
        if registerContainers:
            for container in ("Users", "Devices"):
                self._expect(self._storageRequest("PUT", container), 201, 202)
        self._expect(self._storageRequest("PUT", "Users", me.user, _meta("Object", {
            "Name": f"Loadtest user {n}", "Userid": f"LT-{n}", "Active": "True",
        }), payload=None), 201)
        self._expect(self._storageRequest("PUT", "Devices", me.device, _meta("Object", {
            "Name": f"Loadtest camera {n}", "Model": "W110", "Active": "True",
        })), 201)

    def refresh(self) -> None:
        if self._storage is not None:
            self._attempt("connect", self._storage.refresh)

    # The clock runs: the recordings.

    def run(self, start: float, stop: threading.Event) -> None:
        plan, clipSeconds = self._plan, self._plan.clipSeconds
        rng = random.Random(f"recordings-{plan.seed}-{self.identity.number}")
        span = plan.clipsPerRecording * clipSeconds + 60
        try:
            for r in range(plan.recordingsPerCamera):
                if stop.is_set():
                    return
                triggerOn = int(start) - (plan.recordingsPerCamera - r) * span
                self._recording(triggerOn, f"{rng.randrange(10000):04d}", stop)
        except Interrupted:
            return
        finally:
            for connection in {id(c): c for c in (self._auth, self._storage) if c}.values():
                connection.close()

    def _recording(self, triggerOn: int, recordingId: str, stop) -> None:
        plan, me = self._plan, self.identity
        container = f"{me.user}_{me.device}_{_compact(triggerOn)}Z"
        stopTime = triggerOn + plan.clipsPerRecording * plan.clipSeconds
        metadata = {
            "Containername": container, "Bwcserialnumber": me.device,
            "Scuserialnumber": "LOADTEST", "Firmwareversion": "loadtest",
            "Userid": me.user, "Bwcmodel": "W110", "Timezone": "UTC",
            "Triggeron": "Button", "Triggerontime": triggerOn, "Triggerontimeiso": _iso(triggerOn),
            "Starttime": triggerOn, "Starttimeiso": _iso(triggerOn),
            "Status": "Transferring",
        }
        created = self._attempt("recording container", lambda: self._expect(
            self._storageRequest("PUT", container, headers=_meta("Container", metadata)),
            201, 202))
        if not created:
            return
        stored = 0
        for c in range(plan.clipsPerRecording):
            clipStart = triggerOn + c * plan.clipSeconds
            stored += self._attempt("clip", self._clip, container, recordingId, clipStart, stop)
        if stored < plan.clipsPerRecording:
            return  # the controller would send the missing clips again first
        complete = _meta("Container", {
            "Status": "Complete", "Triggeroff": "Button",
            "Triggerofftime": stopTime, "Triggerofftimeiso": _iso(stopTime),
            "Stoptime": stopTime, "Stoptimeiso": _iso(stopTime),
        })
        if self._attempt("complete", lambda: self._expect(
                self._storageRequest("POST", container, headers=complete), 204, 202)):
            self.tally.recordingsComplete += 1

    def _clip(self, container: str, recordingId: str, clipStart: int, stop) -> None:
        plan, payload = self._plan, self._test.payload
        clipStop = clipStart + plan.clipSeconds
        ext = self._test.target.containerType
        name = f"{_compact(clipStart, '_')}_{recordingId}.{ext}"
        headers = {"ETag": payload.md5, "Content-Type": "application/octet-stream",
                   **_meta("Object", {
                       "Starttime": clipStart, "Starttimeiso": _iso(clipStart),
                       "Stoptime": clipStop, "Stoptimeiso": _iso(clipStop),
                       "Containertype": ext,
                   })}
        began = time.monotonic()
        answer = self._expect(
            self._storageRequest("PUT", container, name, headers, payload, stop), 201)
        latency = time.monotonic() - began
        etag = (answer.headers.get("Etag") or "").strip('"').lower()
        if etag != payload.md5:
            raise RequestFailed("ETag mismatch", f"{name}: answered {etag or 'none'}, "
                                                 f"sent {payload.md5}")
        self.tally.clipsStored += 1
        self.tally.bytesStored += payload.size
        self.tally.latencies.append(latency)


# The whole test.


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank of an ascending list."""
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


@dataclass(kw_only=True)
class Results(Tally):
    """What every camera did together, and how long it took."""

    plan: Plan
    tokenURI: str
    wall: float = 0.0
    clientCPU: float = 0.0
    prepareSeconds: float = 0.0
    loggedIn: int = 0
    interrupted: bool = False

    @property
    def errorCount(self) -> int:
        return sum(self.errors.values())

    @property
    def bitsPerSecond(self) -> float:
        return self.bytesStored * 8 / self.wall if self.wall > 0 else 0.0

    def errorSummary(self) -> str:
        """One line: every error key, its count, and one example."""
        def order(key):
            return (0, key, "") if isinstance(key, int) else (1, 0, str(key))
        return ", ".join(
            f"{key} x{self.errors[key]} ({self.examples[key]})"
            for key in sorted(self.errors, key=order)
        )


class LoadTest:
    """
    C{prepare()} (the payload, the logins, the registrations), then
    C{start()}, C{wait()} until it returns true, C{results()}.
    """

    def __init__(self, target: Target, plan: Plan):
        self.target = target
        self.plan = plan
        self.tokenURI = target.tokenURIs[0]
        self.payload: Payload | None = None
        self._context = target.tlsContext()
        self._cameras = [Camera(identity, self) for identity in identities(plan)]
        self._active: list[Camera] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = self._finished = None
        self._cpuBefore = None
        self._prepareSeconds = 0.0

    def connectionFor(self, uri: str, reuse: Connection | None = None) -> Connection:
        parts = urlsplit(uri)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if reuse is not None and (reuse.host, reuse.port) == (parts.hostname, port):
            return reuse
        return Connection(parts.scheme, parts.hostname, port, self._context)

    def _chooseTokenURI(self) -> None:
        """
        The first token URI that takes a connection, as the controller does;
        if none does, the first (the cameras' logins then count why).
        """
        for uri in self.target.tokenURIs:
            connection = self.connectionFor(uri)
            try:
                connection.connect()
            except OSError:
                continue
            finally:
                connection.close()
            self.tokenURI = uri
            return

    def prepare(self, progress=None) -> None:
        """
        Everything before the clock: the clip's bytes and MD5, a connection
        and a login per camera, its user and device registered.

        @param progress: called with a short description of each step.
        """
        began = time.monotonic()
        say = progress or (lambda text: None)
        say(f"preparing {humanSize(self.plan.clipSize)} of random bytes and their MD5")
        self.payload = Payload(self.plan.clipSize, random.Random(f"payload-{self.plan.seed}"),
                               chunkSize=self.plan.chunkSize if self.plan.chunked else None)
        self._chooseTokenURI()
        first = True
        for n, camera in enumerate(self._cameras, 1):
            say(f"logging in and registering camera {n}/{len(self._cameras)}")
            if camera.prepare(registerContainers=first):
                self._active.append(camera)
                first = False
            elif 401 in camera.tally.errors:
                # Every camera has the same credentials: more tries would
                # only get this address throttled, the real controller too.
                break
        for camera in self._active:
            camera.refresh()
        self._prepareSeconds = time.monotonic() - began

    def start(self) -> None:
        start = time.time()
        self._cpuBefore = os.times()
        self._started = time.monotonic()
        for camera in self._active:
            thread = threading.Thread(target=camera.run, args=(start, self._stop),
                                      name=f"camera-{camera.identity.number}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether every camera is done, waiting at most C{timeout} seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False
        if self._finished is None:
            self._finished = time.monotonic()
        return True

    def stop(self) -> None:
        """Interrupt every camera at its next slice."""
        self._stop.set()

    def progress(self) -> tuple[int, int, int, float]:
        """Bytes sent, clips stored, errors so far, and seconds since the start."""
        tallies = [camera.tally for camera in self._cameras]
        elapsed = time.monotonic() - self._started if self._started else 0.0
        return (sum(t.sent for t in tallies), sum(t.clipsStored for t in tallies),
                sum(sum(t.errors.values()) for t in tallies), elapsed)

    def results(self) -> Results:
        after = os.times()
        results = Results(plan=self.plan, tokenURI=self.tokenURI)
        results.prepareSeconds = self._prepareSeconds
        results.loggedIn = len(self._active)
        results.interrupted = self._stop.is_set()
        if self._started is not None:
            end = self._finished or time.monotonic()
            results.wall = end - self._started
            results.clientCPU = (after.user - self._cpuBefore.user) + (
                after.system - self._cpuBefore.system)
        for camera in self._cameras:
            results.add(camera.tally)
        results.latencies.sort()
        return results


def sizing(bitsPerSecond: float, shiftTB: float) -> float:
    """Hours to offload C{shiftTB} decimal terabytes at this rate."""
    return shiftTB * 1e12 * 8 / bitsPerSecond / 3600
