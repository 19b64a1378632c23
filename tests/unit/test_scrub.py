"""
L{bwscd.policy.scrub} over a real filesystem backend: a pass resumes
after the last container its state names, finds the damage after it, and
records its end.
"""

import json
import os

from bwscd.backends import layout
from bwscd.policy.fixity import CORRUPT, FixityCheck
from bwscd.policy.scrub import STATE, Scrub, parsePeriod
from tests.support.backends import digestsOf
from tests.support.waiting import waitFor

import pytest

FIRST = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b_B8A44F000001_20240501T101500Z"
SECOND = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b_B8A44F000001_20240502T101500Z"


def _put(store, container, name, data):
    store.call(store.backend.putContainer, container, {})
    writer = store.call(store.backend.openObject, container, name, {}, len(data), True)
    writer.write(data)
    writer.commit(digestsOf(data))


def _flip(store, container, name):
    path = os.path.join(store.backend.root, layout.object(container, name))
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(bytes([data[0] ^ 1]) + data[1:])


def test_a_pass_resumes_after_the_last_container_it_finished(store):
    for container in (FIRST, SECOND):
        _put(store, container, "a.mkv", b"a" * 5000)
        _put(store, container, "b.mkv", b"b" * 5000)
        _flip(store, container, "b.mkv")
    state = {"started": store.reactor.seconds(), "after": FIRST, "finished": None}
    store.call(store.backend.writeState, STATE, json.dumps(state).encode())
    checks = []

    def check():
        checks.append(FixityCheck(store.backend, store.pools.checks, store.events, "scrub",
                                  store.reactor))
        return checks[-1]

    scrub = Scrub(store.backend, check, 3600, store.reactor)
    store.call(scrub.startService)
    try:
        assert waitFor(lambda: scrub.passes == 1)
    finally:
        store.call(scrub.stopService)
    corrupt = [(e["container"], e["object"]) for e in store.seen if e["type"] == CORRUPT]
    assert corrupt == [(SECOND, "b.mkv")]  # the first was done before the restart
    assert checks[0].objects == 2
    kept = json.loads(store.call(store.backend.readState, STATE))
    assert kept["started"] == state["started"] and kept["after"] == SECOND
    assert kept["finished"] >= kept["started"]


@pytest.mark.parametrize("text, seconds", [("30d", 30 * 86400), ("12h", 43200),
                                           ("90m", 5400), ("600s", 600), ("off", None)])
def test_periods(text, seconds):
    assert parsePeriod(text) == seconds


@pytest.mark.parametrize("text", ["0d", "30", "d", "1w", ""])
def test_periods_that_make_no_sense(text):
    with pytest.raises(ValueError):
        parsePeriod(text)
