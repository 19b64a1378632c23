"""
Places: distances on the globe, the box a search around a place looks in
first, and a recording's GNSS trail as GeoJSON (RFC 7946) and GPX 1.1.
"""

import math
from xml.sax.saxutils import escape, quoteattr

EARTH_RADIUS = 6_371_008.8
"""Metres: the mean radius (IUGG), which haversine distances are measured with."""


def distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two places, along the globe (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS * math.asin(min(1.0, math.sqrt(a)))


NEAREST_MARGIN = 0.01
"""
How much farther than the distance a box's nearest point, taken as the
place clamped into the box, must be for the box to be left out: on a
meridian the true nearest point is a little poleward of the clamped one,
nearer by a part of about (longitudes apart)² × sin²(latitude) / 8 of the
distance: under 0.4% within L{DECIDED_SPAN}.
"""
DECIDED_SPAN = 20.0
"""The widest place's box, in degrees of longitude, whose tracks' boxes are decided."""


def boxNearness(lat: float, lon: float, metres: float, box, within) -> bool | None:
    """
    Of C{box} (C{(south, north, west, east)}, a track's): C{True} if all of
    it lies within C{metres} of the place, C{False} if none of it does,
    L{None} if that takes its points.  Decided only for a box inside
    C{within}, the place's own box (L{boundingBox}) when that is narrow and
    away from the poles: such a box is small and far from the place's
    antipode, so its farthest point is a corner.
    """
    south, north, west, east = box
    if within[3] - within[2] > DECIDED_SPAN or within[0] <= -90 or within[1] >= 90:
        return None  # near a pole, or a wide place: the nearest point is not the clamped one
    if not (within[0] <= south and north <= within[1] and within[2] <= west
            and east <= within[3]):
        return None
    if all(distance(lat, lon, y, x) <= metres for y in (south, north) for x in (west, east)):
        return True
    # The place's longitude on the side of the antimeridian the range is on.
    seen = lon + 360 * round(((within[2] + within[3]) / 2 - lon) / 360)
    nearest = distance(lat, lon, min(max(lat, south), north), min(max(seen, west), east))
    return False if nearest > metres * (1 + NEAREST_MARGIN) else None


def boundingBox(lat: float, lon: float, metres: float):
    """
    The latitudes and longitudes within C{metres} of a place lie in:
    C{(south, north, [(west, east), ...])}, two longitude ranges when the
    box crosses the antimeridian, the whole circle near a pole.
    """
    dLat = math.degrees(metres / EARTH_RADIUS)
    south, north = max(-90.0, lat - dLat), min(90.0, lat + dLat)
    if south <= -90 or north >= 90 or math.cos(math.radians(max(abs(south), abs(north)))) < 1e-9:
        return south, north, [(-180.0, 180.0)]
    dLon = math.degrees(metres / (EARTH_RADIUS * math.cos(math.radians(max(abs(south),
                                                                           abs(north))))))
    if dLon >= 180:
        return south, north, [(-180.0, 180.0)]
    west, east = lon - dLon, lon + dLon
    if west < -180:
        return south, north, [(west + 360, 180.0), (-180.0, east)]
    if east > 180:
        return south, north, [(west, 180.0), (-180.0, east - 360)]
    return south, north, [(west, east)]


def geojson(recording: str, points: list[dict], trigger: dict | None = None) -> dict:
    """
    A FeatureCollection: the trail as one LineString (coordinates
    C{[lon, lat]}, as GeoJSON has them, with the times in its properties),
    each point as a Point with its C{time} and C{seconds}, and the trigger
    location as a Point with C{"kind": "trigger"}.
    """
    features = []
    if points:
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString",
                         "coordinates": [[p["lon"], p["lat"]] for p in points]},
            "properties": {"recording": recording, "kind": "trail",
                           "times": [p["time"] for p in points]},
        })
    for p in points:
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
            "properties": {"kind": "point", "time": p["time"], "seconds": p["seconds"]},
        })
    if trigger is not None:
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [trigger["lon"], trigger["lat"]]},
            "properties": {"kind": "trigger"},
        })
    return {"type": "FeatureCollection", "features": features}


def gpx(recording: str, points: list[dict]) -> bytes:
    """The trail as a GPX 1.1 document: one trk of one trkseg, each point with its time."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<gpx version="1.1" creator="bwscd" xmlns="http://www.topografix.com/GPX/1/1">',
             f"<trk><name>{escape(recording)}</name><trkseg>"]
    for p in points:
        time = f"<time>{escape(p['time'])}</time>" if p.get("time") else ""
        lines.append(f"<trkpt lat={quoteattr(repr(p['lat']))} "
                     f"lon={quoteattr(repr(p['lon']))}>{time}</trkpt>")
    lines.append("</trkseg></trk></gpx>")
    return ("\n".join(lines) + "\n").encode("utf-8")
