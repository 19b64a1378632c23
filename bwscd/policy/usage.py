"""
What the account holds: its containers, their objects and the bytes those
take, as Swift's account HEAD gives them (C{X-Account-Container-Count},
C{X-Account-Object-Count}, C{X-Account-Bytes-Used}) and as the quota
counts them.

The totals are the sum over the backend's listing of containers, each of
which says what it holds (L{bwscd.interfaces.ContainerInfo}): no count is
kept beside the storage that could drift from what it lists.  On the
file-based backends that reads every container's directory, so the
engine's L{AccountUsage} keeps the totals for L{FRESH} seconds.
"""

from dataclasses import dataclass

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.python.failure import Failure

PAGE = 10_000
"""Containers asked for per listing while counting."""

FRESH = 10
"""
Seconds the totals are answered without counting again, unless this
process changed what is stored meanwhile: what another process (a worker,
an operator) changed shows within that.  Swift's own account totals lag
behind its containers' too.
"""


@dataclass(frozen=True)
class Totals:
    containers: int
    objects: int
    bytesUsed: int


@inlineCallbacks
def count(backend):
    """
    @return: L{Deferred} firing with the L{Totals} of what C{backend}
        stores, counted page by page.
    """
    containers = objects = used = 0
    marker = ""
    while True:
        page = yield backend.listContainers("", marker, PAGE)
        containers += len(page)
        objects += sum(c.objectCount for c in page)
        used += sum(c.bytesUsed for c in page)
        if len(page) < PAGE:
            return Totals(containers, objects, used)
        marker = page[-1].name


class AccountUsage:
    """
    The account's L{Totals} for HEADs of the account: counted when asked,
    kept L{FRESH} seconds, and shared by the HEADs that come while a count
    is under way.  L{changed} says that this process stored or deleted
    something: the next HEAD counts again.
    """

    def __init__(self, backend, clock):
        self._backend = backend
        self._clock = clock
        self._changes = 0
        self._kept: tuple[int, float, Totals] | None = None  # changes, when, totals
        self._counting: tuple[int, list[Deferred]] | None = None  # changes, waiting

    def changed(self) -> None:
        self._changes += 1

    def current(self):
        """@return: L{Deferred} firing with the account's L{Totals}."""
        if self._kept is not None:
            changes, when, totals = self._kept
            if changes == self._changes and self._clock() - when < FRESH:
                return succeed(totals)
        waiting = Deferred()
        if self._counting is not None and self._counting[0] == self._changes:
            self._counting[1].append(waiting)
            return waiting
        counting = self._counting = (self._changes, [waiting])
        started = self._clock()

        def counted(result):
            if self._counting is counting:
                self._counting = None
            if not isinstance(result, Failure):
                self._kept = (counting[0], started, result)
            for d in counting[1]:
                d.callback(result)  # a Failure goes to their errbacks

        count(self._backend).addBoth(counted)
        return waiting
