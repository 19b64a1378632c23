"""
The S3 backend through the real thing: C{twistd bwscd --backend s3:...}
storing in a bucket of a real OpenStack Swift's S3 API (its s3api, see
L{tests.support.swiftcluster}), which the tests read with boto3, as an
integrator would, and break: stopped, failing, frozen, corrupting bytes on
the way, refusing the credentials.
"""

import hashlib
import json
import os
import signal

import pytest

from tests.support.recording import Recording
from tests.support.server import HOST
from tests.support.storefaults import Relay, cutOffBy, storedOnceBack
from tests.support.swift import inPieces, status
from tests.support.swiftcluster import S3_BUCKET
from tests.support.waiting import waitFor

CAMERA = Recording()
RECORDING = CAMERA.container
MiB = 1 << 20


@pytest.fixture
def s3(swiftCluster, s3Bucket):
    """boto3 on the session's bucket (made by C{s3Bucket}), as an integrator reads it."""
    return swiftCluster.s3()


@pytest.fixture
def start(launch, dataDirectory, s3Bucket, prefix):
    """C{start(**options)}: bwscd on the bucket, its user and camera registered."""

    def start(**options):
        server = launch(dataDirectory, "--backend", s3Bucket(prefix=prefix, **options))
        swift = server.connection()
        CAMERA.start(swift)
        return server, swift

    return start


def keys(s3, prefix) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found


def objects(s3, prefix, container=RECORDING) -> list[str]:
    """The keys of a container's objects, as S3 lists them, after the container's."""
    return [k[len(prefix + container) + 1:] for k in keys(s3, f"{prefix}{container}/")]


def uploads(s3, prefix) -> list[str]:
    """The keys of the multipart uploads under way (or left over)."""
    answer = s3.list_multipart_uploads(Bucket=S3_BUCKET, Prefix=prefix)
    return [u["Key"] for u in answer.get("Uploads", [])]


def test_the_bucket_holds_what_integrators_read_with_s3_tools(start, s3, prefix, reader):
    server, swift = start(part_size="5M")
    body = os.urandom(3 * MiB + 123)
    assert swift.put_object(RECORDING, "20240501T101500Z_1.mkv", body, headers={
        "X-Object-Meta-Starttimeiso": "2024-05-01T10:15:00Z",
        "X-Object-Meta-Place": "G%C3%B6teborg"}) == hashlib.md5(body).hexdigest()
    large = os.urandom(12 * MiB)
    swift.put_object(RECORDING, "sub/large.mkv", inPieces(large, MiB))
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})

    assert objects(s3, prefix) == ["20240501T101500Z_1.mkv", "sub/large.mkv"]
    got = s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}{RECORDING}/20240501T101500Z_1.mkv")
    assert got["Body"].read() == body and got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert got["Metadata"] == {"starttimeiso": "2024-05-01T10:15:00Z", "place": "G%C3%B6teborg",
                               "bwscd-sha256": hashlib.sha256(body).hexdigest(),
                               "bwscd-md5": hashlib.md5(body).hexdigest()}
    # The large one went up in parts: its digests are kept beside it.
    key = f"{prefix}{RECORDING}/sub/large.mkv"
    assert s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read() == large
    assert s3.head_object(Bucket=S3_BUCKET, Key=key)["ETag"].endswith('-3"')
    digests = json.loads(s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}.bwscd/digests/"
                                       f"{RECORDING}/sub/large.mkv")["Body"].read())
    assert digests["sha256"] == hashlib.sha256(large).hexdigest()
    record = json.loads(s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}.bwscd/containers/"
                                      f"{RECORDING}")["Body"].read())
    assert record["metadata"] == {"Status": "Complete"}
    assert f"{prefix}.bwscd/state/registry.json" in keys(s3, f"{prefix}.bwscd/state/")
    # What bwscd gives back is what it was sent; its own keys are no container.
    review = reader(server)
    containers = [c["name"] for c in review.get_account()[1]]
    assert RECORDING in containers and ".bwscd" not in containers
    assert swift.head_object(RECORDING, "sub/large.mkv")["etag"] == hashlib.md5(large).hexdigest()
    headers, data = review.get_object(RECORDING, "20240501T101500Z_1.mkv",
                                      headers={"Range": "bytes=5-9"})
    assert data == body[5:10] and headers["x-object-meta-place"] == "Göteborg"  # decoded
    assert review.get_object(RECORDING, "sub/large.mkv",
                             headers={"Range": f"bytes={5 * MiB - 1}-{5 * MiB}"})[1] == \
        large[5 * MiB - 1:5 * MiB + 1]
    assert uploads(s3, prefix) == []


def test_a_wrong_etag_stores_nothing(start, s3, prefix):
    server, swift = start(part_size="5M")
    for size in (100_000, 12 * MiB):
        assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * size,
                      etag=hashlib.md5(b"other").hexdigest()) == 422
    assert objects(s3, prefix) == [] and uploads(s3, prefix) == []


