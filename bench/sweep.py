#!/usr/bin/env python3
"""
The expiry sweep's deletion rate (issue #15: "plan and sweep over the
1,000,000-recording catalog"; bench/retention.py times what the sweep reads
from that catalog): a real C{twistd -n bwscd} on the filesystem or the
SQLite backend, C{--recordings} Complete recordings of C{--clips} clips
each, stopped in 2024 and made old in storage with the server stopped (as
tests/test_retention.py does), catalogued, a 90-day policy, and the server
started again: its sweep at start deletes every one of them, each object,
the container and the C{recording.expired} event, as it would any day.

    python bench/sweep.py [--recordings 1000] [--clips 10] [--size 64K]
                          [--backend filesystem] [--data DIR]

Prints the sweep's time (its own log line: the catalog's candidates, each
checked against storage and the holds, journalled, deleted and announced)
as recordings and objects per second, and what that rate makes of the
recordings bench/retention.py finds due in the million-recording catalog.
Checks that every recording went, each with one event.  Not a test (see
bench/README.md).
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from upload import absolutePythonPath, parseSize

from tests.support.catalog import meta
from tests.support.retention import OLD, backdateFiles, backdateRows
from tests.support.server import startServer
from tests.support.waiting import waitFor
from tests.test_operator import bwscd

PERSON = "b5e1c0de-0000-4000-8000-000000000003"
DEVICE = "BENCH0003"
DUE_IN_A_MILLION = 429_639
"""What bench/retention.py finds due as of 2026-12-07 in bench/catalog.py's catalog."""
SWEPT = re.compile(r"retention: (\d+) recordings expired in ([\d.]+) s, of (\d+)")


def containerOf(n: int) -> str:
    """The C{n}th recording's name: a second after the one before, from June 2024."""
    started = datetime(2024, 6, 1, tzinfo=timezone.utc) + timedelta(seconds=n)
    return f"{PERSON}_{DEVICE}_{started.strftime('%Y%m%dT%H%M%SZ')}"


def send(server, recordings: int, clips: int, size: int) -> list[str]:
    """The recordings, sent as a controller sends them, four connections at once."""
    swift = server.connection()
    swift.put_container("Users")
    swift.put_object("Users", PERSON, b"", headers=meta("Object", {"Name": "Bench"}))
    swift.put_container("Devices")
    swift.put_object("Devices", DEVICE, b"", headers=meta("Object", {"Name": "Cam"}))
    swift.close()
    names = [containerOf(n) for n in range(recordings)]
    body = os.urandom(size)

    def one(slice_):
        connection = server.connection(timeout=120)
        for container in slice_:
            connection.put_container(container, headers=meta("Container", {
                "Status": "Complete", "Stoptime": int(OLD), "Triggerontime": int(OLD) - 60}))
            for clip in range(clips):
                connection.put_object(container, f"20240601_0000{clip:02d}_1.mkv", body)
        connection.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, [names[i::4] for i in range(4)]))
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The expiry sweep's deletion rate.")
    parser.add_argument("--recordings", type=int, default=1000)
    parser.add_argument("--clips", type=int, default=10, help="objects per recording")
    parser.add_argument("--size", type=parseSize, default=parseSize("64K"),
                        help="bytes per object (default 64K)")
    parser.add_argument("--backend", choices=["filesystem", "sqlite"], default="filesystem")
    parser.add_argument("--data", metavar="DIR", help="scratch directory's parent (default /tmp)")
    args = parser.parse_args(argv)
    absolutePythonPath()
    scratch = tempfile.mkdtemp(prefix="bwscd-bench-sweep-", dir=args.data)
    backend = ["--backend", args.backend]
    try:
        data = os.path.join(scratch, "data")
        server = startServer(data, *backend)
        try:
            began = time.monotonic()
            names = send(server, args.recordings, args.clips, args.size)
            print(f"sent {len(names)} recordings of {args.clips} x {args.size} bytes "
                  f"in {time.monotonic() - began:.0f} s", flush=True)
        finally:
            server.stop()
        if args.backend == "filesystem":
            backdateFiles(server.storage, *names)
        else:
            backdateRows(os.path.join(data, "storage.sqlite"), *names)
        bwscd("catalog", "rebuild", "--data", data, *backend)
        bwscd("retention", "set", "--data", data, "--default", "90")
        server = startServer(data, *backend)
        try:
            waitFor(lambda: SWEPT.search(server.log()), timeout=3600, interval=0.5)
            expired, seconds, candidates = SWEPT.search(server.log()).groups()
            events = server.eventsOf("recording.expired")
            swift = server.addAccount("auditor", "reader")
            left = {c["name"] for c in swift.get_account(full_listing=True)[1]} & set(names)
            swift.close()
        finally:
            server.stop()
        assert int(expired) == int(candidates) == len(names), (expired, candidates)
        assert sorted(e["container"] for e in events) == sorted(names)
        assert not left, f"{len(left)} recordings are still stored"
        rate = len(names) / float(seconds)
        print(f"{args.backend}: the sweep expired {expired} recordings ({int(expired) * args.clips} "
              f"objects) in {float(seconds):.1f} s: {rate:.0f} recordings/s, "
              f"{rate * args.clips:.0f} objects/s")
        print(f"at that rate the {DUE_IN_A_MILLION:,} recordings due as of 2026-12-07 in the "
              f"million-recording catalog would take {DUE_IN_A_MILLION / rate / 3600:.1f} h "
              f"(one sweep; the next day's has only a day's worth)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
