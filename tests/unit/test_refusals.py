"""
Episodes of refusals that stop offload, driven by a L{Clock}: one event
when a kind of refusal starts, one when a quiet period has passed without
it, counting the requests refused between.
"""

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from bwscd.errors import (
    InsufficientStorage, NotFound, QuotaUsedUp, ServiceUnavailable, UploadSlotsBusy,
)
from bwscd.policy.events import Events
from bwscd.policy.refusals import RefusalEpisodes
from tests.support.events import EventRecorder


@pytest.fixture
def episodes():
    clock = Clock()
    clock.advance(1_700_000_000)
    recorder = EventRecorder()
    episodes = RefusalEpisodes(Events([recorder], clock=clock.seconds), clock,
                               quietPeriod=60)
    episodes.startService()
    episodes.clock, episodes.seen = clock, recorder.events
    return episodes


def refuse(episodes, error):
    """Refuse a request as L{bwscd.protocol.storageapi.StorageAPI} does: through the errback."""
    failure = Failure(error)
    assert episodes.note(failure) is failure


def kinds(seen):
    return [(e["type"], e["status"], e["kind"]) for e in seen]


def test_an_episode_starts_once_and_ends_after_the_quiet_period(episodes):
    refuse(episodes, QuotaUsedUp("the account's quota of 10 bytes is used up"))
    assert episodes.seen == [{
        "time": "2023-11-14T22:13:20.000Z", "type": "refusal.started", "status": 507,
        "kind": "quota", "reason": "the account's quota of 10 bytes is used up"}]
    for _ in range(5):  # each within the quiet period of the one before
        episodes.clock.advance(50)
        refuse(episodes, QuotaUsedUp("still used up"))
    assert len(episodes.seen) == 1
    episodes.clock.advance(59)
    assert len(episodes.seen) == 1
    episodes.clock.advance(1)
    assert episodes.seen[1] == {
        "time": "2023-11-14T22:18:30.000Z", "type": "refusal.ended", "status": 507,
        "kind": "quota", "refused": 6, "firstRefused": "2023-11-14T22:13:20.000Z",
        "lastRefused": "2023-11-14T22:17:30.000Z", "reason": "still used up",
        "endedBy": "quiet"}
    # The next refusal is a new episode.
    refuse(episodes, QuotaUsedUp("used up again"))
    assert kinds(episodes.seen[2:]) == [("refusal.started", 507, "quota")]


def test_each_kind_has_its_own_episode(episodes):
    refuse(episodes, UploadSlotsBusy("all 1 upload slots are busy"))
    refuse(episodes, ServiceUnavailable("storage failure while writing"))
    refuse(episodes, InsufficientStorage("not enough free space"))
    refuse(episodes, QuotaUsedUp("quota used up"))
    episodes.clock.advance(30)
    refuse(episodes, UploadSlotsBusy("all 1 upload slots are busy"))
    assert kinds(episodes.seen) == [
        ("refusal.started", 503, "busy"), ("refusal.started", 503, "storage"),
        ("refusal.started", 507, "disk"), ("refusal.started", 507, "quota")]
    episodes.clock.advance(30)
    assert kinds(episodes.seen[4:]) == [
        ("refusal.ended", 503, "storage"), ("refusal.ended", 507, "disk"),
        ("refusal.ended", 507, "quota")]
    assert [e["refused"] for e in episodes.seen[4:]] == [1, 1, 1]
    episodes.clock.advance(30)
    assert episodes.seen[-1]["kind"] == "busy" and episodes.seen[-1]["refused"] == 2


def test_other_refusals_are_not_episodes(episodes):
    refuse(episodes, NotFound("no such object"))
    assert episodes.seen == []


def test_an_episode_open_at_stop_ends_then_and_nothing_is_noted_after(episodes):
    refuse(episodes, UploadSlotsBusy("busy"))
    refuse(episodes, UploadSlotsBusy("busy"))
    episodes.stopService()
    assert kinds(episodes.seen) == [("refusal.started", 503, "busy"),
                                    ("refusal.ended", 503, "busy")]
    assert episodes.seen[-1]["endedBy"] == "stop" and episodes.seen[-1]["refused"] == 2
    refuse(episodes, ServiceUnavailable("bwscd is shutting down"))
    episodes.clock.advance(600)
    assert len(episodes.seen) == 2
    assert episodes.clock.getDelayedCalls() == []
