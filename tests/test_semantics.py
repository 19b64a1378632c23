"""
The meaning of the API, through the real server: the registry, recordings,
rejected content, write-once evidence, categories, capabilities, events.
"""

import hashlib
import http.server
import json
import os
import subprocess
import threading
import time

import pytest

from tests.support.server import BWSCD
from tests.support.swift import refusal

USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
OTHER_USER = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
DEVICE = "B8A44F000001"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"


def status(call, *args, **kwargs) -> tuple[int, str]:
    """The status and the message with which the server refuses the call."""
    refused = refusal(call, *args, **kwargs)
    return refused.http_status, refused.http_response_content.decode()


def registerUser(swift, user=USER, name="Anna%20Berg", userId="A-17", active="True"):
    swift.put_container("Users")
    swift.put_object("Users", user, b"", headers={
        "X-Object-Meta-Name": name, "X-Object-Meta-Userid": userId,
        "X-Object-Meta-Active": active})


def registerDevice(swift, device=DEVICE):
    swift.put_container("Devices")
    swift.put_object("Devices", device, b"", headers={
        "X-Object-Meta-Name": "Cam%201", "X-Object-Meta-Model": "W110",
        "X-Object-Meta-Active": "True"})


@pytest.mark.parametrize("container, message", [
    (f"{USER}_{DEVICE}_20240501T101500Z", f"user {USER} is not registered"),
    ("not-a-recording", "not a recording container name"),
    (f"{USER}_{DEVICE}_20241341T101500Z", "20241341T101500Z is not a valid UTC time"),
])
def test_unregistered_or_malformed_recordings_are_refused(server, swift, container, message):
    registerDevice(swift)
    code, body = status(swift.put_container, container)
    assert code == 400 and message in body
    refused = server.eventsOf("recording.refused")[-1]
    assert refused["container"] == container and message in refused["reason"]
    assert not os.path.exists(os.path.join(server.storage, container))


def test_unregistered_device_is_refused(server, swift):
    registerUser(swift)
    code, body = status(swift.put_container, RECORDING)
    assert code == 400 and f"device {DEVICE} is not registered" in body


def test_inactive_users_are_accepted(server, swift):
    registerUser(swift, active="False")
    registerDevice(swift)
    swift.put_container(RECORDING)


def test_recording_started_shows_the_name_at_the_time_and_now(server, swift):
    registerUser(swift, name="Anna%20Berg")
    registerDevice(swift)
    swift.post_object("Users", USER, {"X-Object-Meta-Name": "Anna%20Lind",
                                      "X-Object-Meta-Userid": "A-17",
                                      "X-Object-Meta-Active": "True"})
    renamed = server.eventsOf("user.renamed")[-1]
    assert renamed["name"] == "Anna Lind" and renamed["previous"]["name"] == "Anna Berg"
    # A recording made long before the rename (and before registration):
    old = f"{USER}_{DEVICE}_20200101T000000Z"
    swift.put_container(old)
    started = server.eventsOf("recording.started")[-1]
    assert started["userName"] == "Anna Berg (A-17)"
    assert started["userNameNow"] == "Anna Lind (A-17)"
    assert started["deviceName"] == "Cam 1"
    assert started["triggerOnTime"] == "2020-01-01T00:00:00Z"


def test_registry_and_events_survive_a_restart(launch, dataDirectory):
    first = launch(dataDirectory)
    swift = first.connection()
    registerUser(swift)
    registerDevice(swift)
    before = first.events()
    first.stop()
    second = launch(dataDirectory, port=first.port)
    assert second.events()[: len(before)] == before
    second.connection().put_container(RECORDING)  # the user and device are known
    assert second.eventsOf("recording.started")[-1]["container"] == RECORDING


def test_system_connection_id_never_changes(server, swift):
    swift.put_container("System")
    system = "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f"
    swift.put_object("System", system, b"", headers={
        "X-Object-Meta-Connectionid": "conn-1", "X-Object-Meta-Systemname": "North"})
    assert server.eventsOf("system.registered")[-1]["connectionId"] == "conn-1"
    swift.post_object("System", system, {"X-Object-Meta-Connectionid": "conn-1",
                                         "X-Object-Meta-Systemname": "North%20site"})
    assert server.eventsOf("system.renamed")[-1]["systemName"] == "North site"
    code, body = status(swift.post_object, "System", system,
                        {"X-Object-Meta-Connectionid": "conn-2"})
    assert code == 403 and "ConnectionId" in body
    code, _ = status(swift.put_object, "System", system, b"",
                     headers={"X-Object-Meta-Connectionid": "conn-2"})
    assert code == 403
    assert server.eventsOf("system.connection-id-refused")[-1]["attempted"] == "conn-2"
    head = swift.head_object("System", system)
    assert head["x-object-meta-connectionid"] == "conn-1"


