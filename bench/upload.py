#!/usr/bin/env python3
"""
Upload benchmark: a real C{twistd -n bwscd}, python-swiftclient as the
client, and figures for throughput, server CPU and server memory.

    python bench/upload.py [--size 2G] [--http] [--chunked]
                           [--concurrency N] [--workers N] [--data DIR]

Each upload's bytes come from one random 1 MiB block repeated, so the
client neither holds the object in memory nor spends CPU making it; the MD5
of the whole object is worked out before the clock starts and sent as the
ETag, so the server checks every byte.  The server is its main process
and that process's children (C{--workers}): while the uploads run, each
one's VmRSS and CPU time (utime + stime) are sampled every 50 ms, and added
up (L{ServerSampler}).  Not a test: it prints figures (see bench/README.md).

Also a library: bench/run.py times the same uploads against every backend
and against the baselines (bench/discard.py) with L{timeUploads}.
"""

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from bwscd.plugins import humanSize, sizeInBytes
# The test fixtures: importable from the checkout (the editable install,
# or PYTHONPATH=$PWD), see bench/README.md.
from tests.support.processes import commandOf, descendantsOf, processStatus, statFields
from tests.support.recording import Recording
from tests.support.server import startServer

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_SIZE = 1 << 20
# The controller registers its user and camera before it sends a recording
# container named <UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>.
RECORDING = Recording("b5e1c0de-0000-4000-8000-000000000001", "BENCH0001")
CONTAINER = RECORDING.container
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1000 * 1000
MiB = 1 << 20
DEFAULT_CHUNK_SIZE = 64 << 10


def absolutePythonPath() -> None:
    """
    twistd runs in the scratch directory: a relative PYTHONPATH (such as
    "PYTHONPATH=.") would name the wrong place there.
    """
    if os.environ.get("PYTHONPATH"):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(entry) for entry in os.environ["PYTHONPATH"].split(os.pathsep)
        )


def parseSize(text: str) -> int:
    """A size as bwscd reads one (L{bwscd.plugins.sizeInBytes}), for argparse."""
    try:
        return sizeInBytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


# The client's side: bytes from one block, repeated.


class RepeatedBlock:
    """
    A file-like object of C{size} bytes: C{block} over and over.  C{read}
    hands out slices (memoryviews) of the block, never copies.
    """

    def __init__(self, block: bytes, size: int):
        self._block = memoryview(block)
        self._size = size
        self.position = 0

    def read(self, size: int = -1):
        remaining = self._size - self.position
        if size is None or size < 0 or size > remaining:
            size = remaining
        offset = self.position % len(self._block)
        size = min(size, len(self._block) - offset)
        self.position += size
        return self._block[offset : offset + size]


def repeatedChunks(block: bytes, size: int, chunkSize: int):
    """The same bytes as L{RepeatedBlock}, as a generator of C{chunkSize} pieces."""
    source = RepeatedBlock(block, size)
    while True:
        chunk = source.read(chunkSize)
        if not chunk:
            return
        yield chunk


def repeatedMD5(block: bytes, size: int) -> str:
    md5 = hashlib.md5()
    source = RepeatedBlock(block, size)
    while chunk := source.read():
        md5.update(chunk)
    return md5.hexdigest()


@dataclass
class Payload:
    """
    The objects to upload, made before any clock starts: object I{i} is
    C{blocks[i]} repeated up to C{size} bytes, with MD5 C{md5s[i]}.  One
    payload serves any number of runs of up to C{len(blocks)} objects.
    """

    size: int
    blocks: list[bytes]
    md5s: list[str]

    @classmethod
    def make(cls, count: int, size: int) -> "Payload":
        blocks = [os.urandom(BLOCK_SIZE) for _ in range(count)]
        with ThreadPoolExecutor(count) as pool:
            md5s = list(pool.map(lambda block: repeatedMD5(block, size), blocks))
        return cls(size, blocks, md5s)


# The server's side, from /proc.


def cpuSeconds(pid: int, tid: int | None = None) -> float:
    """
    utime + stime in seconds: of the whole process C{pid} (all its threads,
    also those that have exited), or of its one thread C{tid}.
    """
    fields = statFields(pid, tid)
    # Fields 14 and 15 of proc(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def isWorker(pid: int) -> bool:
    """A bwscd worker process (C{python -m bwscd.service.workerprocess}) of C{--workers}."""
    arguments = commandOf(pid)[1:]
    return "-m" in arguments and \
        arguments[arguments.index("-m") + 1:][:1] == ["bwscd.service.workerprocess"]


