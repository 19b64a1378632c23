"""
Connections spread evenly between the processes of C{--workers}.

Every process waiting on a shared listening socket is woken by a new
connection, and the first to run takes it along with every other one
waiting (Twisted accepts up to 100 at a time): of 8 uploads starting
together, 6 or 7 went to one process while the other's core idled.  Here
each process counts its open connections in a table all of them share
(L{ConnectionTable}), takes one connection at a time, and leaves the next
one for a moment to a process that has fewer (L{BalancedPort}).

Only for a moment: a process that is stuck, or dead and not yet marked
so, never keeps a connection waiting longer than L{DEFER} seconds.
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
_ABSENT = 2**31 - 1  # a process not running: never the least loaded


class ConnectionTable:
    """
    How many connections each process has open, in memory shared by the
    main process (number 0) and its workers (1, 2, ...); each process
    writes only its own count, the main process also the count of a worker
    that ended.
    """

    def __init__(self, fd: int, processes: int, number: int):
        """
        The table in the shared memory C{fd}, for the process C{number},
        which counts as absent until L{listening}.
        """
        self.fd = fd
        self._table = mmap.mmap(fd, processes * _SLOT.size)
        self._processes = processes
        self._number = number
        self._open = 0

    @classmethod
    def create(cls, processes: int) -> "ConnectionTable":
        """The main process's table, the workers not started yet."""
        fd = os.memfd_create("bwscd-connections")
        os.ftruncate(fd, processes * _SLOT.size)
        table = cls(fd, processes, 0)
        for number in range(processes):
            table.absent(number)
        return table

    def _write(self, number: int, count: int) -> None:
        _SLOT.pack_into(self._table, number * _SLOT.size, count)

    def listening(self) -> None:
        """This process takes connections (its count starts at 0: a restarted
        worker's predecessor took its connections with it)."""
        self._write(self._number, self._open)

    def opened(self) -> None:
        self._open += 1
        self._write(self._number, self._open)

    def closed(self) -> None:
        self._open -= 1
        self._write(self._number, self._open)

    def absent(self, number: int) -> None:
        """The process C{number} is not running: leave nothing to it."""
        self._write(number, _ABSENT)

    def excess(self) -> int:
        """How many more connections this process has than the least loaded."""
        least = min(_SLOT.unpack_from(self._table, number * _SLOT.size)[0]
                    for number in range(self._processes))
        return self._open - least


class _CountedConnection(tcp.Server):
    """A connection its port's L{ConnectionTable} counts while it is open."""

    def __init__(self, skt, protocol, client, server, sessionno, reactor):
        super().__init__(skt, protocol, client, server, sessionno, reactor)
        server.connections.opened()

    def connectionLost(self, reason):
        try:
            super().connectionLost(reason)
        finally:
            self.server.connections.closed()


class BalancedPort(tcp.Port):
    """
    A listening port that takes one connection at a time, and none for
    L{DEFER} seconds while it has more than another process.  Build it as
    L{tcp.Port} is built (by C{listenTCP} or from an adopted descriptor),
    then set C{connections} before L{startListening}.
    """

    transport = _CountedConnection
    connections: ConnectionTable
    _deferred = None

    def doRead(self):
        if self.connections.excess() > 0:
            self.stopReading()
            self._deferred = self.reactor.callLater(DEFER, self._acceptAfterDeferring)
            return
        self._acceptOne()

    def _acceptOne(self):
        # tcp.Port accepts up to numberAccepts at once, and raises it after
        # every read that found as many waiting.
        self.numberAccepts = 1
        super().doRead()

    def _acceptAfterDeferring(self):
        self._deferred = None
        self.startReading()
        # Whether or not another process took it: nothing waits longer.
        self._acceptOne()

    def connectionLost(self, reason):
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        super().connectionLost(reason)


def listenBalanced(reactor, connections: ConnectionTable, factory, port: int,
                   interface: str = "", fd: int | None = None) -> BalancedPort:
    """
    A L{BalancedPort} listening on C{port} of C{interface}, or on the
    listening socket C{fd} (a copy of it: the caller closes its own).
    """
    if fd is None:
        listening = BalancedPort(port, factory, interface=interface, reactor=reactor)
    else:
        with socket.socket(fileno=os.dup(fd)) as adopted:
            family = adopted.family
        listening = BalancedPort._fromListeningDescriptor(reactor, fd, family, factory)
    listening.connections = connections
    listening.startListening()
    connections.listening()
    return listening
