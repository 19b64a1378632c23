"""L{bwscd.catalog.geo}: distances, search boxes, GeoJSON and GPX."""

import xml.etree.ElementTree as ElementTree

import pytest

from bwscd.catalog.geo import boundingBox, distance, geojson, gpx


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
