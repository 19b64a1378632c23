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

The HTTP client and the clip's bytes are L{bwscd.tools.loadclient}'s, the
cameras L{bwscd.tools.loadcamera}'s; this module runs them together and
sums up what they did (L{Results}).
"""

import os
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bwscd.plugins import humanSize
from bwscd.tools.loadclient import Connection, Payload, Target
from bwscd.tools.loadcamera import Camera, Plan, Tally, identities


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
