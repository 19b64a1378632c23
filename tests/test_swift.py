"""
The Swift API as the system controller uses it, through python-swiftclient
against a real C{twistd bwscd} over HTTPS.
"""

import hashlib
import json
import os
import uuid

import pytest
import swiftclient
from swiftclient.exceptions import ClientException

from tests.support.recording import Recording
from tests.support.storage import temporaryFiles
from tests.support.swift import status

USER = "6a7c1a3e-8b1d-4c55-9a8e-3f1f2b7d9c01"
CAMERA = Recording(USER, "B1234567")
RECORDING = CAMERA.container
CLIP = "20240501_101502_4711.mkv"

RECORDING_METADATA = {
    "X-Container-Meta-Containername": RECORDING,
    "X-Container-Meta-Bwcserialnumber": "B1234567",
    "X-Container-Meta-Scuserialnumber": "S7654321",
    "X-Container-Meta-Firmwareversion": "11.11.1",
    "X-Container-Meta-Userid": USER,
    "X-Container-Meta-Triggeron": "Button",
    "X-Container-Meta-Triggeroff": "Button",
    "X-Container-Meta-Triggerontime": "1714558500",
    "X-Container-Meta-Triggerontimeiso": "2024-05-01T10%3A15%3A00Z",
    "X-Container-Meta-Triggeronlocation": "55.718409%2C13.221184%2C5%2C1714558500",
    "X-Container-Meta-Triggerofftime": "1714558800",
    "X-Container-Meta-Triggerofftimeiso": "2024-05-01T10%3A20%3A00Z",
    "X-Container-Meta-Triggerofflocation": "",
    "X-Container-Meta-Starttime": "1714558470",
    "X-Container-Meta-Starttimeiso": "2024-05-01T10%3A14%3A30Z",
    "X-Container-Meta-Stoptime": "1714558830",
    "X-Container-Meta-Stoptimeiso": "2024-05-01T10%3A20%3A30Z",
    "X-Container-Meta-Timezone": "Europe%2FStockholm",
    "X-Container-Meta-Bwcmodel": "W110",
    "X-Container-Meta-Status": "Transferring",
}


def register(swift) -> None:
    """What the controller does before it sends a recording."""
    CAMERA.register(swift, user={"X-Object-Meta-Name": "Officer", "X-Object-Meta-Active": "True"},
                    device={"X-Object-Meta-Name": "Cam", "X-Object-Meta-Model": "W110"})


@pytest.fixture
def recording(swift) -> str:
    register(swift)
    swift.put_container(RECORDING)
    return RECORDING


def metadataFile(server, container, name=None) -> dict:
    base = os.path.join(server.storage, container)
    filename = f"{container}.{name}.metadata.json" if name else f"{container}.metadata.json"
    with open(os.path.join(base, filename), encoding="utf-8") as f:
        return json.load(f)


def test_auth_returns_token_and_storage_url(server, swift):
    url, token = swift.get_auth()
    assert url == f"https://127.0.0.1:{server.port}/v1/AUTH_{server.connectionFile['BlobAPIUserName']}"
    assert token.startswith("BWS_")
    assert token not in server.log()


def test_wrong_key_is_401_and_not_logged(server):
    connection = server.connection()
    connection.key = "not-the-key"
    assert status(connection.head_account) == 401
    assert "not-the-key" not in server.log()


@pytest.mark.parametrize("forge", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
    lambda token: token.replace("BWS_", "BWS_x"),
    lambda token: "nonsense",
])
def test_forged_token_is_401(server, swift, forge):
    url, token = swift.get_auth()
    forged = swiftclient.Connection(
        preauthurl=url, preauthtoken=forge(token), cacert=server.caFile, retries=0
    )
    assert status(forged.head_container, "System") == 401


