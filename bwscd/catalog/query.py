"""
The catalog's read side: what the JSON API and the viewer answer with.

Every method returns a L{Deferred}; the SQL runs on a pool of reader
threads, each with its own read-only connection (WAL: readers never wait
for the writer).  Lists are newest first by C{(triggerTime, id)}, paged
with an opaque cursor.  Filters arrive as strings from a query string
(L{parseFilters}) or typed; a bad value raises L{BadRequest} with what is
wrong, for a 400.
"""

import base64
import binascii
import json
import math
import re
import sqlite3
import threading
import uuid as uuids
from datetime import datetime, timezone

from bwscd.catalog import schema
from bwscd.catalog.geo import boundingBox, boxNearness, distance
from bwscd.catalog.index import INTEGRITY
from bwscd.catalog.records import parseTime
from bwscd.policy.categories import categoryKey
from bwscd.errors import BadRequest, ServiceUnavailable
from bwscd.policy.events import timestamp
from bwscd.threads import Pool

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NEAR_METRES = 1_000_000
"""The widest search around a place: 1,000 km."""
READ_THREADS = 4
FILTERS = ("person", "device", "category", "trigger", "from", "to", "near", "q", "status",
           "rejected", "limit", "cursor")
"""The query-string parameters of a recordings search."""
_WORD = re.compile(r"\w+", re.UNICODE)


def rfc3339(seconds: float | None) -> str | None:
    return None if seconds is None else timestamp(seconds)


def _time(name: str, text: str) -> datetime:
    seconds = parseTime(text)
    if seconds is None or not re.match(r"^\d{4}-\d\d-\d\d[Tt ]", text):
        raise BadRequest(f"{name}={text!r}: not an RFC 3339 time like 2024-05-01T10:15:00Z")
    return datetime.fromtimestamp(seconds, timezone.utc)


