"""
L{bwscd.threads}: pools keep to their limits and to their own threads,
calls to the reactor give up at shutdown, a hand-off keeps its order.
"""

import queue
import threading

import pytest
from twisted.internet.defer import Deferred, succeed

from bwscd.threads import HandOff, Pool, Pools, ReactorCalls, ReactorGone

WAIT = 10


class FakeReactor:
    """Runs what threads hand it only when the test says so."""

    def __init__(self):
        self.calls = queue.Queue()
        self.triggers = []

    def callFromThread(self, f, *args, **kwargs):
        self.calls.put((f, args, kwargs))

    def addSystemEventTrigger(self, phase, event, f):
        self.triggers.append((phase, event, f))

    def runOne(self, timeout=WAIT):
        f, args, kwargs = self.calls.get(timeout=timeout)
        f(*args, **kwargs)


class Gate:
    """Blocking work the test lets through one call at a time; counts who is inside."""

    def __init__(self):
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.entered = threading.Semaphore(0)
        self._open = threading.Semaphore(0)

    def work(self, value=None):
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.entered.release()
        assert self._open.acquire(timeout=WAIT)
        with self._lock:
            self.inside -= 1
        return value or threading.current_thread().name

    def letOneThrough(self):
        self._open.release()

    def waitForEntry(self, timeout=WAIT) -> bool:
        return self.entered.acquire(timeout=timeout)


@pytest.fixture
def pools():
    """C{pools(size)}: a started L{Pool} of C{size} on a L{FakeReactor}; stopped afterwards."""
    made = []

    def pools(size, name="test", **kwargs):
        pool = Pool(FakeReactor(), name, size, **kwargs)
        pool.start()
        made.append(pool)
        return pool

    yield pools
    for pool in made:
        pool.stop()


def results(deferred):
    found = []
    deferred.addBoth(found.append)
    return found


def test_a_pool_runs_at_most_its_size_at_once_and_the_rest_in_turn(pools):
    pool, gate = pools(2), Gate()
    done = [results(pool.run(gate.work, i)) for i in range(1, 4)]
    assert gate.waitForEntry() and gate.waitForEntry()
    assert not gate.waitForEntry(timeout=0.3), "a third call ran beside two"
    gate.letOneThrough()
    assert gate.waitForEntry(), "the third call did not run once a thread was free"
    gate.letOneThrough()
    gate.letOneThrough()
    for _ in range(3):
        pool._reactor.runOne()
    assert sorted(d[0] for d in done) == [1, 2, 3]
    assert gate.most == 2


def test_run_fires_on_the_reactor_with_the_result_or_the_failure(pools):
    pool = pools(1)

    def fails():
        raise ValueError("no")

    good, bad = results(pool.run(lambda: 42)), results(pool.run(fails))
    pool._reactor.runOne()
    pool._reactor.runOne()
    assert good == [42]
    assert bad[0].check(ValueError)
    bad[0].trap(ValueError)


def test_a_pools_threads_carry_its_name(pools):
    pool = pools(1, name="downloads")
    named = results(pool.run(lambda: threading.current_thread().name))
    pool._reactor.runOne()
    assert "bwscd-downloads-" in named[0]


def test_a_pool_of_one_keeps_its_one_thread(pools):
    pool = pools(1)
    threads = [results(pool.run(threading.get_ident)) for _ in range(5)]
    for _ in threads:
        pool._reactor.runOne()
    assert len({found[0] for found in threads}) == 1


def test_call_from_another_thread_waits_for_the_result_or_raises(pools):
    pool = pools(1)
    assert pool.call(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(KeyError):
        pool.call({}.__getitem__, "missing")


def test_last_runs_on_the_pools_thread_as_it_stops():
    ran = []
    pool = Pool(FakeReactor(), "sqlite", 1, last=lambda: ran.append(threading.get_ident()))
    pool.start()
    worker = pool.call(threading.get_ident)
    pool.stop()
    assert ran == [worker]


def test_a_pool_started_by_its_first_run_stops_after_shutdown():
    reactor = FakeReactor()
    pool = Pool(reactor, "storage", 1)
    assert not pool.started
    done = results(pool.run(lambda: "ran"))
    reactor.runOne()
    assert done == ["ran"] and pool.started
    assert reactor.triggers == [("after", "shutdown", pool.stop)]
    pool.run(lambda: None)
    assert len(reactor.triggers) == 1, "a second stop was registered"
    pool.stop()
    assert not pool.started


def test_each_pool_has_its_own_threads():
    """Uploads filling their pool hold up no download, check or login."""
    pools = Pools(FakeReactor(), uploads=2, downloads=1)
    pools.start()
    gate = Gate()
    try:
        for _ in range(2):
            pools.uploads.run(gate.work)
        assert gate.waitForEntry() and gate.waitForEntry()
        for pool in (pools.downloads, pools.checks, pools.auth):
            assert f"bwscd-{pool.name}-" in pool.call(lambda: threading.current_thread().name)
        assert (pools.downloads.size, pools.checks.size, pools.auth.size) == (1, 2, 1)
    finally:
        gate.letOneThrough()
        gate.letOneThrough()
        pools.stop()
    assert not any(pool.started for pool in (pools.uploads, pools.downloads, pools.checks,
                                             pools.auth))


def test_a_reactor_call_returns_what_the_reactor_answers():
    reactor = FakeReactor()
    calls = ReactorCalls(reactor)
    later = Deferred()
    answers = queue.Queue()
    thread = threading.Thread(target=lambda: answers.put(calls.call(lambda x: later, 7)))
    thread.start()
    reactor.runOne()
    later.callback("fired")
    thread.join(WAIT)
    assert answers.get_nowait() == "fired"

    def refuses():
        raise KeyError("x")

    raised = queue.Queue()

    def caller():
        try:
            calls.call(refuses)
        except KeyError as e:
            raised.put(e)

    thread = threading.Thread(target=caller)
    thread.start()
    reactor.runOne()
    thread.join(WAIT)
    assert isinstance(raised.get_nowait(), KeyError)


def test_a_reactor_call_gives_up_when_released():
    """The reactor is shutting down and will never run the call: the thread is let go."""
    reactor = FakeReactor()
    calls = ReactorCalls(reactor)
    outcome = queue.Queue()

    def caller():
        try:
            outcome.put(calls.call(succeed, "never run"))
        except ReactorGone as e:
            outcome.put(e)

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    reactor.calls.get(timeout=WAIT)  # sent, and never run
    calls.release()
    thread.join(WAIT)
    assert not thread.is_alive(), "the thread still waits for a reactor that is gone"
    gone = outcome.get_nowait()
    assert isinstance(gone, ReactorGone) and gone.code == 503
    # Once released, nothing more is sent: the reactor would never run it.
    with pytest.raises(ReactorGone):
        calls.call(succeed, "after")
    assert reactor.calls.empty()


def test_a_hand_off_keeps_the_order_and_wakes_a_waiting_worker():
    handOff = HandOff()
    assert handOff.empty()
    taken = queue.Queue()
    worker = threading.Thread(target=lambda: [taken.put(handOff.take()) for _ in range(3)])
    worker.start()
    for item in (b"a", b"b", b"c"):
        handOff.put(item)
    worker.join(WAIT)
    assert [taken.get_nowait() for _ in range(3)] == [b"a", b"b", b"c"]
    assert handOff.empty()
