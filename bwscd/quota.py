"""
The account's quota: the most it may store, over every container.

Uploads are metered as they are admitted: one with a Content-Length takes
its length from what is left before its body is read (507 at once if it
would not fit), a chunked one takes each piece as it arrives (507 as soon
as it no longer fits, and nothing of it is stored).  What is stored is
counted from the backend's listings at start, and counted again
periodically (see L{bwscd.service}), so files that the operator removed on
the server, or objects replaced by others, are taken into account.
"""

import threading

from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from bwscd.errors import InsufficientStorage
from bwscd.interfaces import IObjectWriter

PAGE = 10_000
"""Names asked for per listing while counting."""


class Quota:
    """
    C{limit} bytes for the account (L{None}: no quota).  Its counters are
    touched by the reactor and by upload workers, under one lock.
    """

    def __init__(self, limit: int | None):
        self.limit = limit
        self.used = 0
        """Bytes of the objects stored, as last counted and kept up to date since."""
        self._taken = 0  # by uploads under way
        self._lock = threading.Lock()

    def admit(self, length: int | None) -> "Allowance":
        """
        Let an upload of C{length} bytes (L{None}: chunked) start.

        @raise InsufficientStorage: if it can't fit.
        """
        allowance = Allowance(self, length)
        if self.limit is not None:
            self._take(length or 0)
            allowance.taken = length or 0
        return allowance

    def freed(self, length: int) -> None:
        """An object of C{length} bytes was deleted."""
        with self._lock:
            self.used = max(self.used - length, 0)

    @inlineCallbacks
    def count(self, backend):
        """Count what C{backend} stores (nothing to do without a quota)."""
        if self.limit is None:
            return
        total, containers = 0, (yield _everything(backend.listContainers))
        for container in containers:
            objects = yield _everything(
                lambda *page: backend.listObjects(container.name, *page))
            total += sum(o.digests.length for o in objects)
        with self._lock:
            self.used = total

    def _take(self, length: int) -> None:
        with self._lock:
            left = self.limit - self.used - self._taken
            if length > left or left <= 0:
                raise InsufficientStorage(
                    f"the account's quota of {self.limit} bytes is used up: "
                    f"{self.used} stored, {self._taken} being uploaded"
                )
            self._taken += length

    def _settle(self, taken: int, stored: int) -> None:
        with self._lock:
            self._taken -= taken
            self.used += stored


@inlineCallbacks
def _everything(listing):
    """Every entry of a paged listing (containers, or one container's objects)."""
    entries, marker = [], ""
    while True:
        page = yield listing("", marker, PAGE)
        entries += page
        if len(page) < PAGE:
            return entries
        marker = page[-1].name


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
        """The upload failed before it had a writer."""
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
