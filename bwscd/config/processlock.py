"""
Locks on files, with C{flock}: the kernel lets one go with the last process
holding it, so a crash never leaves one behind.

L{ProcessLock} is taken and let go around one operation, by the main
process and its workers (C{--workers}) in turn.  L{ServiceLock} is taken
once, at start, and held for as long as the service runs: the data
directory, or a backend's storage, is one service's alone.
"""

import fcntl
import os

from twisted.internet.defer import DeferredLock, inlineCallbacks, maybeDeferred
from twisted.internet.task import deferLater

from bwscd.config.paths import DATA_DIRECTORY_LOCK

RETRY_INTERVAL = 0.01


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _tryLock(fd: int) -> bool:
    """Take the exclusive lock on C{fd} if no other holds it; whether it did."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


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
            self._fd = _open(self._path)
        while not _tryLock(self._fd):
            yield deferLater(self._reactor, RETRY_INTERVAL, lambda: None)


class InUse(Exception):
    """Another process holds a L{ServiceLock}; the message names it, in one line."""


class ServiceLock:
    """
    An exclusive lock on C{path}, held from L{claim} until the process
    ends, for what C{what} names ("the data directory /srv/bwscd").  The
    file holds the holder's process id, for the refusal another process
    gets.  Worker processes share it by inheriting L{fd}: a lock belongs
    to the open file, not to one process.
    """

    def __init__(self, path: str, what: str):
        self.path = path
        self.what = what
        self.fd: int | None = None

    def claim(self) -> None:
        """
        @raise InUse: if another process holds it.
        @raise OSError: if the file can't be made or opened.
        """
        fd = _open(self.path)
        if not _tryLock(fd):
            with os.fdopen(fd, "rb") as f:
                holder = f.readline().strip().decode("ascii", "replace") or "unknown"
            raise InUse(f"{self.what} is in use by process {holder}: stop that bwscd first, "
                        "or give this one its own data directory and storage")
        self.fd = fd
        self.recordHolder()

    def recordHolder(self) -> None:
        """
        Write this process's id into the file: at L{claim}, and again
        after twistd has become a daemon, in a new process.
        """
        line = b"%d\n" % os.getpid()
        # Never empty for a reader in between: the old id goes only after.
        os.pwrite(self.fd, line, 0)
        os.ftruncate(self.fd, len(line))


def claimStorage(dataDirectory: str, backend) -> list[ServiceLock]:
    """
    Make the data directory, and the storage of C{backend} (an
    L{bwscd.interfaces.IStorageBackend}) if it has a lock, this process's
    alone, before anything in them is read or written: for the server, and
    for a command that changes what a server would be using.

    @raise InUse: if another process holds either.
    @raise OSError: if a lock can't be made.
    """
    wanted = [ServiceLock(os.path.join(dataDirectory, DATA_DIRECTORY_LOCK),
                          f"the data directory {dataDirectory}")]
    if backend.lockPath is not None:
        wanted.append(ServiceLock(backend.lockPath, backend.description))
    for lock in wanted:
        os.makedirs(os.path.dirname(lock.path), exist_ok=True)
        lock.claim()
    return wanted
