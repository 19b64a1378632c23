#!/usr/bin/env python3
"""
Does catalog upkeep lower upload throughput?  Issue #14's target: not
measurably.  Paired runs of the controller simulator (C{bwscd loadtest},
many small clips, so that per-object work shows) against two builds on the
same machine, taking turns: this checkout's, with its catalog, and a
baseline checkout made before the catalog existed (its own venv):

    git worktree add --detach ../baseline dc88076
    (cd ../baseline && python3 -m venv .venv &&
     .venv/bin/pip install -e '.[test]' --config-settings editable_mode=compat)
    .venv/bin/python bench/upkeep.py --baseline ../baseline --rounds 5

Each round starts each server on a fresh data directory, uploads the same
recordings and stops it.  Prints each run's throughput, the medians and
their ratio; asserts nothing.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
THROUGHPUT = re.compile(r"^throughput\s+([0-9.]+) MB/s", re.MULTILINE)


def upload(checkout: str, directory: str, port: int, load: list[str]) -> float:
    """MB/s of one loadtest against C{checkout}'s twistd on a fresh data directory."""
    data = os.path.join(directory, "data")
    shutil.rmtree(data, ignore_errors=True)
    log = os.path.join(directory, "server.log")
    command = [os.path.join(checkout, ".venv", "bin", "twistd"), "-n", "--pidfile=", "bwscd",
               "--data", data, "--port", str(port), "--interface", HOST,
               "--public-address", HOST]
    usage = subprocess.run(command[:4] + ["--help"], capture_output=True, text=True).stdout
    if "--catalog-port" in usage:
        command += ["--catalog-port", "off"]  # the catalog stays: only the viewer is off
    if "--scrub-period" in usage:
        command += ["--scrub-period", "off"]  # its own cost is bench/scrub.py's figure
    with open(log, "wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                  cwd=directory)
    try:
        deadline = time.monotonic() + 60
        while b"token URI" not in open(log, "rb").read():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(open(log).read())
            time.sleep(0.1)
        result = subprocess.run(
            [os.path.join(REPOSITORY, ".venv", "bin", "bwscd"), "loadtest", "--data", data,
             *load], capture_output=True, text=True, check=True)
        return float(THROUGHPUT.search(result.stdout)[1])
    finally:
        server.terminate()
        server.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True,
                        help="a checkout from before the catalog, with its own .venv")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=18443)
    parser.add_argument("--cameras", default="4")
    parser.add_argument("--recordings-per-camera", default="4")
    parser.add_argument("--clips-per-recording", default="8")
    parser.add_argument("--clip-size", default="8M")
    arguments = parser.parse_args()
    load = ["--cameras", arguments.cameras,
            "--recordings-per-camera", arguments.recordings_per_camera,
            "--clips-per-recording", arguments.clips_per_recording,
            "--clip-size", arguments.clip_size, "--seed", "14"]
    builds = {"baseline": os.path.abspath(arguments.baseline), "catalog": REPOSITORY}
    figures = {name: [] for name in builds}
    directory = tempfile.mkdtemp(prefix="bwscd-upkeep-")
    try:
        for round in range(arguments.rounds):
            # Taking turns, each going first in every other round.
            order = list(builds) if round % 2 == 0 else list(reversed(builds))
            for name in order:
                figures[name].append(upload(builds[name], directory, arguments.port, load))
            print(f"round {round + 1}: " + ", ".join(
                f"{name} {figures[name][-1]:.1f} MB/s" for name in builds), flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print("median: " + ", ".join(f"{name} {value:.1f} MB/s" for name, value in medians.items()))
    print(f"with the catalog: {medians['catalog'] / medians['baseline']:.3f} x the baseline")


if __name__ == "__main__":
    sys.exit(main())
