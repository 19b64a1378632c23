"""
L{bwscd.catalog.records}: what the controller stores, read into the
catalog's rows, leniently: what does not parse is left out, never an error.
"""

import json

import pytest

from bwscd.catalog.records import (Location, TrackPoint, objectKind, parseLocation,
                                   parseTags, parseTime, parseTrack, parseWKT, record)
from bwscd.interfaces import ContainerInfo, Digests, ObjectInfo

USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
RECORDING = f"{USER}_B8A44F000001_20240501T101500Z"


@pytest.mark.parametrize("text, expected", [
    ("55.718409,13.221184,5,1714558500", Location(55.718409, 13.221184, 5, 1714558500)),
    ("+55.718409+013.221184+5+1714558500", Location(55.718409, 13.221184, 5, 1714558500)),
    ("-33.8688;151.2093;12.5;1714558500", Location(-33.8688, 151.2093, 12.5, 1714558500)),
    ("55.7 13.2", Location(55.7, 13.2)),
    ("55.718409,-3.2", Location(55.718409, -3.2)),
])
def test_location_strings(text, expected):
    assert parseLocation(text) == expected


@pytest.mark.parametrize("text", [None, "", "unknown", "55.7", "95,13,5,1", "55,190,5,1",
                                  "nan,1", "inf,1,2,3", "55.7,abc"])
def test_unparseable_location_strings_are_none(text):
    assert parseLocation(text) is None


@pytest.mark.parametrize("text, expected", [
    ("TriggerOn:Button;SomeTag:SomeValue", {"TriggerOn": "Button", "SomeTag": "SomeValue"}),
    ("Url:http://x:80/a", {"Url": "http://x:80/a"}),  # the first colon splits
    (" a : b ;; c", {"a": "b", "c": ""}),
    ("k:1;k:2", {"k": "2"}),
    ("", {}),
    (None, {}),
    (":orphan", {}),
])
def test_tags(text, expected):
    assert parseTags(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("POINT(13.221184 55.718409)", (55.718409, 13.221184)),  # x is the longitude
    ("point ( -3.5   40.25 )", (40.25, -3.5)),
    ("POINT(13.2)", None),
    ("POINT(200 55)", None),
    ("LINESTRING(1 2, 3 4)", None),
    (None, None),
    (17, None),
])
def test_wkt_points(text, expected):
    assert parseWKT(text) == expected


def test_a_track_of_the_location_file_format():
    document = {"CoordinateEntries": [
        {"LocationWKT": "POINT(13.221184 55.718409)", "SecondsFromStart": 64.0,
         "Timestamp": "2022-08-23T11:48:10Z"},
        {"LocationWKT": "nonsense", "SecondsFromStart": 70.0},
        {"LocationWKT": "POINT(13.220701 55.718702)", "SecondsFromStart": True},
        "not an entry",
    ]}
    assert parseTrack(json.dumps(document).encode()) == [
        TrackPoint(55.718409, 13.221184, 64.0, "2022-08-23T11:48:10Z"),
        TrackPoint(55.718702, 13.220701, None, None)]


@pytest.mark.parametrize("data", [b"\x8f\x00encrypted", b"[1, 2]", b'{"Other": []}',
                                  b'{"CoordinateEntries": 3}', b"[" * 100000])
def test_what_is_not_a_track_is_none(data):
    assert parseTrack(data) is None


def test_times():
    assert parseTime("2024-05-01T10:15:00Z") == 1714558500
    assert parseTime("2024-05-01T12:15:00+02:00") == 1714558500
    assert parseTime("2024-05-01T10:15:00") == 1714558500  # the API's times are UTC
    assert parseTime("yesterday") is None and parseTime(None) is None


@pytest.mark.parametrize("name, metadata, kind", [
    ("20240501_101500_1.mkv", {}, "clip"),
    ("20240501_101500_1.MP4", {}, "clip"),
    ("20240501_101500_1", {"Containertype": "mkv"}, "clip"),
    ("20240501_101500_1.key", {}, "key"),
    ("20240501_101500_1", {"Filetype": "key"}, "key"),
    ("bookmark_20240501T101600Z_3", {}, "bookmark"),
    ("20240501_101500_1_B8A44F000001_gpstrail.json", {}, "track"),
    ("20240501_101500_1.mkv.conflict-a3ead5eedad5df82", {}, "other"),
    ("notes.txt", {}, "other"),
])
def test_object_kinds(name, metadata, kind):
    assert objectKind(name, metadata) == kind


