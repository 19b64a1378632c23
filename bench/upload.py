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

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_SIZE = 1 << 20
# The controller registers its user and camera before it sends a recording
# container named <UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>.
USER = "b5e1c0de-0000-4000-8000-000000000001"
DEVICE = "BENCH0001"
CONTAINER = f"{USER}_{DEVICE}_20240501T101500Z"
SAMPLE_INTERVAL = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1000 * 1000
MiB = 1 << 20


def loadConftest():
    """tests/conftest.py as a module: tests/ is not on sys.path."""
    path = os.path.join(REPOSITORY, "tests", "conftest.py")
    spec = importlib.util.spec_from_file_location("bwscd_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


# The benchmark.


def register(connection) -> None:
    """What the controller does before it sends a recording."""
    connection.put_container("Users")
    connection.put_object("Users", USER, b"", headers={"X-Object-Meta-Name": "Bench"})
    connection.put_container("Devices")
    connection.put_object("Devices", DEVICE, b"", headers={"X-Object-Meta-Name": "Bench"})


def upload(connection, index: int, block: bytes, size: int, md5: str, args) -> str:
    """One object, on its own connection; returns the name it was stored as."""
    name = f"object-{index}.mkv"
    if args.chunked:
        contents = repeatedChunks(block, size, args.chunk_size)
        etag = connection.put_object(CONTAINER, name, contents, etag=md5)
    else:
        etag = connection.put_object(
            CONTAINER, name, RepeatedBlock(block, size), content_length=size, etag=md5
        )
    if etag != md5:
        raise AssertionError(f"{name}: the server answered ETag {etag}, the MD5 is {md5}")
    return name


def run(args, base: str) -> int:
    conftest = loadConftest()
    count, size = args.concurrency, args.size
    mode = f"{'http' if args.http else 'https'}, " + (
        f"chunked ({humanSize(args.chunk_size)} chunks)" if args.chunked else "content-length"
    )

    print(f"preparing {count} x {humanSize(size)} ...", flush=True)
    blocks = [os.urandom(BLOCK_SIZE) for _ in range(count)]
    with ThreadPoolExecutor(count) as pool:
        md5s = list(pool.map(lambda block: repeatedMD5(block, size), blocks))

    extra = ["--max-uploads", str(count)] if count > 32 else []
    extra += ["--backend", args.backend.replace("DATA", os.path.join(base, "data"))]
    server = conftest.startServer(os.path.join(base, "data"), *extra, https=not args.http)
    try:
        pid = server.process.pid
        # One connection per upload, made and logged in here, one after the
        # other: Server.connection() rewrites the CA file each time, so
        # threads calling it at once can catch it half written.  Logging in
        # before the clock starts also keeps scrypt out of the figures.
        connections = [server.connection(timeout=600) for _ in range(count)]
        for connection in connections:
            connection.get_auth()
        register(connections[0])
        connections[0].put_container(CONTAINER)
        rssBefore = server.status()["VmRSS"]

        print(f"uploading ({mode}) to twistd pid {pid} ...", flush=True)
        clientBefore = os.times()
        cpuBefore = cpuSeconds(pid)
        # twistd's main thread runs the reactor: TLS, HTTP parsing, queueing.
        reactorBefore = cpuSeconds(pid, pid)
        started = time.monotonic()
        try:
            with server.peakMemory() as sampler, ThreadPoolExecutor(count) as pool:
                futures = [
                    pool.submit(upload, connections[i], i, blocks[i], size, md5s[i], args)
                    for i in range(count)
                ]
                names = [future.result() for future in futures]
        finally:
            for connection in connections:
                connection.close()
        wall = time.monotonic() - started
        cpu = cpuSeconds(pid) - cpuBefore
        reactorCPU = cpuSeconds(pid, pid) - reactorBefore
        clientAfter = os.times()
        hwm = server.status()["VmHWM"]

        check = server.connection()
        for name, md5 in zip(names, md5s):
            # Asked of the server, so that it holds for every backend.
            head = check.head_object(CONTAINER, name)
            if int(head["content-length"]) != size or head["etag"] != md5:
                raise AssertionError(f"{name}: stored {head['content-length']} bytes "
                                     f"(etag {head['etag']}), sent {size} ({md5})")
    finally:
        server.stop()

    total = count * size
    clientCPU = (clientAfter.user - clientBefore.user) + (
        clientAfter.system - clientBefore.system
    )
    print()
    exact = "" if humanSize(size).endswith(" bytes") else f" ({size} bytes)"
    print(f"size              {humanSize(size)} per object{exact}")
    print(f"mode              {mode}")
    print(f"concurrency       {count}")
    print(f"wall              {wall:.2f} s")
    print(f"throughput        {total / wall / MB:.1f} MB/s  "
          f"({total * 8 / wall / MB:.0f} Mbit/s)")
    print(f"server CPU        {cpu:.2f} s, {cpu / (total / 1e9):.2f} s per GB "
          f"({100 * cpu / wall:.0f}% of one core)")
    print(f"  reactor thread  {reactorCPU:.2f} s, {reactorCPU / (total / 1e9):.2f} s per GB "
          f"(TLS, HTTP parsing, queueing)")
    print(f"  other threads   {cpu - reactorCPU:.2f} s, "
          f"{(cpu - reactorCPU) / (total / 1e9):.2f} s per GB "
          f"(upload workers: MD5, SHA-256, write)")
    print(f"client CPU        {clientCPU:.2f} s, {clientCPU / (total / 1e9):.2f} s per GB")
    print(f"server peak RSS   {sampler.peak / MiB:.1f} MiB sampled VmRSS "
          f"({sampler.samples} samples), {hwm / MiB:.1f} MiB VmHWM; "
          f"{rssBefore / MiB:.1f} MiB before the upload")
    print(f"stored            {count} file(s) of {size} bytes, ETags verified")
    return 0


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
    parser.add_argument("--chunk-size", type=parseSize, default=parseSize("64k"),
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

    # twistd runs in the scratch directory: a relative PYTHONPATH (such as
    # "PYTHONPATH=.") would name the wrong place there.
    if os.environ.get("PYTHONPATH"):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(entry) for entry in os.environ["PYTHONPATH"].split(os.pathsep)
        )
    base = tempfile.mkdtemp(prefix="bwscd-bench-", dir=args.data)
    try:
        return run(args, base)
    except Exception:
        log = os.path.join(base, "data.log")
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                print("--- server log (tail) ---\n" + f.read()[-4000:], file=sys.stderr)
        raise
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
