"""
The catalog's SQLite schema, and opening the file the one way every part
of bwscd does: WAL (readers in every process never wait for the writer, nor
it for them), a busy timeout (the writer's checkpoints), foreign keys off
(rows of a recording are replaced together, in one transaction).

GNSS points, the bulk of a catalog (100 a recording), name their
recording by a small integer of C{recording_keys}, which is never reused.

One writer, the main process (L{bwscd.catalog.index}); readers open it
with C{query_only}.  Everything here is derived from storage and the event
log: a schema change bumps L{VERSION}, and a catalog of another version is
rebuilt rather than migrated, unless what changed can be made from the
rows it has (L{_UPGRADES}): a rebuild of a million recordings takes half
an hour, making an index again half a minute.
"""

import os
import sqlite3

VERSION = 5
"""C{PRAGMA user_version} of the catalog this code reads and writes."""

_SUMMARIES = """
CREATE VIRTUAL TABLE IF NOT EXISTS track_boxes USING rtree(rkey, south, north, west, east);
CREATE TABLE IF NOT EXISTS person_recordings (
    person TEXT PRIMARY KEY, recordings INTEGER NOT NULL, latest REAL NOT NULL
) WITHOUT ROWID;
"""
"""
What is summed up of the rows, kept with them by
L{bwscd.catalog.index.writeRecord}:

  - C{track_boxes}: each tracked recording's box, the least latitude and
    longitude ranges that hold all its GNSS points (a track across the
    antimeridian gets nearly every longitude, and is then looked at for
    every place).  C{near} looks at the points of the recordings whose box
    meets its own, rather than at a band of every point in a range of
    latitudes.  An R*Tree keeps 32-bit floats, rounded outwards: a box may
    be a little larger, never smaller.
  - C{person_recordings}: each person's number of recordings (rejected
    content apart) and latest trigger time, for the people list, which
    would otherwise count a million rows.
"""

_FILL_SUMMARIES = _SUMMARIES + """
DELETE FROM track_boxes;
INSERT INTO track_boxes (rkey, south, north, west, east)
    SELECT rkey, min(lat), max(lat), min(lon), max(lon) FROM track_points GROUP BY rkey;
DELETE FROM person_recordings;
INSERT INTO person_recordings (person, recordings, latest)
    SELECT person, count(*), max(triggerTime) FROM recordings
    WHERE rejected = 0 AND person IS NOT NULL GROUP BY person;
DROP INDEX IF EXISTS track_places;
"""

_UPGRADES = {
    3: "DROP INDEX IF EXISTS recordings_clock;" + _FILL_SUMMARIES,
    4: _FILL_SUMMARIES,
}
"""
For a catalog of an older version whose rows this one reads as they are,
what makes it this version (L{_INDICES} then makes the indices it lacks):
version 4's recordings_clock covers originalContainer too; version 5 has
L{_SUMMARIES} (made from the rows: a few minutes for a million
recordings), and no index of every GNSS point.
"""

BUSY_TIMEOUT_MS = 10_000
"""How long a connection waits for another's lock (a checkpoint) before failing."""

