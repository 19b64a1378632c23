"""
The catalog made again from what storage holds (every container through
L{IStorageBackend.listContainers}) and from the event log (custody and
anomalies: only events know who sent or read what).

A full rebuild indexes every container and replays the event log
(C{bwscd catalog rebuild}, or a start with no catalog); a sync, at every
other start, indexes only the containers whose count, size, modification
time or metadata differ from the catalog's and drops those that are gone.
Containers are read a few at a time and written in batches, so that a
rebuild runs at the storage's speed.
"""

import gzip
import json
import time

from twisted.internet.defer import DeferredSemaphore, gatherResults, inlineCallbacks
from twisted.logger import Logger

from bwscd.catalog.index import REGISTRY_CONTAINERS, writeEvents
from bwscd.policy.events import ARCHIVED, rotatedFiles

log = Logger()

PAGE = 1000
"""Containers asked for per listContainers call."""
PARALLEL = 2
"""Containers read from storage at once."""
BATCH = 500
"""Containers written per transaction."""
EVENT_BATCH = 5000
BUILT = "built"
"""The state key a finished full rebuild sets: without it, the next start rebuilds."""


def _differs(info, catalogued) -> bool:
    if catalogued is None:
        return True
    objectCount, bytesUsed, modified, metadata = catalogued
    return (objectCount != info.objectCount or bytesUsed != info.bytesUsed
            or modified != info.modified
            or json.loads(metadata or "{}") != info.metadata)


def eventLogEvents(path: str, rotated: int | None = None):
    """
    The events of the event log at C{path}, oldest first, one at a time
    (its rotated files, compressed or not, only the newest C{rotated} of
    them if given, then the file itself); a line that is not JSON (the
    last one, being written) is skipped.  Blocks.
    """
    earlier = rotatedFiles(path)
    for name in (earlier if rotated is None else earlier[len(earlier) - rotated:]) + [path]:
        try:
            f = gzip.open(name, "rt", encoding="utf-8") if name.endswith(ARCHIVED) \
                else open(name, encoding="utf-8")
        except FileNotFoundError:
            if name.endswith(ARCHIVED) or name == path:
                continue
            f = gzip.open(name + ARCHIVED, "rt", encoding="utf-8")  # compressed meanwhile
        with f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event


def _replay(db, path: str) -> int:
    """On the writer thread: custody and anomalies from the event log."""
    batch, count = [], 0
    for event in eventLogEvents(path):
        batch.append(event)
        if len(batch) >= EVENT_BATCH:
            writeEvents(db, batch)
            count += len(batch)
            batch = []
    writeEvents(db, batch)
    return count + len(batch)


@inlineCallbacks
def rebuild(index, backend, eventLog: str | None, full: bool):
    """
    Bring the catalog of C{index} (a L{bwscd.catalog.index.CatalogIndex})
    up to C{backend}'s contents; with C{full}, every container, and the
    custody of the event log at C{eventLog}.

    @return: L{Deferred} firing with a dict of figures: C{containers}
        seen, C{indexed}, C{dropped}, C{events} replayed, C{seconds}.
    """
    began = time.monotonic()
    yield index.open()
    catalogued = yield index.catalogued()
    seen = set()
    indexed = 0
    semaphore = DeferredSemaphore(PARALLEL)
    pending = []

    @inlineCallbacks
    def flush():
        nonlocal pending
        collected = yield gatherResults(pending, consumeErrors=True)
        pending = []
        yield index.store([c for c in collected if c is not None])

    def collect(info):
        d = semaphore.run(index.collect, info.name, info, info.name in catalogued)

        def failed(reason):
            log.failure("catalog: could not read {name} from storage; left as it was",
                        reason, name=info.name)
        return d.addErrback(failed)

    yield index.indexPeople()
    marker = ""
    while page := (yield backend.listContainers("", marker, PAGE)):
        marker = page[-1].name
        for info in page:
            if info.name in REGISTRY_CONTAINERS:
                continue
            seen.add(info.name)
            if full or _differs(info, catalogued.get(info.name)):
                pending.append(collect(info))
                indexed += 1
                if len(pending) >= BATCH:
                    yield flush()
    yield flush()
    gone = [name for name in catalogued if name not in seen]
    for name in gone:
        yield index.indexContainer(name)  # drops it, unless it came back meanwhile
    events = 0
    if full and eventLog is not None:
        events = yield index.run(_replay, eventLog)
        yield index.setState(BUILT, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return {"containers": len(seen), "indexed": indexed, "dropped": len(gone),
            "events": events, "seconds": time.monotonic() - began}


@inlineCallbacks
def startUp(index, backend, eventLog: str):
    """
    At a start: a full rebuild if the catalog was never built (missing, or
    a rebuild cut short), else a sync.  Logs what it did.
    """
    yield index.open()
    full = (yield index.getState(BUILT)) is None
    log.info("catalog: {what} in the background", what="rebuilding from storage and the "
             "event log" if full else "syncing with storage")
    figures = yield rebuild(index, backend, eventLog, full)
    log.info("catalog: {containers} recordings, {indexed} indexed, {dropped} dropped, "
             "{events} events replayed in {seconds:.1f}s", **figures)
    return figures
