"""
The evidence catalog's API (docs/catalog.md) through a real C{twistd
bwscd}: recordings sent with python-swiftclient as the controller sends
them, found with every filter, paged, read in full with their clips' bytes,
the trail as GeoJSON and GPX; bad parameters are 400s, the controller's
account is refused; worker processes' uploads are catalogued too.
"""

import hashlib
import io
import json
import os
import subprocess
import xml.etree.ElementTree as ElementTree
import zipfile

import pytest

from tests.support.catalog import (ANNA_1, ANNA_2, CAM_2, MALMO, R1, R2, R3,
                                   REJECTED, STOCKHOLM_TRAIL, CatalogClient, meta,
                                   register, sendRecordings)
from tests.support.server import BWSCD, startServer
from tests.support.waiting import waitFor


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory):
    """One server holding the recordings of L{sendRecordings}, and a reader."""
    server = startServer(str(tmp_path_factory.mktemp("catalog") / "data"))
    swift = server.connection()
    sendRecordings(swift)
    reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
    reader.waitFor()
    yield server, swift, reader
    server.stop()


@pytest.fixture
def reader(catalogued) -> CatalogClient:
    return catalogued[2]


def test_people_are_each_shown_once_as_name_and_user_id(reader):
    people = {p["uuid"]: p for p in reader.json("people")["items"]}
    assert set(people) == {ANNA_1, ANNA_2}
    assert people[ANNA_1]["display"] == "Anna Berg (A-17)"
    assert people[ANNA_2]["display"] == "Anna Berg (B-3)"
    assert (people[ANNA_1]["recordings"], people[ANNA_2]["recordings"]) == (2, 1)
    assert people[ANNA_1]["latest"] == "2024-05-03T12:00:00.000Z"
    assert people[ANNA_1]["active"] is True and people[ANNA_1]["userId"] == "A-17"
    assert reader.json(f"people/{ANNA_2}")["name"] == "Anna Berg"
    assert reader.get("people/00000000-0000-0000-0000-000000000000").status_code == 404


def test_recordings_are_newest_first_without_the_rejected_content(reader):
    assert reader.ids() == [R3, R2, R1]
    assert reader.ids(rejected="true") == [REJECTED]


@pytest.mark.parametrize("params, expected", [
    ({"person": ANNA_1}, [R3, R1]),
    ({"device": CAM_2}, [R3, R2]),
    ({"category": "7"}, [R1]),
    ({"category": "theft"}, [R1]),
    ({"category": "Traffic"}, [R2]),
    ({"category": "nothing"}, []),
    ({"trigger": "Holster"}, [R2]),
    ({"from": "2024-05-02T00:00:00Z"}, [R3, R2]),
    ({"to": "2024-05-02T00:00:00Z"}, [R1]),
    ({"from": "2024-05-02T08:00:00+00:00", "to": "2024-05-02T08:00:01Z"}, [R2]),
    ({"near": f"{MALMO[0]},{MALMO[1]},200"}, [R1]),  # the trigger location
    ({"near": "59.3305,18.0610,100"}, [R2]),  # GNSS points only: its trigger is 5 km off
    ({"near": "0,0,1000"}, []),
    ({"q": "suspect"}, [R1]),  # bookmark text
    ({"q": "ABC123"}, [R1]),  # a tag
    ({"q": "två"}, [R2]),
    ({"q": "Cam 2"}, [R3, R2]),  # a device's name
    ({"q": "B-3"}, [R2]),  # a person's UserID
    ({"q": "anna"}, [R3, R2, R1]),
    ({"q": "%"}, []),  # taken as it is, not as a pattern
    ({"status": "Transferring"}, [R3]),
    ({"person": ANNA_1, "device": CAM_2, "trigger": "Button"}, [R3]),
    ({"person": ANNA_1, "category": "theft", "near": f"{MALMO[0]},{MALMO[1]},50"}, [R1]),
])
def test_every_filter(reader, params, expected):
    assert reader.ids(**params) == expected


