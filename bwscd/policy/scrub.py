"""
The fixity scrub: every object in storage read again and its SHA-256
checked (L{bwscd.policy.fixity}) once per period (C{--scrub-period},
default 30 days), paced (L{bwscd.policy.pace}) and yielding to uploads, in
the main process only.

Where a pass got to is one small document kept with the data through the
storage contract (L{IStorageBackend.writeState}), so a restarted service
resumes its pass after the last container it finished rather than
starting again, and every backend keeps it.
"""

import json
import re
import time

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import Logger

from bwscd.policy.fixity import FixityCheck

log = Logger()

STATE = "scrub.json"
"""The pass's document (L{IStorageBackend.readState})."""
DEFAULT_PERIOD = "30d"
PAGE = 1000
"""Containers asked for per listContainers call."""
SAVE_INTERVAL = 60
"""Seconds between saving where the pass got to (and after its last container)."""
ACCOUNT = "scrub"
"""The account its events name."""

_UNITS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def parsePeriod(text: str) -> float | None:
    """C{30d}, C{12h}, C{90m}, C{600s}: seconds; C{off}: L{None}.

    @raise ValueError: for anything else, or 0."""
    if text.strip().lower() == "off":
        return None
    match = re.fullmatch(r"(\d+)([smhd])", text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise ValueError(f"{text!r} is not a period like 30d, 12h, 90m or 600s, nor off")
    return int(match[1]) * _UNITS[match[2]]


class Scrub(Service):
    """
    One pass per C{period} seconds over every container of C{backend}:
    a pass starts C{period} after the last one started (at once, the first
    time), and reads as the pace allows; one that takes longer than its
    period is logged, and the next starts when it ends.

    @param check: returns a fresh L{FixityCheck} for a pass.
    """

    def __init__(self, backend, check, period: float, reactor):
        self._backend = backend
        self._check = check
        self._period = period
        self._reactor = reactor
        self._waiting = None
        self._running = None
        self.passes = 0
        """Passes finished since the start (for tests and the log)."""

    def startService(self):
        super().startService()
        self._running = self._run()
        self._running.addErrback(self._failed)

    def stopService(self):
        super().stopService()
        if self._waiting is not None:
            self._waiting.cancel()

    def _failed(self, reason):
        if not reason.check(CancelledError):
            log.failure("scrub: stopped; it starts again with the service", reason)

    def _sleep(self, seconds):
        self._waiting = deferLater(self._reactor, max(0, seconds), lambda: None)
        return self._waiting

    @inlineCallbacks
    def _readState(self):
        stored = yield self._backend.readState(STATE)
        try:
            return json.loads(stored) if stored else {}
        except ValueError:
            log.warn("scrub: {name} is unreadable; starting a new pass", name=STATE)
            return {}

    def _save(self, state):
        return self._backend.writeState(STATE, json.dumps(state, sort_keys=True).encode())

    @inlineCallbacks
    def _run(self):
        state = yield self._readState()
        while self.running:
            if state.get("finished") is not None or "started" not in state:
                if "started" in state:
                    yield self._sleep(state["started"] + self._period - self._reactor.seconds())
                state = {"started": self._reactor.seconds(), "after": "", "finished": None}
                yield self._save(state)
            else:
                log.info("scrub: resuming the pass begun at {started}, after {after!r}",
                         started=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                               time.gmtime(state["started"])),
                         after=state["after"])
            yield self._pass(state)

    @inlineCallbacks
    def _pass(self, state):
        check = self._check()
        began = self._reactor.seconds()
        saved = began
        marker = state["after"]
        while self.running and (page := (yield self._backend.listContainers("", marker,
                                                                            PAGE))):
            marker = page[-1].name
            for info in page:
                if not self.running:
                    break
                yield check.container(info.name)
                state["after"] = info.name
                if self._reactor.seconds() - saved >= SAVE_INTERVAL:
                    yield self._save(state)
                    saved = self._reactor.seconds()
        if not self.running:
            yield self._save(state)
            return
        state["finished"] = self._reactor.seconds()
        yield self._save(state)
        self.passes += 1
        seconds = state["finished"] - began
        log.info("scrub: pass done: {objects} objects, {bytes} bytes in {seconds:.1f}s "
                 "({rate:.1f} MB/s), {corrupt} corrupt or missing",
                 objects=check.objects, bytes=check.bytes, seconds=seconds,
                 rate=check.bytes / seconds / 1e6 if seconds else 0.0,
                 corrupt=len(check.findings))
        if state["finished"] - state["started"] > self._period:
            log.warn("scrub: the pass took longer than --scrub-period; raise --scrub-rate "
                     "or the period")
