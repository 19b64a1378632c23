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
