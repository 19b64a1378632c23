"""
A lock that the main process and its workers (C{--workers}) share.

Within a process it is a L{DeferredLock}; across processes, an exclusive
C{flock} on a file in the data directory, tried without blocking and tried
again shortly while another process holds it, so the reactor never waits
on it.  The lock goes with the process: a worker that dies holding it
holds it no more.
"""

import fcntl
import os

from twisted.internet.defer import DeferredLock, inlineCallbacks, maybeDeferred
from twisted.internet.task import deferLater

RETRY_INTERVAL = 0.01


class ProcessLock:
    def __init__(self, path: str, reactor):
        self._path = path
        self._reactor = reactor
        self._local = DeferredLock()
        self._fd: int | None = None

    @inlineCallbacks
    def run(self, function, *args, **kwargs):
        """
        C{function(*args, **kwargs)} (it may return a L{Deferred}) while
        holding the lock: its result.
        """
        yield self._local.acquire()
        try:
            yield self._acquire()
            try:
                return (yield maybeDeferred(function, *args, **kwargs))
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    @inlineCallbacks
    def _acquire(self):
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                yield deferLater(self._reactor, RETRY_INTERVAL, lambda: None)

