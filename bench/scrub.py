#!/usr/bin/env python3
"""
The fixity scrub's effect on upload throughput, at its default pace
(docs/retention.md, Fixity): paired runs of the same uploads to a real
C{twistd -n bwscd} whose storage already holds C{--stored} bytes, with the
scrub off (C{--scrub-period off}) and on (the defaults: a pass begins at
start-up and reads at most a fifth of the time), alternating which goes
first so that the disk's and the page cache's drift falls on both.

    python bench/scrub.py [--size 256M] [--concurrency 4] [--stored 2G]
                          [--pairs 3] [--workers N] [--data DIR]

Each run uploads to a fresh recording (the previous run's is removed while
the server is stopped) and the scrub's state is removed before each run, so
every "on" run scrubs from the start.  With one process the scrub waits
while uploads are under way, so the figure is mostly what its pace costs
between them; with C{--workers} it does not see the workers' uploads, and
only its pace holds it back.  Prints each pair's throughputs and the
median slowdown.  Not a test (see bench/README.md).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from upload import (MB, RECORDING, RepeatedBlock, Payload, absolutePythonPath,
                    checkStored, parseSize, timeUploads, waitForWorkers)

from bwscd.backends import layout
from tests.support.recording import Recording
from tests.support.server import startServer

STORED = Recording("b5e1c0de-0000-4000-8000-000000000002", "BENCH0002")
"""The recording that fills storage for the scrub to read."""


def fill(data: str, stored: int, payload: Payload) -> None:
    """Store C{stored} bytes in objects of C{payload}'s size, with the scrub off."""
    server = startServer(data, "--scrub-period", "off")
    try:
        swift = server.connection(timeout=600)
        STORED.start(swift, status=None, user={"X-Object-Meta-Name": "Bench"},
                     device={"X-Object-Meta-Name": "Bench"})
        for index in range(max(1, stored // payload.size)):
            block = payload.blocks[index % len(payload.blocks)]
            swift.put_object(STORED.container, f"stored-{index}.mkv",
                             RepeatedBlock(block, payload.size), content_length=payload.size,
                             etag=payload.md5s[index % len(payload.blocks)])
    finally:
        server.stop()


def timed(data: str, scrub: bool, payload: Payload, count: int, workers: int) -> float:
    """One run's upload throughput, bytes per second."""
    storage = os.path.join(data, "storage")
    shutil.rmtree(os.path.join(storage, layout.fsName(RECORDING.container)), ignore_errors=True)
    try:
        os.unlink(os.path.join(storage, layout.state("scrub.json")))
    except FileNotFoundError:
        pass
    arguments = [] if scrub else ["--scrub-period", "off"]
    if workers > 1:
        arguments += ["--workers", str(workers)]
    if count > 32:
        arguments += ["--max-uploads", str(count)]
    server = startServer(data, *arguments)
    try:
        waitForWorkers(server, workers)
        time.sleep(1)  # the scrub under way, the start-up's catalog sync done
        figures, names = timeUploads(server, payload, count)
        checkStored(server, names, payload)
        return figures.throughput
    finally:
        server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Upload throughput with the scrub off and on.")
    parser.add_argument("--size", type=parseSize, default=parseSize("256M"),
                        help="bytes per uploaded object (default 256M)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="objects uploaded at once (default 4)")
    parser.add_argument("--stored", type=parseSize, default=parseSize("2G"),
                        help="bytes in storage before the runs, for the scrub to read "
                             "(default 2G)")
    parser.add_argument("--pairs", type=int, default=3, help="paired runs (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="the server's --workers")
    parser.add_argument("--data", metavar="DIR", help="scratch directory's parent (default /tmp)")
    args = parser.parse_args(argv)
    absolutePythonPath()
    scratch = tempfile.mkdtemp(prefix="bwscd-bench-scrub-", dir=args.data)
    try:
        payload = Payload.make(args.concurrency, args.size)
        data = os.path.join(scratch, "data")
        fill(data, args.stored, payload)
        ratios = []
        for pair in range(args.pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            rates = {scrub: timed(data, scrub, payload, args.concurrency, args.workers)
                     for scrub in order}
            ratios.append(rates[True] / rates[False])
            print(f"pair {pair + 1}: scrub off {rates[False] / MB:.1f} MB/s, "
                  f"on {rates[True] / MB:.1f} MB/s ({100 * (1 - ratios[-1]):+.1f}% slower)",
                  flush=True)
        print(f"{args.concurrency} x {args.size / MB:.0f} MB uploads, {args.stored / MB:.0f} MB "
              f"stored, --workers {args.workers}: median slowdown with the scrub at its "
              f"default pace {100 * (1 - statistics.median(ratios)):.1f}% "
              f"over {args.pairs} pairs")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
