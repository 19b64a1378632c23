"""
Fixity: what an object's digests recorded at arrival say (its SHA-256 and
length, L{bwscd.interfaces.Digests}), checked against its bytes read again
through the storage contract, so that it works on every backend.  A piece
at a time is read and hashed on a thread of the given pool, never on the
reactor, and memory stays flat whatever the object's size.

A mismatch, or an object the catalog saw arrive that storage no longer
has, is an C{evidence.corrupt} event (docs/events.md): the object is
neither deleted nor repaired, an operator decides.  Used by the service's
background scrub (L{bwscd.policy.scrub}) and by C{bwscd verify}.
"""

import hashlib
import time
from dataclasses import dataclass

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater

from bwscd.errors import NotFound

READ_SIZE = 1 << 20
"""Bytes read and hashed per trip to the thread."""
PAGE = 1000
"""Objects asked for per listObjects call."""
YIELD_PAUSE = 1.0
"""Seconds between looks while uploads are under way."""
CORRUPT = "evidence.corrupt"


@dataclass(frozen=True)
class Finding:
    """One object whose bytes are not what arrived."""

    container: str
    object: str
    expected: str
    """The SHA-256 recorded at arrival."""
    found: str | None
    """The SHA-256 of the bytes read now; L{None}: the object is missing."""
    length: int
    """The length recorded at arrival."""
    foundLength: int | None

    @property
    def problem(self) -> str:
        if self.found is None:
            return "missing from storage"
        return "SHA-256 differs from the one recorded at arrival"

    def fields(self) -> dict:
        return {"container": self.container, "object": self.object,
                "expected": self.expected, "found": self.found, "length": self.length,
                "foundLength": self.foundLength, "problem": self.problem}


def _readPiece(reader, hasher) -> tuple[int, float]:
    """On the pool's thread: the next piece, hashed; its length and the seconds it took."""
    began = time.monotonic()
    piece = reader.read(READ_SIZE)
    hasher.update(piece)
    return len(piece), time.monotonic() - began


class FixityCheck:
    """
    Checks objects of C{backend} on C{pool} (an L{bwscd.threads.Pool}),
    reporting each L{Finding} as an event of C{events} with C{account}
    (C{"scrub"}, or the operator).

    @param pace: a L{bwscd.policy.pace.Pace} to rest by after each piece,
        or L{None} to read flat out (an operator's C{bwscd verify}).
    @param yielding: returns C{True} while reading must wait (uploads under
        way); L{None}: never.
    @param known: C{known(container)} gives a L{Deferred} firing with what
        the catalog saw arrive in it, C{{name: (length, sha256)}}, so that
        an object gone from storage is found; L{None}: storage's listing
        only.
    """

    def __init__(self, backend, pool, events, account: str, reactor, pace=None,
                 yielding=None, known=None):
        self._backend = backend
        self._pool = pool
        self._events = events
        self._account = account
        self._reactor = reactor
        self._pace = pace
        self._yielding = yielding
        self._known = known
        self.objects = 0
        self.bytes = 0
        self.findings: list[Finding] = []

    @inlineCallbacks
    def container(self, name: str, after: str = ""):
        """
        Check every object of container C{name} whose name sorts after
        C{after}, in listing order; then those the catalog knows that
        storage does not list.
        """
        listed = set()
        marker = after
        try:
            while page := (yield self._backend.listObjects(name, "", marker, PAGE)):
                marker = page[-1].name
                for info in page:
                    listed.add(info.name)
                    yield self.object(info)
        except NotFound:
            pass  # deleted meanwhile: whatever the catalog knew of it goes with it
        if self._known is None:
            return
        known = yield self._known(name)
        for object, (length, sha256) in sorted(known.items()):
            if object > after and object not in listed and sha256:
                yield self._missing(name, object, length, sha256)

    @inlineCallbacks
    def _missing(self, container, object, length, sha256):
        # Not a deletion that the catalog has not taken up yet: storage says
        # no, and the catalog still says yes, once asked again.
        if (yield self._backend.objectInfo(container, object)) is not None:
            return
        if object in (yield self._known(container)):
            self._report(Finding(container, object, sha256, None, length, None))

    @inlineCallbacks
    def object(self, info):
        """Check one object (its L{bwscd.interfaces.ObjectInfo}); fires with its L{Finding} or L{None}."""
        expected = info.digests.sha256
        if not expected:
            return None  # stored without digests: there is nothing to check against
        try:
            reader = yield self._backend.readObject(info.container, info.name, 0, None)
        except NotFound:
            # Listed a moment ago: deleted meanwhile, or lost.
            if (yield self._backend.objectInfo(info.container, info.name)) is None:
                return None
            return self._report(Finding(info.container, info.name, expected, None,
                                        info.digests.length, None))
        # What the reader reads: an object replaced through the API since
        # it was listed (a registry record, a published document) is
        # checked against its own digests, not the listing's.
        recorded = reader.info.digests
        expected = recorded.sha256 or expected
        hasher = hashlib.sha256()
        length = 0
        try:
            while True:
                yield self._whileYielding()
                size, seconds = yield self._pool.run(_readPiece, reader, hasher)
                length += size
                self.bytes += size
                if not size:
                    break
                if self._pace is not None:
                    yield deferLater(self._reactor, self._pace.wait(size, seconds), lambda: None)
        finally:
            yield self._pool.run(reader.close)
        self.objects += 1
        found = hasher.hexdigest()
        if found == expected and length == recorded.length:
            return None
        return self._report(Finding(info.container, info.name, expected, found,
                                    recorded.length, length))

    @inlineCallbacks
    def _whileYielding(self):
        while self._yielding is not None and self._yielding():
            yield deferLater(self._reactor, YIELD_PAUSE, lambda: None)

    def _report(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        self._events.emit(CORRUPT, account=self._account, **finding.fields())
        return finding
