#!/usr/bin/env python3
"""
Upload benchmark: a real C{twistd -n bwscd}, python-swiftclient as the
client, and figures for throughput, server CPU and server memory.

    python bench/upload.py [--size 2G] [--http] [--chunked]
                           [--concurrency N] [--data DIR]

Each upload's bytes come from one random 1 MiB block repeated, so the
client neither holds the object in memory nor spends CPU making it; the MD5
of the whole object is worked out before the clock starts and sent as the
ETag, so the server checks every byte.  While the uploads run, the server's
VmRSS is sampled every 50 ms; its CPU time (utime + stime) is read before
and after.  Not a test: it prints figures (see bench/README.md).

Also a library: bench/run.py times the same uploads against every backend
and against the baselines (bench/discard.py) with L{timeUploads}.
"""

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_SIZE = 1 << 20
# The controller registers its user and camera before it sends a recording
# container named <UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>.
USER = "b5e1c0de-0000-4000-8000-000000000001"
DEVICE = "BENCH0001"
CONTAINER = f"{USER}_{DEVICE}_20240501T101500Z"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1000 * 1000
MiB = 1 << 20
DEFAULT_CHUNK_SIZE = 64 << 10


def loadModule(name: str, *path: str):
    """A module of the repository that is not on sys.path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPOSITORY, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loadConftest():
    """tests/conftest.py: C{startServer} and the C{Server} it returns."""
    return loadModule("bwscd_tests_conftest", "tests", "conftest.py")


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
    """C{2G}, C{512M}, C{512MiB}, C{100k}, C{12345}: binary multiples."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 2G, 512M, 100k)")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number << (10 * " KMGT".index(unit or " "))


