"""
L{bwscd.policy.capacity}: days until full from the free space of a real
filesystem backend and an intake, and C{capacity.low} once per episode.
"""

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from bwscd.policy.capacity import (INTAKE_DAYS, LOW, Capacity, CapacityWatch,
                                   daysUntilFull)
from bwscd.policy.retention import Policy


def test_days_until_full_keeping_everything():
    assert daysUntilFull(140, 10) == 14
    assert daysUntilFull(None, 10) is None  # the backend can't say
    assert daysUntilFull(140, 0) is None  # nothing arrives


def test_a_retention_shorter_than_the_free_space_lasts_never_fills():
    assert daysUntilFull(1000, 10, keepDays=90) is None
    assert daysUntilFull(500, 10, keepDays=90) == 50


def test_low_capacity_is_one_event_per_episode(store):
    free = store.call(store.backend.freeSpace)
    assert isinstance(free, int) and free > 0
    arrived = {"bytes": free * INTAKE_DAYS / 10}  # 10 days left
    capacity = Capacity(store.backend, lambda since: succeed(arrived["bytes"]), Clock())
    watch = CapacityWatch(capacity, store.events)
    store.call(watch.look)
    store.call(watch.look)
    lows = [event for event in store.seen if event["type"] == LOW]
    assert len(lows) == 1
    assert lows[0]["daysUntilFull"] == pytest.approx(10, abs=0.5)
    assert lows[0]["thresholdDays"] == 14 and lows[0]["freeBytes"] > 0
    arrived["bytes"] = free * INTAKE_DAYS / 100  # 100 days: the episode ends
    store.call(watch.look)
    arrived["bytes"] = free * INTAKE_DAYS / 5  # a new one
    store.call(watch.look)
    assert len([event for event in store.seen if event["type"] == LOW]) == 2


def test_an_unknown_free_space_is_never_low(store):
    class Unsaying:
        """A backend that does not provide IStorageSpace."""

    capacity = Capacity(Unsaying(), lambda since: succeed(10**15), Clock())
    estimate = store.call(capacity.estimate)
    assert estimate.days is None and estimate.freeBytes is None
    assert "unknown" in estimate.inWords()


def test_the_estimate_counts_the_retention_policy_read_at_each_look(store):
    free = store.call(store.backend.freeSpace)
    policies = [None]
    capacity = Capacity(store.backend, lambda since: succeed(free * INTAKE_DAYS / 200),
                        Clock(), lambda: succeed(policies[-1]))
    assert store.call(capacity.estimate).days == pytest.approx(200, abs=1)
    policies.append(Policy(default=3650, categories={"3": 7300}))
    estimate = store.call(capacity.estimate)
    assert estimate.keepDays == 7300 and estimate.days == pytest.approx(200, abs=1)
    policies.append(Policy(default=90))  # gone as fast as it comes, long before it fills
    estimate = store.call(capacity.estimate)
    assert estimate.keepDays == 90 and estimate.days is None
    policies.append(Policy(categories={"3": 90}))  # no default: the rest kept forever
    assert store.call(capacity.estimate).keepDays is None
