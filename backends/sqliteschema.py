"""
The SQLite backend's database (docs/sqlite.md): its schema and the
migrations from earlier versions of it, how a row reads as a container's or
an object's info, and the SQL a listing's range of names becomes.
"""

import json
import sqlite3

from twisted.logger import Logger

from bwscd.backends.common import prefixEnd
from bwscd.interfaces import ContainerInfo, Digests, ObjectInfo

SCHEMA_VERSION = 2
# Large pages keep a 1 MiB chunk to 16 overflow pages instead of 256.
PAGE_SIZE = 1 << 16

SCHEMA = f"""
BEGIN;
CREATE TABLE containers (
    name TEXT PRIMARY KEY,
    metadata TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    container TEXT NOT NULL REFERENCES containers(name),
    name TEXT NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE chunks (
    upload INTEGER NOT NULL REFERENCES uploads(id),
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (upload, seq)
);
CREATE TABLE objects (
    container TEXT NOT NULL REFERENCES containers(name),
    name TEXT NOT NULL,
    upload INTEGER NOT NULL UNIQUE REFERENCES uploads(id),
    length INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    modified REAL NOT NULL,
    metadata TEXT NOT NULL,
    content_type TEXT,
    PRIMARY KEY (container, name)
);
CREATE TABLE state (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""
# What each earlier schema version needs to become the next: version 1
# lacked the objects' Content-Type.
MIGRATIONS = {1: "ALTER TABLE objects ADD COLUMN content_type TEXT"}

# A container's row with what it holds, for a query that names the
# containers it wants (WHERE) and groups by them.
CONTAINERS = """
SELECT c.name, c.metadata, count(o.name), total(o.length), max(c.created, coalesce(max(o.modified), 0))
FROM containers c LEFT JOIN objects o ON o.container = c.name
"""
OBJECT_COLUMNS = "length, md5, sha256, modified, metadata, content_type"

log = Logger()


def encodeMetadata(metadata: dict[str, str]) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a database of an earlier schema version to L{SCHEMA_VERSION}."""
    db.execute("BEGIN IMMEDIATE")
    try:
        # Again under the write lock: another process may have done it.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        while version in MIGRATIONS:
            db.execute(MIGRATIONS[version])
            version += 1
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    log.info("database schema brought to version {version}", version=version)


def deleteUpload(db: sqlite3.Connection, upload: int) -> None:
    db.execute("DELETE FROM chunks WHERE upload = ?", (upload,))
    db.execute("DELETE FROM uploads WHERE id = ?", (upload,))


def listingRange(prefix: str, marker: str, column: str = "name") -> tuple[str, tuple]:
    """
    The condition on the name C{column} of a listing, as SQL and its
    parameters: a range that the primary key's index answers, in BINARY
    (byte) order.
    """
    condition, parameters = f"{column} > ? AND {column} >= ?", [marker, prefix]
    end = prefixEnd(prefix)
    if end is not None:
        condition += f" AND {column} < ?"
        parameters.append(end)
    return condition, tuple(parameters)


def rowInfo(container, name, length, md5, sha256, modified, metadata,
            contentType) -> ObjectInfo:
    """The L{ObjectInfo} of an C{objects} row."""
    return ObjectInfo(
        container, name, Digests(length, md5, sha256), modified, json.loads(metadata),
        contentType=contentType,
    )


def containerRow(name, metadata, count, used, modified) -> ContainerInfo:
    """The L{ContainerInfo} of a row of L{CONTAINERS}."""
    return ContainerInfo(name, json.loads(metadata), count, int(used), modified)
