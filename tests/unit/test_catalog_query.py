"""
L{bwscd.catalog.query.CatalogQuery} over a real SQLite catalog, filled by
L{bwscd.catalog.index.CatalogIndex} through the storage contract from a real
filesystem backend, into which the recordings were uploaded through the
server's resource tree (L{treq.testing.StubTreq}) as the controller sends
them; and L{bwscd.catalog.upkeep.CatalogUpkeep} keeping it up to date from
the events.
"""

import os
import sqlite3
from datetime import datetime, timezone

import pytest

from bwscd.catalog import schema
from bwscd.catalog.index import CatalogIndex
from bwscd.catalog.query import CatalogQuery, parseFilters
from bwscd.catalog.rebuild import rebuild
from bwscd.catalog.upkeep import CatalogUpkeep
from bwscd.errors import BadRequest
from tests.support.catalog import meta, trackDocument

ANNA = "6a7c1a3e-8b1d-4c55-9a8e-3f1f2b7d9c01"
BO = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
CAM = "B8A44F000001"


def _recording(api, user, epoch, stamp, clips=1, category=None, place=None, track=None,
               text=""):
    container = f"{user}_{CAM}_{stamp}"
    values = {"Triggeron": "Button", "Triggerontime": epoch, "Status": "Complete"}
    if place:
        values["Triggeronlocation"] = f"{place[0]},{place[1]},5,{epoch}"
    assert api.request("PUT", container, headers=meta("Container", values)).code == 201
    for n in range(clips):
        answer = api.request("PUT", f"{container}/{stamp}_{n}.mkv", data=b"v" * (n + 1),
                             headers=meta("Object", {"Starttime": epoch + n}))
        assert answer.code == 201
    if category or text:
        headers = meta("Object", {"Categoryid": category[0], "Categoryname": category[1]}
                       ) if category else {}
        assert api.request("PUT", f"{container}/bookmark_{stamp}_1", data=text.encode(),
                           headers=headers).code == 201
    if track:
        assert api.request("PUT", f"{container}/{stamp}_{CAM}_gpstrail.json",
                           data=trackDocument(track)).code == 201
    return container


@pytest.fixture
def catalog(api, tmp_path):
    """Six recordings of two people, catalogued: (index, query, ids newest first)."""
    for uuid, name in ((ANNA, "Anna Berg"), (BO, "Bo Ek")):
        assert api.request("PUT", "Users").code in (201, 202)
        assert api.request("PUT", f"Users/{uuid}", data=b"", headers=meta(
            "Object", {"Name": name, "Userid": name[:2].upper()})).code == 201
    assert api.request("PUT", "Devices").code in (201, 202)
    assert api.request("PUT", f"Devices/{CAM}", data=b"",
                       headers=meta("Object", {"Name": "Cam 1"})).code == 201
    ids = [
        _recording(api, ANNA, 1714558500, "20240501T101500Z", clips=3,
                   category=("7", "Theft"), place=(55.7184, 13.2212), text="red car"),
        _recording(api, BO, 1714644900, "20240502T101500Z", category=("9", "Traffic"),
                   track=[(59.33, 18.06), (59.331, 18.061)]),
        _recording(api, ANNA, 1714731300, "20240503T101500Z", place=(-33.8688, 151.2093)),
        _recording(api, BO, 1714817700, "20240504T101500Z", category=("7", "Theft")),
        _recording(api, ANNA, 1714904100, "20240505T101500Z", text="blue bicycle"),
        _recording(api, ANNA, 1714904100, "20240505T101500Z".replace("15", "16")),
    ]
    path = str(tmp_path / "catalog.sqlite")
    index = CatalogIndex(api.store.backend, path, api.store.reactor)
    api.store.call(rebuild, index, api.store.backend, None, False)
    return index, CatalogQuery(path, api.store.reactor), ids[::-1]


def _ids(store, query, **filters):
    return [item["id"] for item in store.call(query.recordings, **filters)["items"]]


def test_filters(api, catalog):
    _, query, ids = catalog
    store = api.store
    newest = ids  # 20240505T101600Z, 20240505T101500Z, 04, 03, 02, 01
    assert _ids(store, query) == newest
    assert _ids(store, query, person=ANNA) == [newest[0], newest[1], newest[3], newest[5]]
    assert _ids(store, query, category="7") == [newest[2], newest[5]]
    assert _ids(store, query, category="THEFT") == [newest[2], newest[5]]
    assert _ids(store, query, category="traffic", person=BO) == [newest[4]]
    assert _ids(store, query, from_=datetime(2024, 5, 3, tzinfo=timezone.utc),
                to=datetime(2024, 5, 5, tzinfo=timezone.utc)) == [newest[2], newest[3]]
    assert _ids(store, query, near=(55.7184, 13.2212, 10)) == [newest[5]]
    assert _ids(store, query, near=(59.3305, 18.0605, 100)) == [newest[4]]  # GNSS points
    assert _ids(store, query, near=(59.3305, 18.0605, 10)) == []  # in their box, not near
    assert _ids(store, query, near=(-33.87, 151.21, 1000)) == [newest[3]]
    assert _ids(store, query, q="bicycle") == [newest[1]]
    assert _ids(store, query, q="bo ek") == [newest[2], newest[4]]
    assert _ids(store, query, q="cam 1") == newest
    assert _ids(store, query, trigger="Button", status="Complete", device=CAM) == newest
    assert _ids(store, query, device="other") == []


