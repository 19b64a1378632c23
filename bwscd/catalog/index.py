"""
The catalog's write side: one container read from storage through the
storage contract (L{IStorageBackend.containerInfo}, C{listObjects} pages,
C{readObject} of its bookmarks and GNSS tracks), turned into rows
(L{bwscd.catalog.records}) and written in one transaction; the people from
the registry document; custody and anomalies from events.

Every SQLite write runs on the catalog's one writer thread (a pool of one:
SQLite has one writer, and its connection stays on the thread that opened
it); reading the objects' bytes on a pool of its own.  The reactor only
hands work over.  The write functions (L{writeRecord}, L{writePeople},
L{writeEvents}) take a connection, so the benchmark fills a catalog with
the same code.
"""

import hashlib
import json
import os
import sqlite3
import time

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from bwscd.catalog import records, schema
from bwscd.catalog.records import TrackPoint
from bwscd.constraints import DEVICES, GNSS_CHECK_LIMIT, SYSTEM, USERS
from bwscd.policy.registry import STATE, displayName
from bwscd.threads import Pool

log = Logger()

PAGE = 1000
"""Objects asked for per listObjects call."""
READ_CHUNK = 1 << 20
REGISTRY_CONTAINERS = (SYSTEM, USERS, DEVICES)
"""The registry's containers: not recordings."""

CORRUPT = "evidence.corrupt"
"""Fixity (L{bwscd.policy.fixity}): an object's bytes are not what arrived."""
INTEGRITY = "integrity: "
"""How a L{CORRUPT} event's anomaly begins, for the read side's C{integrity}."""
ANOMALY_TYPES = ("recording.anomaly", "gnss.invalid", "gnss.unchecked", CORRUPT)
CUSTODY_TYPES = ("clip.stored", "object.read", "recording.viewed", "recording.exported",
                 "object.deleted", "container.deleted", "recording.updated", "recording.expired")
"""The events a recording's chain of custody is made of."""


