"""
Connections spread between the processes of C{--workers} by how many each
has open.

Every process waiting on a shared listening socket is woken by a new
connection, and the first to run takes it along with every other one
waiting (Twisted accepts up to 100 at a time): of 8 uploads starting
together, 6 or 7 went to one process while the other's core idled.  Here
each process counts its open connections in a table all of them share
(L{ConnectionTable}), takes one connection at a time, and leaves the next
one for a moment to a process that has fewer (L{BalancedPort}).

Only for a moment: once a process has left a connection to the others for
L{DEFER} seconds and none of them took one, it stops leaving connections
to them until their counts change, so a process that is stuck, or dead and
not yet marked so, delays one connection by L{DEFER} and no more.
"""

import mmap
import os
import socket
import struct

from twisted.internet import tcp

DEFER = 0.02
"""
Seconds a process with more connections than another leaves a new
connection to it: far more than a reactor iteration takes, far less than
a client notices.
"""

_SLOT = struct.Struct("=i")
_ABSENT = 2**31 - 1  # a process not listening: never the least loaded


class ConnectionTable:
    """
    How many connections each process has open, in memory shared by the
    main process (number 0) and its workers (1, 2, ...); each process
    writes only its own count, the main process also marks a worker that
    ended as absent.
    """

    def __init__(self, fd: int, processes: int, number: int):
        """
        The table in the shared memory C{fd}, for the process C{number},
        which counts as absent until L{startedListening}.
        """
        self.fd = fd
        self._table = mmap.mmap(fd, processes * _SLOT.size)
        self._processes = processes
        self._number = number
        self._open = 0
        self._listening = False

    @classmethod
    def create(cls, processes: int) -> "ConnectionTable":
        """The main process's table, the workers not started yet."""
        fd = os.memfd_create("bwscd-connections")
        os.ftruncate(fd, processes * _SLOT.size)
        table = cls(fd, processes, 0)
        for number in range(processes):
            table.markAbsent(number)
        return table

    def _count(self, number: int) -> int:
        return _SLOT.unpack_from(self._table, number * _SLOT.size)[0]

    def _publish(self) -> None:
        count = self._open if self._listening else _ABSENT
        _SLOT.pack_into(self._table, self._number * _SLOT.size, count)

    def startedListening(self) -> None:
        """
        This process takes connections (from 0: a restarted worker's
        predecessor took its connections with it).
        """
        self._listening = True
        self._publish()

    def stoppedListening(self) -> None:
        """This process takes no more connections: leave none to it."""
        self._listening = False
        self._publish()

    def connectionOpened(self) -> None:
        self._open += 1
        self._publish()

    def connectionClosed(self) -> None:
        self._open -= 1
        self._publish()

    def markAbsent(self, number: int) -> None:
        """The process C{number} is not running: leave nothing to it."""
        _SLOT.pack_into(self._table, number * _SLOT.size, _ABSENT)

    def excess(self) -> int:
        """How many more connections this process has than the least loaded."""
        return self._open - min(self._count(number) for number in range(self._processes))

    def others(self) -> tuple[int, ...]:
        """The other processes' counts, to see whether they change."""
        return tuple(self._count(number) for number in range(self._processes)
                     if number != self._number)


class _CountedConnection(tcp.Server):
    """A connection its port's L{ConnectionTable} counts while it is open."""

    def __init__(self, skt, protocol, client, server, sessionno, reactor):
        super().__init__(skt, protocol, client, server, sessionno, reactor)
        server.connections.connectionOpened()

    def connectionLost(self, reason):
        try:
            super().connectionLost(reason)
        finally:
            self.server.connections.connectionClosed()


class BalancedPort(tcp.Port):
    """
    A listening port that takes one connection at a time, and none for
    L{DEFER} seconds while it has more than another process, unless the
    others took none the last time it waited for them.  Build it as
    L{tcp.Port} is built (by C{listenTCP} or from an adopted descriptor),
    then set C{connections} before L{startListening}.
    """

    transport = _CountedConnection
    connections: ConnectionTable
    _deferred = None
    _unresponsive = None  # the others' counts when they last took nothing left to them

    def doRead(self):
        others = self.connections.others()
        if self.connections.excess() > 0 and others != self._unresponsive:
            self.stopReading()
            self._deferred = self.reactor.callLater(
                DEFER, self._acceptAfterDeferring, others)
            return
        self._acceptOne()

    def _acceptOne(self):
        # tcp.Port accepts up to numberAccepts at once, and raises it after
        # every read that found as many waiting.
        self.numberAccepts = 1
        super().doRead()

    def _acceptAfterDeferring(self, othersBefore):
        self._deferred = None
        if self.disconnecting or not self.connected:
            return  # closing: loseConnection stopped reading for good
        others = self.connections.others()
        # None of the others took a connection or lost one meanwhile: they
        # are not taking any (or the client left).  Take what waits, one
        # per reactor iteration, until their counts change.
        self._unresponsive = others if others == othersBefore else None
        self.startReading()
        self._acceptOne()

    def connectionLost(self, reason):
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        self.connections.stoppedListening()
        super().connectionLost(reason)


def listenBalanced(reactor, connections: ConnectionTable, factory, fd: int) -> BalancedPort:
    """
    A L{BalancedPort} on the listening socket C{fd} (a copy of it: the
    caller closes its own).
    """
    with socket.socket(fileno=os.dup(fd)) as adopted:
        family = adopted.family
    listening = BalancedPort._fromListeningDescriptor(reactor, fd, family, factory)
    listening.connections = connections
    listening.startListening()
    connections.startedListening()
    return listening
