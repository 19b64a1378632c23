"""
Refusals that stop offload, as episodes: C{507} (the quota or the storage's
free space used up) and C{503} (upload slots busy, storage failing) keep
recordings on the cameras, and whoever watches the events must learn it,
without an event for each of the thousands of requests refused meanwhile.

An episode is one kind of refusal (its status and L{SwiftError.kind}): it
starts, with a C{refusal.started} event, at the first such refusal, and
ends, with a C{refusal.ended} event that counts the requests refused, once
a quiet period has passed without one (or when the server stops).  It does
not end when a request succeeds: with a quota nearly used up small uploads
fit while large ones are refused, and upload slots free up and fill again
all the time, so a success says little; a quiet period does.  So each kind
gives at most one C{refusal.started} per quiet period, however many
requests are refused.
"""

from dataclasses import dataclass

from twisted.application.service import Service

from bwscd.errors import InsufficientStorage, ServiceUnavailable, SwiftError
from bwscd.policy.events import timestamp

QUIET_PERIOD = 300
"""Seconds without a refusal of its kind after which an episode has ended."""


@dataclass
class _Episode:
    first: float
    """When the first request was refused (seconds since the epoch)."""
    last: float
    reason: str
    """The message of the last request refused."""
    refused: int
    ending: object
    """The IDelayedCall that ends the episode after the quiet period."""


class RefusalEpisodes(Service):
    """
    Turns the refusals L{note}d into episodes, reported to C{events} (an
    L{bwscd.policy.events.Events}); C{reactor} provides C{seconds} and
    C{callLater} (a L{twisted.internet.task.Clock} in tests).  While the
    service is not running, refusals are not noted: at stop every request
    still under way may be refused, and no event can follow.
    """

    def __init__(self, events, reactor, quietPeriod: float = QUIET_PERIOD):
        self._events = events
        self._reactor = reactor
        self._quietPeriod = quietPeriod
        self._episodes: dict[tuple[int, str], _Episode] = {}

    def note(self, reason):
        """An errback: note the failure if it stops offload, and pass it on."""
        if self.running and reason.check(ServiceUnavailable, InsufficientStorage):
            self.refused(reason.value)
        return reason

    def refused(self, error: SwiftError) -> None:
        key = (int(error.code), error.kind)
        now = self._reactor.seconds()
        episode = self._episodes.get(key)
        if episode is not None:
            episode.last, episode.reason = now, error.message
            episode.refused += 1
            episode.ending.reset(self._quietPeriod)
            return
        self._episodes[key] = _Episode(
            now, now, error.message, 1,
            self._reactor.callLater(self._quietPeriod, self._end, key, "quiet"))
        self._events.emit("refusal.started", status=key[0], kind=key[1],
                          reason=error.message)

    def _end(self, key, endedBy: str) -> None:
        episode = self._episodes.pop(key)
        self._events.emit(
            "refusal.ended",
            status=key[0],
            kind=key[1],
            refused=episode.refused,
            firstRefused=timestamp(episode.first),
            lastRefused=timestamp(episode.last),
            reason=episode.reason,
            endedBy=endedBy,
        )

    def stopService(self):
        # Before the event log closes: an episode open at stop is reported
        # as ended, so that one started is never left open.
        super().stopService()
        for key, episode in list(self._episodes.items()):
            episode.ending.cancel()
            self._end(key, "stop")
