"""
Fixtures that run the real thing: a C{twistd -n bwscd} process on loopback
(L{tests.support.server}), and python-swiftclient as the client.
"""

import threading

import pytest
import swiftclient
from twisted.internet import reactor
from twisted.logger import capturedLogs

from tests.support.recording import Recording
from tests.support.server import TWISTD, Server, startServer


@pytest.fixture
def recording() -> Recording:
    return Recording()


@pytest.fixture
def dataDirectory(tmp_path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def server(dataDirectory):
    running = startServer(dataDirectory)
    yield running
    running.stop()


@pytest.fixture
def swift(server) -> swiftclient.Connection:
    connection = server.connection()
    yield connection
    connection.close()


@pytest.fixture
def launch():
    """
    C{launch(data, *arguments, port=None, https=True, cwd=None)} starts a server (see
    L{startServer}); every server started is stopped after the test.
    """
    servers = []

    def launch(*args, **kwargs) -> Server:
        servers.append(startServer(*args, **kwargs))
        return servers[-1]

    yield launch
    for running in servers:
        running.stop()


@pytest.fixture
def twistdCommand() -> list[str]:
    return [TWISTD, "-n", "--pidfile="]


@pytest.fixture(scope="module")
def moduleServer(tmp_path_factory):
    """One server for a whole module, for cases that need no fresh state."""
    running = startServer(str(tmp_path_factory.mktemp("shared") / "data"))
    yield running
    running.stop()


@pytest.fixture
def logged() -> list[dict]:
    """Every log event emitted in this process during the test."""
    with capturedLogs() as events:
        yield events


@pytest.fixture(scope="session")
def runningReactor():
    """
    The reactor, running in a thread of its own for the rest of the session:
    for code under test that runs in it (backends' threads, L{Deferred}s),
    called with L{tests.support.reactor.call}.
    """
    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(30)
