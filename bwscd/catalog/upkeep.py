"""
Live upkeep: the catalog follows what the service does, from its events.

L{CatalogUpkeep} is an L{IEventSink} of the main process's L{Events}
(worker processes send their events there, so one writer sees them all).
An event that names a C{container} marks it dirty; a user, device or
system event marks the people dirty; custody and anomaly events are kept
as rows.  A category that first appears in a recording (its bookmark,
which may come after the clips) is announced as a C{recording.categorised}
event, once: the catalog remembers the recording's categories, so a
webhook can tell users of newly arrived recordings of a category.  Taking an event costs a dict insertion: the work runs later,
after the reactor has sent the answer the event was part of (the 201),
one container at a time, a batch L{SETTLE} seconds after its first event,
and a container marked again while it waits is indexed once.
"""

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer

from bwscd.catalog.index import ANOMALY_TYPES, CUSTODY_TYPES, REGISTRY_CONTAINERS
from bwscd.interfaces import IEventSink

log = Logger()

CATEGORISED = "recording.categorised"
READS = ("object.read", "recording.viewed", "recording.exported", "recording.refused",
         CATEGORISED)
"""Events that name a container but change nothing in it."""
PEOPLE_PREFIXES = ("user.", "device.", "system.")
SETTLE = 1.0
"""
Seconds between the first event of a batch and its work: a recording's
clips arrive one after another, and each marks its container, which is
indexed once for all of them rather than once per clip while offload runs.
"""


@implementer(IEventSink)
class CatalogUpkeep:
    """
    @param index: the L{bwscd.catalog.index.CatalogIndex}.
    @param settle: seconds from a batch's first event to its work (L{SETTLE}).
    @ivar announce: where C{recording.categorised} goes: the L{Events} hub
        this upkeep is a sink of (L{None}: nowhere, until it is made).
    """

    def __init__(self, index, reactor, settle: float = SETTLE):
        self.index = index
        self._settle = settle
        self._index = index
        self._reactor = reactor
        self._dirty: dict[str, None] = {}  # an ordered set: oldest first
        self._events: list[dict] = []
        self._people = False
        self._scheduled = None
        self._working = False
        self._paused = True
        self._idle = []
        self.announce = None

    def emit(self, event: dict) -> None:
        try:
            type, container = event.get("type", ""), event.get("container")
            if type in CUSTODY_TYPES or type in ANOMALY_TYPES:
                self._events.append(event)
            if isinstance(container, str) and type not in READS \
                    and container not in REGISTRY_CONTAINERS:
                self._dirty.pop(container, None)
                self._dirty[container] = None
            if type.startswith(PEOPLE_PREFIXES):
                self._people = True
            self._schedule()
        except Exception:
            log.failure("catalog upkeep could not take an event")

    def start(self) -> None:
        """Begin the work (once storage is open); events taken before wait until then."""
        self._paused = False
        self._schedule()

    def markDirty(self, container: str) -> None:
        self._dirty[container] = None
        self._schedule()

    def whenIdle(self):
        """@return: L{Deferred} firing once nothing is left to do (for tests and commands)."""
        if not self._pending() and not self._working:
            return succeed(None)
        d = Deferred()
        self._idle.append(d)
        return d

    def _pending(self) -> bool:
        return bool(self._dirty or self._events or self._people)

    def _schedule(self) -> None:
        if self._paused or self._working or self._scheduled is not None or not self._pending():
            return
        # Later, never inside emit: the answer the event belongs to goes out first.
        self._scheduled = self._reactor.callLater(self._settle, self._work)

    @inlineCallbacks
    def _work(self):
        self._scheduled = None
        self._working = True
        try:
            while self._pending():
                if self._events:
                    events, self._events = self._events, []
                    yield self._step("record custody", self._index.addEvents, events)
                if self._people:
                    self._people = False
                    yield self._step("index the people", self._index.indexPeople)
                if self._dirty:
                    name = next(iter(self._dirty))
                    del self._dirty[name]
                    appeared = yield self._step(f"index {name}", self._index.indexContainer,
                                                name)
                    for fields in appeared or ():
                        if self.announce is not None:
                            self.announce.emit(CATEGORISED, **fields)
        finally:
            self._working = False
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
            self._schedule()

    @inlineCallbacks
    def _step(self, what, function, *args):
        try:
            return (yield function(*args))
        except Exception:
            # Storage unreachable, or a bug: the next start-up's sync takes
            # up what was missed.
            log.failure("catalog: could not {what}", what=what)
