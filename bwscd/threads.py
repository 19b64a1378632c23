"""
The one bridge between the reactor thread and the threads that do blocking
work (hashing, writing, fsync, SQLite, JSON checks, scrypt, waiting for a
network store).  docs/threads.md says which thread runs what.

Three ways across, one class each:

  - L{Pool}: from the reactor, run a call in a named pool of at most so many
    threads and get a L{Deferred} (L{Pool.run}); from another thread, run a
    call there and wait for it (L{Pool.call}), now or later (L{Pool.later}).
  - L{ReactorCalls}: from a thread, run a call on the reactor and wait for
    its result, giving up when the reactor shuts down.
  - L{HandOff}: a stream of items from the reactor to one worker thread, in
    order (an upload's body on its way to the writer).

L{Pools} holds the service's own pools, one per kind of work, so that one
kind can never take the threads of another (slow readers the uploads').

May import only Twisted, zope.interface and L{bwscd.errors}.
"""

import queue
import threading
from collections import deque

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from bwscd.errors import ServiceUnavailable

# GNSS track checks parse up to 16 MiB of JSON each, which takes memory
# while it runs: two at a time keep up with any controller.
CHECK_THREADS = 2
# One key check (scrypt, 16 MiB while it runs) at a time: a flood of logins
# must not multiply that memory.
AUTH_THREADS = 1


class Pool:
    """
    At most C{size} threads named C{bwscd-NAME}, created as work comes and
    kept once made (Twisted retires a pool's idle threads only when it is
    resized): a pool of one runs everything on one thread for its whole life.
    Calls beyond C{size} wait their turn, in order.  It starts with its
    first L{run}, unless started before (see L{startUntilShutdown}).

    @param reactor: the reactor, or L{None} for the global one once it is
        first needed (a backend is made before twistd installs its reactor).
    @param last: if given, run on the pool's thread before it stops (SQLite
        closes its connection on the thread that opened it).
    """

    def __init__(self, reactor, name: str, size: int, last=None):
        self.name = name
        self.size = size
        self._givenReactor = reactor
        self._last = last
        self._threads = ThreadPool(minthreads=0, maxthreads=size, name=f"bwscd-{name}")

    @property
    def _reactor(self):
        if self._givenReactor is None:
            from twisted.internet import reactor

            self._givenReactor = reactor
        return self._givenReactor

    @property
    def started(self) -> bool:
        return self._threads.started

    def start(self) -> None:
        self._threads.start()

    def stop(self) -> None:
        """Finish what was given, then let the threads go; waits for them."""
        if self._last is not None:
            self._threads.callInThread(self._last)
        self._threads.stop()

    def startUntilShutdown(self) -> None:
        """
        On the reactor: start, unless started, and stop after the reactor
        shuts down, once it has dropped every connection (a worker may be
        waiting for its connection's next bytes until then).  Pools started
        earlier are stopped earlier: a pool whose threads wait for another's
        (an upload's for SQLite's) must be started first.
        """
        if not self.started:
            self.start()
            self._reactor.addSystemEventTrigger("after", "shutdown", self.stop)

    def run(self, function, *args) -> Deferred:
        """
        From the reactor: C{function(*args)} in one of the pool's threads.

        @return: L{Deferred} firing, on the reactor, with its result.
        """
        self.startUntilShutdown()
        return deferToThreadPool(self._reactor, self._threads, function, *args)

    def call(self, function, *args):
        """
        From a thread that is not the reactor's (nor one of this pool's):
        C{function(*args)} in one of the pool's threads; its result returned,
        or its exception raised, here.  The pool has started (this thread's
        work came from a L{run}, or see L{startUntilShutdown}).
        """
        return self.later(function, *args).result()

    def later(self, function, *args) -> "Pending":
        """
        As L{call}, but without waiting: C{function(*args)} starts in one of
        the pool's threads, and the L{Pending} returned waits for it when
        asked, so that this thread goes on meanwhile.
        """
        outcome: queue.SimpleQueue = queue.SimpleQueue()
        self._threads.callInThreadWithCallback(
            lambda *result: outcome.put(result), function, *args)
        return Pending(outcome)


