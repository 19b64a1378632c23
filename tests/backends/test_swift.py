"""
The Swift backend through the real thing: C{twistd bwscd --backend swift:...}
storing in a real single-node OpenStack Swift on loopback (see
L{tests.support.swiftcluster}), which the tests read with Swift's own
client, as an integrator would, and break: stopped, failing, frozen,
corrupting bytes on the way, forgetting tokens.
"""

import hashlib
import os
import signal
import ssl

import pytest
import swiftclient

from bwscd.security.certificate import createSelfSigned
from tests.support.recording import Recording
from tests.support.server import HOST
from tests.support.storefaults import Relay, cutOffBy, storedOnceBack
from tests.support.swift import inPieces, status
from tests.support.keystone import PASSWORD as KEYSTONE_PASSWORD
from tests.support.keystone import PROJECT as KEYSTONE_PROJECT
from tests.support.keystone import USER as KEYSTONE_USER
from tests.support.swiftcluster import KEY, USER
from tests.support.waiting import waitFor

CAMERA = Recording()
RECORDING = CAMERA.container
MiB = 1 << 20


@pytest.fixture
def store(swiftCluster):
    """Swift's own client on the cluster's account, as an integrator reads it."""
    connection = swiftclient.Connection(swiftCluster.authURL, USER, KEY, retries=0)
    yield connection
    connection.close()


@pytest.fixture
def start(launch, dataDirectory, swiftCluster, prefix):
    """C{start(**options)}: bwscd on the cluster, its user and camera registered."""

    def start(**options):
        server = launch(dataDirectory, "--backend",
                        swiftCluster.backendSpec(prefix=prefix, **options))
        swift = server.connection()
        CAMERA.start(swift)
        return server, swift

    return start


def stored(store, prefix, name=None):
    """The names in the store under bwscd's C{prefix}: containers, or a container's objects."""
    if name is None:
        return sorted(c["name"] for c in store.get_account(prefix=prefix, full_listing=True)[1])
    return sorted(o["name"] for o in store.get_container(prefix + name, full_listing=True)[1])


def own(store, prefix, under=""):
    """bwscd's own objects in the store (state, segments, upload records)."""
    return sorted(o["name"] for o in store.get_container(
        prefix + ".bwscd", prefix=under, full_listing=True)[1])


def test_the_store_holds_what_integrators_read_with_swifts_own_tools(start, store, prefix,
                                                                    reader):
    server, swift = start()
    body = os.urandom(3 * MiB + 123)
    assert swift.put_object(RECORDING, "20240501T101500Z_1.mkv", body, headers={
        "X-Object-Meta-Starttimeiso": "2024-05-01T10:15:00Z"}) == hashlib.md5(body).hexdigest()
    swift.put_object(RECORDING, "sub/track.json", inPieces(body[::-1], 100_000))
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})

    review = reader(server)
    containers = [c["name"] for c in review.get_account()[1]]
    assert RECORDING in containers and "Users" in containers
    # bwscd's own container is not one of its containers.
    assert stored(store, prefix) == sorted(prefix + c for c in [".bwscd", *containers])
    assert stored(store, prefix, RECORDING) == ["20240501T101500Z_1.mkv", "sub/track.json"]
    headers, data = store.get_object(prefix + RECORDING, "20240501T101500Z_1.mkv")
    assert data == body and headers["etag"] == hashlib.md5(body).hexdigest()
    assert headers["x-object-meta-starttimeiso"] == "2024-05-01T10:15:00Z"
    assert headers["x-object-meta-bwscd-sha256"] == hashlib.sha256(body).hexdigest()
    assert store.get_object(prefix + RECORDING, "sub/track.json")[1] == body[::-1]
    assert store.head_container(prefix + RECORDING)["x-container-meta-status"] == "Complete"
    assert "state/registry.json" in own(store, prefix, "state/")
    # What bwscd gives back is what it was sent.
    head = swift.head_object(RECORDING, "sub/track.json")
    assert head["etag"] == hashlib.md5(body[::-1]).hexdigest()
    assert review.get_object(RECORDING, "20240501T101500Z_1.mkv",
                            headers={"Range": "bytes=5-9"})[1] == body[5:10]
    # The chunked body, whose length was not known, went as a large object.
    assert own(store, prefix, "uploads/") == [] and len(own(store, prefix, "segments/")) == 1


def test_a_wrong_etag_stores_nothing(start, store, prefix):
    server, swift = start()
    assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * 100_000,
                  etag=hashlib.md5(b"other").hexdigest()) == 422
    assert stored(store, prefix, RECORDING) == []
    assert own(store, prefix, "segments/") == own(store, prefix, "uploads/") == []