def workersOf(pid: int) -> list[int]:
    return [child for child in descendantsOf(pid) if isWorker(child)]


def machineBusySeconds() -> float:
    """
    CPU seconds the whole machine has spent busy (all cores, every process
    and the kernel; not idle, not waiting for I/O), from C{/proc/stat}:
    over a run, what else was using the cores besides what was measured.
    """
    with open("/proc/stat") as f:
        ticks = [int(field) for field in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is within user).
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class ProcessSample:
    cpu: float  # utime + stime of the whole process
    reactor: float  # of its main thread: a twistd's or a worker's reactor
    rss: int
    hwm: int


def sampleProcess(pid: int) -> ProcessSample | None:
    """L{None} if the process has ended (or is a zombie, whose memory is gone)."""
    try:
        sizes = processStatus(pid)
        return ProcessSample(cpuSeconds(pid), cpuSeconds(pid, pid),
                             sizes["VmRSS"], sizes["VmHWM"])
    except (OSError, KeyError):
        return None


class ServerSampler:
    """
    The whole server: the process C{pid} and its descendants, found by
    their parent pid, again every C{SCAN_INTERVAL} so that a process started
    during the run is counted too, each sampled every C{INTERVAL} in a
    thread between L{start} and L{stop}.  For bwscd, those are its
    C{--workers} (C{python -m bwscd.service.workerprocess}), and the sftp backend's
    C{ssh} clients (of the main process and of each worker), which do its
    SSH encryption.

    CPU is each process's utime + stime at its last sample less that at
    L{start} (0 for a process that started later; a process that ended
    counts up to its last sample), added over the processes.  The reactor
    CPU is likewise of the main thread of each bwscd process (the main
    process and the workers, not C{ssh}): each runs its own reactor there.
    Memory is the peak of the sum of every process's VmRSS at a sample, and
    the largest VmRSS of one process.
    """

    INTERVAL = 0.05
    SCAN_INTERVAL = 0.5

    def __init__(self, pid: int):
        self.pid = pid
        self.first: dict[int, ProcessSample] = {}
        self.last: dict[int, ProcessSample] = {}
        # For each process seen: True for bwscd's own (the main one, a worker).
        self.bwscd: dict[int, bool] = {pid: True}
        self.peak = 0
        self.largest = 0
        self.samples = 0
        self._pids = [pid]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _scan(self) -> None:
        self._pids = [self.pid, *descendantsOf(self.pid)]
        for pid in self._pids:
            if pid not in self.bwscd:
                self.bwscd[pid] = isWorker(pid)

    def _sample(self) -> dict[int, ProcessSample]:
        now = {}
        for pid in self._pids:
            sample = sampleProcess(pid)
            if sample is not None:
                now[pid] = sample
        self.last.update(now)
        if self.pid in now:
            self.peak = max(self.peak, sum(sample.rss for sample in now.values()))
            self.largest = max([self.largest, *(sample.rss for sample in now.values())])
            self.samples += 1
        return now

    def start(self) -> dict[int, ProcessSample]:
        """Sample every process now (the figures' start), then every C{INTERVAL}."""
        self._scan()
        self.first = self._sample()
        if self.pid not in self.first:
            raise RuntimeError(f"the server (pid {self.pid}) has ended")
        self._thread.start()
        return self.first

    def _run(self) -> None:
        scanned = time.monotonic()
        while not self._stop.wait(self.INTERVAL):
            if time.monotonic() - scanned >= self.SCAN_INTERVAL:
                self._scan()
                scanned = time.monotonic()
            self._sample()

    def stop(self) -> None:
        """Stop sampling, after a last look for processes and a last sample."""
        self._stop.set()
        self._thread.join()
        self._scan()
        self._sample()

    def cpu(self, pid: int) -> float:
        return self.last[pid].cpu - (self.first[pid].cpu if pid in self.first else 0.0)

    def reactor(self, pid: int) -> float:
        return self.last[pid].reactor - (self.first[pid].reactor if pid in self.first else 0.0)

    @property
    def processes(self) -> list[int]:
        """bwscd's own processes seen: the main one first, then its workers."""
        return [self.pid, *sorted(pid for pid in self.last if pid != self.pid and self.bwscd[pid])]

    @property
    def helpers(self) -> list[int]:
        """Every other process seen (the sftp backend's C{ssh})."""
        return sorted(pid for pid in self.last if not self.bwscd[pid])


