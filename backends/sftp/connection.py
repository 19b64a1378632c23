"""
The SFTP backend's connection: one SSH connection carries every request.
L{Connection.open} starts it, and when it ends, starts it again, waiting 1,
2, 5, 10, then 30 seconds between attempts; until then every request fails
with L{ServiceUnavailable}, so the controller keeps its recording and
retries.  An idle-looking connection is probed, so that a silent network
failure is noticed.  At shutdown, what waits for the reactor is released and
no ssh outlives bwscd.
"""

import posixpath

from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from bwscd.backends import layout
from bwscd.backends.sftp.session import (
    FSYNC,
    POSIX_RENAME,
    STATVFS,
    Session,
    log,
    refuse,
)
from bwscd.backends.sftp.ssh import CONNECT_TIMEOUT, Peer, SSHProcess, Unreachable, Unusable
from bwscd.errors import ServiceUnavailable
from bwscd.threads import ReactorCalls

RECONNECT_DELAYS = (1, 2, 5, 10, 30)
"""Seconds between attempts to connect again; the last one repeats."""

KEEPALIVE_INTERVAL = 30
"""
Seconds between probes of an idle-looking connection.  One still
unanswered when the next is due means the link is dead: a silent network
failure is noticed within two intervals.
"""


class Connection:
    """
    The session to the SFTP server C{peer}, for the storage under C{root}
    there: the current one, or L{ServiceUnavailable} while there is none.

    @param requireReserve: refuse to start on a server that can't tell its
        free space, because the operator asked for a reserve.
    @ivar writers: the L{SFTPWriter<bwscd.backends.sftp.transfer.SFTPWriter>}s
        open, and
    @ivar readers: the readers open: at shutdown, their worker threads stop
        waiting for the reactor.
    """

    def __init__(self, reactor, peer: Peer, root: str, requireReserve: bool):
        self.reactor = reactor
        self.reactorCalls = ReactorCalls(reactor)
        """What the upload threads' writers wait for on the reactor."""
        self._peer = peer
        self._root = root
        self._requireReserve = requireReserve
        self._recover = True  # set by open()
        self._session: Session | None = None
        self._attempts = 0
        self._reconnecting = None
        self._keepalive: LoopingCall | None = None
        self._stopping = False
        self.writers: set = set()
        self.readers: set = set()
        self._processes: set[SSHProcess] = set()

    @inlineCallbacks
    def _connect(self):
        """A new session, its server examined and its leftovers removed."""
        ssh = SSHProcess(self._peer, self._root)
        ssh.start(self.reactor)
        self._processes.add(ssh)
        ssh.lost.addBoth(lambda _: self._processes.discard(ssh))
        timeout = self.reactor.callLater(
            CONNECT_TIMEOUT, ssh.drop,
            Unreachable(f"no SFTP session within {CONNECT_TIMEOUT} s"),
        )
        try:
            session = yield ssh.ready
        finally:
            if timeout.active():
                timeout.cancel()
        try:
            yield self._prepare(session)
        except BaseException:
            ssh.close()
            raise
        return session

    @inlineCallbacks
    def _prepare(self, session: Session):
        if self._requireReserve and not session.can(STATVFS):
            raise Unusable(
                f"reserve= was given, but {self._peer} can't tell its free space "
                "(no statvfs@openssh.com); leave reserve out to store without it"
            )
        yield session.makeDirectories(layout.TEMPORARY)
        yield session.examine()
        if not self._recover:
            return
        # Also on a reconnection: the writes of the lost session failed.
        leftovers = yield session.list(layout.TEMPORARY)
        for leftover in leftovers:
            yield session.remove(posixpath.join(layout.TEMPORARY, leftover))
        if leftovers:
            log.warn(
                "removed {count} leftover(s) of interrupted writes from {path} on {peer}",
                count=len(leftovers), path=posixpath.join(self._root, layout.TEMPORARY),
                peer=str(self._peer),
            )

    def _use(self, session: Session) -> None:
        self._session = session
        self._attempts = 0
        session.ssh.lost.addCallback(self._lost, session)
        self._keepalive = LoopingCall(self._probe, session)
        self._keepalive.clock = self.reactor
        self._keepalive.start(KEEPALIVE_INTERVAL, now=False)

    def _probe(self, session: Session) -> None:
        if session.probing:
            session.ssh.drop(Unreachable(
                f"no answer from the server within {KEEPALIVE_INTERVAL} s"))
            return
        session.probing = True

        def answered(result):
            session.probing = False

        session.probe().addBoth(answered)

    def _lost(self, reason, session: Session) -> None:
        if self._session is not session:
            return
        self._session = None
        self._keepalive.stop()
        if self._stopping:
            return
        log.warn("lost the connection to the SFTP server {peer} ({reason}); "
                 "answering 503 until it is back", peer=str(self._peer), reason=reason)
        self._retry()

    def _retry(self) -> None:
        delay = RECONNECT_DELAYS[min(self._attempts, len(RECONNECT_DELAYS) - 1)]
        self._attempts += 1
        self._reconnecting = self.reactor.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnecting = None
        d = self._connect()

        def connected(session):
            if self._stopping:
                session.ssh.close()
                return
            log.info("connected again to the SFTP server {peer}", peer=str(self._peer))
            self._use(session)

        def failed(reason):
            if self._stopping:
                return
            emit = log.error if reason.check(Unusable) else log.warn
            emit("can't connect to the SFTP server {peer} ({reason}); trying again in {delay} s",
                 peer=str(self._peer), reason=reason.getErrorMessage(),
                 delay=RECONNECT_DELAYS[min(self._attempts, len(RECONNECT_DELAYS) - 1)])
            self._retry()

        d.addCallbacks(connected, failed)

    def _beforeShutdown(self) -> None:
        self._stopping = True
        if self._reconnecting is not None and self._reconnecting.active():
            self._reconnecting.cancel()

    def _duringShutdown(self) -> None:
        # The reactor has dropped every connection; next, the upload threads
        # are joined from the reactor thread, which then runs nothing more:
        # a writer waiting for the reactor must stop waiting now.
        self.reactorCalls.release()
        # list() copies the set in one step: worker threads discard from it.
        for writer in list(self.writers):
            writer.release()
        for reader in list(self.readers):
            reader.release()
        # No ssh outlives bwscd.
        for ssh in list(self._processes):
            ssh.close()

    def current(self) -> Session:
        if self._session is None:
            raise ServiceUnavailable(
                f"the SFTP server {self._peer} is unreachable; bwscd is reconnecting"
            )
        return self._session

    def guarded(self, what: str, function, *args, session: Session | None = None):
        """
        Run C{function(session, *args)} on the current session (or
        C{session}), turning what the server or the connection says into
        the API's codes.
        """
        d = maybeDeferred(lambda: function(session or self.current(), *args))
        d.addErrback(refuse, what)
        return d

    def open(self, recover=True):
        self._recover = recover
        self.reactor.addSystemEventTrigger("before", "shutdown", self._beforeShutdown)
        self.reactor.addSystemEventTrigger("during", "shutdown", self._duringShutdown)
        d = self._connect()
        d.addCallbacks(self._opened, self._unopened)
        return d

    def _unopened(self, reason: Failure):
        if reason.check(Unusable):
            return reason
        raise Unreachable(f"can't use the SFTP server {self._peer}: "
                          f"{reason.getErrorMessage()}")

    def _opened(self, session: Session) -> None:
        log.info(
            "connected to the SFTP server {peer} ({version}); root {root}",
            peer=str(self._peer),
            version=session.ssh.serverVersion,
            root=self._root,
        )
        if not session.can(FSYNC):
            log.warn("the SFTP server has no fsync@openssh.com: a 201 means the server "
                     "received the bytes, not that they are on its disk")
        if not session.can(POSIX_RENAME):
            log.warn("the SFTP server has no posix-rename@openssh.com: replacing a file "
                     "(metadata, the registry) leaves a moment without it")
        if not session.can(STATVFS):
            log.warn("the SFTP server can't tell its free space: uploads are not "
                     "refused in advance when it is full")
        self._use(session)