def humanSize(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


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
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        # The command name, in parentheses, may contain spaces: split after it.
        fields = f.read().rpartition(")")[2].split()
    # Fields 14 and 15 of proc(5); fields[0] here is field 3 (state).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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
class Figures:
    """
    What one timed run measured.  C{serverCPU} and the memory figures are
    of the receiving process; C{reactorCPU} of its main thread, where that
    means something (twistd's reactor); C{machineCPU} is the whole
    machine's busy CPU time over the run (L{machineBusySeconds}).  L{None}
    where not measured.
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


def register(connection) -> None:
    """
    What the controller does before it sends a recording's clips: register
    the user and the camera, make the recording's container.
    """
    connection.put_container("Users")
    connection.put_object("Users", USER, b"", headers={"X-Object-Meta-Name": "Bench"})
    connection.put_container("Devices")
    connection.put_object("Devices", DEVICE, b"", headers={"X-Object-Meta-Name": "Bench"})
    connection.put_container(CONTAINER)


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
    C{Server} of tests/conftest.py, or anything that answers like one) and
    measure it.

    @return: the L{Figures} and the names the objects were stored as.
    """
    pid = server.process.pid
    # One connection per upload, made and logged in here, one after the
    # other: Server.connection() rewrites the CA file each time, so threads
    # calling it at once can catch it half written.  Logging in before the
    # clock starts also keeps scrypt out of the figures.
    connections = [server.connection(timeout=600) for _ in range(count)]
    try:
        for connection in connections:
            connection.get_auth()
        register(connections[0])
        rssBefore = server.status()["VmRSS"]

        clientBefore = os.times()
        cpuBefore = cpuSeconds(pid)
        # twistd's main thread runs the reactor: TLS, HTTP parsing, queueing.
        reactorBefore = cpuSeconds(pid, pid)
        busyBefore = machineBusySeconds()
        started = time.monotonic()
        with server.peakMemory() as sampler, ThreadPoolExecutor(count) as pool:
            futures = [
                pool.submit(upload, connections[i], i, payload, chunkSize)
                for i in range(count)
            ]
            names = [future.result() for future in futures]
        wall = time.monotonic() - started
        serverCPU = cpuSeconds(pid) - cpuBefore
        reactorCPU = cpuSeconds(pid, pid) - reactorBefore
        busy = machineBusySeconds() - busyBefore
        clientAfter = os.times()
    finally:
        for connection in connections:
            connection.close()
    clientCPU = (clientAfter.user - clientBefore.user) + (clientAfter.system - clientBefore.system)
    return Figures(
        count, payload.size, wall, clientCPU, serverCPU, reactorCPU, busy,
        rssBefore, sampler.peak, sampler.samples, server.status()["VmHWM"],
    ), names


def checkStored(server, names: list[str], payload: Payload) -> None:
    """Each object's size and ETag, asked of the server so that it holds for every backend."""
    check = server.connection()
    for name, md5 in zip(names, payload.md5s):
        head = check.head_object(CONTAINER, name)
        if int(head["content-length"]) != payload.size or head["etag"] != md5:
            raise AssertionError(f"{name}: stored {head['content-length']} bytes "
                                 f"(etag {head['etag']}), sent {payload.size} ({md5})")


def benchServer(base: str, payload: Payload, count: int, backend: str = "filesystem",
                https: bool = True, chunkSize: int | None = None) -> Figures:
    """
    Start C{twistd -n bwscd} with its data in C{base}/data (C{base} made if
    missing; C{DATA} in C{backend} standing for that directory), time
    C{count} uploads to it, check what it stored, and stop it.  If anything
    fails, the tail of the server's log is printed before the exception goes
    on.
    """
    conftest = loadConftest()
    os.makedirs(base, exist_ok=True)
    data = os.path.join(base, "data")
    extra = ["--max-uploads", str(count)] if count > 32 else []
    extra += ["--backend", backend.replace("DATA", data)]
    server = None
    try:
        server = conftest.startServer(data, *extra, https=https)
        figures, names = timeUploads(server, payload, count, chunkSize)
        checkStored(server, names, payload)
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
    return "\n".join([
        f"size              {humanSize(figures.size)} per object{exact}",
        f"mode              {mode}",
        f"concurrency       {figures.count}",
        f"wall              {figures.wall:.2f} s",
        f"throughput        {figures.throughput / MB:.1f} MB/s  "
        f"({figures.throughput * 8 / MB:.0f} Mbit/s)",
        f"server CPU        {figures.serverCPU:.2f} s, {figures.perGB(figures.serverCPU):.2f} "
        f"s per GB ({100 * figures.serverCPU / figures.wall:.0f}% of one core)",
        f"  reactor thread  {figures.reactorCPU:.2f} s, {figures.perGB(figures.reactorCPU):.2f} "
        f"s per GB (TLS, HTTP parsing, queueing)",
        f"  other threads   {workers:.2f} s, {figures.perGB(workers):.2f} s per GB "
        f"(upload workers: MD5, SHA-256, write)",
        f"client CPU        {figures.clientCPU:.2f} s, {figures.perGB(figures.clientCPU):.2f} "
        f"s per GB",
        f"rest of machine   {others:.2f} s of CPU ({100 * others / figures.wall:.0f}% of one "
        f"core: other processes, the kernel's own threads)",
        f"server peak RSS   {figures.peakRSS / MiB:.1f} MiB sampled VmRSS "
        f"({figures.samples} samples), {figures.hwm / MiB:.1f} MiB VmHWM; "
        f"{figures.rssBefore / MiB:.1f} MiB before the upload",
        f"stored            {figures.count} file(s) of {figures.size} bytes, ETags verified",
    ])


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
    parser.add_argument("--data", metavar="DIR",
                        help="make the server's scratch directory in DIR "
                             "(default: the temporary directory, /tmp)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the scratch directory (and the uploads) behind")
    args = parser.parse_args(argv)
    if args.size < 1 or args.concurrency < 1 or args.chunk_size < 1:
        parser.error("--size, --chunk-size and --concurrency must be positive")
    count, chunkSize = args.concurrency, args.chunk_size if args.chunked else None
    mode = f"{'http' if args.http else 'https'}, " + (
        f"chunked ({humanSize(chunkSize)} chunks)" if chunkSize else "content-length"
    )

    absolutePythonPath()
    base = tempfile.mkdtemp(prefix="bwscd-bench-", dir=args.data)
    try:
        print(f"preparing {count} x {humanSize(args.size)} ...", flush=True)
        payload = Payload.make(count, args.size)
        print(f"uploading ({mode}) ...", flush=True)
        figures = benchServer(base, payload, count, args.backend, not args.http, chunkSize)
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
