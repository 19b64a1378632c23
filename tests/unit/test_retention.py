"""The retention rules (L{bwscd.policy.retention}) and where they are kept: settings, holds."""

import pytest

from bwscd.catalog.retention import uncatalogued
from bwscd.config import datadir
from bwscd.config.holds import HoldFile
from bwscd.config.settings import Settings
from bwscd.policy.retention import DAY, Facts, Hold, Policy, expiry, holdOn

STOP = 1_700_000_000.0
PERSON = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"


def facts(**changes) -> Facts:
    return Facts(**{"recording": "R", "complete": True, "rejected": False, "stop": STOP,
                    "lastArrival": STOP + 60, "person": PERSON, **changes})


def test_no_policy_keeps_forever():
    assert Policy().keepsForever
    assert expiry(Policy(), facts()) is None


def test_the_clock_starts_at_the_last_arrival_of_a_late_docked_camera():
    late = STOP + 40 * DAY
    due = expiry(Policy(default=90), facts(lastArrival=late))
    assert (due.rule, due.clockStart, due.expiresAt) == ("default", late, late + 90 * DAY)


def test_the_clock_starts_at_the_stop_time_when_it_is_later():
    due = expiry(Policy(default=90), facts(lastArrival=STOP - 5))
    assert due.clockStart == STOP


def test_several_categories_keep_the_longest():
    policy = Policy(default=100, categories={"1": 365, "2": 3650})
    due = expiry(policy, facts(categories=("1", "2")))
    assert (due.rule, due.days) == ("category 2", 3650)


def test_an_unknown_category_has_the_default_rule():
    policy = Policy(default=400, categories={"1": 200})
    assert (expiry(policy, facts(categories=("99",))).rule,
            expiry(policy, facts(categories=("1", "99"))).days) == ("default", 400)


def test_a_category_kept_forever_keeps_the_recording():
    policy = Policy(categories={"1": 200})  # no default: forever
    assert expiry(policy, facts(categories=("1", "2"))) is None
    assert expiry(policy, facts(categories=("1",))).days == 200


def test_a_recording_that_is_not_complete_never_expires():
    assert expiry(Policy(default=90), facts(complete=False)) is None


def test_rejected_content_has_its_own_period_or_the_default():
    rejected = facts(complete=False, rejected=True)
    assert expiry(Policy(default=400, rejected=120), rejected).rule == "rejected"
    assert expiry(Policy(default=400), rejected).days == 400


def hold(kind, target) -> Hold:
    return Hold("h1", kind, target, "case", "admin", "2026-01-01T00:00:00.000Z")


def test_holds_on_a_recording_a_person_and_a_tag():
    tagged = facts(tags=("Case:2024-117",))
    assert holdOn([hold("recording", "R")], facts()) is not None
    assert holdOn([hold("recording", "Other")], facts()) is None
    assert holdOn([hold("person", PERSON)], facts(recording="A later one")) is not None
    assert holdOn([hold("tag", "case: 2024-117")], tagged) is not None
    assert holdOn([hold("tag", "Case:2024-118")], tagged) is None


REJECTED = "RejectedContent_20240504T000000Z_7f3e"
ORIGINAL = f"{PERSON}_B8A44F000001_20240501T101500Z"


def test_a_hold_on_a_recording_keeps_the_rejected_content_that_came_from_it():
    rejected = facts(recording=REJECTED, complete=False, rejected=True, original=ORIGINAL)
    assert holdOn([hold("recording", ORIGINAL)], rejected) is not None
    assert holdOn([hold("recording", "Other")], rejected) is None
    # Not yet catalogued: its metadata names the recording, and so its person.
    stored = uncatalogued(REJECTED, {"Rejectedcontentoriginalcontainer": ORIGINAL})
    assert (stored.original, stored.person, stored.rejected) == (ORIGINAL, PERSON, True)
    assert holdOn([hold("recording", ORIGINAL)], stored) is not None
    assert holdOn([hold("person", PERSON)], stored) is not None
    assert uncatalogued(REJECTED, {}).original is None
    # Only rejected content belongs to another recording.
    assert uncatalogued(ORIGINAL, {"Rejectedcontentoriginalcontainer": "X"}).original is None


def test_periods_under_the_minimum_are_refused_unless_acknowledged(tmp_path):
    directory = str(tmp_path / "data")
    datadir.prepare(directory, port=8443, https=False)
    settings = Settings.load(directory)
    with pytest.raises(ValueError, match="90-day minimum the partner checklist"):
        settings.setRetention(Policy(default=365, categories={"3": 30}))
    settings.setRetention(Policy(default=30), acknowledged=True)
    settings.save()
    assert Settings.load(directory).retention == Policy(default=30)


def test_holds_are_kept_durably_until_removed(tmp_path):
    holds = HoldFile(str(tmp_path))
    placed = holds.add("person", PERSON, "order 7", "admin", "2026-01-01T00:00:00.000Z")
    assert HoldFile(str(tmp_path)).read() == [placed]
    with pytest.raises(ValueError, match="reason"):
        holds.add("recording", "R", " ", "admin", "now")
    assert holds.remove(placed.id) == placed
    assert holds.read() == []
