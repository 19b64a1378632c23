"""
Recordings made old for the expiry sweep, which has no clock to set: the
arrival of everything in them moved back in storage, with the server
stopped (docs/retention.md, Testing expiry).
"""

import os
import sqlite3
import time

OLD = time.mktime((2024, 6, 1, 0, 0, 0, 0, 0, 0))
"""A time more than 90 days ago: the arrival of backdated recordings."""


def backdate(server, *containers, backend: str = "filesystem") -> None:
    """
    Make C{containers} of C{server}'s storage look as if everything in them
    arrived at L{OLD}: on the filesystem backend the times of their files
    (an object's arrival is its file's modification time), on the SQLite
    backend every time its rows keep of them.
    """
    if backend == "filesystem":
        for container in containers:
            for directory, _, files in os.walk(os.path.join(server.storage, container)):
                for name in files + ["."]:
                    os.utime(os.path.join(directory, name), (OLD, OLD))
        return
    assert backend == "sqlite", backend
    database = sqlite3.connect(os.path.join(server.data, "storage.sqlite"))
    with database:
        for container in containers:
            database.execute("UPDATE objects SET modified = ? WHERE container = ?",
                             (OLD, container))
            database.execute("UPDATE containers SET created = ? WHERE name = ?",
                             (OLD, container))
    database.close()
