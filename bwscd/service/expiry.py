"""
The expiry sweep: recordings whose retention period is over are deleted
(docs/retention.md), by the main process alone, at start (once the catalog
has caught up with storage) and once a day.

The catalog chooses the candidates; each is checked again against storage
(its Status, its objects' arrival) and the holds file just before anything
goes, since the catalog is derived and may lag.  What is about to be
deleted is written to C{DATA/expiring.json} first: a sweep cut short (a
crash, kill -9) is finished by the next one, from that record, before
anything else.  Deletion goes through the storage contract
(C{deleteObject}, C{deleteContainer}), so it works on every backend; each
recording is one C{recording.expired} event, which also brings the
catalog up to date (the upkeep drops what storage no longer holds).

The clock is the real one, always: there is no way to sweep "as of" a
later date (C{bwscd retention plan --as-of} only looks ahead).
"""

import json
import os
import time

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from bwscd.catalog.records import metadataTime
from bwscd.catalog.rebuild import eventLogEvents
from bwscd.catalog.retention import sweepCandidates
from bwscd.config.paths import EVENT_LOG, EXPIRING
from bwscd.config.settings import Settings
from bwscd.errors import Conflict, SwiftError
from bwscd.files import fsyncDirectory, readIfExists, writeAtomically
from bwscd.policy.events import timestamp
from bwscd.policy.evidence import COMPLETE
from bwscd.policy.registry import isRejectedContent
from bwscd.policy.retention import DAY, expiry, lastArrival

log = Logger()

SWEEP_INTERVAL = DAY
ACCOUNT = "bwscd:retention"
"""Who deletes, in the events: the retention policy, not a person."""
PAGE = 1000


def _forget(path: str) -> None:
    os.unlink(path)
    fsyncDirectory(os.path.dirname(path))


def _announced(eventLog: str, record: dict) -> bool:
    """
    Whether the event log at C{eventLog} has C{record}'s C{recording.expired}
    already: a sweep killed after the event and before it forgot its
    journal did all of it.  The event is one of the last the killed process
    wrote, so only the current file and the newest rotated one are read
    (the log rotates before it writes, once its file has reached its
    length, and the event may have been the one that reached it).
    """
    wanted = ("recording.expired", record["container"], record["clockStart"])
    return any((e.get("type"), e.get("container"), e.get("clockStart")) == wanted
               for e in eventLogEvents(eventLog, rotated=1))


class ExpirySweep:
    """
    @param holds: the L{bwscd.catalog.retention.HoldLookup}.
    @param query: the L{bwscd.catalog.query.CatalogQuery}.
    @param files: the L{bwscd.threads.Pool} that reads and writes the data
        directory's files (they are fsynced).
    """

    def __init__(self, directory, backend, query, holds, events, files, clock=time.time):
        self._directory = directory
        self._journal = os.path.join(directory, EXPIRING)
        self._eventLog = os.path.join(directory, EVENT_LOG)
        self._backend = backend
        self._query = query
        self._holds = holds
        self._events = events
        self._files = files
        self._clock = clock

    @inlineCallbacks
    def sweep(self):
        """One sweep; never fails (a failure is logged, and the next sweep tries again)."""
        try:
            yield self._sweep()
        except Exception:
            log.failure("retention: the expiry sweep stopped; the next one goes on")

    @inlineCallbacks
    def _sweep(self):
        unfinished = yield self._files.run(readIfExists, self._journal)
        if unfinished is not None:
            yield self._resume(json.loads(unfinished))
        settings = yield self._files.run(Settings.load, self._directory)
        policy = settings.retention  # read afresh: a change applies at the next sweep
        if policy.keepsForever:
            return
        began = time.monotonic()
        candidates = yield self._query.read(sweepCandidates, policy, self._clock())
        expired = 0
        for facts in candidates:
            try:
                expired += (yield self._expire(facts, policy))
            except SwiftError as e:
                log.warn("retention: could not expire {recording}: {why}",
                         recording=facts.recording, why=e.message)
        log.info("retention: {expired} recordings expired in {seconds:.1f} s, of "
                 "{candidates} the catalog gave", expired=expired,
                 seconds=time.monotonic() - began, candidates=len(candidates))

    @inlineCallbacks
    def _listAll(self, container):
        objects, marker = [], ""
        while True:
            page = yield self._backend.listObjects(container, "", marker, PAGE)
            objects += page
            if len(page) < PAGE:
                return objects
            marker = page[-1].name

    @inlineCallbacks
    def _expire(self, facts, policy):
        """
        Check C{facts}' recording against storage and the holds as they are
        now; if it is still due, record it and delete it.  Whether it went.
        """
        container = facts.recording
        info = yield self._backend.containerInfo(container)
        if info is None:
            return False
        objects = yield self._listAll(container)
        stored = facts._replace(
            complete=info.metadata.get("Status") == COMPLETE,
            rejected=isRejectedContent(container),
            stop=metadataTime(info.metadata, "Stoptime"),
            lastArrival=lastArrival(info.modified, objects))
        due = expiry(policy, stored)
        now = self._clock()
        if due is None or due.expiresAt > now:
            return False
        if (yield self._holds.holdOn(container, info.metadata)) is not None:
            return False
        record = {
            "container": container, "rule": due.rule, "days": due.days,
            "age": round(due.age(now), 2), "clockStart": timestamp(due.clockStart),
            "categories": list(stored.categories),
            "objects": [{"object": o.name, "length": o.digests.length,
                         "sha256": o.digests.sha256} for o in objects],
        }
        yield self._files.run(writeAtomically, self._journal,
                              json.dumps(record, ensure_ascii=False).encode("utf-8"))
        yield self._finish(record)
        return True

    @inlineCallbacks
    def _resume(self, record):
        """
        Finish the recording a sweep cut short was deleting, unless a hold
        was placed on it since: what is left of it then stays.
        """
        container = record["container"]
        info = yield self._backend.containerInfo(container)
        hold = yield self._holds.holdOn(container, {} if info is None else info.metadata)
        if hold is None:
            announced = yield self._files.run(_announced, self._eventLog, record)
            yield self._finish(record, announce=not announced)
            return
        log.warn("retention: {recording} was being expired, and is now kept by {hold}: "
                 "what is left of it stays", recording=container, hold=hold.describe())
        yield self._files.run(_forget, self._journal)

    @inlineCallbacks
    def _finish(self, record, announce=True):
        """
        Delete what C{record} names (what a cut-short sweep left of it too),
        and say so unless C{announce} is false (it was said already).
        """
        container = record["container"]
        for entry in record["objects"]:
            yield self._backend.deleteObject(container, entry["object"])
        try:
            yield self._backend.deleteContainer(container)
        except Conflict:
            # Objects it did not name arrived meanwhile: they are not expired.
            log.warn("retention: {recording} keeps objects that arrived while it was "
                     "expired", recording=container)
        if announce:
            self._events.emit("recording.expired", account=ACCOUNT, **record)
        yield self._files.run(_forget, self._journal)
