"""The table of open connections that --workers processes share."""

import os
import socket

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from bwscd.service.balance import DEFER, BalancedPort, ConnectionTable


@pytest.fixture
def tables():
    """The main process's table and a worker's view of it, 3 processes."""
    main = ConnectionTable.create(3)
    worker = ConnectionTable(main.fd, 3, 1)
    yield main, worker
    os.close(main.fd)


def test_a_process_counts_only_once_listening(tables):
    main, worker = tables
    main.startedListening()
    main.connectionOpened()
    # The workers are not listening yet: the main process is the least loaded.
    assert main.excess() == 0
    worker.startedListening()
    assert main.excess() == 1
    assert worker.excess() == 0
    # What the worker sees of the others: the main process's count, and the
    # third process's, which has not started and counts more than any.
    assert worker.others()[0] == 1
    assert worker.others()[1] > 1 << 30


def test_counts_follow_connections(tables):
    main, worker = tables
    main.startedListening()
    worker.startedListening()
    for _ in range(3):
        worker.connectionOpened()
    main.connectionOpened()
    assert worker.excess() == 2
    assert main.excess() == 0
    worker.connectionClosed()
    worker.connectionClosed()
    assert worker.excess() == 0
    assert main.others()[0] == 1


def test_a_process_that_ended_or_stopped_listening_gets_nothing_left_to_it(tables):
    main, worker = tables
    main.startedListening()
    worker.startedListening()
    main.connectionOpened()
    assert main.excess() == 1
    main.markAbsent(1)  # the worker ended
    assert main.excess() == 0
    worker.startedListening()  # its replacement
    worker.connectionOpened()
    assert main.excess() == 0
    worker.stoppedListening()
    # A connection closing after its port closed leaves it absent.
    worker.connectionClosed()
    assert main.excess() == 0
    assert main.others()[0] > 1 << 30


class _Reactor(Clock):
    """What a listening port and its connections ask of a reactor, the time
    driven by the test."""

    def __init__(self):
        super().__init__()
        self.readers = set()

    def addReader(self, reader):
        self.readers.add(reader)

    def removeReader(self, reader):
        self.readers.discard(reader)

    def addWriter(self, writer):
        pass

    def removeWriter(self, writer):
        pass


def test_a_port_leaves_a_connection_to_a_less_loaded_process_only_for_a_moment(tables):
    main, worker = tables
    reactor = _Reactor()
    accepted = []

    class Accepted(Protocol):
        def connectionMade(self):
            accepted.append(self)

    port = BalancedPort(0, Factory.forProtocol(Accepted), interface="127.0.0.1",
                        reactor=reactor)
    port.connections = main
    port.startListening()
    main.startedListening()
    worker.startedListening()  # and takes nothing: it is not running here
    main.connectionOpened()  # one more than the worker
    clients = [socket.create_connection(("127.0.0.1", port.getHost().port))
               for _ in range(3)]
    try:
        port.doRead()
        assert accepted == [] and port not in reactor.readers
        reactor.advance(DEFER)
        # Nobody took it meanwhile: taken, and so is the next one, at once.
        assert len(accepted) == 1 and port in reactor.readers
        port.doRead()
        assert len(accepted) == 2
        # The worker's count changed: it takes connections again.
        worker.connectionOpened()
        port.doRead()
        assert len(accepted) == 2 and reactor.getDelayedCalls()
        # Closing meanwhile: the deferral ends with nothing taken, even if it
        # runs before the port's connectionLost (as it may, when both are
        # due in the same reactor iteration).
        [deferral] = reactor.getDelayedCalls()
        port.loseConnection()
        deferral.func(*deferral.args)
        reactor.advance(DEFER)
        assert len(accepted) == 2 and port not in reactor.readers
    finally:
        for client in clients:
            client.close()
        for protocol in accepted:
            protocol.transport.socket.close()
        if port.connected:
            port.loseConnection()
            reactor.advance(0)
    # Closed, the main process gets nothing left to it.
    assert worker.others()[0] > 1 << 30