def test_paging_is_stable_for_recordings_of_the_same_time(api, catalog):
    _, query, ids = catalog
    seen, cursor = [], None
    while True:
        page = api.store.call(query.recordings, limit=2, cursor=cursor)
        seen += [item["id"] for item in page["items"]]
        if page["next"] is None:
            break
        cursor = page["next"]
    assert seen == ids
    page = api.store.call(query.recordings, person=ANNA, limit=3)
    rest = api.store.call(query.recordings, person=ANNA, limit=3, cursor=page["next"])
    assert [i["id"] for i in page["items"] + rest["items"]] == [ids[0], ids[1], ids[3], ids[5]]


@pytest.mark.parametrize("filters, message", [
    ({"person": "nobody"}, "not a user's UUID"),
    ({"limit": 0}, "must be 1 to 500"),
    ({"limit": 501}, "must be 1 to 500"),
    ({"cursor": "e30"}, "cursor: not one this server gave"),
    ({"near": (91, 0, 10)}, "latitude must be -90 to 90"),
    ({"from_": "2024-05-01"}, "from: not a time"),
])
def test_bad_filters_raise_bad_request(api, catalog, filters, message):
    query = catalog[1]
    with pytest.raises(BadRequest) as caught:
        api.store.call(query.recordings, **filters)
    assert message in caught.value.message


def test_query_string_filters():
    filters = parseFilters({"from": "2024-05-01T10:15:00Z", "near": "55.7,13.2,500",
                            "limit": "10", "q": "", "category": "7"})
    assert filters == {"from_": datetime(2024, 5, 1, 10, 15, tzinfo=timezone.utc),
                       "near": (55.7, 13.2, 500.0), "limit": 10, "category": "7"}
    for bad in ({"from": "2024-05-01"}, {"near": "a,b,c"}, {"limit": "-1"}, {"sort": "x"}):
        with pytest.raises(BadRequest):
            parseFilters(bad)


def test_people_and_a_recording(api, catalog):
    _, query, ids = catalog
    people = api.store.call(query.people)
    assert [(p["display"], p["recordings"]) for p in people] == [
        ("Anna Berg (AN)", 4), ("Bo Ek (BO)", 2)]
    assert people[0]["latest"] == "2024-05-05T10:15:00.000Z"
    detail = api.store.call(query.recording, ids[5])
    assert [c["name"] for c in detail["clips"]] == [
        "20240501T101500Z_0.mkv", "20240501T101500Z_1.mkv", "20240501T101500Z_2.mkv"]
    assert detail["bookmarks"][0]["text"] == "red car"
    assert api.store.call(query.recording, "nothing") is None
    assert api.store.call(query.track, ids[4]) == [
        {"lat": 59.33, "lon": 18.06, "time": "2024-05-02T08:00:00Z", "seconds": 0.0},
        {"lat": 59.331, "lon": 18.061, "time": "2024-05-02T08:00:10Z", "seconds": 10.0}]


def test_upkeep_follows_the_events(api, catalog):
    index, query, ids = catalog
    store = api.store
    upkeep = CatalogUpkeep(index, store.reactor)
    store.call(lambda: store.events._sinks.append(upkeep) or upkeep.start())
    container = ids[0]
    # A bookmark after the clips, a track before the Complete, then deletion of a clip.
    assert api.request("PUT", f"{container}/bookmark_x", data=b"late note", headers=meta(
        "Object", {"Categoryid": "12", "Categoryname": "Assault", "Tags": "a:b"})).code == 201
    assert api.request("PUT", f"{container}/t_{CAM}_gpstrail.json",
                       data=trackDocument([(1.0, 2.0), (1.5, 2.5)])).code == 201
    store.call(upkeep.whenIdle)
    assert _ids(store, query, category="assault") == [container]
    # A box larger than the place's: its points are looked at.
    assert _ids(store, query, near=(1.0, 2.0, 10)) == [container]
    assert _ids(store, query, near=(1.25, 2.25, 10)) == []
    custody = store.call(query.custody, container)
    assert [(c["type"], c["object"], c["account"]) for c in custody] == [
        ("clip.stored", "bookmark_x", api.storage._credentials.userName),
        ("clip.stored", f"t_{CAM}_gpstrail.json", api.storage._credentials.userName)]
    clip = store.call(query.recording, container)["clips"][0]["name"]
    assert api.request("DELETE", f"{container}/{clip}", role="admin").code == 204
    store.call(upkeep.whenIdle)
    assert store.call(query.recording, container)["clips"] == []
    track = f"t_{CAM}_gpstrail.json"
    assert api.request("DELETE", f"{container}/{track}", role="admin").code == 204
    store.call(upkeep.whenIdle)
    assert _ids(store, query, near=(1.0, 2.0, 10)) == []
    db = sqlite3.connect(index.path)  # its box went with its points: only ids[4]'s is left
    assert db.execute("SELECT count(*) FROM track_boxes").fetchone() == (1,)
    db.close()
    assert store.call(query.custody, container)[-1]["type"] == "object.deleted"
    # A rename of a person shows at once, without indexing the recordings again.
    assert api.request("POST", f"Users/{ANNA}", headers=meta(
        "Object", {"Name": "Anna Lind", "Userid": "AN"})).code == 202
    store.call(upkeep.whenIdle)
    assert store.call(query.recording, ids[1])["person"]["display"] == "Anna Lind (AN)"
    assert _ids(store, query, q="berg") == [ids[0], ids[1], ids[3], ids[5]]  # the old name
    store.call(lambda: store.events._sinks.remove(upkeep))