def eventKey(event: dict) -> str:
    """
    One event's identity, so that the same event taken twice (live, and
    replayed from the event log by a rebuild running meanwhile) is one row.
    """
    encoded = json.dumps(event, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _deleteRecording(db, recording: str) -> str | None:
    """
    Every row derived from the container's contents (not custody, not
    anomalies); the person it had, whose L{recount} is then due.
    """
    row = db.execute("SELECT person FROM recordings WHERE id = ?", (recording,)).fetchone()
    db.execute("DELETE FROM bookmark_text WHERE rowid IN "
               "(SELECT textRow FROM bookmarks WHERE recording = ?)", (recording,))
    for table in ("track_points", "track_boxes"):
        db.execute(f"DELETE FROM {table} WHERE rkey = "
                   "(SELECT key FROM recording_keys WHERE id = ?)", (recording,))
    for table in ("recordings WHERE id", "objects WHERE recording", "clips WHERE recording",
                  "keys WHERE recording", "bookmarks WHERE recording",
                  "recording_categories WHERE recording", "tracks WHERE recording"):
        db.execute(f"DELETE FROM {table} = ?", (recording,))
    return None if row is None else row[0]


def recount(db, *people: str | None) -> None:
    """C{people}'s rows of C{person_recordings}, from their recordings as they are now."""
    for person in {p for p in people if p is not None}:
        db.execute("DELETE FROM person_recordings WHERE person = ?", (person,))
        db.execute("INSERT INTO person_recordings (person, recordings, latest) "
                   "SELECT person, count(*), max(triggerTime) FROM recordings "
                   "WHERE person = ? AND rejected = 0 GROUP BY person", (person,))


def recordingKey(db, recording: str) -> int:
    """The small integer that stands for C{recording} in track_points, made once."""
    db.execute("INSERT OR IGNORE INTO recording_keys (id) VALUES (?)", (recording,))
    return db.execute("SELECT key FROM recording_keys WHERE id = ?", (recording,)).fetchone()[0]


_RECORDING_COLUMNS = (
    "id", "person", "device", "system", "triggerOn", "triggerOff", "triggerTime",
    "triggerOffTime", "start", "stop", "timeZone", "firmware", "model", "scu", "status",
    "triggerLat", "triggerLon", "triggerAccuracy", "stopLat", "stopLon", "stopAccuracy",
    "clips", "bytes", "encrypted", "signed", "rejected", "originalContainer",
    "rejectedReason", "modified", "lastArrival", "objectCount", "bytesUsed", "metadata", "categories",
    "trackPoints")
_INSERT_RECORDING = (f"INSERT INTO recordings ({', '.join(_RECORDING_COLUMNS)}) VALUES "
                     f"({', '.join('?' * len(_RECORDING_COLUMNS))})")
_CLIP_COLUMNS = ("name", "position", "start", "stop", "length", "md5", "sha256", "modified",
                 "contentType", "startLat", "startLon", "stopLat", "stopLon", "encrypted")


def writeRecord(db, record: records.Record) -> None:
    """Replace one recording's rows by C{record}'s; in the caller's transaction."""
    row = record.recording
    rid = row["id"]
    had = _deleteRecording(db, rid)
    db.execute(_INSERT_RECORDING, [row[c] for c in _RECORDING_COLUMNS])
    recount(db, had, row["person"])
    db.executemany(
        "INSERT INTO objects (recording, name, kind, length, md5, sha256, modified, "
        "contentType, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(rid, o["name"], o["kind"], o["length"], o["md5"], o["sha256"], o["modified"],
          o["contentType"], o["metadata"]) for o in record.objects])
    db.executemany(
        f"INSERT INTO clips (recording, {', '.join(_CLIP_COLUMNS)}) VALUES "
        f"(?, {', '.join('?' * len(_CLIP_COLUMNS))})",
        [(rid, *[c[k] for k in _CLIP_COLUMNS]) for c in record.clips])
    db.executemany(
        "INSERT INTO keys (recording, name, start, length, sha256) VALUES (?, ?, ?, ?, ?)",
        [(rid, k["name"], k["start"], k["length"], k["sha256"]) for k in record.keys])
    for b in record.bookmarks:
        tags = b["tags"]
        searchable = " ".join([b["text"], *(f"{k} {v}" for k, v in tags.items()),
                               b["categoryName"] or "", b["categoryId"] or ""])
        textRow = db.execute("INSERT INTO bookmark_text (recording, text) VALUES (?, ?)",
                             (rid, searchable)).lastrowid
        db.execute(
            "INSERT INTO bookmarks (recording, name, text, categoryId, categoryName, tags, "
            "start, end, textRow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rid, b["name"], b["text"], b["categoryId"], b["categoryName"],
             json.dumps(tags, ensure_ascii=False), b["start"], b["end"], textRow))
    db.executemany(
        "INSERT INTO recording_categories (category, triggerTime, recording) VALUES (?, ?, ?)",
        [(category, row["triggerTime"], rid) for category in record.categories])
    first = 0
    if record.tracks:
        key = recordingKey(db, rid)
    for name, points in record.tracks.items():  # in listing order: by name
        db.execute("INSERT INTO tracks (recording, object, first, count) VALUES (?, ?, ?, ?)",
                   (rid, name, first, len(points)))
        db.executemany(
            "INSERT INTO track_points (rkey, seq, lat, lon, seconds, time) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(key, first + n, p.lat, p.lon, p.seconds, p.time) for n, p in enumerate(points)])
        first += len(points)
    if first:
        every = [p for points in record.tracks.values() for p in points]
        db.execute("INSERT INTO track_boxes (rkey, south, north, west, east) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (key, min(p.lat for p in every), max(p.lat for p in every),
                    min(p.lon for p in every), max(p.lon for p in every)))


def dropRecording(db, recording: str) -> None:
    """A container that is gone: its rows go, its custody stays (it tells of the deletion)."""
    recount(db, _deleteRecording(db, recording))


def _searchName(entry: dict) -> str:
    names = [entry.get("name") or "", entry.get("userId") or ""]
    for state in entry.get("history") or []:
        names += [state.get("name") or "", state.get("userId") or ""]
    return " ".join(dict.fromkeys(n for n in names if n)).casefold()


def _active(entry: dict) -> int:
    return int(str(entry.get("active", "True")).strip().lower() != "false")


def writePeople(db, document: dict) -> None:
    """The registry document's users, devices and systems, replacing those before."""
    db.execute("DELETE FROM people")
    db.execute("DELETE FROM devices")
    db.execute("DELETE FROM systems")
    db.executemany(
        "INSERT INTO people (uuid, name, userId, active, display, history, searchName) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(uuid, e.get("name"), e.get("userId") or None, _active(e), displayName(e),
          json.dumps(e.get("history") or [], ensure_ascii=False), _searchName(e))
         for uuid, e in (document.get(USERS) or {}).items()])
    db.executemany(
        "INSERT INTO devices (id, name, model, active, history, searchName) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(id, e.get("name"), e.get("model"), _active(e),
          json.dumps(e.get("history") or [], ensure_ascii=False), _searchName(e))
         for id, e in (document.get(DEVICES) or {}).items()])
    db.executemany(
        "INSERT INTO systems (id, name, connectionId) VALUES (?, ?, ?)",
        [(id, e.get("systemName"), e.get("connectionId"))
         for id, e in (document.get(SYSTEM) or {}).items()])