def test_published_documents_carry_md5_etag(swift):
    for name in ("Capabilities.json", "Categories.json"):
        headers, body = swift.get_object("System", name)
        assert headers["etag"] == hashlib.md5(body).hexdigest()
        json.loads(body)
    capabilities = json.loads(swift.get_object("System", "Capabilities.json")[1])
    assert capabilities["StoreAndRead"]["StoreReadSystemID"] is True
    assert capabilities["Store"]["StoreBookmarks"] is True
    assert capabilities["Read"]["ReadCategories"] is True


def test_published_documents_cannot_be_overwritten(swift):
    assert status(swift.put_object, "System", "Capabilities.json", b"{}") == 403
    assert status(swift.post_object, "System", "Categories.json", {}) == 403


def test_user_with_non_ascii_name(server, swift):
    swift.put_container("Users")
    swift.put_object(
        "Users", USER, b"",
        headers={"X-Object-Meta-Name": "J%C3%B6rg%20%C3%85str%C3%B6m%20%F0%9F%91%AE",
                 "X-Object-Meta-Active": "True",
                 "X-Object-Meta-Userid": "4711"},
    )
    assert metadataFile(server, "Users", USER) == {
        "Name": "Jörg Åström 👮", "Active": "True", "Userid": "4711"
    }
    headers = swift.head_object("Users", USER)
    # swiftclient percent-decodes metadata values it receives.
    assert headers["x-object-meta-name"] == "Jörg Åström 👮"
    assert headers["content-length"] == "0"


def test_metadata_keys_are_case_insensitive(server, swift):
    swift.put_container("Devices", headers={"x-CONTAINER-meta-sOmeKey": "a"})
    assert metadataFile(server, "Devices") == {"Somekey": "a"}
    assert swift.head_container("Devices")["x-container-meta-somekey"] == "a"


def test_recording_lifecycle(server, swift):
    register(swift)
    assert swift.put_container(RECORDING, headers=RECORDING_METADATA) is None
    stored = metadataFile(server, RECORDING)
    assert stored["Triggeron"] == "Button"
    assert stored["Timezone"] == "Europe/Stockholm"
    assert stored["Triggeronlocation"] == "55.718409,13.221184,5,1714558500"
    assert "Triggerofflocation" not in stored  # an empty value means "no key"

    clip = os.urandom(3 * 1024 * 1024 + 17)
    etag = swift.put_object(
        RECORDING, CLIP, clip, etag=hashlib.md5(clip).hexdigest(),
        headers={"X-Object-Meta-Starttime": "1714558470",
                 "X-Object-Meta-Containertype": "mkv"},
    )
    assert etag == hashlib.md5(clip).hexdigest()
    with open(os.path.join(server.storage, RECORDING, CLIP), "rb") as f:
        assert f.read() == clip
    assert metadataFile(server, RECORDING, CLIP) == {
        "Starttime": "1714558470", "Containertype": "mkv"
    }
    head = swift.head_object(RECORDING, CLIP)
    assert head["etag"] == etag
    assert head["content-length"] == str(len(clip))
    assert "x-timestamp" in head and "last-modified" in head

    assert not os.path.exists(os.path.join(server.storage, RECORDING, "complete"))
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})
    assert os.path.getsize(os.path.join(server.storage, RECORDING, "complete")) == 0
    assert metadataFile(server, RECORDING)["Status"] == "Complete"
    assert metadataFile(server, RECORDING)["Triggeron"] == "Button"  # merged
    events = server.events()
    stored = [e for e in events if e["type"] == "clip.stored"]
    assert stored[-1]["container"] == RECORDING and stored[-1]["object"] == CLIP
    assert stored[-1]["length"] == len(clip) and stored[-1]["md5"] == etag
    assert stored[-1]["sha256"] == hashlib.sha256(clip).hexdigest()
    assert events[-1]["type"] == "recording.complete"
    assert events[-1]["container"] == RECORDING


def test_container_put_twice_is_202_and_merges(server, swift):
    swift.put_container("Devices", headers={"X-Container-Meta-A": "1"})
    response = {}
    swift.put_container("Devices", headers={"X-Container-Meta-B": "2"}, response_dict=response)
    assert response["status"] == 202
    swift.post_container("Devices", headers={"X-Container-Meta-A": ""})
    assert metadataFile(server, "Devices") == {"B": "2"}


