"""
What retention needs of the recordings, read from the catalog: one
L{bwscd.policy.retention.Facts} per recording and rejected content, for
C{bwscd retention plan}, the expiry sweep's choice of candidates, and the
holds on one recording (L{HoldLookup}).  The catalog is derived data: the
sweep checks a candidate against storage before it deletes anything.
"""

import functools
import json

from bwscd.policy.evidence import COMPLETE
from bwscd.policy.registry import isRejectedContent, recordingNameParts
from bwscd.policy.retention import Facts, expiries, holdFinder, holdOn

_FACTS = ("SELECT id, status, rejected, stop, categories, person, bytesUsed, lastArrival, "
          "originalContainer FROM recordings")
# Only what may expire by then: Complete or rejected, its clock started
# before; the terms of the recordings_clock index, which finds just those
# and holds every column read (a plan of half a million reads no row).
_DUE = (f" WHERE (status = '{COMPLETE}' OR rejected = 1) "
        "AND max(coalesce(stop, 0), lastArrival) <= ?")


@functools.lru_cache(maxsize=4096)
def _categoryIds(categories: str) -> tuple[str, ...]:
    """The CategoryIDs of a recordings row's C{categories}: a few combinations among millions."""
    return tuple(c["id"] or "" for c in json.loads(categories))


def _tags(db, only: list[str] | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    rows = db.execute("SELECT recording, tags FROM bookmarks" + (
        f" WHERE recording IN ({', '.join('?' * len(only))})" if only is not None else ""),
        only or ())
    for recording, tags in rows:
        found.setdefault(recording, []).extend(
            f"{key}:{value}" for key, value in json.loads(tags).items())
    return found


def readFacts(db, only: str | None = None, startedBy: float | None = None,
              tags: bool = True) -> list[Facts]:
    """
    Every recording's facts, on a catalog connection; only recording
    C{only}'s, or only those that may expire by now (Complete or rejected)
    whose clock started by C{startedBy}: a sweep or a plan of a million
    recordings holds only the few that are due.

    @param tags: whether to read the bookmarks' tags (for holds on a tag);
        without, every L{Facts} has none.
    """
    if only is not None:
        where, parameters = " WHERE id = ?", (only,)
    elif startedBy is not None:
        where, parameters = _DUE, (startedBy,)
    else:
        where, parameters = "", ()
    rows = db.execute(_FACTS + where, parameters).fetchall()
    # Rejected content has the tags of the recording it came from, whose holds keep it.
    tags = _tags(db, None if only is None else [only] + [r[-1] for r in rows if r[-1]]) \
        if rows and tags else {}
    return [Facts(
        recording=id, complete=status == COMPLETE, rejected=bool(rejected), stop=stop,
        lastArrival=lastArrival,
        categories=_categoryIds(categories), person=person,
        tags=tuple(tags.get(id, ()) if original is None else tags.get(original, ())),
        bytes=bytesUsed or 0, original=original,
    ) for (id, status, rejected, stop, categories, person, bytesUsed, lastArrival,
           original) in rows]


def _due(db, policy, asOf: float, tags: bool):
    """Each C{(facts, expiry)} that C{policy} lets go by C{asOf}, as the catalog has it."""
    startedBy = policy.clockStartedBy(asOf)
    if startedBy is None:
        return
    expiryOf = expiries(policy)
    for facts in readFacts(db, None, startedBy, tags):
        if (due := expiryOf(facts)) is not None and due.expiresAt <= asOf:
            yield facts, due


def sweepCandidates(db, policy, now: float) -> list[Facts]:
    """
    The expiry sweep's candidates at C{now}, on a catalog connection: the
    recordings C{policy} lets go by then, as the catalog has them, without
    tags (the sweep checks each against storage and the holds itself).
    """
    return [facts for facts, _ in _due(db, policy, now, False)]


def planned(db, policy, holds, asOf: float):
    """
    What C{policy} expires by C{asOf} (C{bwscd retention plan}), on a catalog
    connection: C{(going, held)}, C{going} a list of C{(facts, expiry)},
    soonest first, C{held} how many more are due but kept by one of C{holds}.
    """
    going, held = [], 0
    holdOf = holdFinder(holds)
    for facts, due in _due(db, policy, asOf, any(hold.kind == "tag" for hold in holds)):
        if holdOf(facts) is not None:
            held += 1
        else:
            going.append((facts, due))
    going.sort(key=lambda g: (g[1].expiresAt, g[0].recording))
    return going, held


class HoldLookup:
    """
    The legal hold (if any) that keeps a recording, for an admin's DELETE:
    the holds file read afresh each time (another process may have changed
    it), the recording's tags from the catalog.  Both on the catalog's
    query threads.

    @param holds: the L{bwscd.config.holds.HoldFile}.
    @param query: the L{bwscd.catalog.query.CatalogQuery}.
    """

    def __init__(self, holds, query):
        self._holds = holds
        self._query = query

    def holdOn(self, container: str, metadata: dict):
        """
        @param metadata: C{container}'s metadata in storage (for rejected
            content, the recording it came from).
        @return: L{Deferred} firing with the L{Hold} that keeps C{container}, or L{None}.
        """
        return self._query.read(self._find, container, metadata)

    def _find(self, db, container, metadata):
        holds = self._holds.read()
        known = readFacts(db, container) if holds else []
        return holdOn(holds, known[0] if known else uncatalogued(container, metadata))


def uncatalogued(container: str, metadata: dict) -> Facts:
    """
    The facts of a container the catalog does not hold yet, for its holds:
    what its name and metadata say of its recording and person (a tag hold
    then waits for its bookmarks to be indexed).
    """
    original = (metadata.get("Rejectedcontentoriginalcontainer") or None) \
        if isRejectedContent(container) else None
    parts = recordingNameParts(original or container)
    return Facts(container, False, original is not None, None, 0.0,
                 person=parts[0] if parts else None, original=original)