def writeEvents(db, events: list[dict]) -> None:
    """Custody and anomaly rows of C{events} (those of other types are skipped)."""
    for event in events:
        type, container = event.get("type"), event.get("container")
        if not isinstance(container, str):
            continue
        if type in CUSTODY_TYPES:
            db.execute(
                "INSERT OR IGNORE INTO custody (eventKey, recording, time, type, account, "
                "object, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (eventKey(event), container, event.get("time", ""), type,
                 event.get("account"), event.get("storedAs") or event.get("object"),
                 json.dumps(event, ensure_ascii=False, sort_keys=True)))
        elif type in ANOMALY_TYPES:
            what = event.get("anomaly") or event.get("problem") or event.get("reason") or type
            if type == CORRUPT:
                what = f"{INTEGRITY}{what} (expected SHA-256 {event.get('expected')}, " \
                       f"found {event.get('found')}; checked by {event.get('account')})"
            elif type != "recording.anomaly":
                what = f"GNSS track {'not checked' if type == 'gnss.unchecked' else 'invalid'}: {what}"
            db.execute(
                "INSERT OR IGNORE INTO anomalies (eventKey, recording, object, anomaly, time) "
                "VALUES (?, ?, ?, ?, ?)",
                (eventKey(event), container, event.get("object"), what, event.get("time")))


def newCategories(db, record: records.Record) -> list[dict]:
    """
    The categories of C{record} that the catalog did not hold for it yet,
    each C{{"container", "categoryId", "categoryName", "person", "device"}}:
    what C{recording.categorised} says (a bookmark may bring its category
    after the clips, or another one later).  Before L{writeRecord}.
    """
    row = record.recording
    stored = db.execute("SELECT categories FROM recordings WHERE id = ?",
                        (row["id"],)).fetchone()
    before = json.loads(stored[0]) if stored is not None else []
    return [{"container": row["id"], "categoryId": category["id"],
             "categoryName": category["name"], "person": row["person"],
             "device": row["device"]}
            for category in json.loads(row["categories"]) if category not in before]


class Collected:
    """What was read of one container, for L{CatalogIndex.store}."""

    def __init__(self, name, info, objects, contents, stamp):
        self.name = name
        self.info = info
        """Its L{bwscd.interfaces.ContainerInfo}; L{None}: it is gone."""
        self.objects = objects
        self.contents = contents
        self.stamp = stamp