def test_rejected_content_is_never_refused(server, swift):
    container = "RejectedContent_UnknownTime_7d1e2f3a-4b5c-4d6e-8f9a-0b1c2d3e4f5a"
    swift.put_container(container, headers={
        "X-Container-Meta-Rejectedcontentoriginalcontainer": RECORDING,
        "X-Container-Meta-Rejectedcontentreason": "corrupt%20clip"})
    swift.put_object(container, "20240501_101502_1.mkv", b"bytes")
    received = server.eventsOf("rejected.received")[-1]
    assert received["originalContainer"] == RECORDING
    assert received["reason"] == "corrupt clip"


@pytest.fixture
def recording(swift):
    registerUser(swift)
    registerDevice(swift)
    swift.put_container(RECORDING, headers={"X-Container-Meta-Status": "Transferring"})
    return RECORDING


def test_different_bytes_never_destroy_the_first_copy(server, swift, recording):
    first, second = b"first take", b"other bytes"
    swift.put_object(recording, "clip.mkv", first)
    assert swift.put_object(recording, "clip.mkv", second) == hashlib.md5(second).hexdigest()
    directory = os.path.join(server.storage, recording)
    with open(os.path.join(directory, "clip.mkv"), "rb") as f:
        assert f.read() == first
    copy = f"clip.mkv.conflict-{hashlib.sha256(second).hexdigest()[:16]}"
    with open(os.path.join(directory, copy), "rb") as f:
        assert f.read() == second
    anomaly = server.eventsOf("recording.anomaly")[-1]
    assert anomaly["object"] == "clip.mkv" and copy in anomaly["anomaly"]
    # Sending either again changes nothing and succeeds.
    swift.put_object(recording, "clip.mkv", first)
    swift.put_object(recording, "clip.mkv", second)
    assert sorted(n for n in os.listdir(directory) if n.startswith("clip.mkv")) == [
        "clip.mkv", copy]
    stored = server.eventsOf("clip.stored")
    assert stored[-1]["alreadyStored"] is True and stored[-1]["storedAs"] == copy


def test_writes_after_complete_are_kept_and_reported(server, swift, recording):
    swift.post_container(recording, headers={"X-Container-Meta-Status": "Complete"})
    assert server.eventsOf("recording.complete")[-1]["container"] == recording
    swift.put_object(recording, "late.mkv", b"late bytes")
    with open(os.path.join(server.storage, recording, "late.mkv"), "rb") as f:
        assert f.read() == b"late bytes"
    anomaly = server.eventsOf("recording.anomaly")[-1]
    assert anomaly["object"] == "late.mkv" and "after the recording was Complete" in anomaly["anomaly"]


def test_bookmarks_key_objects_and_tracks_are_kept_exactly(server, swift, recording):
    bookmark = "Suspect fled north — ställe 2".encode("utf-8")
    swift.put_object(recording, "bookmark_20240501T101600Z_1", bookmark, headers={
        "X-Object-Meta-Categoryid": "999", "X-Object-Meta-Categoryname": "Removed%20category",
        "X-Object-Meta-Tags": "TriggerOn%3AButton%3BSomeTag%3ASomeValue",
        "X-Object-Meta-Starttime": "2024-05-01T10%3A16%3A00Z"})
    key = json.dumps({"EncryptedKey": "AAAA", "ContentEncryptionIV": "BBBB"}).encode()
    swift.put_object(recording, "20240501_101502_1.key", key,
                     headers={"X-Object-Meta-Filetype": "key"})
    track = json.dumps({"CoordinateEntries": [{"LocationWKT": "POINT(13.2 55.7)",
                                               "SecondsFromStart": 64.0}]}).encode()
    swift.put_object(recording, f"20240501_101500_1_{DEVICE}_gpstrail.json", track)
    swift.put_object(recording, f"20240501_101500_2_{DEVICE}_gpstrail.json", b"{not json")
    directory = os.path.join(server.storage, recording)
    for name, data in [("bookmark_20240501T101600Z_1", bookmark),
                       ("20240501_101502_1.key", key),
                       (f"20240501_101500_1_{DEVICE}_gpstrail.json", track),
                       (f"20240501_101500_2_{DEVICE}_gpstrail.json", b"{not json")]:
        with open(os.path.join(directory, name), "rb") as f:
            assert f.read() == data
    with open(os.path.join(directory, f"{recording}.bookmark_20240501T101600Z_1.metadata.json")) as f:
        assert json.load(f)["Tags"] == "TriggerOn:Button;SomeTag:SomeValue"
    flagged = server.eventsOf("gnss.invalid")
    assert [e["object"] for e in flagged] == [f"20240501_101500_2_{DEVICE}_gpstrail.json"]