def test_a_cursor_pages_through_newest_first(reader):
    seen, cursor = [], None
    while True:
        page = reader.json("recordings", {"limit": "1", **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [R3, R2, R1]
    first = reader.json("recordings", {"limit": "2", "person": ANNA_1})
    assert [i["id"] for i in first["items"]] == [R3, R1] and first["next"] is None


@pytest.mark.parametrize("params, message", [
    ({"from": "yesterday"}, "from='yesterday': not an RFC 3339 time"),
    ({"to": "2024-13-01T00:00:00Z"}, "to='2024-13-01T00:00:00Z': not an RFC 3339 time"),
    ({"near": "55.7,13.2"}, "near='55.7,13.2': expected LAT,LON,METRES"),
    ({"near": "95,13.2,10"}, "latitude must be -90 to 90"),
    ({"near": "55,13,0"}, "the distance must be more than 0"),
    ({"near": "55,13,nan"}, "near='55,13,nan'"),
    ({"limit": "0"}, "limit=0: must be 1 to 500"),
    ({"limit": "501"}, "limit=501: must be 1 to 500"),
    ({"limit": "ten"}, "limit='ten': not a number"),
    ({"cursor": "garbage!"}, "cursor: not one this server gave"),
    ({"person": "Anna"}, "person='Anna': not a user's UUID"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
    ({"rejected": "maybe"}, "rejected='maybe': true or false"),
    ({"q": '"'}, None),  # punctuation alone searches nothing: an answer, not an error
])
def test_bad_parameters_are_400_with_a_message(reader, params, message):
    answer = reader.get("recordings", params)
    if message is None:
        assert answer.status_code == 200
        return
    assert answer.status_code == 400, answer.text
    assert message in answer.text


def test_a_parameter_given_twice_is_400(reader):
    answer = reader.get("recordings?limit=1&limit=2")
    assert answer.status_code == 400 and "'limit' given 2 times" in answer.text


def test_paths_and_methods_outside_the_catalog(catalogued, reader):
    server = catalogued[0]
    assert reader.get("nothing").status_code == 404
    assert reader.get("recordings/none").status_code == 404
    assert reader.get("recordings/none/track.gpx").status_code == 404
    assert reader.get("people", {"x": "1"}).status_code == 400
    answer = reader.session.post(f"https://127.0.0.1:{server.port}/catalog/v1/people",
                                 headers={"X-Auth-Token": reader.token}, verify=server.caFile)
    assert answer.status_code == 405


def test_the_controllers_account_is_refused_and_readers_and_admins_are_not(catalogued):
    server, swift, reader = catalogued
    controller = CatalogClient.of(server, swift)
    for path in ("people", "recordings", f"recordings/{R1}",
                 f"recordings/{R1}/clips/20240501_101430_1.mkv"):
        answer = controller.get(path)
        assert (answer.status_code, answer.text) == (403, "the catalog is not open to this "
                                                          "account\n"), path
    assert CatalogClient(server, None).get("people").status_code == 401
    assert CatalogClient(server, "BWS_forged").get("people").status_code == 401
    admin = CatalogClient.of(server, server.addAccount("boss", "admin"))
    assert admin.ids() == [R3, R2, R1]


def test_a_recording_in_full(catalogued, reader):
    server, swift, _ = catalogued
    detail = reader.json(f"recordings/{R1}")
    assert detail["person"] == {"uuid": ANNA_1, "display": "Anna Berg (A-17)",
                                "name": "Anna Berg", "userId": "A-17"}
    assert detail["device"] == {"id": "B8A44F000001", "name": "Cam 1"}
    assert detail["triggerTime"] == "2024-05-01T10:15:00.000Z"
    assert detail["start"] == "2024-05-01T10:14:30.000Z"
    assert detail["stop"] == "2024-05-01T10:16:30.000Z"
    assert detail["triggerLocation"] == {"lat": MALMO[0], "lon": MALMO[1]}
    assert (detail["triggerOn"], detail["triggerOff"], detail["status"]) == (
        "Button", "Button", "Complete")
    assert (detail["timeZone"], detail["firmware"], detail["model"], detail["scu"]) == (
        "Europe/Stockholm", "11.11.1", "W110", "S7654321")
    assert detail["metadata"]["Triggeronlocation"] == f"{MALMO[0]},{MALMO[1]},5,1714558500"
    assert detail["categories"] == [{"id": "7", "name": "Theft"}]
    assert detail["encrypted"] is False and detail["rejected"] is False
    # In play order, whatever order they were sent in.
    clips = detail["clips"]
    assert [c["name"] for c in clips] == ["20240501_101430_1.mkv", "20240501_101530_1.mkv",
                                          "20240501_101600_1.mkv"]
    assert [c["position"] for c in clips] == [0, 1, 2]
    first = clips[0]
    assert first["sha256"] == hashlib.sha256(b"clip one" * 100).hexdigest()
    assert first["md5"] == hashlib.md5(b"clip one" * 100).hexdigest()
    assert first["account"] == swift.user and first["arrived"].endswith("Z")
    assert first["startLocation"] == {"lat": MALMO[0], "lon": MALMO[1]}
    assert first["url"] == f"/catalog/v1/recordings/{R1}/clips/20240501_101430_1.mkv"
    assert detail["bookmarks"] == [{
        "name": "bookmark_20240501T101540Z_1", "text": "Suspect ran north",
        "categoryId": "7", "categoryName": "Theft",
        "tags": {"TriggerOn": "Button", "Plate": "ABC123"},
        "start": "2024-05-01T10:15:40Z", "end": "2024-05-01T10:15:50Z"}]
    assert detail["track"] == {"points": 2, "geojson": f"/catalog/v1/recordings/{R1}/track.geojson",
                               "gpx": f"/catalog/v1/recordings/{R1}/track.gpx"}
    assert {o["name"] for o in detail["objects"]} == {c["name"] for c in clips} | {
        "bookmark_20240501T101540Z_1", f"20240501_101430_1_B8A44F000001_gpstrail.json"}
    assert all(o["account"] == swift.user and len(o["sha256"]) == 64 for o in detail["objects"])
    viewed = server.eventsOf("recording.viewed")
    assert {"container": R1, "account": "clerk", "via": "api"}.items() <= viewed[-1].items()


def test_rejected_content_is_kept_apart_with_its_reason(reader):
    detail = reader.json(f"recordings/{REJECTED}")
    assert detail["rejected"] is True
    assert (detail["originalContainer"], detail["rejectedReason"]) == (R1, "corrupt")
    assert detail["person"]["uuid"] == ANNA_1
    assert detail["triggerTime"] == "2024-05-04T00:00:00.000Z"


def test_the_trail_as_geojson_and_gpx(reader):
    collection = reader.get(f"recordings/{R2}/track.geojson")
    assert collection.headers["Content-Type"] == "application/geo+json"
    features = collection.json()["features"]
    line = [f for f in features if f["geometry"]["type"] == "LineString"]
    assert line[0]["geometry"]["coordinates"] == [[lon, lat] for lat, lon in STOCKHOLM_TRAIL]
    points = [f for f in features if f["properties"]["kind"] == "point"]
    assert [p["properties"]["time"] for p in points] == [
        "2024-05-02T08:00:00Z", "2024-05-02T08:00:10Z", "2024-05-02T08:00:20Z"]
    trigger = [f for f in features if f["properties"]["kind"] == "trigger"]
    assert trigger[0]["geometry"]["coordinates"] == [18.0, 59.3]
    gpx = reader.get(f"recordings/{R2}/track.gpx")
    assert gpx.headers["Content-Type"] == "application/gpx+xml"
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    root = ElementTree.fromstring(gpx.content)
    assert root.get("version") == "1.1"
    trkpts = root.findall("g:trk/g:trkseg/g:trkpt", ns)
    assert [(float(p.get("lat")), float(p.get("lon"))) for p in trkpts] == STOCKHOLM_TRAIL
    assert trkpts[2].find("g:time", ns).text == "2024-05-02T08:00:20Z"
    assert reader.json(f"recordings/{R3}/track.geojson")["features"] == []


def test_a_clips_bytes_with_a_range_audited_as_the_readers(catalogued, reader):
    server = catalogued[0]
    url = f"recordings/{R1}/clips/20240501_101530_1.mkv"
    whole = reader.get(url)
    assert (whole.status_code, whole.content) == (200, b"clip two" * 100)
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = reader.get(url, headers={"Range": "bytes=8-15"})
    assert (part.status_code, part.content) == (206, b"clip two")
    assert part.headers["Content-Range"] == "bytes 8-15/800"
    assert reader.get(url, headers={"Range": "bytes=900-"}).status_code == 416
    assert reader.get(f"recordings/{R1}/clips/none.mkv").status_code == 404
    assert reader.get("recordings/Users/clips/" + ANNA_1).status_code == 404
    reads = [e for e in server.eventsOf("object.read") if e["object"] == "20240501_101530_1.mkv"]
    assert [(e["account"], e["first"], e["last"], e["complete"]) for e in reads[-2:]] == [
        ("clerk", 0, 799, True), ("clerk", 8, 15, True)]


def test_metadata_changes_are_catalogued(catalogued, reader):
    server, swift, _ = catalogued
    swift.post_container(R3, headers=meta("Container", {"Timezone": "Europe/Oslo"}))
    assert server.eventsOf("recording.updated")[-1]["container"] == R3
    swift.post_object(R3, "20240503_120000_3.mkv", headers=meta("Object", {
        "Starttime": 1714737500, "Containertype": "mkv"}))
    updated = server.eventsOf("recording.updated")[-1]
    assert (updated["object"], updated["account"]) == ("20240503_120000_3.mkv", swift.user)

    def caughtUp():  # upkeep works in batches, a second after their first event
        detail = reader.json(f"recordings/{R3}")
        return (detail["timeZone"], detail["clips"][0]["name"]) == (
            "Europe/Oslo", "20240503_120000_3.mkv")
    assert waitFor(caughtUp, timeout=30, interval=0.1), reader.json(f"recordings/{R3}")


def test_clip_stored_names_the_account(catalogued):
    server, swift, _ = catalogued
    stored = server.eventsOf("clip.stored")
    assert stored and all(e["account"] == swift.user for e in stored)


def test_uploads_through_worker_processes_are_catalogued(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "2")
    # New connections each time: the processes take them in turn.
    connections = [server.connection() for _ in range(6)]
    register(connections[0])
    ids = []
    for n, swift in enumerate(connections):
        container = f"{ANNA_1}_{CAM_2}_2024060{n + 1}T100000Z"
        swift.put_container(container, headers=meta("Container", {"Triggeron": "Button"}))
        swift.put_object(container, f"2024060{n + 1}_100000_{n}.mkv", b"x" * n,
                         headers=meta("Object", {"Starttime": 1717236000 + n}))
        ids.append(container)
    reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
    reader.waitFor({container: (1, 0) for container in ids}, rejected=0)
    # Every query answered, whichever process took its connection.
    for _ in range(6):
        assert CatalogClient(server, reader.token).ids(person=ANNA_1) == list(reversed(ids))


def test_catalog_rebuild_refuses_while_a_server_runs(catalogued):
    server = catalogued[0]
    refused = subprocess.run([BWSCD, "catalog", "rebuild", "--data", server.data],
                             capture_output=True, text=True)
    assert refused.returncode == 1
    assert "is in use by process" in refused.stderr
    assert "a running server keeps the catalog up to date" in refused.stderr


def test_a_server_started_without_its_catalog_rebuilds_it(launch, dataDirectory):
    server = launch(dataDirectory)
    sendRecordings(server.connection())
    reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
    reader.waitFor()
    before = reader.snapshot()
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(dataDirectory, "catalog.sqlite" + suffix)):
            os.unlink(os.path.join(dataDirectory, "catalog.sqlite" + suffix))
    again = launch(dataDirectory, port=server.port)
    reader = CatalogClient(again, reader.token)
    reader.waitFor()
    assert reader.snapshot() == before


def test_an_export_through_the_api_is_the_recording_with_its_custody(catalogued, reader):
    server, swift, _ = catalogued
    reason = "Court case 2024/17"
    answer = reader.get(f"recordings/{R1}/export", {"reason": reason})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert f'filename="{R1}.zip"' in answer.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        files = {name: package.read(name) for name in package.namelist()}
    manifest = json.loads(files["manifest.json"])
    for listed in manifest["files"]:
        assert hashlib.sha256(files[listed["name"]]).hexdigest() == listed["sha256"]
    stored = {o["name"]: o for o in reader.json(f"recordings/{R1}")["objects"]}
    for name, described in stored.items():
        assert hashlib.md5(files[f"objects/{name}"]).hexdigest() == described["md5"]
    custody = json.loads(files["custody.json"])
    arrived = {a["storedAs"]: a for a in custody["arrivals"]}
    assert set(arrived) == set(stored)
    assert {a["account"] for a in arrived.values()} == {swift.user}
    assert custody["export"]["account"] == "clerk" and custody["export"]["reason"] == reason
    event = server.eventsOf("recording.exported")[-1]
    assert (event["container"], event["account"], event["reason"]) == (R1, "clerk", reason)
    assert event["sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()


@pytest.mark.parametrize("params, problem", [
    ({}, "reason"),
    ({"reason": ""}, "reason"),
    ({"reason": "why", "format": "tar"}, "only a reason"),
])
def test_an_export_needs_a_reason(reader, params, problem):
    answer = reader.get(f"recordings/{R1}/export", params)
    assert answer.status_code == 400 and problem in answer.text


def test_the_controller_cannot_export(catalogued):
    server, swift, _ = catalogued
    controller = CatalogClient.of(server, swift)
    assert controller.get(f"recordings/{R1}/export", {"reason": "x"}).status_code == 403
