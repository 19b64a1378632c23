#!/usr/bin/env python3
"""
Every server benchmark in one run, and its figures written down:

    python bench/run.py [--size 1G] [--concurrency 8] [--workers N] [--data DIR]
                        [--output DIR]

For one upload and for C{--concurrency} at once, one after the other: the
baselines (the disk, OpenSSH's C{sftp put}, the discard receiver over HTTP
and HTTPS), then C{twistd -n bwscd} with each backend (filesystem, sqlite,
sftp to a throwaway OpenSSH sshd on loopback) over HTTP and HTTPS; with
C{--concurrency} at once, the filesystem and sqlite backends also with
C{--workers} processes (default: one per core), each right after the same
run in one process.  Every run sends the same payload (made once, before
any clock starts).  It prints a line per run as it goes, then the table,
and writes it with the machine's facts and the targets met to
C{bench/results/latest.md} and C{latest.json}.
See bench/README.md.
"""

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time

import baselines
import results
from machine import machineFacts
from upload import (
    MB, REPOSITORY, Payload, absolutePythonPath, benchServer, humanSize,
    parseSize,
)

from tests.support.sshd import SSHServer

TRANSPORTS = ("http", "https")
BACKENDS = results.BACKENDS
# The backends also run with --workers (with several uploads at once).
WORKER_BACKENDS = (results.FILESYSTEM, results.SQLITE)


def backendSpec(name: str, sshd, run: str) -> str:
    """
    The server's C{--backend} for a fresh store in the directory C{run};
    the sshd is on this machine, so its files can be anywhere here.
    """
    if name == results.SQLITE:
        return "sqlite:path=DATA/bench.sqlite"
    if name == results.SFTP:
        root = os.path.join(run, "sftp-root")
        os.makedirs(root)
        return sshd.backendSpec(root=root)
    return name


def runAll(scratch: str, payload: Payload, many: int, workers: int) -> list[results.Row]:
    """
    Every run, in C{scratch}; each one's files are deleted after it.  With
    C{many} at once, the backends of C{WORKER_BACKENDS} run again with
    C{--workers} C{workers} if that is more than 1.
    """
    os.makedirs(os.path.join(scratch, "sshd"))
    sshd = SSHServer.start(os.path.join(scratch, "sshd"))
    rows = []

    def record(name, transport, figures, processes=1):
        row = results.Row(name, transport, figures, workers=processes)
        rows.append(row)
        print(f"  {row.label:36} {figures.throughput / MB:8.1f} MB/s  {figures.wall:7.2f} s",
              flush=True)

    try:
        for count in (1, many):
            record(results.DISK, None, baselines.timeDiskWrites(scratch, payload, count))
            record(results.SFTP_PUT, "ssh",
                   baselines.timeSFTPPuts(sshd, scratch, payload, count))
            for transport in TRANSPORTS:
                directory = os.path.join(scratch, f"discard-{transport}-{count}")
                record(results.DISCARD, transport, baselines.timeDiscard(
                    directory, payload, count, https=transport == "https"))
            for backend in BACKENDS:
                for transport in TRANSPORTS:
                    # With several at once, right after the same run in one
                    # process, so that both see the machine alike.
                    several = count > 1 and workers > 1 and backend in WORKER_BACKENDS
                    for processes in (1, workers) if several else (1,):
                        run = os.path.join(scratch, f"{backend}-{transport}-{count}-{processes}")
                        spec = backendSpec(backend, sshd, run)
                        record(backend, transport, benchServer(
                            run, payload, count, spec, https=transport == "https",
                            workers=processes), processes)
                        shutil.rmtree(run)
    finally:
        sshd.stop()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Run every server benchmark and its baselines; print and write the figures."
    )
    parser.add_argument("--size", type=parseSize, default=parseSize("1G"),
                        help="bytes per object: 1G (default), 64M for a quick run")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="uploads at once in the concurrent runs (default 8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="bwscd's --workers in the extra concurrent runs of the "
                             "filesystem and sqlite backends (default: the number of cores, "
                             f"{os.cpu_count()} here; 1 for none)")
    parser.add_argument("--data", metavar="DIR",
                        help="make the scratch directory in DIR (default: /tmp); it needs "
                             "room for twice concurrency × size")
    parser.add_argument("--output", metavar="DIR",
                        default=os.path.join(REPOSITORY, "bench", "results"),
                        help="where latest.md and latest.json go (default bench/results)")
    args = parser.parse_args(argv)
    if args.size < 1 or args.concurrency < 2 or args.workers < 1:
        parser.error("--size and --workers must be positive and --concurrency at least 2")

    absolutePythonPath()
    scratch = tempfile.mkdtemp(prefix="bwscd-bench-", dir=args.data)
    try:
        # The concurrent sftp put holds its sources and their copies at once.
        needed = 2 * args.concurrency * args.size + (1 << 30)
        free = shutil.disk_usage(scratch).free
        if free < needed:
            print(f"{scratch} has {free >> 20} MiB free; the run needs {needed >> 20} MiB "
                  "(choose another with --data, or a smaller --size)", file=sys.stderr)
            return 1
        machine = machineFacts(scratch)
        started = time.monotonic()
        print(f"preparing {args.concurrency} x {humanSize(args.size)} ...", flush=True)
        payload = Payload.make(args.concurrency, args.size)
        rows = runAll(scratch, payload, args.concurrency, args.workers)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    results.addRatios(rows)
    found = results.targets(rows, args.concurrency)
    arguments = sys.argv[1:] if argv is None else argv
    run = {
        "command": shlex.join(["python", "bench/run.py", *arguments]),
        "size": args.size,
        "many": args.concurrency,
        "workers": args.workers,
        "minutes": (time.monotonic() - started) / 60,
    }
    print()
    print(results.markdown(rows, found, machine, run))
    for path in results.write(args.output, rows, found, machine, run):
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