@dataclass
class Figures:
    """
    What one timed run measured.  C{serverCPU} and the memory figures are
    of the whole receiver: the process and its children (bwscd's workers),
    see L{ServerSampler}; C{reactorCPU} of the main threads of those
    processes, where that means something (bwscd's reactors);
    C{machineCPU} is the whole machine's busy CPU time over the run
    (L{machineBusySeconds}).  L{None} where not measured.

    C{rssBefore} is the sum of the processes' VmRSS before the uploads,
    C{peakRSS} the peak of that sum during them, C{largestRSS} the largest
    VmRSS of one process, C{hwm} the sum of their VmHWM at the end (each
    one's own high-water mark, so at least C{peakRSS}).  C{processes} is
    how many of bwscd's own processes there were (the main one and its
    workers), C{processCPU} each one's CPU seconds, the main process's
    first; C{served} how many of the uploads each one served, in the same
    order (from bwscd's log).  C{helpers} is how many other processes the
    server had (the sftp backend's C{ssh}), C{helperCPU} their CPU
    seconds, which are in C{serverCPU}.
    """

    count: int
    size: int
    wall: float
    clientCPU: float
    serverCPU: float | None = None
    reactorCPU: float | None = None
    machineCPU: float | None = None
    rssBefore: int | None = None
    peakRSS: int | None = None
    samples: int | None = None
    hwm: int | None = None
    largestRSS: int | None = None
    processes: int | None = None
    processCPU: list[float] | None = None
    served: list[int] | None = None
    helpers: int | None = None
    helperCPU: float | None = None

    @property
    def total(self) -> int:
        return self.count * self.size

    @property
    def throughput(self) -> float:
        """Bytes per second, all objects together."""
        return self.total / self.wall

    def perGB(self, seconds: float) -> float:
        return seconds / (self.total / 1e9)

    def asDict(self) -> dict:
        return dict(asdict(self), throughput=self.throughput)


# The benchmark.


def upload(connection, index: int, payload: Payload, chunkSize: int | None) -> str:
    """
    Object C{index}, on its own connection, chunked if C{chunkSize} is
    given; returns the name it was stored as.
    """
    name = f"object-{index}.mkv"
    block, size, md5 = payload.blocks[index], payload.size, payload.md5s[index]
    if chunkSize:
        contents = repeatedChunks(block, size, chunkSize)
        etag = connection.put_object(CONTAINER, name, contents, etag=md5)
    else:
        etag = connection.put_object(
            CONTAINER, name, RepeatedBlock(block, size), content_length=size, etag=md5
        )
    if etag != md5:
        raise AssertionError(f"{name}: the server answered ETag {etag}, the MD5 is {md5}")
    return name


def timeUploads(server, payload: Payload, count: int, chunkSize: int | None = None):
    """
    Upload C{count} objects of C{payload} at once to C{server} (a running
    C{Server} of tests/support/server.py, or anything that answers like one) and
    measure it: the server is its process and that process's children.

    @return: the L{Figures} and the names the objects were stored as.
    """
    # One connection per upload, made and logged in here, one after the
    # other: Server.connection() rewrites the CA file each time, so threads
    # calling it at once can catch it half written.  Logging in before the
    # clock starts also keeps scrypt out of the figures.
    connections = [server.connection(timeout=600) for _ in range(count)]
    sampler = ServerSampler(server.process.pid)
    try:
        for connection in connections:
            connection.get_auth()
        RECORDING.start(connections[0], status=None, user={"X-Object-Meta-Name": "Bench"},
                        device={"X-Object-Meta-Name": "Bench"})

        clientBefore = os.times()
        before = sampler.start()
        busyBefore = machineBusySeconds()
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(count) as pool:
                futures = [
                    pool.submit(upload, connections[i], i, payload, chunkSize)
                    for i in range(count)
                ]
                names = [future.result() for future in futures]
            wall = time.monotonic() - started
            busy = machineBusySeconds() - busyBefore
        finally:
            sampler.stop()
        clientAfter = os.times()
    finally:
        for connection in connections:
            connection.close()
    clientCPU = (clientAfter.user - clientBefore.user) + (clientAfter.system - clientBefore.system)
    processes, helpers = sampler.processes, sampler.helpers
    processCPU = [sampler.cpu(pid) for pid in processes]
    helperCPU = sum(sampler.cpu(pid) for pid in helpers)
    return Figures(
        count, payload.size, wall, clientCPU,
        serverCPU=sum(processCPU) + helperCPU,
        reactorCPU=sum(sampler.reactor(pid) for pid in processes),
        machineCPU=busy,
        rssBefore=sum(sample.rss for sample in before.values()),
        peakRSS=sampler.peak,
        samples=sampler.samples,
        hwm=sum(sampler.last[pid].hwm for pid in processes + helpers),
        largestRSS=sampler.largest,
        processes=len(processes),
        processCPU=processCPU,
        helpers=len(helpers),
        helperCPU=helperCPU,
    ), names


