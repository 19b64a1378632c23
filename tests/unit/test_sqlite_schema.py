"""
The sqlite backend's database file: options, schema, and what a start does
to it.  Run synchronously, on this thread, as the backend's own thread would.
"""

import sqlite3

import pytest

from bwscd.backends import sqlite as backendModule
from bwscd.errors import InsufficientStorage, ServiceUnavailable


def opened(path):
    backend = backendModule.SQLiteBackend(str(path), 0)
    backend._open(recover=True)
    return backend


def test_options():
    backend = backendModule.backend("/srv/bwscd", {})
    assert backend.path == "/srv/bwscd/storage.sqlite" and backend.reserve == 256 << 20
    backend = backendModule.backend("/srv/bwscd", {"path": "/db/x.sqlite", "reserve": "1G"})
    assert backend.path == "/db/x.sqlite" and backend.reserve == 1 << 30
    with pytest.raises(ValueError, match="unknown option"):
        backendModule.backend("/srv/bwscd", {"root": "/x"})
    with pytest.raises(ValueError, match="reserve"):
        backendModule.backend("/srv/bwscd", {"reserve": "lots"})


def test_a_new_database(tmp_path):
    db = opened(tmp_path / "new" / "storage.sqlite")._db
    assert db.execute("PRAGMA user_version").fetchone() == (backendModule.SCHEMA_VERSION,)
    assert db.execute("PRAGMA page_size").fetchone() == (backendModule.PAGE_SIZE,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"containers", "uploads", "chunks", "objects", "state"} <= tables


@pytest.mark.parametrize("setup", [
    "PRAGMA user_version = 99",
    "CREATE TABLE somebody_elses (x)",
])
def test_another_database_is_refused(tmp_path, setup):
    path = tmp_path / "storage.sqlite"
    sqlite3.connect(path).execute(setup)
    with pytest.raises(ServiceUnavailable, match="not a bwscd database"):
        opened(path)


def test_a_database_of_schema_1_gets_the_content_type_column(tmp_path):
    path = tmp_path / "storage.sqlite"
    db = sqlite3.connect(path)
    db.executescript(backendModule.SCHEMA.replace("    content_type TEXT,\n", "").replace(
        f"user_version = {backendModule.SCHEMA_VERSION}", "user_version = 1"))
    db.execute("INSERT INTO containers VALUES ('C', '{}', 0)")
    db.execute("INSERT INTO uploads VALUES (1, 'C', 'o', 0)")
    db.execute("INSERT INTO objects VALUES ('C', 'o', 1, 0, 'm', 's', 5, '{}')")
    db.commit()
    db.close()
    backend = opened(path)
    assert backend._db.execute("PRAGMA user_version").fetchone() == (2,)
    info = backend._objectInfo("C", "o")
    assert info.contentType is None and info.modified == 5
    assert backend._containerInfo("C").objectCount == 1


def test_a_start_removes_unfinished_uploads(tmp_path):
    path = tmp_path / "storage.sqlite"
    db = opened(path)._db
    db.execute("INSERT INTO containers VALUES ('C', '{}', 0)")
    for upload in (1, 2):
        db.execute("INSERT INTO uploads VALUES (?, 'C', 'o', 0)", (upload,))
        db.execute("INSERT INTO chunks VALUES (?, 0, x'00')", (upload,))
    db.execute("INSERT INTO objects VALUES ('C', 'o', 1, 1, 'm', 's', 0, '{}', NULL)")
    db = opened(path)._db
    assert db.execute("SELECT id FROM uploads").fetchall() == [(1,)]
    assert db.execute("SELECT upload FROM chunks").fetchall() == [(1,)]


def test_a_full_disk_is_507():
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL
    assert isinstance(backendModule.storageError(error, "writing"), InsufficientStorage)
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert isinstance(backendModule.storageError(error, "writing"), ServiceUnavailable)
