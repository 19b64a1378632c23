"""
What the controller stores, read into the catalog's rows: pure functions,
no I/O, so that live upkeep, a rebuild and the benchmark make the same rows
of the same storage.

The names and keys are the API's ("Recording container metadata", "Video
object metadata", "Key object metadata", "Bookmark object metadata",
"Location object meta-data", "Location file format", "Rejected content
storage"); metadata keys arrive canonical (L{bwscd.constraints.canonicalKey}:
C{Triggeronlocation}).  What does not parse is left out (L{None}), never an
error: a recording is catalogued with whatever it carries.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bwscd.backends.common import CONFLICT_SUFFIX
from bwscd.policy.categories import categoryKey
from bwscd.policy.evidence import isTrack
from bwscd.policy.registry import isRejectedContent, recordingNameParts
from bwscd.policy.retention import lastArrival

KEY_SUFFIX = ".key"
BOOKMARK_PREFIX = "bookmark_"
VIDEO_TYPES = ("mkv", "mp4")

# A signed decimal number, as the location strings hold them.
_DIGITS = r"(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"[+-]?{_DIGITS}")
# Numbers, each after a separator or a sign, and nothing else (never two
# ways to split the digits: no backtracking to speak of).
_LOCATION = re.compile(rf"[\s,;]*[+-]?{_DIGITS}(?:(?:[\s,;]+[+-]?|[+-]){_DIGITS})*[\s,;]*")
_POINT = re.compile(r"^\s*POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$", re.IGNORECASE)
_REJECTED_TIME = re.compile(r"^RejectedContent_([0-9]{8}T[0-9]{6}Z)_")
_COMPACT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Location:
    """A place from a location string: C{<lat><long><accuracy><epoch>}."""

    lat: float
    lon: float
    accuracy: float | None = None
    epoch: float | None = None


def _finite(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def validPlace(lat, lon) -> bool:
    return lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180


def parseLocation(text: str | None) -> Location | None:
    """
    A location string of the API's tables, C{<lat><long><accuracy><epoch>}:
    the controller separates the four numbers with commas
    (C{55.718409,13.221184,5,1714558500}); signs alone
    (C{+55.718409+013.221184+5+1714558500}) and spaces or semicolons are
    taken too.  L{None} for an empty or unparseable string, or a place off
    the globe.
    """
    if not text or _LOCATION.fullmatch(text) is None:
        return None
    numbers = [_finite(n) for n in _NUMBER.findall(text)]
    if len(numbers) < 2 or None in numbers[:2]:
        return None
    lat, lon = numbers[0], numbers[1]
    if not validPlace(lat, lon):
        return None
    extra = numbers[2:4] + [None, None]
    return Location(lat, lon, extra[0], extra[1])


def parseTags(text: str | None) -> dict[str, str]:
    """
    C{Tags}: C{key:value;key2:value2} ("Tags" of the bookmark object
    metadata).  A tag without a colon is a key with an empty value; empty
    entries are skipped; a later key wins.
    """
    tags: dict[str, str] = {}
    for entry in (text or "").split(";"):
        key, _, value = entry.partition(":")
        if key.strip():
            tags[key.strip()] = value.strip()
    return tags


def parseWKT(text) -> tuple[float, float] | None:
    """C{POINT(lon lat)} (x is the longitude) as C{(lat, lon)}; L{None} if not one."""
    match = _POINT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    lon, lat = _finite(match[1]), _finite(match[2])
    return (lat, lon) if validPlace(lat, lon) else None


@dataclass(frozen=True)
class TrackPoint:
    lat: float
    lon: float
    seconds: float | None
    time: str | None


def parseTrack(data: bytes) -> list[TrackPoint] | None:
    """
    A GNSS track's points ("Location file format"), in file order; entries
    without a usable C{LocationWKT} are skipped.  L{None} if it is not such
    a document at all (not JSON: encrypted, or broken).
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    entries = document.get("CoordinateEntries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return None
    points = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        place = parseWKT(entry.get("LocationWKT"))
        if place is None:
            continue
        seconds = entry.get("SecondsFromStart")
        seconds = _finite(seconds) if not isinstance(seconds, bool) else None
        stamp = entry.get("Timestamp")
        points.append(TrackPoint(place[0], place[1], seconds,
                                 stamp if isinstance(stamp, str) else None))
    return points


def parseTime(text) -> float | None:
    """An RFC 3339 time (C{2024-05-01T10:15:00Z}) as seconds since the epoch; L{None} if not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)  # the API's times are UTC
    return stamp.timestamp()


def metadataTime(metadata: dict[str, str], key: str) -> float | None:
    """C{key} (epoch seconds), else C{keyISO} (RFC 3339), as the API gives both."""
    value = _finite(metadata.get(key))
    if value is None:
        value = parseTime(metadata.get(key + "iso"))
    return value


def objectKind(name: str, metadata: dict[str, str]) -> str:
    """
    What an object of a recording is: C{clip}, C{key}, C{bookmark},
    C{track}, or C{other} (a conflict copy, something unknown).
    """
    if CONFLICT_SUFFIX in name:
        return "other"  # a different copy kept beside the original: not played
    if name.endswith(KEY_SUFFIX) or metadata.get("Filetype", "").lower() == "key":
        return "key"
    if name.startswith(BOOKMARK_PREFIX):
        return "bookmark"
    if isTrack(name):
        return "track"
    extension = name.rpartition(".")[2].lower()
    if extension in VIDEO_TYPES or metadata.get("Containertype", "").lower() in VIDEO_TYPES:
        return "clip"
    return "other"


def keyNames(name: str) -> tuple[str, str]:
    """
    The names a key object of content C{name} may have: the content's with
    C{.key} for its extension (as the API names it) or added to it.
    """
    stem = name.rpartition(".")[0] or name
    return stem + KEY_SUFFIX, name + KEY_SUFFIX


def wantsContent(name: str, metadata: dict[str, str]) -> bool:
    """Whether the catalog reads this object's bytes: bookmarks (their text) and tracks."""
    return objectKind(name, metadata) in ("bookmark", "track")


@dataclass
class Record:
    """Every row one recording container makes."""

    recording: dict
    objects: list[dict] = field(default_factory=list)
    clips: list[dict] = field(default_factory=list)
    keys: list[dict] = field(default_factory=list)
    bookmarks: list[dict] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    """The keys recording_categories holds: each category's id and name, folded."""
    tracks: dict[str, list[TrackPoint]] = field(default_factory=dict)
    """Points by track object name."""


def _place(location: Location | None, prefix: str) -> dict:
    return {f"{prefix}Lat": location.lat if location else None,
            f"{prefix}Lon": location.lon if location else None}


def record(info, objects: list, contents: dict[str, bytes], signed: bool = False,
           known: dict[str, list[TrackPoint]] | None = None) -> Record:
    """
    The rows of one container: C{info} its L{bwscd.interfaces.ContainerInfo},
    C{objects} its L{bwscd.interfaces.ObjectInfo}s, C{contents} the bytes of
    the bookmarks and tracks (by name; one missing is catalogued without
    them), C{signed} whether the controller declares its video signed (the
    StoreSignedVideo capability), C{known} the points of tracks already
    read (by name), used when their bytes are not in C{contents}.
    """
    metadata = info.metadata
    rejected = isRejectedContent(info.name)
    original = metadata.get("Rejectedcontentoriginalcontainer") if rejected else None
    parts = recordingNameParts(original if rejected and original else info.name)
    user, device, named = parts if parts else (None, None, None)
    triggerTime = metadataTime(metadata, "Triggerontime")
    if triggerTime is None and rejected:
        match = _REJECTED_TIME.match(info.name)
        triggerTime = parseTime(metadata.get("Rejectedcontenttime")) or (
            datetime.strptime(match[1], _COMPACT).replace(tzinfo=timezone.utc).timestamp()
            if match else None)
    if triggerTime is None and named is not None:
        triggerTime = named.timestamp()
    if triggerTime is None:
        triggerTime = info.modified
    onPlace = parseLocation(metadata.get("Triggeronlocation"))
    offPlace = parseLocation(metadata.get("Triggerofflocation"))
    names = {o.name for o in objects}
    result = Record(recording={})
    clips = []
    encrypted = False
    for o in objects:
        kind = objectKind(o.name, o.metadata)
        result.objects.append({
            "name": o.name, "kind": kind, "length": o.digests.length, "md5": o.digests.md5,
            "sha256": o.digests.sha256, "modified": o.modified, "contentType": o.contentType,
            "metadata": json.dumps(o.metadata, ensure_ascii=False, sort_keys=True),
        })
        hasKey = any(k in names for k in keyNames(o.name)) if kind != "key" else False
        if kind == "clip":
            start, stop = metadataTime(o.metadata, "Starttime"), metadataTime(o.metadata, "Stoptime")
            encrypted = encrypted or hasKey
            clips.append((start if start is not None else math.inf, o.name, {
                "name": o.name, "start": start, "stop": stop, "length": o.digests.length,
                "md5": o.digests.md5, "sha256": o.digests.sha256, "modified": o.modified,
                "contentType": o.contentType,
                **_place(parseLocation(o.metadata.get("Startlocation")), "start"),
                **_place(parseLocation(o.metadata.get("Stoplocation")), "stop"),
                "encrypted": int(hasKey),
            }))
        elif kind == "key":
            encrypted = True
            result.keys.append({
                "name": o.name, "start": metadataTime(o.metadata, "Starttime"),
                "length": o.digests.length, "sha256": o.digests.sha256,
            })
        elif kind == "bookmark":
            data = contents.get(o.name)
            text = data.decode("utf-8", "replace") if data is not None else ""
            categoryId = o.metadata.get("Categoryid") or None
            categoryName = o.metadata.get("Categoryname") or None
            result.bookmarks.append({
                "name": o.name, "text": text, "categoryId": categoryId,
                "categoryName": categoryName,
                "tags": parseTags(o.metadata.get("Tags")),
                "start": o.metadata.get("Starttime") or None,
                "end": o.metadata.get("Endtime") or None,
            })
            for value in (categoryId, categoryName):
                if value and categoryKey(value) not in result.categories:
                    result.categories.append(categoryKey(value))
        elif kind == "track" and not hasKey:
            data = contents.get(o.name)
            points = parseTrack(data) if data is not None else (known or {}).get(o.name)
            if points:
                result.tracks[o.name] = points
    clips.sort(key=lambda c: (c[0], c[1]))
    for position, (_, _, clip) in enumerate(clips):
        result.clips.append(dict(clip, position=position))
    result.bookmarks.sort(key=lambda b: (parseTime(b["start"]) or 0, b["name"]))
    categories = []
    for bookmark in result.bookmarks:
        category = {"id": bookmark["categoryId"], "name": bookmark["categoryName"]}
        if (category["id"] or category["name"]) and category not in categories:
            categories.append(category)
    result.recording = {
        "id": info.name, "person": user, "device": device,
        "system": metadata.get("Systemid") or None,
        "triggerOn": metadata.get("Triggeron"), "triggerOff": metadata.get("Triggeroff"),
        "triggerTime": triggerTime, "triggerOffTime": metadataTime(metadata, "Triggerofftime"),
        "start": metadataTime(metadata, "Starttime"), "stop": metadataTime(metadata, "Stoptime"),
        "timeZone": metadata.get("Timezone"), "firmware": metadata.get("Firmwareversion"),
        "model": metadata.get("Bwcmodel"), "scu": metadata.get("Scuserialnumber"),
        "status": metadata.get("Status"),
        "triggerLat": onPlace.lat if onPlace else None,
        "triggerLon": onPlace.lon if onPlace else None,
        "triggerAccuracy": onPlace.accuracy if onPlace else None,
        "stopLat": offPlace.lat if offPlace else None,
        "stopLon": offPlace.lon if offPlace else None,
        "stopAccuracy": offPlace.accuracy if offPlace else None,
        "clips": len(result.clips), "bytes": sum(c["length"] for c in result.clips),
        "encrypted": int(encrypted), "signed": int(bool(signed) and bool(result.clips)),
        "rejected": int(rejected), "originalContainer": original,
        "rejectedReason": metadata.get("Rejectedcontentreason") if rejected else None,
        "modified": info.modified, "lastArrival": lastArrival(info.modified, objects),
        "objectCount": info.objectCount,
        "bytesUsed": info.bytesUsed,
        "metadata": json.dumps(metadata, ensure_ascii=False, sort_keys=True),
        "categories": json.dumps(categories, ensure_ascii=False),
        "trackPoints": sum(len(points) for points in result.tracks.values()),
    }
    return result
