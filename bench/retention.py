#!/usr/bin/env python3
"""
The retention plan's figure (issue #15's target: plan <= 10 s over the
1,000,000-recording catalog of bench/catalog.py): what
C{bwscd retention plan} computes (L{bwscd.catalog.retention.planned}: the
candidates read from the catalog, each recording's expiry, the legal
holds), timed for several dates on one catalog file, with a policy of two
years by default, five for one category and ten for another, and a hold
on one person; and the expiry sweep's choice of candidates
(L{bwscd.catalog.retention.sweepCandidates}) for the same dates.

    .venv/bin/python bench/catalog.py --catalog /var/tmp/catalog.sqlite
    .venv/bin/python bench/retention.py --catalog /var/tmp/catalog.sqlite

Prints the figures; asserts nothing.
"""

import argparse
import os
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bwscd.catalog import schema  # noqa: E402
from bwscd.catalog.retention import planned, sweepCandidates  # noqa: E402
from bwscd.policy.retention import Hold, Policy  # noqa: E402

POLICY = {"default": 730, "categories": {"3": 1825, "10": 3650}}
AS_OF = ["2025-06-01", "2026-12-07", "2028-01-01"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", required=True, help="a catalog file from bench/catalog.py")
    arguments = parser.parse_args()
    policy = Policy.fromDocument(POLICY)
    db = schema.open(arguments.catalog, readOnly=True)
    try:
        person = db.execute("SELECT person FROM recordings LIMIT 1").fetchone()[0]
        holds = [Hold(id="h1", kind="person", target=person, reason="bench",
                      account="bench", placed="2024-01-01T00:00:00Z")]
        recordings = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
        print(f"{recordings} recordings; policy {POLICY}; a hold on person {person}")
        for day in AS_OF:
            asOf = datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()
            began = time.perf_counter()
            going, held = planned(db, policy, holds, asOf)
            seconds = time.perf_counter() - began
            print(f"plan as of {day}: {len(going)} recordings expire, {held} held, "
                  f"{sum(f.bytes for f, _ in going) / 1e12:.1f} TB freed, in {seconds:.1f} s")
            began = time.perf_counter()
            candidates = sweepCandidates(db, policy, asOf)
            seconds = time.perf_counter() - began
            print(f"sweep's candidates as of {day}: {len(candidates)}, in {seconds:.1f} s")
    finally:
        db.close()


if __name__ == "__main__":
    main()
