"""
Capacity: how many days until storage is full, from its free space
(L{bwscd.interfaces.IStorageSpace}, where the backend can say), the rate
at which evidence arrived over the last days, and how long the retention
policy keeps it; and a C{capacity.low} event when that falls under a
threshold (default 14 days), once per episode.

The retention policy is one parameter of L{daysUntilFull}: its longest
period (L{bwscd.policy.retention.Policy.longestDays}), read afresh at each
estimate, so a changed policy counts from the next look.
"""

from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.defer import inlineCallbacks, maybeDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from bwscd.interfaces import IStorageSpace

log = Logger()

DAY = 24 * 60 * 60
THRESHOLD_DAYS = 14
"""Under this many days until full, C{capacity.low}."""
INTAKE_DAYS = 7
"""The intake rate is what arrived over this many days, per day."""
CHECK_INTERVAL = 60 * 60
"""Seconds between looks of the service's L{CapacityWatch}."""
LOW = "capacity.low"


def daysUntilFull(freeBytes: int | None, intakePerDay: float,
                  keepDays: float | None = None) -> float | None:
    """
    Days until C{freeBytes} are taken at C{intakePerDay} bytes a day, or
    L{None}: never, or unknown (free space unknown, nothing arriving).

    @param keepDays: the longest period the retention policy keeps a
        recording; L{None}: kept for ever.  Once recordings are that old
        they go as fast as new ones come (at a steady intake), so storage
        that lasts longer than C{keepDays} at this intake never fills.
    """
    if freeBytes is None or intakePerDay <= 0:
        return None
    days = freeBytes / intakePerDay
    if keepDays is not None and days >= keepDays:
        return None
    return days


@dataclass(frozen=True)
class Estimate:
    freeBytes: int | None
    """L{None}: the backend can't say."""
    intakePerDay: float
    """Bytes a day, over the last L{INTAKE_DAYS} days."""
    keepDays: float | None
    days: float | None
    """Days until full (L{daysUntilFull}); L{None}: never, or unknown."""

    def fields(self) -> dict:
        return {"freeBytes": self.freeBytes, "intakePerDay": round(self.intakePerDay),
                "intakeDays": INTAKE_DAYS, "keepDays": self.keepDays,
                "daysUntilFull": None if self.days is None else round(self.days, 1)}

    def inWords(self) -> str:
        """One line for an operator."""
        free = "unknown (the backend can't say)" if self.freeBytes is None else \
            f"{self.freeBytes / 1e9:.1f} GB"
        if self.days is not None:
            until = f"{self.days:.1f} days until full"
        elif self.freeBytes is None:
            until = "days until full unknown"
        elif self.intakePerDay <= 0:
            until = f"nothing arrived in the last {INTAKE_DAYS} days"
        else:
            until = "never full at this intake (retention lets go as much as arrives)"
        keep = "kept for ever" if self.keepDays is None else f"kept {self.keepDays:g} days"
        return (f"free {free}; intake {self.intakePerDay / 1e9:.2f} GB a day over the last "
                f"{INTAKE_DAYS} days; {keep}: {until}")


class Capacity:
    """
    @param arrivedSince: C{arrivedSince(seconds)} gives a L{Deferred} firing
        with the bytes that arrived since then (the catalog's objects,
        L{bwscd.catalog.query.CatalogQuery.arrivedSince}).
    @param clock: C{seconds()} gives the time.
    @param retention: C{retention()} gives the retention policy (a
        L{bwscd.policy.retention.Policy}, or a L{Deferred} firing with one);
        by default none: everything is kept forever.
    """

    def __init__(self, backend, arrivedSince, clock, retention=lambda: None):
        self._space = IStorageSpace(backend, None)
        self._arrivedSince = arrivedSince
        self._clock = clock
        self._retention = retention

    @inlineCallbacks
    def estimate(self):
        """@return: L{Deferred} firing with an L{Estimate}."""
        free = yield (self._space.freeSpace() if self._space is not None else succeed(None))
        arrived = yield self._arrivedSince(self._clock.seconds() - INTAKE_DAYS * DAY)
        intake = arrived / INTAKE_DAYS
        policy = yield maybeDeferred(self._retention)
        keepDays = None if policy is None else policy.longestDays
        return Estimate(free, intake, keepDays, daysUntilFull(free, intake, keepDays))


class CapacityWatch(Service):
    """
    Looks every L{CHECK_INTERVAL} seconds (and at its start); under
    C{thresholdDays} days until full, one C{capacity.low} event, not
    another until the estimate has been back above the threshold.
    """

    def __init__(self, capacity: Capacity, events, thresholdDays: float = THRESHOLD_DAYS,
                 interval: float = CHECK_INTERVAL):
        self._capacity = capacity
        self._events = events
        self._threshold = thresholdDays
        self._interval = interval
        self._looking = LoopingCall(self.look)
        self.low = False
        """Whether this is an episode of low capacity (its event was emitted)."""

    def startService(self):
        super().startService()
        self._looking.start(self._interval)

    def stopService(self):
        super().stopService()
        if self._looking.running:
            self._looking.stop()

    def look(self):
        d = self._capacity.estimate()
        d.addCallback(self._judge)
        d.addErrback(lambda reason: log.failure("capacity: could not estimate", reason))
        return d

    def _judge(self, estimate: Estimate) -> None:
        low = estimate.days is not None and estimate.days < self._threshold
        if low and not self.low:
            self._events.emit(LOW, thresholdDays=self._threshold, **estimate.fields())
        elif not low and self.low:
            log.info("capacity: {words}; above the {threshold} days of capacity.low again",
                     words=estimate.inWords(), threshold=self._threshold)
        self.low = low