class CatalogIndex:
    """
    The catalog's writer: at most one per catalog file, in the main
    process (or C{bwscd catalog rebuild}).

    @param signed: whether the controller declares its video signed (the
        StoreSignedVideo capability).
    """

    def __init__(self, backend, path: str, reactor=None, signed: bool = False):
        self._backend = backend
        self.path = path
        self.signed = signed
        self._db = None
        self._writes = Pool(reactor, "catalog-writes", 1, last=self._close)
        self._reads = Pool(reactor, "catalog-reads", 2)
        self._stamp = 0
        self._stored: dict[str, int] = {}
        """The stamp of the newest collection stored, by container."""

    # On the writer thread.

    def _connection(self):
        if self._db is None:
            try:
                self._db = schema.open(self.path)
            except sqlite3.OperationalError:
                raise  # the disk full, busy, failing: the file is not to blame
            except sqlite3.DatabaseError as e:
                # Derived data: a catalog SQLite can't use (damaged, or of
                # another version) is kept aside for a look, and made again.
                aside = f"{self.path}.unusable-{int(time.time())}"
                log.warn("catalog: {path} can't be used ({why}); moved to {aside}, and "
                         "rebuilt from storage", path=self.path, why=str(e), aside=aside)
                for suffix in ("-wal", "-shm", ""):
                    if os.path.exists(self.path + suffix):
                        os.replace(self.path + suffix, aside + suffix)
                self._db = schema.open(self.path)
        return self._db

    def _close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    def _transaction(self, function, *args):
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = function(db, *args)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _known(self, recording: str) -> dict[str, str]:
        rows = self._connection().execute(
            "SELECT name, sha256 FROM objects WHERE recording = ? AND kind IN "
            "('bookmark', 'track')", (recording,))
        return dict(rows.fetchall())

    def _writeCollected(self, db, collected: list[Collected]) -> list[dict]:
        """@return: the categories that first appeared, as L{newCategories} has them."""
        appeared = []
        for c in collected:
            if c.info is None:
                dropRecording(db, c.name)
                continue
            known = {}
            for o in c.objects:
                if records.objectKind(o.name, o.metadata) == "track" and o.name not in c.contents:
                    known[o.name] = [TrackPoint(*row) for row in db.execute(
                        "SELECT p.lat, p.lon, p.seconds, p.time FROM tracks t "
                        "JOIN recording_keys k ON k.id = t.recording "
                        "JOIN track_points p ON p.rkey = k.key "
                        "AND p.seq BETWEEN t.first AND t.first + t.count - 1 "
                        "WHERE t.recording = ? AND t.object = ? ORDER BY p.seq",
                        (c.name, o.name))]
                elif records.objectKind(o.name, o.metadata) == "bookmark" \
                        and o.name not in c.contents:
                    row = db.execute("SELECT text FROM bookmarks WHERE recording = ? AND "
                                     "name = ?", (c.name, o.name)).fetchone()
                    if row is not None:
                        c.contents[o.name] = row[0].encode("utf-8")
            record = records.record(c.info, c.objects, c.contents, self.signed, known)
            appeared += newCategories(db, record)
            writeRecord(db, record)
        return appeared

    # From the reactor.

    def open(self):
        """Create the catalog (and its schema) if missing. @return: L{Deferred}."""
        return self._writes.run(lambda: self._connection() and None)

    def run(self, function, *args):
        """C{function(db, *args)} in one transaction on the writer thread. @return: L{Deferred}."""
        return self._writes.run(self._transaction, function, *args)

    @inlineCallbacks
    def collect(self, name: str, info=None, catalogued=True):
        """
        Read container C{name} from storage (C{info}: its L{ContainerInfo},
        if the caller just listed it), reading only the bookmarks and tracks
        whose bytes the catalog does not hold yet (none, if the caller knows
        the container is not C{catalogued}).

        @return: L{Deferred} firing with a L{Collected}.
        """
        self._stamp += 1
        stamp = self._stamp
        if info is None:
            info = yield self._backend.containerInfo(name)
        if info is None:
            return Collected(name, None, [], {}, stamp)
        objects = []
        marker = ""
        while page := (yield self._backend.listObjects(name, "", marker, PAGE)):
            objects.extend(page)
            marker = page[-1].name
        wanted = [o for o in objects if records.wantsContent(o.name, o.metadata)
                  and o.digests.length <= GNSS_CHECK_LIMIT]
        contents = {}
        if wanted:
            names = {o.name for o in objects}
            known = (yield self._writes.run(self._known, name)) if catalogued else {}
            for o in wanted:
                if known.get(o.name) == o.digests.sha256:
                    continue  # read before: its rows are kept
                if any(k in names for k in records.keyNames(o.name)):
                    continue  # encrypted: not readable here
                contents[o.name] = yield self._readAll(name, o)
        return Collected(name, info, objects, contents, stamp)

    @inlineCallbacks
    def _readAll(self, container, info):
        try:
            reader = yield self._backend.readObject(container, info.name, 0, None)
        except Exception:
            log.failure("catalog: could not read {container}/{name}; catalogued without "
                        "its content", container=container, name=info.name)
            return None
        return (yield self._reads.run(self._drain, reader))

    @staticmethod
    def _drain(reader) -> bytes | None:
        pieces = []
        try:
            while data := reader.read(READ_CHUNK):
                pieces.append(data)
        except Exception:
            return None
        finally:
            reader.close()
        return b"".join(pieces)

    def store(self, collected: list[Collected]):
        """
        Write what was collected, in one transaction; a collection older
        than one already stored for the same container (a rebuild's, passed
        by live upkeep) is skipped.  @return: L{Deferred}.
        """
        fresh = []
        for c in collected:
            if self._stored.get(c.name, -1) > c.stamp:
                continue
            self._stored[c.name] = c.stamp
            fresh.append(c)
        return self.run(self._writeCollected, fresh)

    @inlineCallbacks
    def indexContainer(self, name: str, info=None):
        """
        Catalog container C{name} as storage holds it now (dropped if gone).

        @return: L{Deferred} firing with the categories that first appeared
            in it (L{newCategories}).
        """
        if name in REGISTRY_CONTAINERS:
            return []
        collected = yield self.collect(name, info)
        return (yield self.store([collected]))

    @inlineCallbacks
    def indexPeople(self):
        """The people, devices and systems as the registry document has them."""
        stored = yield self._backend.readState(STATE)
        document = json.loads(stored) if stored is not None else {}
        yield self.run(writePeople, document)

    def addEvents(self, events: list[dict]):
        """Custody and anomaly rows. @return: L{Deferred}."""
        return self.run(writeEvents, events)

    def catalogued(self):
        """
        @return: L{Deferred} firing with what the catalog holds of each
            container: C{{name: (objectCount, bytesUsed, modified, metadata)}}.
        """
        def read(db):
            return {row[0]: tuple(row[1:]) for row in db.execute(
                "SELECT id, objectCount, bytesUsed, modified, metadata FROM recordings")}
        return self.run(read)

    def getState(self, key: str):
        return self.run(lambda db: (db.execute("SELECT value FROM state WHERE key = ?",
                                               (key,)).fetchone() or (None,))[0])

    def setState(self, key: str, value: str):
        return self.run(lambda db: db.execute(
            "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value)) and None)