def test_evidence_is_written_once_and_a_conflict_kept_beside(start, store, prefix):
    server, swift = start()
    swift.put_object(RECORDING, "clip.mkv", b"first")
    swift.put_object(RECORDING, "clip.mkv", b"first")  # sent again: stored once
    swift.put_object(RECORDING, "clip.mkv", b"other bytes")
    names = stored(store, prefix, RECORDING)
    assert names[0] == "clip.mkv" and len(names) == 2
    assert names[1].startswith("clip.mkv.conflict-")
    assert store.get_object(prefix + RECORDING, "clip.mkv")[1] == b"first"
    assert store.get_object(prefix + RECORDING, names[1])[1] == b"other bytes"
    # The conflict copy (a large object of one segment, its name chosen once
    # its bytes were known) holds the only segment: the copy sent again left none.
    assert len(own(store, prefix, "segments/")) == 1


def test_a_large_object_goes_as_segments_with_its_manifest_last(start, store, prefix, reader):
    server, swift = start(segment_size="4M")
    body = os.urandom(10 * MiB + 7)
    swift.put_object(RECORDING, "large.mkv", body)
    headers = store.head_object(prefix + RECORDING, "large.mkv")
    assert headers["x-static-large-object"] == "True"
    assert int(headers["content-length"]) == len(body)
    assert len(own(store, prefix, "segments/")) == 3
    assert store.get_object(prefix + RECORDING, "large.mkv")[1] == body
    # bwscd answers the object's own MD5, not the manifest's.
    assert swift.head_object(RECORDING, "large.mkv")["etag"] == hashlib.md5(body).hexdigest()
    assert reader(server).get_object(
        RECORDING, "large.mkv", headers={"Range": f"bytes={4 * MiB - 2}-{4 * MiB + 1}"}
    )[1] == body[4 * MiB - 2:4 * MiB + 2]
    # A chunked body, whose length is not known, goes the same way.
    swift.put_object(RECORDING, "chunked.mkv", inPieces(body, MiB))
    assert store.get_object(prefix + RECORDING, "chunked.mkv")[1] == body
    assert own(store, prefix, "uploads/") == []


def test_a_manifest_whose_answer_was_lost_is_found_again_with_its_segments(start, store,
                                                                          prefix, swiftCluster):
    """
    The store wrote the manifest and the answer was lost: bwscd sends it
    again, finds its own manifest under the name (If-None-Match: 412), and
    keeps the segments it names.
    """
    relay = Relay((HOST, swiftCluster.ports["proxy"]), silence=b"multipart-manifest=put")
    try:
        server, swift = start(storage_url=f"http://{HOST}:{relay.port}/v1/AUTH_test",
                              segment_size="4M")
        body = os.urandom(10 * MiB)
        swift.put_object(RECORDING, "large.mkv", body)
        assert relay.silenced == 1
    finally:
        relay.close()
    assert store.get_object(prefix + RECORDING, "large.mkv")[1] == body
    assert len(own(store, prefix, "segments/")) == 3


def test_a_killed_bwscd_leaves_nothing_visible_and_its_next_start_cleans_up(
        start, store, prefix, launch, dataDirectory, swiftCluster):
    server, swift = start(segment_size="2M")

    def killed():
        waitFor(lambda: own(store, prefix, "segments/"))  # some of it is stored
        server.stop(signal.SIGKILL)

    cutOffBy(killed, server, "large.mkv")
    assert stored(store, prefix, RECORDING) == []
    assert own(store, prefix, "segments/") and own(store, prefix, "uploads/")

    again = launch(dataDirectory, "--backend",
                   swiftCluster.backendSpec(prefix=prefix, segment_size="2M"), port=server.port)
    assert own(store, prefix, "segments/") == own(store, prefix, "uploads/") == []
    assert "removed the segments of an interrupted upload" in again.log()
    storedOnceBack(again.connection(), "large.mkv")


def test_bytes_damaged_on_the_way_to_the_store_are_not_stored(start, store, prefix,
                                                             swiftCluster):
    relay = Relay((HOST, swiftCluster.ports["proxy"]), damage=b"clip.mkv")
    try:
        server, swift = start(storage_url=f"http://{HOST}:{relay.port}/v1/AUTH_test")
        body = os.urandom(200_000)
        assert status(swift.put_object, RECORDING, "clip.mkv", body) == 503
        assert relay.corrupted == 1
        assert stored(store, prefix, RECORDING) == []
        assert "is not bwscd's MD5" in server.log()
        swift.put_object(RECORDING, "clip.mkv", body)  # sent again, undamaged
        assert store.get_object(prefix + RECORDING, "clip.mkv")[1] == body
    finally:
        relay.close()


