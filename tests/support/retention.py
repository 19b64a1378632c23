"""
Recordings made old for the expiry sweep, which has no clock to set: the
arrival of everything in them moved back in storage, with the server
stopped (docs/retention.md, Testing expiry).
"""

import os
import sqlite3
import time

from tests.support.catalog import ANNA_1, CAM_1

OLD = time.mktime((2024, 6, 1, 0, 0, 0, 0, 0, 0))
"""A time more than 90 days ago: the arrival of backdated recordings."""
LATE = f"{ANNA_1}_{CAM_1}_20240601T000000Z"
"""A recording stopped long ago and docked now, late: not backdated, it stays."""


def backdateFiles(root: str, *containers: str) -> None:
    """
    On a backend of the example server's layout under C{root} (filesystem,
    SFTP): the times of the containers' files, since an object's arrival
    is its file's modification time.
    """
    for container in containers:
        for directory, _, files in os.walk(os.path.join(root, container)):
            for name in files + ["."]:
                os.utime(os.path.join(directory, name), (OLD, OLD))


def backdateRows(database: str, *containers: str) -> None:
    """On the SQLite backend's C{database}: every time its rows keep of the containers."""
    db = sqlite3.connect(database)
    with db:
        for container in containers:
            db.execute("UPDATE objects SET modified = ? WHERE container = ?", (OLD, container))
            db.execute("UPDATE containers SET created = ? WHERE name = ?", (OLD, container))
    db.close()


def backdate(server, *containers: str) -> None:
    """C{containers} of C{server}'s default backend, made to have arrived at L{OLD}."""
    backdateFiles(server.storage, *containers)