def _object(name, data=b"x", metadata=None, modified=1714558600.0):
    return ObjectInfo(RECORDING, name, Digests(len(data), "m" * 32, "s" * 64), modified,
                      metadata or {}, contentType="video/x-matroska")


def test_a_recording_record():
    info = ContainerInfo(RECORDING, {
        "Triggeron": "Button", "Triggerontime": "1714558500",
        "Triggeronlocation": "55.718409,13.221184,5,1714558500",
        "Triggerofflocation": "garbage", "Starttimeiso": "2024-05-01T10:14:30Z",
        "Status": "Complete", "Timezone": "Europe/Stockholm"}, 6, 100, 1714558700.0)
    track = "20240501_101500_1_B8A44F000001_gpstrail.json"
    objects = [
        _object("b.mkv", b"bb", {"Starttime": "1714558530", "Stoptime": "1714558560"}),
        _object("a.mkv", b"a", {"Starttime": "1714558500",
                                "Startlocation": "55.7,13.2,3,1714558500"}),
        _object("a.key"),
        _object("bookmark_1", metadata={"Categoryid": "7", "Categoryname": "Theft",
                                        "Tags": "k:v", "Starttime": "2024-05-01T10:15:10Z"}),
        _object("bookmark_2", metadata={"Categoryid": "7", "Categoryname": "Theft"}),
        _object(track),
    ]
    contents = {"bookmark_1": "Två".encode(), "bookmark_2": b"",
                track: b'{"CoordinateEntries": [{"LocationWKT": "POINT(13.2 55.7)"}]}'}
    made = record(info, objects, contents, signed=True)
    row = made.recording
    assert row["person"] == USER and row["device"] == "B8A44F000001"
    assert row["triggerTime"] == 1714558500 and row["start"] == 1714558470
    assert (row["triggerLat"], row["triggerLon"], row["triggerAccuracy"]) == (
        55.718409, 13.221184, 5)
    assert row["stopLat"] is None  # unparseable: left out
    assert (row["clips"], row["bytes"], row["encrypted"], row["signed"]) == (2, 3, 1, 1)
    assert json.loads(row["categories"]) == [{"id": "7", "name": "Theft"}]
    assert [(c["name"], c["position"], c["encrypted"]) for c in made.clips] == [
        ("a.mkv", 0, 1), ("b.mkv", 1, 0)]
    assert (made.clips[0]["startLat"], made.clips[0]["startLon"]) == (55.7, 13.2)
    assert [b["text"] for b in made.bookmarks] == ["", "Två"]  # no start: the beginning
    assert made.bookmarks[1]["tags"] == {"k": "v"}
    assert made.categories == ["7", "theft"]
    assert made.tracks == {track: [TrackPoint(55.7, 13.2, None, None)]}
    assert row["trackPoints"] == 1 and row["rejected"] == 0


def test_an_encrypted_track_is_not_parsed():
    track = "20240501_101500_1_B8A44F000001_gpstrail.json"
    info = ContainerInfo(RECORDING, {}, 2, 2, 1714558700.0)
    made = record(info, [_object(track), _object(track[:-5] + ".key")],
                  {track: b'{"CoordinateEntries": [{"LocationWKT": "POINT(13.2 55.7)"}]}'})
    assert made.tracks == {} and made.recording["encrypted"] == 1


def test_rejected_content_is_marked_and_tied_to_its_recording():
    name = "RejectedContent_20240504T000000Z_7f3e"
    info = ContainerInfo(name, {"Rejectedcontentoriginalcontainer": RECORDING,
                                "Rejectedcontentreason": "corrupt"}, 0, 0, 1714780800.0)
    row = record(info, [], {}).recording
    assert (row["rejected"], row["originalContainer"], row["rejectedReason"]) == (
        1, RECORDING, "corrupt")
    assert row["person"] == USER and row["triggerTime"] == 1714780800


def test_a_container_that_says_nothing_is_still_catalogued():
    info = ContainerInfo("RejectedContent_UnknownTime_1", {}, 0, 0, 1714780000.5)
    row = record(info, [], {}).recording
    assert row["triggerTime"] == 1714780000.5 and row["person"] is None


def test_a_long_unparseable_location_string_is_refused_without_backtracking():
    # Digits that could be split into numbers in many ways took exponential time.
    assert parseLocation("1" * 250 + "x") is None
