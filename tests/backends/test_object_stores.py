"""
What the backends on a remote object store (C{swift}, C{s3}) do alike when
the store fails them, through C{twistd bwscd} and the real store of
L{tests.support.swiftcluster}: stopped mid-upload, failing, frozen.  Each
store's own tests are in test_swift.py and test_s3.py.
"""

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import swiftclient

from tests.support.recording import Recording
from tests.support.storefaults import cutOffBy, storedOnceBack
from tests.support.swift import status
from tests.support.swiftcluster import KEY, S3_BUCKET, USER

CAMERA = Recording()
RECORDING = CAMERA.container
MiB = 1 << 20


@dataclass
class Store:
    label: str
    """How bwscd's log names it: C{Swift store failure while ...}."""
    start: Callable
    """C{start(**options)}: bwscd on it, its user and camera registered: (server, client)."""
    stored: Callable[[], list[str]]
    """The names of the recording's objects, as the store itself lists them."""


@pytest.fixture(params=["swift", "s3"])
def objectStore(request, launch, dataDirectory, prefix, swiftCluster) -> Store:
    if request.param == "swift":
        spec = lambda **options: swiftCluster.backendSpec(prefix=prefix, **options)  # noqa: E731
        account = swiftclient.Connection(swiftCluster.authURL, USER, KEY, retries=0)
        request.addfinalizer(account.close)

        def stored():
            return sorted(o["name"] for o in account.get_container(
                prefix + RECORDING, full_listing=True)[1])
    else:
        bucket = request.getfixturevalue("s3Bucket")
        spec = lambda **options: bucket(prefix=prefix, part_size="5M", **options)  # noqa: E731
        s3 = swiftCluster.s3()
        base = f"{prefix}{RECORDING}/"

        def stored():
            listed = s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=base).get("Contents", [])
            return [o["Key"][len(base):] for o in listed]

    def start(**options):
        server = launch(dataDirectory, "--backend", spec(**options))
        swift = server.connection()
        CAMERA.start(swift)
        return server, swift

    return Store("Swift" if request.param == "swift" else "S3", start, stored)


@pytest.mark.parametrize("length", [None, 32 * MiB], ids=["chunked", "length"])
def test_losing_the_store_means_503_until_it_is_back(objectStore, swiftCluster, length):
    server, swift = objectStore.start()
    try:
        cutOffBy(lambda: swiftCluster.stopServer("proxy", signal.SIGKILL), server,
                 length=length)
        assert status(swift.put_object, RECORDING, "late.mkv", b"late") == 503
        assert status(swift.head_container, RECORDING) == 503
    finally:
        swiftCluster.startServer("proxy")
    storedOnceBack(swift)
    assert objectStore.stored() == ["late.mkv"]
    assert f"{objectStore.label} store failure" in server.log()


def test_an_unreachable_store_is_left_alone_a_while(objectStore, swiftCluster):
    """
    Once the store can't be reached, bwscd does not try again for a second,
    then two, five... (the controller gets 503 at once meanwhile), and
    connects again once that has passed and the store is back.
    """
    server, swift = objectStore.start()
    swiftCluster.stopServer("proxy")
    try:
        for _ in range(2):
            assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * 1000) == 503
        assert "not connecting for" in server.log()
    finally:
        swiftCluster.startServer("proxy")
    storedOnceBack(swift, "clip.mkv")
    assert objectStore.stored() == ["clip.mkv"]


def test_a_failing_store_means_503(objectStore, swiftCluster):
    """The object server gone, the proxy answers 503: so does bwscd, and stores nothing."""
    server, swift = objectStore.start()
    swiftCluster.stopServer("object")
    try:
        assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * 1000) == 503
        assert status(swift.put_object, "Users", CAMERA.user, b"{}") == 503
    finally:
        swiftCluster.startServer("object")
    storedOnceBack(swift, "clip.mkv")
    assert objectStore.stored() == ["clip.mkv"]


def test_a_frozen_store_means_503_after_the_timeout(objectStore, swiftCluster):
    server, swift = objectStore.start(timeout="2")
    proxy = swiftCluster.pid("proxy")
    os.kill(proxy, signal.SIGSTOP)
    try:
        began = time.monotonic()
        assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * 1000) == 503
        assert time.monotonic() - began < 20
    finally:
        os.kill(proxy, signal.SIGCONT)
    storedOnceBack(swift, "clip.mkv")
