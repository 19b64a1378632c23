"""
C{bwscd loadtest}: the partner checklist's performance test.  Simulates the
W800 system controller offloading N cameras at once against a running
server, and prints throughput, per-clip latency, errors by status and how
long a shift's recordings take to offload at the measured rate.  The
engine is L{bwscd.tools.loadtest}; see docs/performance.md.
"""

import argparse
import os
import secrets
import sys

from bwscd.config import paths
from bwscd.commands import CommandError
from bwscd.plugins import humanSize, sizeInBytes
from bwscd.tools.loadcamera import Plan
from bwscd.tools.loadclient import GiB, MB, LoadTestError, readConnectionFile
from bwscd.tools.loadtest import LoadTest, percentile, sizing

ERRORS = (LoadTestError,)

W800_BITS_PER_SECOND = 1e9
"""What one system controller can send at most."""


def _size(text: str) -> int:
    try:
        size = sizeInBytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    if size < 1:
        raise argparse.ArgumentTypeError("must be at least 1 byte")
    return size


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _terabytes(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return number


class Progress:
    """One line on standard error, rewritten in place; only on a terminal."""

    def __init__(self, stream=sys.stderr):
        self._stream = stream
        self.enabled = stream.isatty()
        self._width = 0

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def _rate(bytes_: int, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    return f"{bytes_ / seconds / MB:.1f} MB/s ({bytes_ * 8 / seconds / 1e6:.0f} Mbit/s)"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _tb(value: float) -> str:
    text = f"{value:g}"
    return text if "." in text or "e" in text else text + ".0"


def _progressLine(test: LoadTest, plan: Plan, previous: list) -> str:
    sent, clips, errors, elapsed = test.progress()
    # The rate over the last few seconds, not since the start.
    previous.append((elapsed, sent))
    del previous[:-10]
    (t0, s0), (t1, s1) = previous[0], previous[-1]
    rate = (s1 - s0) * 8 / (t1 - t0) / 1e6 if t1 > t0 else 0.0
    share = 100 * sent / plan.bytes if plan.bytes else 100
    return (f"{sent / GiB:.2f} of {plan.bytes / GiB:.2f} GiB sent ({share:.0f}%), "
            f"{rate:.0f} Mbit/s, {clips}/{plan.clips} clips stored, "
            f"{errors} error{'s' * (errors != 1)}, {elapsed:.0f} s")


def _report(results, plan: Plan, shiftTB: float) -> None:
    line = lambda label, text: print(f"{label:<18}{text}")  # noqa: E731
    stored = results.bytesStored
    line("clips stored", f"{results.clipsStored} of {plan.clips}")
    line("recordings", f"{results.recordingsComplete} of {plan.recordings} complete")
    line("bytes", f"{results.sent} sent, {stored} stored")
    line("setup", f"{results.prepareSeconds:.1f} s before the clock (clip bytes and MD5; "
                  f"{results.loggedIn} of {plan.cameras} cameras logged in and registered)")
    if results.loggedIn:
        line("wall", f"{results.wall:.2f} s")
        line("throughput", _rate(stored, results.wall))
        latencies = results.latencies
        if latencies:
            line("clip latency", ", ".join(
                f"p{p} {_seconds(percentile(latencies, p))}" for p in (50, 90, 99))
                + f", max {_seconds(latencies[-1])} ({len(latencies)} clips)")
        else:
            line("clip latency", "no clip stored")
    line("errors", results.errorSummary() or "none")
    if results.relogins:
        line("logins again", f"{results.relogins} (after a 401 on an expired token)")
    if results.loggedIn and results.wall > 0:
        perGB = f", {results.clientCPU / (stored / 1e9):.2f} s per GB" if stored else ""
        line("client CPU", f"{results.clientCPU:.2f} s{perGB} "
                           f"({100 * results.clientCPU / results.wall:.0f}% of one core)")
    rate = results.bitsPerSecond
    if rate > 0:
        hours = sizing(rate, shiftTB)
        line("sizing", f"at {rate / 1e6:.0f} Mbit/s, {_tb(shiftTB)} TB per shift offloads "
                       f"in {hours:.1f} hours")
        if rate > W800_BITS_PER_SECOND:
            line("", f"(one W800 sends at most 1 Gbit/s: with one controller, "
                     f"{sizing(W800_BITS_PER_SECOND, shiftTB):.1f} hours)")
    else:
        line("sizing", "nothing was stored: no rate to size with")


def run(arguments) -> None:
    path = arguments.connection_file or os.path.join(arguments.data, paths.CONNECTION_FILE)
    target = readConnectionFile(path)
    seed = arguments.seed if arguments.seed is not None else secrets.randbits(32)
    plan = Plan(
        cameras=arguments.cameras,
        recordingsPerCamera=arguments.recordings_per_camera,
        clipsPerRecording=arguments.clips_per_recording,
        clipSize=arguments.clip_size,
        chunked=arguments.chunked,
        chunkSize=arguments.chunk_size,
        seed=seed,
    )
    test = LoadTest(target, plan)
    progress = Progress()
    try:
        test.prepare(progress.show)
    except KeyboardInterrupt:
        raise CommandError("interrupted before the clock started")
    finally:
        progress.clear()

    mode = (f"chunked ({humanSize(plan.chunkSize)} chunks)" if plan.chunked
            else "Content-Length")
    https = test.tokenURI.startswith("https:")
    trust = (f"certificate checked against the connection file's "
             f"{len(target.certificatesPEM)} certificate(s)" if https else "plain HTTP")
    print(f"{'server':<18}{test.tokenURI} ({trust})")
    print(f"{'load':<18}{plan.cameras} cameras x {plan.recordingsPerCamera} recording(s) x "
          f"{plan.clipsPerRecording} clip(s) x {humanSize(plan.clipSize)}, {mode}, "
          f".{target.containerType}, seed {seed}")
    print(f"{'total':<18}{plan.clips} clips, {plan.bytes / 1e9:.2f} GB "
          f"({plan.bytes} bytes), {plan.recordings} recordings", flush=True)

    test.start()
    history = []
    try:
        while not test.wait(0.5):
            progress.show(_progressLine(test, plan, history))
    except KeyboardInterrupt:
        test.stop()
        test.wait()
    finally:
        progress.clear()
    results = test.results()
    _report(results, plan, arguments.shift_tb)
    sys.stdout.flush()
    if results.interrupted:
        raise CommandError("interrupted; the figures above are of what was done by then")
    if results.errors:
        count = results.errorCount
        raise CommandError(f"{count} error{'s' * (count != 1)}: {results.errorSummary()}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "loadtest",
        help="simulate a W800 offloading cameras; print throughput and offload time",
        description="Upload recordings to a running bwscd (or any content destination) "
        "as the AXIS W800 system controller does, N cameras at once, reading the "
        "connection file as the controller does, and print throughput, per-clip "
        "latency, errors by status and how long a shift's recordings take to "
        "offload.  It stores real recordings (users and cameras named 'Loadtest'): "
        "best run it against a second server on the same hardware with its own "
        "data directory (see docs/performance.md).",
    )
    parser.add_argument("--connection-file", metavar="FILE",
                        help="the connection file to read (default: DATA/config.json)")
    parser.add_argument("--cameras", type=_positive, default=4, metavar="N",
                        help="cameras offloading at once, one recording each at a time, "
                             "each on its own connection (default 4)")
    parser.add_argument("--recordings-per-camera", type=_positive, default=1, metavar="N",
                        help="recordings each camera uploads, one after the other (default 1)")
    parser.add_argument("--clips-per-recording", type=_positive, default=4, metavar="N",
                        help="clips in each recording (default 4)")
    parser.add_argument("--clip-size", type=_size, default=sizeInBytes("64M"), metavar="SIZE",
                        help="bytes per clip, binary multiples: 256K, 64M, 2G (default 64M)")
    parser.add_argument("--chunked", action="store_true",
                        help="send clips with Transfer-Encoding: chunked instead of "
                             "Content-Length")
    parser.add_argument("--chunk-size", type=_size, default=sizeInBytes("64K"), metavar="SIZE",
                        help="with --chunked, bytes per chunk (default 64K)")
    parser.add_argument("--shift-tb", type=_terabytes, default=1.0, metavar="TB",
                        help="terabytes (decimal) recorded per shift, for the sizing line "
                             "(default 1, the integration guide's example: 100 cameras x "
                             "2 h x 5 GB/h)")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="seed for the clip bytes and the users', cameras' and "
                             "recordings' ids (default: random, printed)")
    parser.set_defaults(run=run, errors=ERRORS)
