"""
Fixity (docs/retention.md, Fixity) through a real C{twistd bwscd} on the
filesystem and SQLite backends: a byte flipped in a stored clip, and a
clip gone from storage, are found by C{bwscd verify} and by the service's
scrub, each an C{evidence.corrupt} event shown in the catalog; nothing
else is reported, and nothing is repaired or deleted.
"""

import getpass
import os
import sqlite3
import subprocess

import pytest

from bwscd.backends import layout
from tests.support.catalog import R1, R2, R3, CatalogClient, sendRecordings
from tests.support.server import BWSCD
from tests.support.waiting import waitFor

FLIPPED = (R1, "20240501_101530_1.mkv")
GONE = (R3, "20240503_120000_3.mkv")
BACKENDS = {"filesystem": "filesystem", "sqlite": "sqlite"}


def _flipFile(server, container, name):
    path = os.path.join(server.storage, layout.object(container, name))
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.seek(5)
        byte = f.read(1)
        f.seek(5)
        f.write(bytes([byte[0] ^ 0x01]))


def _removeFile(server, container, name):
    os.unlink(os.path.join(server.storage, layout.object(container, name)))


def _database(server):
    db = sqlite3.connect(os.path.join(server.data, "storage.sqlite"), timeout=30)
    db.isolation_level = None
    return db


def _upload(db, container, name):
    return db.execute("SELECT upload FROM objects WHERE container = ? AND name = ?",
                      (container, name)).fetchone()[0]


def _flipChunk(server, container, name):
    with _database(server) as db:
        upload = _upload(db, container, name)
        data = db.execute("SELECT data FROM chunks WHERE upload = ? ORDER BY seq LIMIT 1",
                          (upload,)).fetchone()[0]
        db.execute("UPDATE chunks SET data = ? WHERE upload = ? AND seq = "
                   "(SELECT min(seq) FROM chunks WHERE upload = ?)",
                   (data[:5] + bytes([data[5] ^ 0x01]) + data[6:], upload, upload))


def _removeRow(server, container, name):
    with _database(server) as db:
        upload = _upload(db, container, name)
        db.execute("DELETE FROM objects WHERE upload = ?", (upload,))
        db.execute("DELETE FROM chunks WHERE upload = ?", (upload,))


DAMAGE = {"filesystem": (_flipFile, _removeFile), "sqlite": (_flipChunk, _removeRow)}


def _damage(server, backend):
    flip, remove = DAMAGE[backend]
    flip(server, *FLIPPED)
    remove(server, *GONE)


def _stored(launch, data, backend, *arguments):
    """A server holding the catalog tests' recordings, all catalogued, and a reader."""
    server = launch(data, "--backend", BACKENDS[backend], *arguments)
    sendRecordings(server.connection())
    reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
    reader.waitFor()
    return server, reader


def _checkFindings(events, account):
    found = {(e["container"], e["object"]): e for e in events}
    assert set(found) == {FLIPPED, GONE}
    flipped, gone = found[FLIPPED], found[GONE]
    assert flipped["found"] != flipped["expected"] and len(flipped["expected"]) == 64
    assert flipped["length"] == flipped["foundLength"] == len(b"clip two" * 100)
    assert gone["found"] is None and gone["length"] == len(b"fourth" * 100)
    assert {e["account"] for e in events} == {account}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_verify_finds_the_flipped_byte_and_the_missing_clip(launch, dataDirectory, backend):
    server, _ = _stored(launch, dataDirectory, backend, "--scrub-period", "off")
    server.stop()
    _damage(server, backend)
    command = [BWSCD, "verify", "--data", dataDirectory, "--backend", BACKENDS[backend]]
    intact = subprocess.run(command + [R2], capture_output=True, text=True)
    assert intact.returncode == 0, intact.stderr
    assert "0 corrupt or missing" in intact.stdout
    everything = subprocess.run(command + ["--all"], capture_output=True, text=True)
    assert everything.returncode == 1
    assert "2 objects corrupt or missing" in everything.stderr
    assert f"{FLIPPED[0]}/{FLIPPED[1]}: SHA-256 differs" in everything.stdout
    assert f"{GONE[0]}/{GONE[1]}: missing from storage" in everything.stdout
    _checkFindings(server.eventsOf("evidence.corrupt"), getpass.getuser())
    # Shown in the catalog once the server runs again; nothing was repaired.
    server = launch(dataDirectory, "--backend", BACKENDS[backend], "--scrub-period", "off")
    reader = CatalogClient.of(server, server.addAccount("clerk2", "reader"))
    integrity = reader.json(f"recordings/{R1}")["integrity"]
    assert [entry["object"] for entry in integrity] == [FLIPPED[1]]
    assert reader.json(f"recordings/{R2}")["integrity"] == []
    again = subprocess.run(command + ["--all"], capture_output=True, text=True)
    assert again.returncode == 1 and "is in use" in again.stderr


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_scrub_of_a_running_server_finds_them(launch, dataDirectory, backend):
    server, reader = _stored(launch, dataDirectory, backend, "--scrub-period", "3s")
    _damage(server, backend)
    assert waitFor(lambda: len({(e["container"], e["object"])
                         for e in server.eventsOf("evidence.corrupt")}) >= 2
            and "scrub: pass done" in server.log(), timeout=60)
    _checkFindings(server.eventsOf("evidence.corrupt"), "scrub")
    # The catalog follows the events in batches a second after the first.
    integrity = waitFor(lambda: reader.json(f"recordings/{R1}")["integrity"], timeout=30)
    assert {entry["object"] for entry in integrity} == {FLIPPED[1]}
    assert "(expected SHA-256" in integrity[0]["anomaly"]
    assert reader.json(f"recordings/{R2}")["integrity"] == []
