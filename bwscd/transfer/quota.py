"""
The account's quota: the most it may store, over every container.

Uploads are metered as they are admitted: one with a Content-Length takes
its length from what is left before its body is read (507 at once if it
would not fit), a chunked one takes each piece as it arrives (507 as soon
as it no longer fits, and nothing of it is stored).  What is stored is
counted from the backend's listing of containers (L{bwscd.policy.usage}) at start, and counted again
periodically (see L{bwscd.service.assembly}), so files that the operator removed on
the server, or objects replaced by others, are taken into account.

The counters live in a small file in the data directory, mapped into
memory, so that the main process and its workers (C{--workers}) meter
against the same quota; a thread lock and a lock on the file guard them.
"""

import fcntl
import mmap
import os
import struct
import threading
from contextlib import contextmanager

from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from bwscd.policy import usage
from bwscd.errors import QuotaUsedUp
from bwscd.interfaces import IObjectWriter

_COUNTERS = struct.Struct("=qq")  # bytes stored, bytes taken by uploads under way


class Quota:
    """
    C{limit} bytes for the account (L{None}: no quota), counted in the file
    C{path}.  Its counters are touched by the reactor and by upload
    workers, of this process and of the others.
    """

    def __init__(self, limit: int | None, path: str):
        self.limit = limit
        self._path = path
        self._fd: int | None = None
        self._counters: mmap.mmap | None = None
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes of the objects stored, as last counted and kept up to date since."""
        with self._locked() as (used, taken):
            return used

    def admit(self, length: int | None) -> "Allowance":
        """
        Let an upload of C{length} bytes (L{None}: chunked) start.

        @raise QuotaUsedUp: if it can't fit.
        """
        allowance = Allowance(self, length)
        if self.limit is not None:
            self._take(length or 0)
            allowance.taken = length or 0
        return allowance

    def freed(self, length: int) -> None:
        """An object of C{length} bytes was deleted."""
        self._settle(0, -length)

    @inlineCallbacks
    def count(self, backend, restart: bool = False):
        """
        Count what C{backend} stores (nothing to do without a quota).
        C{restart}: the main process is starting, no upload is under way.
        """
        if self.limit is None:
            return
        totals = yield usage.count(backend)
        with self._locked() as (used, taken):
            self._store(totals.bytesUsed, 0 if restart else taken)

    @contextmanager
    def _locked(self):
        """The counters (stored, taken), under both locks; L{_store} changes them."""
        with self._lock:
            if self._counters is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                if os.fstat(self._fd).st_size < _COUNTERS.size:
                    os.ftruncate(self._fd, _COUNTERS.size)
                self._counters = mmap.mmap(self._fd, _COUNTERS.size)
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                yield _COUNTERS.unpack_from(self._counters)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _store(self, used: int, taken: int) -> None:
        _COUNTERS.pack_into(self._counters, 0, max(used, 0), max(taken, 0))

    def _take(self, length: int) -> None:
        with self._locked() as (used, taken):
            left = self.limit - used - taken
            if length > left or left <= 0:
                raise QuotaUsedUp(
                    f"the account's quota of {self.limit} bytes is used up: "
                    f"{used} stored, {taken} being uploaded"
                )
            self._store(used, taken + length)

    def _settle(self, taken: int, stored: int) -> None:
        """An upload gives back what it took; C{stored} bytes were stored."""
        if self.limit is None:
            return
        with self._locked() as (used, alreadyTaken):
            self._store(used + stored, alreadyTaken - taken)


class Allowance:
    """What one upload took from the quota, given back or kept when it ends."""

    def __init__(self, quota: Quota, length: int | None):
        self._quota = quota
        self._length = length
        self.taken = 0

    def meter(self, writer):
        """C{writer}, counted against the quota (as it is, without one)."""
        if self._quota.limit is None:
            return writer
        return MeteredWriter(self, writer)

    def release(self) -> None:
        """The upload ended without storing anything."""
        self._quota._settle(self.taken, 0)
        self.taken = 0

    def _write(self, length: int) -> None:
        if self._length is None:
            self._quota._take(length)
            self.taken += length

    def _commit(self, info) -> None:
        self._quota._settle(self.taken, 0 if info.existed else info.digests.length)
        self.taken = 0


@implementer(IObjectWriter)
class MeteredWriter:
    """An L{IObjectWriter} whose bytes count against the account's quota."""

    def __init__(self, allowance: Allowance, writer):
        self._allowance = allowance
        self._writer = writer

    def write(self, data):
        self._allowance._write(len(data))
        self._writer.write(data)

    def commit(self, digests):
        info = self._writer.commit(digests)
        self._allowance._commit(info)
        return info

    def abort(self):
        try:
            self._writer.abort()
        finally:
            self._allowance.release()
