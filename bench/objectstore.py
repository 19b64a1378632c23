#!/usr/bin/env python3
"""
The object-store backends against a direct upload to the same store
(issue #16): a real single-node OpenStack Swift on loopback
(tests/support/swiftcluster.py), and, in pairs, one after the other with
the same payload:

  - python-swiftclient uploading straight to the cluster, then
    C{twistd -n bwscd --backend swift:...} over HTTPS in front of it
    (python-swiftclient as the client, as in bench/upload.py), verifying
    each object's MD5 and working out its SHA-256 on the way;
  - the same with the object above the largest the store takes in one
    piece (bwscd's C{segment_size}, as the cluster's lower limit would):
    segments and a Static Large Object manifest (one upload only: eight at
    once overwhelm the single-node cluster of a 2-core machine, whose
    manifests' checks of their segments then time out);
  - boto3's upload (its multipart upload, in parts of 8 MiB) straight to
    the cluster's S3 API, then bwscd's C{s3:} backend in front of it;

for one upload and for C{--concurrency} at once.  Prints each run's
throughput, bwscd's CPU and its peak RSS, and the ratio to the direct
upload.  Not a test (see bench/README.md).

    python bench/objectstore.py [--size 1G] [--concurrency 8] [--segment 256M]
                                [--data DIR] [--stores swift,s3]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import swiftclient
from upload import MB, MiB, Payload, RepeatedBlock, absolutePythonPath, benchServer, parseSize

from tests.support.swiftcluster import KEY, USER, SwiftCluster


def direct(cluster: SwiftCluster, payload: Payload, count: int, container: str) -> float:
    """Seconds for C{count} objects put straight to the cluster at once, ETags checked."""
    connections = [swiftclient.Connection(cluster.authURL, USER, KEY, retries=0, timeout=600)
                   for _ in range(count)]
    connections[0].put_container(container)
    for connection in connections:
        connection.get_auth()

    def put(index: int) -> None:
        etag = connections[index].put_object(
            container, f"object-{index}", RepeatedBlock(payload.blocks[index], payload.size),
            content_length=payload.size, etag=payload.md5s[index])
        assert etag == payload.md5s[index]

    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(put, range(count)))
    wall = time.monotonic() - started
    for index, connection in enumerate(connections):
        connection.delete_object(container, f"object-{index}")
        connection.close()
    return wall


def directS3(cluster: SwiftCluster, payload: Payload, count: int, bucket: str) -> float:
    """Seconds for C{count} objects uploaded straight to the S3 API at once (boto3's upload)."""
    from boto3.s3.transfer import TransferConfig

    s3 = cluster.s3()
    bucket = f"s3-{bucket}"  # not the Swift run's container, in the same account
    s3.create_bucket(Bucket=bucket)
    # boto3's own multipart upload, in parts of bwscd's default size, two at
    # a time (its default of 10 per upload, 80 for 8 uploads, makes the
    # s3api answer "reduce your request rate").
    transfer = TransferConfig(multipart_chunksize=8 << 20, max_concurrency=2)

    def put(index: int) -> None:
        s3.upload_fileobj(Bytes(payload.blocks[index], payload.size), bucket,
                          f"object-{index}", Config=transfer)

    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(put, range(count)))
    wall = time.monotonic() - started
    for index in range(count):
        head = s3.head_object(Bucket=bucket, Key=f"object-{index}")
        assert head["ContentLength"] == payload.size
        s3.delete_object(Bucket=bucket, Key=f"object-{index}")
    return wall


class Bytes(RepeatedBlock):
    """L{RepeatedBlock} handing out bytes, as many as asked: boto3 takes a short read as the end."""

    def read(self, size: int = -1):
        if size is None or size < 0:
            size = self._size - self.position
        pieces = []
        while size and (piece := super().read(size)):
            pieces.append(piece)
            size -= len(piece)
        return b"".join(pieces)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parseSize, default=parseSize("1G"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--segment", default="256M",
                        help="bwscd's segment_size for the large-object runs (default 256M)")
    parser.add_argument("--data", default=None, help="where the cluster and bwscd keep data")
    parser.add_argument("--stores", default="swift,s3",
                        help="which of the runs: swift, s3 or both (default swift,s3)")
    options = parser.parse_args(argv)
    absolutePythonPath()
    scratch = tempfile.mkdtemp(prefix="bwscd-objectstore-", dir=options.data)
    payload = Payload.make(options.concurrency, options.size)
    # Room for one run's objects at once, as the store keeps them, and bwscd's.
    # Two processes per server, as a cluster would have at least (the tests'
    # have one), so that one object server's fsync does not stall the others.
    cluster = SwiftCluster.start(os.path.join(scratch, "swift"), workers=2,
                                 imageSize=2 * options.concurrency * options.size + (4 << 30))
    rows = []
    cluster.s3().create_bucket(Bucket="bench")
    runs = [
        ("swift", "python-swiftclient → Swift", direct, [
            ("bwscd swift: → Swift", lambda n: cluster.backendSpec(prefix=n)),
            (f"bwscd swift: → Swift, {options.segment} segments",
             lambda n: cluster.backendSpec(prefix=n, segment_size=options.segment))]),
        ("s3", "boto3 → S3 (s3api)", directS3, [
            ("bwscd s3: → S3 (s3api)", lambda n: cluster.s3BackendSpec("bench", prefix=n))]),
    ]
    try:
        for count in (1, options.concurrency):
            for store, reference, timeDirect, backends in runs:
                if store not in options.stores.split(","):
                    continue
                wall = timeDirect(cluster, payload, count, f"direct-{count}")
                rate = count * payload.size / wall
                rows.append((reference, count, rate, None, None, 1.0))
                print(f"{reference}, {count} at once: {rate / MB:.0f} MB/s", flush=True)
                for label, spec in backends:
                    if count > 1 and "segments" in label:
                        # 8 large objects' segments at once overwhelm the
                        # single-node cluster of this small machine: its
                        # manifests' checks of their segments time out (503).
                        continue
                    base = os.path.join(scratch, f"bwscd-{len(rows)}")
                    figures = benchServer(base, payload, count, backend=spec(f"run{len(rows)}-"))
                    rows.append((label, count, figures.throughput,
                                 figures.perGB(figures.serverCPU), figures.peakRSS,
                                 figures.throughput / rate))
                    print(f"{label}, {count} at once: {figures.throughput / MB:.0f} MB/s, "
                          f"{figures.perGB(figures.serverCPU):.2f} CPU s/GB, peak RSS "
                          f"{figures.peakRSS / MiB:.0f} MiB, {figures.throughput / rate:.2f}× "
                          "direct", flush=True)
                    shutil.rmtree(base, ignore_errors=True)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{payload.size >> 20} MiB objects over HTTPS into bwscd, HTTP from bwscd "
          "(and from python-swiftclient) to the Swift proxy\n")
    print("| run | at once | MB/s | bwscd CPU s/GB | bwscd peak RSS | × direct |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, count, rate, cpu, rss, ratio in rows:
        print(f"| {label} | {count} | {rate / MB:.0f} | "
              f"{'' if cpu is None else f'{cpu:.2f}'} | "
              f"{'' if rss is None else f'{rss / MiB:.0f} MiB'} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