def test_categories_command_updates_the_running_server(server, swift):
    before = swift.get_object("System", "Categories.json")
    bwscd = os.path.join(os.path.dirname(server.process.args[0]), "bwscd")
    added = subprocess.run([bwscd, "categories", "--data", server.data, "add", "Vandalism"],
                           capture_output=True, text=True, check=True)
    assert added.stdout.startswith("added 6\tVandalism")
    subprocess.run([bwscd, "categories", "--data", server.data, "remove", "1"], check=True)
    headers, body = swift.get_object("System", "Categories.json")
    assert headers["etag"] == hashlib.md5(body).hexdigest() != before[0]["etag"]
    names = [c["Name"] for c in json.loads(body)]
    assert "Vandalism" in names and "Testimony" not in names
    changed = server.eventsOf("category.changed")[-1]
    assert changed["added"] == [{"Name": "Vandalism", "Id": "6"}]
    assert changed["removed"] == [{"Name": "Testimony", "Id": "1"}]
    mirrored = os.path.join(server.storage, "System", "Categories.json")
    deadline = time.monotonic() + 10  # mirrored into storage after the answer
    while open(mirrored, "rb").read() != body and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open(mirrored, "rb").read() == body
    missing = subprocess.run([bwscd, "categories", "--data", server.data, "remove", "42"],
                             capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "bwscd categories: no category with id or name 42"


# Capabilities.json as the API says it: its "File format" has the groups
# Read, Store and StoreAndRead, and its "Capability naming" puts each
# capability in one (Store: PUT or POST; Read: GET or HEAD; StoreRead: both).
API_CAPABILITIES = {
    "Read": {"ReadCategories": True},
    "Store": {
        "StoreUserIDKey": True,
        "StoreBookmarks": True,
        "StoreSignedVideo": True,
        "StoreGNSSTrackRecording": True,
        "StoreRejectedContent": True,
    },
    "StoreAndRead": {"StoreReadSystemID": True},
}
# What versions before 2026-12 published: the Store capabilities under
# StoreAndRead, no Store group.
EARLIER_CAPABILITIES = {
    "StoreAndRead": {
        "StoreReadSystemID": True,
        "StoreUserIDKey": True,
        "StoreBookmarks": True,
        "StoreSignedVideo": True,
        "StoreGNSSTrackRecording": True,
        "StoreRejectedContent": True,
    },
    "Read": {"ReadCategories": True},
}


def publishedCapabilities(server) -> tuple[dict, bytes]:
    """GET System/Capabilities.json with the controller's account: (headers, body)."""
    connection = server.connection()
    try:
        return connection.get_object("System", "Capabilities.json")
    finally:
        connection.close()


def enabledIn(document: dict) -> set[str]:
    return {name for group in document.values() for name, on in group.items() if on}


def assertGroupedAsTheAPISays(published: dict, expected: dict) -> None:
    assert sorted(published) == ["Read", "Store", "StoreAndRead"]
    for group in expected:
        assert sorted(published[group]) == sorted(expected[group]), group
        for name, enabled in expected[group].items():
            assert published[group][name] is enabled, (group, name)


def test_capabilities_are_published_in_the_groups_the_api_gives(server):
    headers, body = publishedCapabilities(server)
    assert headers["etag"] == hashlib.md5(body).hexdigest()
    assertGroupedAsTheAPISays(json.loads(body), API_CAPABILITIES)


def test_every_group_is_published_when_capabilities_are_off(launch, dataDirectory):
    subprocess.run([BWSCD, "init", "--data", dataDirectory, "--public-address", "127.0.0.1",
                    "--capability", "StoreBookmarks", "--capability", "StoreReadSystemID"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    headers, body = publishedCapabilities(launch(dataDirectory))
    assert headers["etag"] == hashlib.md5(body).hexdigest()
    assertGroupedAsTheAPISays(json.loads(body), {
        "Read": {"ReadCategories": False},
        "Store": {
            "StoreUserIDKey": False,
            "StoreBookmarks": True,
            "StoreSignedVideo": False,
            "StoreGNSSTrackRecording": False,
            "StoreRejectedContent": False,
        },
        "StoreAndRead": {"StoreReadSystemID": True},
    })


def test_an_earlier_versions_capabilities_are_regrouped_at_start(launch, dataDirectory):
    first = launch(dataDirectory)
    first.stop()
    settingsPath = os.path.join(dataDirectory, "settings.json")
    with open(settingsPath) as f:
        settingsBefore = json.load(f)
    eventsBefore = first.events()
    # The copy an earlier version mirrored into storage (a new file: no
    # digests kept beside it).
    earlier = json.dumps(EARLIER_CAPABILITIES, indent=2).encode("utf-8")
    mirrored = os.path.join(first.storage, "System", "Capabilities.json")
    with open(mirrored + ".earlier", "wb") as f:
        f.write(earlier)
    os.replace(mirrored + ".earlier", mirrored)
    second = launch(dataDirectory, port=first.port)
    headers, body = publishedCapabilities(second)
    assertGroupedAsTheAPISays(json.loads(body), API_CAPABILITIES)
    etag = hashlib.md5(body).hexdigest()
    assert headers["etag"] == etag != hashlib.md5(earlier).hexdigest()
    assert (f"System/Capabilities.json published anew with Etag {etag} "
            f"(was {hashlib.md5(earlier).hexdigest()})") in second.log()
    with open(mirrored, "rb") as f:
        assert f.read() == body
    # The same capabilities, nothing published or withdrawn.
    assert enabledIn(json.loads(body)) == enabledIn(EARLIER_CAPABILITIES)
    with open(settingsPath) as f:
        settingsAfter = json.load(f)
    for key in ("capabilities", "published"):
        assert settingsAfter[key] == settingsBefore[key]
    assert second.eventsOf("capability.published") == [
        e for e in eventsBefore if e["type"] == "capability.published"]


def test_published_capabilities_cannot_be_withdrawn(launch, dataDirectory, twistdCommand):
    first = launch(dataDirectory)
    assert first.eventsOf("capability.published")[-1]["capabilities"] == [
        "ReadCategories", "StoreBookmarks", "StoreGNSSTrackRecording", "StoreReadSystemID",
        "StoreRejectedContent", "StoreSignedVideo", "StoreUserIDKey"]
    first.stop()
    settingsPath = os.path.join(dataDirectory, "settings.json")
    with open(settingsPath) as f:
        settings = json.load(f)
    settings["capabilities"].remove("StoreBookmarks")
    with open(settingsPath, "w") as f:
        json.dump(settings, f)
    refused = subprocess.run(
        [*twistdCommand, "bwscd", "--data", dataDirectory, "--port", str(first.port)],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "withdraws published support for StoreBookmarks" in refused.stdout + refused.stderr
    second = launch(dataDirectory, "--allow-capability-withdrawal", port=first.port)
    capabilities = json.loads(second.connection().get_object("System", "Capabilities.json")[1])
    assert capabilities["Store"]["StoreBookmarks"] is False


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []
    failFirst = [True]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.failFirst[0]:
            self.failFirst[0] = False
            self.send_response(500)
        else:
            self.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_receives_events_in_order_after_a_failure(launch, dataDirectory):
    receiver = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/events"
        server = launch(dataDirectory, "--webhook", url)
        swift = server.connection()
        registerUser(swift)
        registerDevice(swift)
        swift.put_container(RECORDING)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_Receiver.received) < 4:
            time.sleep(0.2)
        types = [e["type"] for e in _Receiver.received]
        assert types[:4] == ["capability.published", "user.registered",
                             "device.registered", "recording.started"]
        assert "could not deliver an event to webhook" in server.log()
    finally:
        receiver.shutdown()


def test_a_lost_registry_is_rebuilt_from_the_stored_objects(launch, dataDirectory):
    first = launch(dataDirectory)
    swift = first.connection()
    registerUser(swift)
    registerDevice(swift)
    first.stop()
    os.remove(os.path.join(first.storage, ".bwscd", "state", "registry.json"))
    second = launch(dataDirectory, port=first.port)
    second.connection().put_container(RECORDING)  # user and device known again
    started = second.eventsOf("recording.started")[-1]
    assert started["userNameNow"] == "Anna Berg (A-17)" and started["deviceName"] == "Cam 1"


def test_a_rebuilt_registry_holds_only_real_systems(launch, dataDirectory):
    system = "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f"
    first = launch(dataDirectory)
    swift = first.connection()
    swift.put_container("System")  # as the controller does (StoreReadSystemID)
    swift.put_object("System", system, b"", headers={
        "X-Object-Meta-Connectionid": "conn-1", "X-Object-Meta-Systemname": "North"})
    first.stop()
    before = len(first.events())
    os.remove(os.path.join(first.storage, ".bwscd", "state", "registry.json"))
    second = launch(dataDirectory, port=first.port)
    registered = [e for e in second.events()[before:] if e["type"] == "system.registered"]
    assert [(e["id"], e.get("connectionId")) for e in registered] == [(system, "conn-1")]
    backup = os.path.join(os.path.dirname(dataDirectory), "bwscd.backup")
    saved = subprocess.run([BWSCD, "backup", "--data", dataDirectory, backup],
                           env=dict(os.environ, BWSCD_BACKUP_PASSPHRASE="passphrase"),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert saved.returncode == 0, saved.stderr
    assert "the registry (0 users, 0 devices, 1 system)" in saved.stdout