def test_evidence_is_written_once_and_a_conflict_kept_beside(start, s3, prefix):
    server, swift = start(part_size="5M")
    for name, first, other in (("clip.mkv", b"first", b"other bytes"),
                               ("large.mkv", os.urandom(6 * MiB), os.urandom(6 * MiB))):
        swift.put_object(RECORDING, name, first)
        swift.put_object(RECORDING, name, first)  # sent again: stored once
        swift.put_object(RECORDING, name, other)
        names = [n for n in objects(s3, prefix) if n.startswith(name)]
        assert names[0] == name and len(names) == 2 and names[1].startswith(
            f"{name}.conflict-")
        assert s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}{RECORDING}/{name}")[
            "Body"].read() == first
        assert s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}{RECORDING}/{names[1]}")[
            "Body"].read() == other
    # The large ones sent again went through staging, which they left.
    assert keys(s3, f"{prefix}.bwscd/staging/") == [] and uploads(s3, prefix) == []


def test_parts_joined_whose_answer_was_lost_are_found_joined(start, s3, prefix, swiftCluster):
    """
    The store joined the parts and the answer was lost: bwscd sends the join
    again (a reset connection), which the store takes twice (Swift's s3api
    does, as AWS does), and the object is stored whole.
    """
    relay = Relay((HOST, swiftCluster.ports["proxy"]), silence=b"?uploadId=")
    try:
        server, swift = start(endpoint=f"http://{HOST}:{relay.port}", part_size="5M")
        body = os.urandom(12 * MiB)
        swift.put_object(RECORDING, "large.mkv", body)
        assert relay.silenced == 1
    finally:
        relay.close()
    assert s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}{RECORDING}/large.mkv")[
        "Body"].read() == body


def test_a_killed_bwscd_leaves_nothing_visible_and_its_next_start_aborts_its_upload(
        start, s3, prefix, launch, dataDirectory, s3Bucket):
    server, swift = start(part_size="5M")

    def killed():
        waitFor(lambda: uploads(s3, prefix))  # some parts of it are stored
        server.stop(signal.SIGKILL)

    cutOffBy(killed, server, "large.mkv")
    assert objects(s3, prefix) == [] and uploads(s3, prefix)

    again = launch(dataDirectory, "--backend", s3Bucket(prefix=prefix, part_size="5M"),
                   port=server.port)
    waitFor(lambda: uploads(s3, prefix) == [], timeout=10)  # the store's listing follows
    assert "aborted the interrupted upload" in again.log()
    storedOnceBack(again.connection(), "large.mkv")


@pytest.mark.parametrize("size", [200_000, 12 * MiB], ids=["whole", "parts"])
def test_bytes_damaged_on_the_way_to_the_store_are_not_stored(start, s3, prefix, swiftCluster,
                                                             size):
    relay = Relay((HOST, swiftCluster.ports["proxy"]), damage=b"clip.mkv")
    try:
        server, swift = start(endpoint=f"http://{HOST}:{relay.port}", part_size="5M")
        body = os.urandom(size)
        assert status(swift.put_object, RECORDING, "clip.mkv", body) == 503
        assert relay.corrupted == 1
        assert objects(s3, prefix) == []
        assert "other bytes" in server.log() and "(BadDigest)" in server.log()
        swift.put_object(RECORDING, "clip.mkv", body)  # sent again, undamaged
        assert s3.get_object(Bucket=S3_BUCKET, Key=f"{prefix}{RECORDING}/clip.mkv")[
            "Body"].read() == body
    finally:
        relay.close()


def test_refused_credentials_stop_the_start(launch, dataDirectory, s3Bucket, prefix):
    with pytest.raises(RuntimeError) as caught:
        launch(dataDirectory, "--backend", s3Bucket(prefix=prefix, secret="wrong"))
    assert "check the access key, the secret and the region" in str(caught.value)


def test_options_are_checked(tmp_path):
    from bwscd.backends.s3 import backend

    with pytest.raises(ValueError, match=r"missing option\(s\) endpoint, bucket, access_key, "
                                         r"secret or secret_file"):
        backend(str(tmp_path), {})
    base = {"endpoint": "http://x", "bucket": "b", "access_key": "a", "secret": "s"}
    with pytest.raises(ValueError, match="part_size must be 5M to 5G"):
        backend(str(tmp_path), {**base, "part_size": "1M"})
    with pytest.raises(ValueError, match="addressing='sideways' is not path or virtual"):
        backend(str(tmp_path), {**base, "addressing": "sideways"})
    secret = tmp_path / "secret"
    secret.write_text("hidden\n")
    made = backend(str(tmp_path), {**base, "secret": "", "secret_file": str(secret),
                                   "addressing": "virtual"})
    assert "hidden" not in made.description and made.bucket.endpoint.host == "b.x"