def checkStored(server, names: list[str], payload: Payload) -> None:
    """Each object's size and ETag, asked of the server so that it holds for every backend."""
    check = server.connection()
    for name, md5 in zip(names, payload.md5s):
        head = check.head_object(CONTAINER, name)
        if int(head["content-length"]) != payload.size or head["etag"] != md5:
            raise AssertionError(f"{name}: stored {head['content-length']} bytes "
                                 f"(etag {head['etag']}), sent {payload.size} ({md5})")


def waitForWorkers(server, workers: int, timeout: float = 60) -> None:
    """
    Until the server's main process has its C{workers - 1} worker processes
    and each has logged that its site is listening, so that every process
    can accept connections when the clock starts.
    """
    deadline = time.monotonic() + timeout
    while True:
        log = server.log()
        ready = all(f"worker {number}: AccessLoggingSite" in log
                    for number in range(1, workers))
        if ready and len(workersOf(server.process.pid)) == workers - 1:
            return
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server's {workers - 1} worker(s) did not start")
        time.sleep(0.1)


def servedBy(log: str, workers: int) -> list[int]:
    """
    How many of the benchmark's uploads each process served, from bwscd's
    access log: the main process's lines, then those of C{worker N: }.
    """
    served = [0] * workers
    for line in log.splitlines():
        if " PUT " in line and f"/{CONTAINER}/object-" in line:
            match = re.search(r"worker (\d+): ", line)
            served[int(match.group(1)) if match else 0] += 1
    return served