def test_a_store_behind_tls_is_trusted_by_the_ca_file(start, store, prefix, swiftCluster,
                                                      launch, tmp_path):
    certificate, key = createSelfSigned([HOST])
    (tmp_path / "store.crt").write_bytes(certificate)
    (tmp_path / "store.key").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "store.crt", tmp_path / "store.key")
    relay = Relay((HOST, swiftCluster.ports["proxy"]), context=context)
    try:
        behind = f"https://{HOST}:{relay.port}/v1/AUTH_test"
        server, swift = start(storage_url=behind, cafile=str(tmp_path / "store.crt"))
        body = os.urandom(200_000)
        swift.put_object(RECORDING, "clip.mkv", body)
        assert store.get_object(prefix + RECORDING, "clip.mkv")[1] == body
        # Without the CA file, the store's certificate is not trusted.
        with pytest.raises(RuntimeError) as caught:
            launch(str(tmp_path / "other"), "--backend",
                   swiftCluster.backendSpec(prefix=prefix, storage_url=behind))
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    finally:
        relay.close()


def test_a_token_the_store_forgot_is_renewed(start, prefix, swiftCluster):
    server, swift = start()
    swiftCluster.forgetTokens()
    swift.put_object(RECORDING, "clip.mkv", b"after")
    swiftCluster.forgetTokens()
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})
    assert swift.head_container(RECORDING)["x-container-meta-status"] == "Complete"
    assert swiftclient.Connection(swiftCluster.authURL, USER, KEY).get_object(
        prefix + RECORDING, "clip.mkv")[1] == b"after"


def test_keystone_v3_gives_the_token_and_the_storage_url(launch, dataDirectory, keystone,
                                                         prefix, reader):
    """
    With Keystone's v3 auth the account is the project's, at the object-store
    endpoint of the token's catalog (its tokens are renewed as tempauth's
    are: L{test_a_token_the_store_forgot_is_renewed}).
    """
    spec = f"swift:auth={keystone.authURL}:user={KEYSTONE_USER}:key={KEYSTONE_PASSWORD}:" \
           f"project={KEYSTONE_PROJECT}:region=RegionOne:prefix={prefix}".replace(
               "http://", "http\\://").replace(f"{HOST}:", f"{HOST}\\:")
    server = launch(dataDirectory, "--backend", spec)
    assert f"in project {KEYSTONE_PROJECT}" in server.log()
    swift = server.connection()
    CAMERA.start(swift)
    body = os.urandom(100_000)
    swift.put_object(RECORDING, "clip.mkv", body)
    # Where Keystone's catalog says: the project's own account, as its user sees it.
    project = swiftclient.Connection(
        keystone.authURL, KEYSTONE_USER, KEYSTONE_PASSWORD, auth_version="3", os_options={
            "project_name": KEYSTONE_PROJECT, "user_domain_name": "Default",
            "project_domain_name": "Default"})
    assert project.get_auth()[0] == keystone.storageURL
    assert project.get_object(prefix + RECORDING, "clip.mkv")[1] == body
    assert reader(server).get_object(RECORDING, "clip.mkv")[1] == body


def test_keystone_refusing_the_password_stops_the_start(launch, dataDirectory, keystone):
    spec = f"swift:auth={keystone.authURL}:user={KEYSTONE_USER}:key=wrong:" \
           f"project={KEYSTONE_PROJECT}".replace("http://", "http\\://").replace(
               f"{HOST}:", f"{HOST}\\:")
    with pytest.raises(RuntimeError) as caught:
        launch(dataDirectory, "--backend", spec)
    assert f"refused user '{KEYSTONE_USER}' for project '{KEYSTONE_PROJECT}'" in \
        str(caught.value)


def test_options_are_checked(tmp_path):
    from bwscd.backends.swift import backend

    with pytest.raises(ValueError, match=r"missing option\(s\) auth, user, key or key_file"):
        backend(str(tmp_path), {})
    with pytest.raises(ValueError, match="not an http or https URL"):
        backend(str(tmp_path), {"auth": "ftp://x", "user": "u", "key": "k"})
    with pytest.raises(ValueError, match="unknown option"):
        backend(str(tmp_path), {"auth": "http://x", "user": "u", "key": "k", "colour": "red"})
    with pytest.raises(ValueError, match="timeout='soon' is not seconds"):
        backend(str(tmp_path), {"auth": "http://x", "user": "u", "key": "k", "timeout": "soon"})
    with pytest.raises(ValueError, match=r"missing option\(s\) project \(for Keystone\)"):
        backend(str(tmp_path), {"auth": "http://k/v3", "user": "u", "key": "k"})
    with pytest.raises(ValueError, match="project only go with Keystone"):
        backend(str(tmp_path), {"auth": "http://x/auth/v1.0", "user": "u", "key": "k",
                                "project": "p"})
    keyFile = tmp_path / "key"
    keyFile.write_text("secret\n")
    made = backend(str(tmp_path), {"auth": "http://x/auth/v1.0", "user": "u",
                                   "key_file": str(keyFile)})
    assert "secret" not in made.description
