"""L{bwscd.catalog.geo}: distances, search boxes, GeoJSON and GPX."""

import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bwscd.catalog.geo import boundingBox, boxNearness, distance, geojson, gpx


def test_distances():
    assert distance(55.7, 13.2, 55.7, 13.2) == 0
    # Malmö to Stockholm: about 513 km.
    assert distance(55.6050, 13.0038, 59.3293, 18.0686) == pytest.approx(513_000, rel=0.01)
    assert distance(0, 0, 0, 1) == pytest.approx(111_195, rel=0.001)
    assert distance(0, 179.9995, 0, -179.9995) == pytest.approx(111, rel=0.01)


@pytest.mark.parametrize("lat, lon, metres", [(55.7, 13.2, 500), (-33.9, 151.2, 20_000),
                                              (70.0, -20.0, 100_000), (0.0, 179.999, 1000)])
def test_the_box_holds_every_place_within_the_distance(lat, lon, metres):
    south, north, ranges = boundingBox(lat, lon, metres)
    for bearing in range(0, 360, 15):
        # A place a little inside the distance, in every direction.
        import math

        d = metres * 0.999 / 6_371_008.8
        b = math.radians(bearing)
        p1, l1 = math.radians(lat), math.radians(lon)
        p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
        l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                             math.cos(d) - math.sin(p1) * math.sin(p2))
        plat, plon = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
        assert distance(lat, lon, plat, plon) <= metres
        assert south <= plat <= north
        assert any(west <= plon <= east for west, east in ranges), (bearing, plon, ranges)


def test_the_box_across_the_antimeridian_and_at_a_pole():
    assert len(boundingBox(0, 179.999, 1000)[2]) == 2
    assert boundingBox(89.9999, 0, 1000)[2] == [(-180.0, 180.0)]


POINTS = [{"lat": 55.7, "lon": 13.2, "time": "2024-05-01T10:15:00Z", "seconds": 0.0},
          {"lat": 55.8, "lon": 13.3, "time": None, "seconds": None}]


def test_geojson():
    collection = geojson("R", POINTS, {"lat": 55.6, "lon": 13.1})
    assert collection["type"] == "FeatureCollection"
    line, first, second, trigger = collection["features"]
    assert line["geometry"] == {"type": "LineString", "coordinates": [[13.2, 55.7], [13.3, 55.8]]}
    assert first["geometry"] == {"type": "Point", "coordinates": [13.2, 55.7]}
    assert first["properties"] == {"kind": "point", "time": "2024-05-01T10:15:00Z",
                                   "seconds": 0.0}
    assert trigger["properties"] == {"kind": "trigger"}
    assert geojson("R", [], None) == {"type": "FeatureCollection", "features": []}


def test_gpx():
    document = ElementTree.fromstring(gpx("R<&>", POINTS))
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert document.get("version") == "1.1"
    assert document.find("g:trk/g:name", ns).text == "R<&>"
    points = document.findall("g:trk/g:trkseg/g:trkpt", ns)
    assert [(p.get("lat"), p.get("lon")) for p in points] == [("55.7", "13.2"), ("55.8", "13.3")]
    assert points[0].find("g:time", ns).text == "2024-05-01T10:15:00Z"
    assert points[1].find("g:time", ns) is None


@settings(max_examples=1000, deadline=None)
@given(lat=st.floats(-89, 89), lon=st.floats(-180, 180),
       metres=st.sampled_from([50, 500, 5000, 50_000, 1_000_000]),
       corner=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
       size=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       inside=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20))
def test_a_box_decided_near_or_not_holds_only_places_that_are(lat, lon, metres, corner,
                                                              size, inside):
    south, north, ranges = boundingBox(lat, lon, metres)
    for west, east in ranges:
        within = (south, north, west, east)
        # A box somewhere in and around the place's, and places inside it.
        height, width = (north - south) * 1.5, (east - west) * 1.5
        s = max(-90.0, lat + corner[0] * height)
        w = min(180.0, max(-180.0, (west + east) / 2 + corner[1] * width))
        n, e = min(90.0, s + size[0] * height), min(180.0, w + size[1] * width)
        nearness = boxNearness(lat, lon, metres, (s, n, w, e), within)
        if nearness is None:
            continue
        # Its nearest and farthest points are on its edges: along them, closely.
        edges = [(f, edge) for f in (k / 100 for k in range(101))
                 for edge in (0.0, 1.0)]
        for fy, fx in [*inside, *edges, *((x, y) for y, x in edges)]:
            near = distance(lat, lon, s + fy * (n - s), w + fx * (e - w)) <= metres
            assert near == nearness, ((lat, lon, metres), (s, n, w, e), (fy, fx))


def test_boxes_are_decided_where_they_can_be():
    within = boundingBox(59.33, 18.06, 5000)
    box = within[0], within[1], *within[2][0]
    assert boxNearness(59.33, 18.06, 5000, (59.329, 59.331, 18.059, 18.061), box) is True
    assert boxNearness(59.33, 18.06, 5000, (59.37, 59.371, 18.14, 18.141), box) is False
    assert boxNearness(59.33, 18.06, 5000, (59.33, 59.4, 18.06, 18.07), box) is None  # too big
    assert boxNearness(59.33, 18.06, 5000, (59.365, 59.372, 18.06, 18.10), box) is None  # edge
    # Across the antimeridian: the box at 179.4..180 is 8 degrees from -172, not 8.6.
    south, north, ranges = boundingBox(0.0, -172.0, 1_000_000)
    assert ranges[0][0] > 0 and boxNearness(
        0.0, -172.0, 1_000_000, (3.37, 3.37, 179.45, 180.0), (south, north, *ranges[0])) \
        is not False