def test_the_catalog_file_is_the_services_own(catalog):
    index = catalog[0]
    assert os.stat(index.path).st_mode & 0o777 == 0o600


def test_an_unusable_catalog_is_moved_aside_and_made_again(api, tmp_path):
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(b"not a database at all, " * 100)
    index = CatalogIndex(api.store.backend, str(path), api.store.reactor)
    api.store.call(rebuild, index, api.store.backend, None, True)
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("catalog.sqlite.unusable-")]
    assert len(aside) == 1
    assert api.store.call(CatalogQuery(str(path), api.store.reactor).people) == []


def test_a_catalog_of_version_3_keeps_its_recordings_and_gets_what_5_adds(catalog, api):
    index, query, ids = catalog
    db = sqlite3.connect(index.path)
    with db:  # what version 3 had: the clock's index without originalContainer, no boxes
        db.execute("DROP INDEX recordings_clock")
        db.execute("CREATE INDEX recordings_clock ON recordings (stop, status)")
        db.execute("DROP TABLE track_boxes")
        db.execute("DROP TABLE person_recordings")
        db.execute("CREATE INDEX track_places ON track_points (lat, lon)")
        db.execute("PRAGMA user_version = 3")
    db.close()
    again = schema.open(index.path)
    try:
        assert again.execute("PRAGMA user_version").fetchone() == (schema.VERSION,)
        indices = dict(again.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        assert "originalContainer" in indices["recordings_clock"]
        assert "track_places" not in indices
        assert sorted(r for r, in again.execute("SELECT id FROM recordings")) == sorted(ids)
        assert again.execute("SELECT count(*) FROM track_boxes").fetchone() == (1,)
    finally:
        again.close()
    assert _ids(api.store, query, near=(59.3305, 18.0605, 100)) == [ids[4]]  # by its box
    assert [(p["uuid"], p["recordings"], p["latest"]) for p in api.store.call(query.people)] \
        == [(ANNA, 4, "2024-05-05T10:15:00.000Z"), (BO, 2, "2024-05-04T10:15:00.000Z")]


def test_the_people_counts_follow_a_recording_that_goes(api, catalog):
    index, query, ids = catalog
    store = api.store
    container = ids[1]  # Anna's with the "blue bicycle" bookmark
    for stored in store.call(store.backend.listObjects, container, "", "", 100):
        assert api.request("DELETE", f"{container}/{stored.name}", role="admin").code == 204
    assert api.request("DELETE", container, role="admin").code == 204
    store.call(index.indexContainer, container)
    assert [(p["uuid"], p["recordings"]) for p in store.call(query.people)] == [
        (ANNA, 3), (BO, 2)]


def test_a_burst_of_clips_indexes_their_recording_once(api, catalog):
    index, query, ids = catalog
    store = api.store
    upkeep = CatalogUpkeep(index, store.reactor)
    indexed = []
    upkeep._index = type("Counting", (), {  # the real index, its containers counted
        "__getattr__": lambda self, name: getattr(index, name),
        "indexContainer": lambda self, name: indexed.append(name) or index.indexContainer(name),
    })()
    store.call(lambda: store.events._sinks.append(upkeep) or upkeep.start())
    container = ids[0]
    for n in range(4):  # as a controller sends a recording: one object after another
        assert api.request("PUT", f"{container}/bookmark_{n}", data=b"note").code == 201
    store.call(upkeep.whenIdle)
    assert indexed == [container]
    assert len(store.call(query.recording, container)["bookmarks"]) >= 4
    store.call(lambda: store.events._sinks.remove(upkeep))