def test_object_post_replaces_metadata(server, swift):
    swift.put_container("Devices")
    swift.put_object("Devices", "B1234567", b"", headers={"X-Object-Meta-Name": "cam", "X-Object-Meta-Model": "W110"})
    response = {}
    swift.post_object("Devices", "B1234567", {"X-Object-Meta-Name": "Cam%201"}, response_dict=response)
    assert response["status"] == 202
    assert metadataFile(server, "Devices", "B1234567") == {"Name": "Cam 1"}


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 5 * 1024 * 1024 + 3])
def test_sizes_by_content_length_and_chunked(server, swift, recording, size):
    data = os.urandom(size)
    expected = hashlib.md5(data).hexdigest()
    assert swift.put_object(RECORDING, f"cl-{size}.mkv", data) == expected
    chunks = iter([data[i:i + 10007] for i in range(0, size, 10007)])
    assert swift.put_object(RECORDING, f"chunked-{size}.mkv", chunks) == expected
    for name in (f"cl-{size}.mkv", f"chunked-{size}.mkv"):
        with open(os.path.join(server.storage, RECORDING, name), "rb") as f:
            assert f.read() == data


def test_etag_mismatch_is_422_and_nothing_stored(server, swift, recording):
    data = os.urandom(100_000)
    assert status(swift.put_object, RECORDING, CLIP, data, etag="0" * 32) == 422
    assert not os.path.exists(os.path.join(server.storage, RECORDING, CLIP))
    assert temporaryFiles(server.storage) == []
    assert "ETag mismatch" in server.log()


def test_reupload_of_identical_bytes_is_idempotent(server, swift, recording):
    data = os.urandom(70_000)
    first = swift.put_object(RECORDING, CLIP, data)
    second = swift.put_object(RECORDING, CLIP, data)
    assert first == second == hashlib.md5(data).hexdigest()
    with open(os.path.join(server.storage, RECORDING, CLIP), "rb") as f:
        assert f.read() == data


def test_missing_container_is_404(swift):
    assert status(swift.put_object, "NoSuchContainer", CLIP, b"x") == 404
    assert status(swift.post_container, "NoSuchContainer", {}) == 404
    assert status(swift.head_container, "NoSuchContainer") == 404
    assert status(swift.head_object, "System", "nothing-here") == 404
    assert status(swift.post_object, "System", "nothing-here", {}) == 404


# Dot segments ("..", "./x") are normalised away by the HTTP client before
# they are sent; test_streaming.py sends them raw.
@pytest.mark.parametrize("container, name", [
    (".hidden", "x"),
    ("ok", "a//b"),
    ("ok", "x\x01y"),
    ("x" * 257, "x"),
    ("ok", "x" * 1025),
])
def test_bad_names_are_400_and_nothing_written(server, swift, recording, container, name):
    container = RECORDING if container == "ok" else container
    before = sorted(os.walk(os.path.dirname(server.storage)))
    assert status(swift.put_object, container, name, b"data") == 400
    assert sorted(os.walk(os.path.dirname(server.storage))) == before


def test_names_reserved_by_the_layout_are_400(swift, recording):
    assert status(swift.put_object, RECORDING, "complete", b"x") == 400
    assert status(swift.put_object, RECORDING, f"{RECORDING}.metadata.json", b"x") == 400


def test_colon_becomes_underscore_on_disk(server, swift):
    container = "RejectedContent_UnknownTime_id:1"
    swift.put_container(container)
    swift.put_object(container, "a:b", b"xyz")
    with open(os.path.join(server.storage, "RejectedContent_UnknownTime_id_1", "a_b"), "rb") as f:
        assert f.read() == b"xyz"
    assert swift.head_object(container, "a:b")["content-length"] == "3"