def _near(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        lat, lon, metres = (float(p) for p in parts)
    except ValueError:
        raise BadRequest(f"near={text!r}: expected LAT,LON,METRES, e.g. 55.7184,13.2212,500")
    if not all(map(math.isfinite, (lat, lon, metres))) or not (-90 <= lat <= 90) \
            or not (-180 <= lon <= 180):
        raise BadRequest(f"near={text!r}: latitude must be -90 to 90, longitude -180 to 180")
    if not 0 < metres <= MAX_NEAR_METRES:
        raise BadRequest(f"near={text!r}: the distance must be more than 0 and at most "
                         f"{MAX_NEAR_METRES} metres")
    return lat, lon, metres


def parseFilters(arguments: dict[str, str]) -> dict:
    """
    A recordings search from query-string parameters (each given once) to
    L{CatalogQuery.recordings}' keyword arguments.

    @raise BadRequest: for an unknown parameter or a bad value.
    """
    filters = {}
    for name, value in arguments.items():
        if name not in FILTERS:
            raise BadRequest(f"unknown parameter {name!r}; the filters are "
                             f"{', '.join(FILTERS)}")
        if value == "":
            continue
        if name in ("from", "to"):
            filters[name + "_" if name == "from" else name] = _time(name, value)
        elif name == "near":
            filters["near"] = _near(value)
        elif name == "limit":
            if not value.isdigit():
                raise BadRequest(f"limit={value!r}: not a number from 1 to {MAX_LIMIT}")
            filters["limit"] = int(value)
        elif name == "rejected":
            if value not in ("true", "false"):
                raise BadRequest(f"rejected={value!r}: true or false")
            filters["rejected"] = value == "true"
        else:
            filters[name] = value
    return filters


def _cursor(triggerTime: float, id: str) -> str:
    raw = json.dumps([triggerTime, id], ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _uncursor(text: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        triggerTime, id = json.loads(raw)
        if isinstance(triggerTime, (int, float)) and isinstance(id, str):
            return float(triggerTime), id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        pass
    raise BadRequest("cursor: not one this server gave (use the 'next' of a previous page)")


def _place(lat, lon) -> dict | None:
    return None if lat is None or lon is None else {"lat": lat, "lon": lon}


_LIST_COLUMNS = (
    "r.id, r.person, r.device, r.start, r.stop, r.triggerTime, r.triggerOn, r.triggerOff, "
    "r.triggerLat, r.triggerLon, r.categories, r.clips, r.bytes, r.status, r.encrypted, "
    "r.rejected, p.display, p.name, p.userId, d.name")
_DETAIL_COLUMNS = (
    "r.timeZone, r.firmware, r.model, r.scu, r.system, r.stopLat, r.stopLon, r.metadata, "
    "r.signed, r.trackPoints, r.originalContainer, r.rejectedReason, r.triggerOffTime, "
    "r.triggerAccuracy")
_FROM = ("LEFT JOIN people p ON p.uuid = r.person LEFT JOIN devices d ON d.id = r.device")


def _recordingJSON(row) -> dict:
    (id, person, device, start, stop, triggerTime, triggerOn, triggerOff, lat, lon,
     categories, clips, bytes_, status, encrypted, rejected, display, name, userId,
     deviceName) = row[:20]
    return {
        "id": id,
        "person": {"uuid": person, "display": display if display is not None else person,
                   "name": name, "userId": userId},
        "device": {"id": device, "name": deviceName},
        "start": rfc3339(start), "stop": rfc3339(stop), "triggerTime": rfc3339(triggerTime),
        "triggerOn": triggerOn, "triggerOff": triggerOff,
        "triggerLocation": _place(lat, lon),
        "categories": json.loads(categories),
        "clips": clips, "bytes": bytes_, "status": status,
        "encrypted": bool(encrypted), "rejected": bool(rejected),
    }


def _ftsQuery(text: str) -> str | None:
    words = _WORD.findall(text)
    return " AND ".join(f'"{w}"*' for w in words) if words else None


class CatalogQuery:
    """
    Reads the catalog at C{path}.  The file is made by the main process
    (L{bwscd.catalog.index.CatalogIndex.open}); until it exists, every
    query is a 503.
    """

    def __init__(self, path: str, reactor=None, threads: int = READ_THREADS):
        self.path = path
        self._local = threading.local()
        self._pool = Pool(reactor, "catalog-queries", threads)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = schema.open(self.path, readOnly=True)
            except sqlite3.OperationalError:
                raise ServiceUnavailable("the catalog is not ready yet")
            self._local.db = db
        return db

    def read(self, function, *args):
        """C{function(db, *args)} on a query thread, in one snapshot: L{Deferred} of its result."""
        def read():
            db = self._db()
            db.execute("BEGIN")  # one snapshot for the whole answer
            try:
                return function(db, *args)
            finally:
                db.execute("COMMIT")
        return self._pool.run(read)

    # people

    def people(self):
        return self.read(self._people, None)

    def person(self, uuid: str):
        return self.read(self._person, uuid)

    def _people(self, db, only):
        counts = {row[0]: (row[1], row[2]) for row in db.execute(
            "SELECT person, recordings, latest FROM person_recordings"
            + (" WHERE person = ?" if only else ""), (only,) if only else ())}
        rows = db.execute(
            "SELECT uuid, name, userId, display, active, history FROM people "
            + ("WHERE uuid = ? " if only else "") + "ORDER BY display COLLATE NOCASE, uuid",
            (only,) if only else ())
        people = []
        for uuid, name, userId, display, active, history in rows:
            count, latest = counts.get(uuid, (0, None))
            people.append({"uuid": uuid, "name": name, "userId": userId, "display": display,
                           "active": bool(active), "recordings": count,
                           "latest": rfc3339(latest), "history": json.loads(history)})
        return people

    def _person(self, db, uuid):
        found = self._people(db, uuid)
        return found[0] if found else None

    # recordings

    def recordings(self, person=None, device=None, category=None, trigger=None, from_=None,
                   to=None, near=None, q=None, status=None, rejected=False,
                   limit=DEFAULT_LIMIT, cursor=None):
        """
        C{{"items": [RecordingJSON...], "next": cursor or None}}: recordings,
        or with C{rejected} the rejected content kept apart (L{None}: both).
        """
        if person is not None:
            try:
                person = str(uuids.UUID(person))
            except ValueError:
                raise BadRequest(f"person={person!r}: not a user's UUID")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit={limit!r}: must be 1 to {MAX_LIMIT}")
        for name, value in (("from", from_), ("to", to)):
            if value is not None and not isinstance(value, datetime):
                raise BadRequest(f"{name}: not a time")
        if near is not None:
            near = _near(",".join(map(str, near)))
        after = _uncursor(cursor) if cursor else None
        return self.read(self._recordings, dict(
            person=person, device=device, category=category, trigger=trigger, from_=from_,
            to=to, near=near, q=q, status=status, rejected=rejected, limit=limit,
            after=after))

    def _nearby(self, db, lat, lon, metres) -> list[str]:
        south, north, ranges = boundingBox(lat, lon, metres)
        found, keys = set(), set()
        for west, east in ranges:
            box = (south, north, west, east)
            # The tracks whose box meets the place's: decided by their box
            # where it can be, else by their points in the place's box, until
            # one is near enough.
            for key, *trackBox in db.execute(
                    "SELECT rkey, south, north, west, east FROM track_boxes WHERE south <= ? "
                    "AND north >= ? AND west <= ? AND east >= ?", (north, south, east, west)):
                if key in keys:
                    continue
                nearness = boxNearness(lat, lon, metres, trackBox, box)
                if nearness is not None:
                    if nearness:
                        keys.add(key)
                    continue
                for plat, plon in db.execute(
                        "SELECT lat, lon FROM track_points WHERE rkey = ? "
                        "AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?", (key, *box)):
                    if distance(lat, lon, plat, plon) <= metres:
                        keys.add(key)
                        break
            for rid, plat, plon in db.execute(
                    "SELECT id, triggerLat, triggerLon FROM recordings WHERE triggerLat "
                    "BETWEEN ? AND ? AND triggerLon BETWEEN ? AND ?", box):
                if rid not in found and distance(lat, lon, plat, plon) <= metres:
                    found.add(rid)
        if keys:
            found.update(row[0] for row in db.execute(
                "SELECT id FROM recording_keys WHERE key IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(keys)),)))
        return sorted(found)

    def _matching(self, db, text: str) -> tuple[list[str], list[str], str | None]:
        escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        folded = f"%{escaped}%"
        people = [r[0] for r in db.execute(
            "SELECT uuid FROM people WHERE searchName LIKE ? ESCAPE '\\'", (folded,))]
        devices = [r[0] for r in db.execute(
            "SELECT id FROM devices WHERE searchName LIKE ? ESCAPE '\\' "
            "OR id LIKE ? ESCAPE '\\'",
            (folded, folded))]
        return people, devices, _ftsQuery(text)

    def _recordings(self, db, f):
        where, args = [], []
        narrow = f["person"] is not None or f["device"] is not None
        if f["category"] is not None and not narrow:
            # Driven by the category's index, newest first.
            source = "recording_categories c CROSS JOIN recordings r ON r.id = c.recording"
            order = ("c.triggerTime", "c.recording")
            where.append("c.category = ?")
            args.append(categoryKey(f["category"]))
        elif f["category"] is not None:
            # A person's or a device's recordings are few: driven by their
            # index, each looked up in the category's.
            source = "recordings r"
            order = ("r.triggerTime", "r.id")
            where.append("EXISTS (SELECT 1 FROM recording_categories c WHERE c.category = ? "
                         "AND c.triggerTime = r.triggerTime AND c.recording = r.id)")
            args.append(categoryKey(f["category"]))
        else:
            source = "recordings r"
            order = ("r.triggerTime", "r.id")
        for column, key in (("r.person", "person"), ("r.device", "device"),
                            ("r.triggerOn", "trigger"), ("r.status", "status")):
            if f[key] is not None:
                where.append(f"{column} = ?")
                args.append(f[key])
        if f["rejected"] is not None:
            where.append("r.rejected = ?")
            args.append(int(f["rejected"]))
        if f["from_"] is not None:
            where.append(f"{order[0]} >= ?")
            args.append(f["from_"].timestamp())
        if f["to"] is not None:
            where.append(f"{order[0]} < ?")
            args.append(f["to"].timestamp())
        if f["near"] is not None:
            ids = self._nearby(db, *f["near"])
            if not ids:
                return {"items": [], "next": None}
            where.append("r.id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(ids))
        if f["q"]:
            people, devices, fts = self._matching(db, f["q"])
            alternatives = ["r.person IN (SELECT value FROM json_each(?))",
                            "r.device IN (SELECT value FROM json_each(?))"]
            args += [json.dumps(people), json.dumps(devices)]
            if fts is not None:
                alternatives.append("r.id IN (SELECT recording FROM bookmark_text "
                                    "WHERE bookmark_text MATCH ?)")
                args.append(fts)
            where.append("(" + " OR ".join(alternatives) + ")")
        if f["after"] is not None:
            where.append(f"({order[0]}, {order[1]}) < (?, ?)")
            args += list(f["after"])
        sql = (f"SELECT {_LIST_COLUMNS} FROM {source} {_FROM}"
               + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY {order[0]} DESC, {order[1]} DESC LIMIT ?")
        args.append(f["limit"] + 1)
        try:
            rows = db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "fts5" in str(e):
                raise BadRequest(f"q={f['q']!r}: not a search this catalog understands")
            raise
        more = len(rows) > f["limit"]
        rows = rows[: f["limit"]]
        items = [_recordingJSON(row) for row in rows]
        following = None
        if more:
            last = rows[-1]
            following = _cursor(last[5], last[0])
        return {"items": items, "next": following}

    # one recording

    def recording(self, id: str):
        """RecordingDetailJSON, or L{None}."""
        return self.read(self._recording, id)

    def _recording(self, db, id):
        row = db.execute(f"SELECT {_LIST_COLUMNS}, {_DETAIL_COLUMNS} FROM recordings r {_FROM} "
                         "WHERE r.id = ?", (id,)).fetchone()
        if row is None:
            return None
        detail = _recordingJSON(row)
        (timeZone, firmware, model, scu, system, stopLat, stopLon, metadata, signed,
         trackPoints, original, reason, triggerOffTime, accuracy) = row[20:]
        arrivals = {}
        for object, account, time in db.execute(
                "SELECT object, account, time FROM custody WHERE recording = ? AND "
                "type = 'clip.stored' ORDER BY time", (id,)):
            arrivals.setdefault(object, (account, time))
        base = f"/catalog/v1/recordings/{id}"
        clips = []
        for (name, position, start, stop, length, md5, sha256, modified, contentType,
             sLat, sLon, eLat, eLon, encrypted) in db.execute(
                "SELECT name, position, start, stop, length, md5, sha256, modified, "
                "contentType, startLat, startLon, stopLat, stopLon, encrypted FROM clips "
                "WHERE recording = ? ORDER BY position", (id,)):
            clips.append({
                "name": name, "position": position, "start": rfc3339(start),
                "stop": rfc3339(stop), "length": length, "md5": md5, "sha256": sha256,
                "arrived": rfc3339(modified), "account": arrivals.get(name, (None,))[0],
                "startLocation": _place(sLat, sLon), "stopLocation": _place(eLat, eLon),
                "encrypted": bool(encrypted), "contentType": contentType,
                "url": f"{base}/clips/{name}",
            })
        bookmarks = [{"name": name, "text": text, "categoryId": categoryId,
                      "categoryName": categoryName, "tags": json.loads(tags),
                      "start": start, "end": end}
                     for name, text, categoryId, categoryName, tags, start, end in db.execute(
                         "SELECT name, text, categoryId, categoryName, tags, start, end FROM "
                         "bookmarks WHERE recording = ?", (id,))]
        bookmarks.sort(key=lambda b: (parseTime(b["start"]) or 0, b["name"]))
        keys = [{"name": name, "start": rfc3339(start), "length": length, "sha256": sha256}
                for name, start, length, sha256 in db.execute(
                    "SELECT name, start, length, sha256 FROM keys WHERE recording = ? "
                    "ORDER BY name", (id,))]
        objects = [{"name": name, "kind": kind, "length": length, "md5": md5,
                    "sha256": sha256, "arrived": rfc3339(modified),
                    "account": arrivals.get(name, (None,))[0], "contentType": contentType,
                    "metadata": json.loads(meta)}
                   for name, kind, length, md5, sha256, modified, contentType, meta in db.execute(
                       "SELECT name, kind, length, md5, sha256, modified, contentType, "
                       "metadata FROM objects WHERE recording = ? ORDER BY name", (id,))]
        anomalies = [{"object": object, "anomaly": anomaly, "time": time}
                     for object, anomaly, time in db.execute(
                         "SELECT object, anomaly, time FROM anomalies WHERE recording = ? "
                         "ORDER BY time, object, anomaly", (id,))]
        detail.update({
            "timeZone": timeZone, "firmware": firmware, "model": model, "scu": scu,
            "system": system, "triggerOffTime": rfc3339(triggerOffTime),
            "triggerAccuracy": accuracy, "stopLocation": _place(stopLat, stopLon),
            "metadata": json.loads(metadata), "clips": clips, "clipCount": len(clips),
            "bookmarks": bookmarks, "keys": keys,
            "track": {"points": trackPoints, "geojson": f"{base}/track.geojson",
                      "gpx": f"{base}/track.gpx"},
            "anomalies": anomalies, "objects": objects, "signedVideo": bool(signed),
            # What the fixity scrub and bwscd verify found; empty: nothing wrong.
            "integrity": [a for a in anomalies if a["anomaly"].startswith(INTEGRITY)],
            "originalContainer": original, "rejectedReason": reason,
        })
        return detail

    def objectDigests(self, id: str):
        """
        What the catalog saw arrive in container C{id}: C{{name: (length,
        sha256)}} (for L{bwscd.policy.fixity}, to find what storage lost).
        """
        return self.read(lambda db: {name: (length, sha256) for name, length, sha256 in
                                     db.execute("SELECT name, length, sha256 FROM objects "
                                                "WHERE recording = ?", (id,))})

    def arrivedSince(self, seconds: float):
        """
        Bytes of the objects that arrived since C{seconds} since the epoch
        and are still stored (for L{bwscd.policy.capacity}'s intake rate).
        """
        return self.read(lambda db: db.execute(
            "SELECT coalesce(sum(length), 0) FROM objects WHERE modified >= ?",
            (seconds,)).fetchone()[0])

    def track(self, id: str):
        """C{[{"lat","lon","time","seconds"}]} in order; L{None} for no such recording."""
        return self.read(self._track, id)

    def _track(self, db, id):
        if db.execute("SELECT 1 FROM recordings WHERE id = ?", (id,)).fetchone() is None:
            return None
        return [{"lat": lat, "lon": lon, "time": time, "seconds": seconds}
                for lat, lon, time, seconds in db.execute(
                    "SELECT lat, lon, time, seconds FROM track_points WHERE rkey = "
                    "(SELECT key FROM recording_keys WHERE id = ?) ORDER BY seq", (id,))]

    def custody(self, id: str):
        """The custody events of recording C{id}, oldest first."""
        return self.read(self._custody, id)

    def _custody(self, db, id):
        return [{"time": time, "type": type, "account": account, "object": object,
                 "event": json.loads(detail)}
                for time, type, account, object, detail in db.execute(
                    "SELECT time, type, account, object, detail FROM custody WHERE "
                    "recording = ? ORDER BY time, eventKey", (id,))]
