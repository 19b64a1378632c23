"""
Every installed storage backend, opened in this process, for the
conformance suite: the same tests hold for each.

The reactor runs in a thread of its own for the whole session; tests call
into it with L{call}, and call writers directly, as the upload engine does
from its worker threads.
"""

import importlib
import os
import sys
import threading

import pytest
from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from bwscd.plugins import installedBackends, loadBackend

sys.path.insert(0, os.path.dirname(__file__))


def call(function, *args, **kwargs):
    """Run C{function} in the reactor thread and wait for its Deferred."""
    return blockingCallFromThread(reactor, function, *args, **kwargs)


@pytest.fixture(scope="session")
def runningReactor():
    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(30)


@pytest.fixture(scope="session")
def sshServer(tmp_path_factory):
    """A real OpenSSH sshd on loopback, for the sftp backend."""
    try:
        sshd = importlib.import_module("sshd")
    except ImportError:
        pytest.skip("no SSH test server (tests/backends/sshd.py)")
    server = sshd.SSHServer.start(str(tmp_path_factory.mktemp("sshd")))
    yield server
    server.stop()


def _spec(name, directory, request) -> str:
    if name == "filesystem":
        return f"filesystem:root={directory}/storage"
    if name == "sqlite":
        return f"sqlite:path={directory}/storage.sqlite"
    if name == "sftp":
        return request.getfixturevalue("sshServer").backendSpec(root=f"{directory}/sftp")
    pytest.skip(f"no conformance settings for the {name} backend")


@pytest.fixture(params=sorted(installedBackends()))
def backendSpec(request, tmp_path) -> str:
    """A C{--backend} spec for each installed backend, with fresh storage."""
    try:
        importlib.import_module(installedBackends()[request.param].factory.rsplit(".", 1)[0])
    except ImportError as e:
        pytest.skip(f"the {request.param} backend is not importable: {e}")
    return _spec(request.param, tmp_path, request)


@pytest.fixture
def openBackend(runningReactor, backendSpec, tmp_path):
    """C{openBackend()}: a new, opened backend on the same storage each time."""

    def openBackend():
        backend = loadBackend(backendSpec, str(tmp_path))
        call(backend.open)
        return backend

    return openBackend


@pytest.fixture
def backend(openBackend):
    return openBackend()