class Pending:
    """A call running in a pool's thread, started by L{Pool.later}."""

    def __init__(self, outcome: queue.SimpleQueue):
        self._outcome = outcome
        self._settled = None

    def result(self):
        """Wait for the call: its result returned, or its exception raised, here."""
        if self._settled is None:
            self._settled = self._outcome.get()
        succeeded, result = self._settled
        if not succeeded:
            result.raiseException()
        return result


class Pools:
    """
    The service's thread pools, each with its own limit:

    @ivar uploads: one thread per upload receiving (C{--max-uploads}): it
        hashes, writes and syncs the body.
    @ivar downloads: reads from storage for downloads (C{--max-downloads}
        reads at once); a download whose client is slow holds none.
    @ivar checks: blocking checks of what was stored (GNSS tracks' JSON).
    @ivar auth: key checks at login.

    The backends have their own (L{bwscd.backends}): they are made before
    the service, and run without it (C{bwscd backup}).
    """

    def __init__(self, reactor, uploads: int, downloads: int):
        self.uploads = Pool(reactor, "uploads", uploads)
        self.downloads = Pool(reactor, "downloads", downloads)
        self.checks = Pool(reactor, "checks", CHECK_THREADS)
        self.auth = Pool(reactor, "auth", AUTH_THREADS)

    def start(self) -> None:
        for pool in self._all():
            pool.start()

    def stop(self) -> None:
        """Finish what was given, then let the threads go; waits for them."""
        for pool in self._all():
            pool.stop()

    def _all(self) -> tuple[Pool, ...]:
        return self.uploads, self.downloads, self.checks, self.auth


class ReactorGone(ServiceUnavailable):
    """The reactor stopped before it could answer: bwscd is shutting down."""

    def __init__(self):
        super().__init__("bwscd is shutting down")


class ReactorCalls:
    """
    Calls from threads to the reactor, each waited for, all of which give
    up with L{ReactorGone} once L{release} is called (at shutdown, when the
    reactor no longer runs what is sent to it).  L{blockingCallFromThread}
    would wait for ever there.
    """

    def __init__(self, reactor):
        self._reactor = reactor
        self._settled = threading.Condition(threading.Lock())
        self._released = False

    def call(self, function, *args):
        """
        From a thread that is not the reactor's: C{function(*args)} run on
        the reactor; its result (a Deferred's, once it fires) returned, or
        its exception raised, here.

        @raise ReactorGone: if L{release} was called first, or while waiting.
        """
        if self._released:
            raise ReactorGone()
        outcome = []

        def finished(result):
            with self._settled:
                outcome.append(result)
                self._settled.notify_all()

        self._reactor.callFromThread(
            lambda: maybeDeferred(function, *args).addBoth(finished))
        with self._settled:
            while not outcome and not self._released:
                self._settled.wait()
        if not outcome:
            raise ReactorGone()
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0]

    def release(self) -> None:
        """Stop waiting for the reactor: it is shutting down."""
        with self._settled:
            self._released = True
            self._settled.notify_all()


class HandOff:
    """
    Items from the reactor thread to one worker thread, in order.  A put
    wakes the worker only if it waits: a worker that keeps up is woken once
    per item at most, one that is behind not at all.
    """

    def __init__(self):
        self._items: deque = deque()
        self._ready = threading.Condition(threading.Lock())

    def put(self, item) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def take(self):
        """On the worker: the next item, once there is one."""
        with self._ready:
            while not self._items:
                self._ready.wait()
            return self._items.popleft()

    def empty(self) -> bool:
        """
        Whether nothing waits, without the lock: the answer may be stale by
        the time it is read, so only use it for a hint.
        """
        return not self._items