@pytest.mark.parametrize("headers, message", [
    ({"X-Object-Meta-Name": "%FF%FE"}, b"not percent-encoded UTF-8"),
    ({"X-Object-Meta-Name": "a%0Ab"}, b"control character"),
    ({"X-Object-Meta-" + "K" * 129: "v"}, b"longer than 128"),
    ({"X-Object-Meta-Name": "v" * 257}, b"longer than 256"),
    ({f"X-Object-Meta-K{i}": "v" for i in range(91)}, b"more than 90"),
    ({f"X-Object-Meta-K{i}": "v" * 250 for i in range(17)}, b"larger than 4096"),
])
def test_metadata_limits_are_400_with_a_message(swift, headers, message):
    swift.put_container("Users")
    with pytest.raises(ClientException) as caught:
        swift.put_object("Users", str(uuid.uuid4()), b"", headers=headers)
    assert caught.value.http_status == 400
    assert message in caught.value.http_response_content


def test_bws_account_cannot_list_or_read_or_delete(swift, recording):
    swift.put_object(RECORDING, CLIP, b"evidence")
    assert status(swift.get_account) == 403
    assert status(swift.get_container, RECORDING) == 403
    assert status(swift.get_object, RECORDING, CLIP) == 403
    assert status(swift.delete_object, RECORDING, CLIP) == 403
    assert status(swift.delete_container, RECORDING) == 403
    assert swift.head_object(RECORDING, CLIP)["content-length"] == "8"


def test_auth_accepts_storage_user_and_pass_headers(server):
    import requests

    conf = server.connectionFile
    response = requests.get(server.authURL, verify=server.caFile, headers={
        "X-Storage-User": conf["BlobAPIUserName"], "X-Storage-Pass": conf["BlobAPIKey"]})
    assert response.status_code == 200
    assert int(response.headers["X-Auth-Token-Expires"]) == 3600
    assert response.headers["X-Storage-Url"].endswith("/v1/AUTH_" + conf["BlobAPIUserName"])
    missing = requests.get(server.authURL, verify=server.caFile)
    assert missing.status_code == 401


def test_empty_object_metadata_values_are_not_stored(server, swift):
    swift.put_container("Devices")
    swift.put_object("Devices", "B1", b"", headers={"X-Object-Meta-Name": "cam",
                                                     "X-Object-Meta-Model": ""})
    assert metadataFile(server, "Devices", "B1") == {"Name": "cam"}


def test_object_and_prefix_clashes_are_400_before_the_body(swift, recording):
    swift.put_object(recording, "a", b"x")
    assert status(swift.put_object, recording, "a/b", b"y") == 400
    swift.put_object(recording, "c/d", b"x")
    assert status(swift.put_object, recording, "c", b"y") == 400


def test_unprocessable_entity_has_its_reason_phrase(swift, recording):
    with pytest.raises(ClientException) as caught:
        swift.put_object(recording, CLIP, b"abc", etag="0" * 32)
    assert caught.value.http_reason == "Unprocessable Entity"


def test_logins_do_not_pile_up_memory(server):
    """Key checks (scrypt, 16 MiB each) run one at a time on one thread."""
    from concurrent.futures import ThreadPoolExecutor

    def rss() -> int:
        with open(f"/proc/{server.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) << 10

    before = rss()
    connections = [server.connection() for _ in range(12)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda c: c.get_auth(), connections))
    assert rss() - before < 40 << 20


def test_names_too_long_for_the_filesystem_are_400(swift, recording):
    # Within Swift's limits, but "<container>.<object>.metadata.json" is
    # longer than a file name may be: never storable, so 400, not 503.
    assert status(swift.put_object, recording, "x" * 200, b"data") == 400
    assert status(swift.put_container, "RejectedContent_UnknownTime_" + "y" * 220) == 400


def test_failed_logins_are_throttled_per_address(server):
    wrong = server.connection()
    wrong.key = "guess"
    for _ in range(10):
        assert status(wrong.get_auth) == 401
    with pytest.raises(ClientException) as caught:
        server.connection().get_auth()  # even the right key, for a while
    assert caught.value.http_status == 401
    assert b"too many failed logins" in caught.value.http_response_content
    assert "guess" not in server.log()