def benchServer(base: str, payload: Payload, count: int, backend: str = "filesystem",
                https: bool = True, chunkSize: int | None = None, workers: int = 1) -> Figures:
    """
    Start C{twistd -n bwscd} with its data in C{base}/data (C{base} made if
    missing; C{DATA} in C{backend} standing for that directory) and
    C{--workers} if C{workers} is more than 1, time C{count} uploads to it,
    check what it stored, and stop it.  If anything fails, the tail of the
    server's log is printed before the exception goes on.
    """
    os.makedirs(base, exist_ok=True)
    data = os.path.join(base, "data")
    extra = ["--max-uploads", str(count)] if count > 32 else []
    extra += ["--backend", backend.replace("DATA", data)]
    if workers > 1:
        extra += ["--workers", str(workers)]
    server = None
    try:
        server = startServer(data, *extra, https=https)
        waitForWorkers(server, workers)
        figures, names = timeUploads(server, payload, count, chunkSize)
        checkStored(server, names, payload)
        # A worker's log lines reach the main process's log a moment later.
        deadline = time.monotonic() + 10
        while sum(servedBy(server.log(), workers)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        figures.served = servedBy(server.log(), workers)
        return figures
    except Exception:
        log = data + ".log"
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                print("--- server log (tail) ---\n" + f.read()[-4000:], file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.stop()


def report(figures: Figures, mode: str) -> str:
    """The figures as bench/README.md describes them."""
    exact = "" if humanSize(figures.size).endswith(" bytes") else f" ({figures.size} bytes)"
    workers = figures.serverCPU - figures.reactorCPU
    others = figures.machineCPU - figures.serverCPU - figures.clientCPU
    several = figures.processes > 1
    everything = figures.processes + (figures.helpers or 0)
    lines = [
        f"size              {humanSize(figures.size)} per object{exact}",
        f"mode              {mode}",
        f"concurrency       {figures.count}",
        f"wall              {figures.wall:.2f} s",
        f"throughput        {figures.throughput / MB:.1f} MB/s  "
        f"({figures.throughput * 8 / MB:.0f} Mbit/s)",
        f"server CPU        {figures.serverCPU:.2f} s, {figures.perGB(figures.serverCPU):.2f} "
        f"s per GB ({100 * figures.serverCPU / figures.wall:.0f}% of one core"
        + (f"; {figures.processes} processes)" if several else ")"),
        f"  reactor thread{'s' if several else ' '} {figures.reactorCPU:.2f} s, "
        f"{figures.perGB(figures.reactorCPU):.2f} s per GB (TLS, HTTP parsing, queueing)",
        f"  other threads   {workers:.2f} s, {figures.perGB(workers):.2f} s per GB "
        f"(upload workers: MD5, SHA-256, write)",
    ]
    if several:
        cpu = " + ".join(f"{seconds:.2f}" for seconds in figures.processCPU)
        served = (" + ".join(str(number) for number in figures.served)
                  if figures.served else "not counted")
        lines += [
            f"  per process     {cpu} s (main process first); uploads served {served}",
        ]
    if figures.helpers:
        lines += [
            f"  other processes {figures.helperCPU:.2f} s, {figures.perGB(figures.helperCPU):.2f} "
            f"s per GB ({figures.helpers} of them: the sftp backend's ssh), in the above",
        ]
    lines += [
        f"client CPU        {figures.clientCPU:.2f} s, {figures.perGB(figures.clientCPU):.2f} "
        f"s per GB",
        f"rest of machine   {others:.2f} s of CPU ({100 * others / figures.wall:.0f}% of one "
        f"core: other processes, the kernel's own threads)",
        f"server peak RSS   {figures.peakRSS / MiB:.1f} MiB sampled VmRSS"
        + (f" of all {everything} processes together, the largest one "
           f"{figures.largestRSS / MiB:.1f} MiB" if everything > 1 else "")
        + f" ({figures.samples} samples), {figures.hwm / MiB:.1f} MiB VmHWM"
        + (" (added)" if everything > 1 else "")
        + f"; {figures.rssBefore / MiB:.1f} MiB before the upload",
        f"stored            {figures.count} file(s) of {figures.size} bytes, ETags verified",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Upload objects to a real twistd -n bwscd with python-swiftclient; "
        "print throughput, server CPU time and server memory."
    )
    parser.add_argument("--size", type=parseSize, default=parseSize("2G"),
                        help="bytes per object: 2G, 512M, 100k... (default 2G)")
    parser.add_argument("--backend", default="filesystem",
                        help="the server's --backend spec; DATA stands for its data "
                             "directory, e.g. sqlite:path=DATA/db.sqlite (default filesystem)")
    parser.add_argument("--http", action="store_true",
                        help="plain HTTP instead of HTTPS")
    parser.add_argument("--chunked", action="store_true",
                        help="chunked transfer encoding instead of Content-Length")
    parser.add_argument("--chunk-size", type=parseSize, default=DEFAULT_CHUNK_SIZE,
                        help="with --chunked, bytes per chunk (default 64k)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="objects uploaded at once, each on its own connection")
    parser.add_argument("--workers", type=int, default=1,
                        help="the server's --workers: processes sharing its port (default 1)")
    parser.add_argument("--data", metavar="DIR",
                        help="make the server's scratch directory in DIR "
                             "(default: the temporary directory, /tmp)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the scratch directory (and the uploads) behind")
    args = parser.parse_args(argv)
    if min(args.size, args.concurrency, args.chunk_size, args.workers) < 1:
        parser.error("--size, --chunk-size, --concurrency and --workers must be positive")
    count, chunkSize = args.concurrency, args.chunk_size if args.chunked else None
    mode = f"{'http' if args.http else 'https'}, " + (
        f"chunked ({humanSize(chunkSize)} chunks)" if chunkSize else "content-length"
    ) + (f", --workers {args.workers}" if args.workers > 1 else "")

    absolutePythonPath()
    base = tempfile.mkdtemp(prefix="bwscd-bench-", dir=args.data)
    try:
        print(f"preparing {count} x {humanSize(args.size)} ...", flush=True)
        payload = Payload.make(count, args.size)
        print(f"uploading ({mode}) ...", flush=True)
        figures = benchServer(base, payload, count, args.backend, not args.http, chunkSize,
                              args.workers)
        print()
        print(report(figures, mode))
        return 0
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