_TABLES = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS people (
    uuid TEXT PRIMARY KEY,
    name TEXT, userId TEXT, active INTEGER NOT NULL DEFAULT 1,
    display TEXT NOT NULL, history TEXT NOT NULL DEFAULT '[]',
    searchName TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    name TEXT, model TEXT, active INTEGER NOT NULL DEFAULT 1,
    history TEXT NOT NULL DEFAULT '[]',
    searchName TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS systems (
    id TEXT PRIMARY KEY, name TEXT, connectionId TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,
    person TEXT, device TEXT, system TEXT,
    triggerOn TEXT, triggerOff TEXT,
    triggerTime REAL NOT NULL, triggerOffTime REAL,
    start REAL, stop REAL,
    timeZone TEXT, firmware TEXT, model TEXT, scu TEXT, status TEXT,
    triggerLat REAL, triggerLon REAL, triggerAccuracy REAL,
    stopLat REAL, stopLon REAL, stopAccuracy REAL,
    clips INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
    encrypted INTEGER NOT NULL DEFAULT 0, signed INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    originalContainer TEXT, rejectedReason TEXT,
    modified REAL, lastArrival REAL NOT NULL DEFAULT 0, objectCount INTEGER,
    bytesUsed INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    categories TEXT NOT NULL DEFAULT '[]',
    trackPoints INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    recording TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    length INTEGER, md5 TEXT, sha256 TEXT, modified REAL,
    contentType TEXT, metadata TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (recording, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clips (
    recording TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL,
    start REAL, stop REAL, length INTEGER, md5 TEXT, sha256 TEXT,
    modified REAL, contentType TEXT,
    startLat REAL, startLon REAL, stopLat REAL, stopLon REAL,
    encrypted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (recording, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keys (
    recording TEXT NOT NULL, name TEXT NOT NULL, content TEXT,
    start REAL, length INTEGER, sha256 TEXT,
    PRIMARY KEY (recording, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bookmarks (
    recording TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL DEFAULT '',
    categoryId TEXT, categoryName TEXT, tags TEXT NOT NULL DEFAULT '{}',
    start TEXT, end TEXT, textRow INTEGER,
    PRIMARY KEY (recording, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recording_categories (
    category TEXT NOT NULL, triggerTime REAL NOT NULL, recording TEXT NOT NULL,
    PRIMARY KEY (category, triggerTime, recording)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS bookmark_text USING fts5(
    recording UNINDEXED, text, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS recording_keys (
    key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tracks (
    recording TEXT NOT NULL, object TEXT NOT NULL, first INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (recording, object)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS track_points (
    rkey INTEGER NOT NULL, seq INTEGER NOT NULL,
    lat REAL NOT NULL, lon REAL NOT NULL, seconds REAL, time TEXT,
    PRIMARY KEY (rkey, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomalies (
    recording TEXT NOT NULL, object TEXT, anomaly TEXT NOT NULL, time TEXT,
    eventKey TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS custody (
    eventKey TEXT PRIMARY KEY,
    recording TEXT NOT NULL, time TEXT NOT NULL, type TEXT NOT NULL,
    account TEXT, object TEXT, detail TEXT NOT NULL
) WITHOUT ROWID;
"""

_INDICES = """
CREATE INDEX IF NOT EXISTS recordings_time ON recordings (triggerTime, id);
CREATE INDEX IF NOT EXISTS recordings_person ON recordings (person, triggerTime, id);
CREATE INDEX IF NOT EXISTS recordings_counted ON recordings (person, triggerTime)
    WHERE rejected = 0;
CREATE INDEX IF NOT EXISTS recordings_device ON recordings (device, triggerTime, id);
CREATE INDEX IF NOT EXISTS recordings_trigger ON recordings (triggerOn, triggerTime, id);
CREATE INDEX IF NOT EXISTS recordings_place ON recordings (triggerLat, triggerLon)
    WHERE triggerLat IS NOT NULL;
CREATE INDEX IF NOT EXISTS recordings_clock ON recordings (
    max(coalesce(stop, 0), lastArrival), status, rejected, stop, lastArrival, person, bytesUsed,
    categories, originalContainer) WHERE status = 'Complete' OR rejected = 1;
CREATE INDEX IF NOT EXISTS categories_recording ON recording_categories (recording);
CREATE INDEX IF NOT EXISTS custody_recording ON custody (recording, time);
CREATE INDEX IF NOT EXISTS anomalies_recording ON anomalies (recording);
"""


def open(path: str, readOnly: bool = False) -> sqlite3.Connection:
    """
    A connection to the catalog at C{path}, created (and its schema) unless
    C{readOnly}.  Blocks: call it on the thread that will use it.

    @raise sqlite3.Error: if the file is not a catalog SQLite can open.
    """
    if readOnly:
        # A reader never creates the file: the main process does.
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                     check_same_thread=False, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA query_only = ON")
        return connection
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    os.chmod(path, 0o600)  # it names people and places
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    # WAL with NORMAL: a power cut may lose the last transactions, never
    # corrupt the file; what is lost is indexed again from storage.
    connection.execute("PRAGMA synchronous = NORMAL")
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, VERSION, *_UPGRADES):
        connection.close()
        raise sqlite3.DatabaseError(
            f"{path} is a catalog of version {version}, this bwscd writes {VERSION}: "
            "remove it and it is rebuilt")
    try:
        connection.executescript(
            "BEGIN IMMEDIATE;" + _UPGRADES.get(version, "") + _TABLES + _SUMMARIES + _INDICES
            + f"PRAGMA user_version = {VERSION}; COMMIT;")
    except sqlite3.Error:
        # All or nothing: the file stays as it was, for the next try.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()
        raise
    return connection


def exists(path: str) -> bool:
    """Whether a catalog was made at C{path} (the file may be empty of recordings)."""
    return os.path.exists(path)
