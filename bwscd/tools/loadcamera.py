"""
The simulated cameras of C{bwscd loadtest} (L{bwscd.tools.loadtest}): what
a test sends (L{Plan}), the cameras' users and devices, and each camera
logging in, registering, and uploading its recordings as the W800 system
controller does, counting what it did in its own L{Tally}.
"""

import http.client
import random
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from bwscd.tools.loadclient import KiB, Answer, Connection, Interrupted

BYTES_PER_SECOND_OF_VIDEO = 5e9 / 3600
"""The integration guide's assumption: 5 GB per hour of 1080p, high bitrate."""


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
    """
    One simulated camera, uploading through its own connection.

    @param test: the L{bwscd.tools.loadtest.LoadTest} it belongs to, for its
        plan, target, token URI, payload and connections.
    """

    def __init__(self, identity: Identity, test):
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
