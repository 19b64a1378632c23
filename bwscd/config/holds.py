"""
C{DATA/holds.json}: the legal holds in force (L{bwscd.policy.retention.Hold}).

Kept in the data directory, not in the catalog: the catalog is derived and
rebuilt, a hold is an order that must outlive any rebuild.  Every change
is a whole new file written durably in one step (L{writeAtomically}), under
an exclusive lock on C{holds.lock} so that the operator's command and the
server's processes never lose each other's change.  The functions block
(fsync, the lock): the server calls them on a thread.
"""

import fcntl
import json
import os
import secrets
from contextlib import contextmanager

from bwscd.config.paths import HOLDS, HOLDS_LOCK
from bwscd.files import readIfExists, writeAtomically
from bwscd.policy.events import timestamp
from bwscd.policy.retention import Hold, checkHold


class HoldFile:
    def __init__(self, directory: str):
        self.path = os.path.join(directory, HOLDS)
        self._lockPath = os.path.join(directory, HOLDS_LOCK)

    def read(self) -> list[Hold]:
        stored = readIfExists(self.path)
        return [] if stored is None else [Hold(**entry) for entry in json.loads(stored)]

    @contextmanager
    def _changing(self):
        fd = os.open(self._lockPath, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            holds = self.read()
            yield holds
            writeAtomically(self.path, json.dumps(
                [hold.__dict__ for hold in holds], indent=2, ensure_ascii=False).encode("utf-8"))
        finally:
            os.close(fd)  # lets the lock go

    def add(self, kind: str, target: str, reason: str, account: str, placed: str) -> Hold:
        """@raise ValueError: for a hold L{checkHold} refuses."""
        checkHold(kind, target, reason)
        with self._changing() as holds:
            hold = Hold(secrets.token_hex(4), kind, target.strip(), reason.strip(), account,
                        placed)
            holds.append(hold)
        return hold

    def remove(self, id: str) -> Hold:
        """@raise ValueError: if no hold has C{id}."""
        with self._changing() as holds:
            found = next((hold for hold in holds if hold.id == id), None)
            if found is None:
                raise ValueError(f"no legal hold {id}")
            holds.remove(found)
        return found


def announce(events, type: str, hold: Hold, account: str) -> None:
    """The audit event of a hold placed (C{hold.added}) or released (C{hold.removed}) by C{account}."""
    events.emit(type, hold=hold.id, kind=hold.kind, target=hold.target, reason=hold.reason,
                account=account, placedBy=hold.account, placed=hold.placed)


class LegalHolds:
    """
    The holds for the server's API: each change made on a thread of
    C{files} (a L{bwscd.threads.Pool}: the file is fsynced), then its event
    emitted on the reactor.
    """

    def __init__(self, file: HoldFile, files, events, clock):
        self._file = file
        self._files = files
        self._events = events
        self._clock = clock

    def list(self):
        """@return: L{Deferred} firing with the holds in force."""
        return self._files.run(self._file.read)

    def add(self, kind: str, target: str, reason: str, account: str):
        """@return: L{Deferred} firing with the new L{Hold}; fails with C{ValueError}."""
        d = self._files.run(self._file.add, kind, target, reason, account,
                            timestamp(self._clock()))
        d.addCallback(self._announced, "hold.added", account)
        return d

    def remove(self, id: str, account: str):
        """@return: L{Deferred} firing with the removed L{Hold}; fails with C{ValueError}."""
        d = self._files.run(self._file.remove, id)
        d.addCallback(self._announced, "hold.removed", account)
        return d

    def _announced(self, hold, type, account):
        announce(self._events, type, hold, account)
        return hold
