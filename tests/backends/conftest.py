"""
Every installed storage backend, opened in this process, for the
conformance suite: the same tests hold for each.  So does the example
backend that docs/backends.md gives in full, taken from the page itself.

The reactor runs in a thread of its own for the whole session
(C{runningReactor}); tests call into it with L{tests.support.reactor.call},
and call writers directly, as the upload engine does from its worker threads.
"""

import functools
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

import pytest
from twisted.plugin import IPlugin

from bwscd.interfaces import IBackendPlugin
from bwscd.plugins import installedBackends, loadBackend
from tests.support.backends import DOCUMENTED, EXAMPLE_FILES, STORAGE, writeDocumentedExample
from tests.support.installing import Unavailable
from tests.support.keystone import Keystone
from tests.support.reactor import call
from tests.support.sshd import SSHServer
from tests.support.swiftcluster import S3_BUCKET, SwiftCluster


@pytest.fixture(scope="session")
def sshServer(tmp_path_factory):
    """A real OpenSSH sshd on loopback, for the sftp backend."""
    try:
        server = SSHServer.start(str(tmp_path_factory.mktemp("sshd")))
    except Unavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def swiftCluster(tmp_path_factory):
    """A real single-node OpenStack Swift on loopback, for the swift backend."""
    try:
        # Below the conformance suite's largest object, which then goes as a
        # Static Large Object.
        cluster = SwiftCluster.start(str(tmp_path_factory.mktemp("swift")), maxFileSize=48 << 20)
    except Unavailable as e:
        pytest.skip(str(e))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def keystone(tmp_path_factory, swiftCluster):
    """A real Keystone on loopback, its object-store endpoint a proxy of C{swiftCluster}."""
    try:
        server = Keystone.start(str(tmp_path_factory.mktemp("keystone")), swiftCluster)
    except Unavailable as e:
        pytest.skip(str(e))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3Bucket(swiftCluster):
    """
    C{s3Bucket(**options)}: a C{--backend} spec for one bucket of the
    cluster's S3 API (its s3api), made for the session.
    """
    swiftCluster.s3().create_bucket(Bucket=S3_BUCKET)
    return functools.partial(swiftCluster.s3BackendSpec, S3_BUCKET)


@pytest.fixture
def prefix(tmp_path) -> str:
    """Where a test's containers go in a store the session shares: a prefix of their names."""
    return f"{tmp_path.name}-"


@pytest.fixture
def reader():
    """C{reader(server)}: an account of C{server} that may read evidence back."""
    accounts = []

    def reader(server):
        accounts.append(server.addAccount("reviewer", "reader"))
        return accounts[-1]

    yield reader
    for account in accounts:
        account.close()


@pytest.fixture(scope="session")
def documentedExample(tmp_path_factory) -> str:
    """A directory holding the example backend of docs/backends.md."""
    return writeDocumentedExample(str(tmp_path_factory.mktemp("documented")))


@pytest.fixture(scope="session")
def documentedPlugin(documentedExample):
    """
    The example's plugin object, from its plugin module, with the backend's
    module importable as the plugin's factory name expects.
    """
    path = os.path.join(documentedExample, EXAMPLE_FILES[1])
    spec = importlib.util.spec_from_file_location("memorybackend_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugins = [p for p in vars(module).values()
               if IPlugin.providedBy(p) and IBackendPlugin.providedBy(p)]
    assert [p.name for p in plugins] == ["memory"]
    sys.path.insert(0, documentedExample)
    yield plugins[0]
    sys.path.remove(documentedExample)
    sys.modules.pop("memorybackend", None)


@dataclass(frozen=True)
class Candidate:
    """A backend the conformance suite runs on."""

    name: str
    persistent: bool = True
    """What it stores is there again for a new backend on the same storage
    (another L{openBackend}()), as after a restart."""


CANDIDATES = [Candidate(name) for name in sorted(installedBackends())] + [
    Candidate(DOCUMENTED, persistent=False)]


def _installedSpec(name, directory, request) -> str:
    """A C{--backend} spec for the installed backend C{name}, or a skip."""
    try:
        importlib.import_module(installedBackends()[name].factory.rsplit(".", 1)[0])
    except ImportError as e:
        pytest.skip(f"the {name} backend is not importable: {e}")
    return _spec(name, directory, request)


def _spec(name, directory, request) -> str:
    if name == "filesystem":
        return f"filesystem:root={directory}/{STORAGE[name]}"
    if name == "sqlite":
        return f"sqlite:path={directory}/{STORAGE[name]}"
    if name == "sftp":
        return request.getfixturevalue("sshServer").backendSpec(
            root=f"{directory}/{STORAGE[name]}")
    if name == "s3":
        return request.getfixturevalue("s3Bucket")(prefix=f"{os.path.basename(directory)}-")
    if name == "swift":
        # One account for the session: each test's containers under a prefix of its own.
        return request.getfixturevalue("swiftCluster").backendSpec(
            prefix=f"{os.path.basename(directory)}-")
    pytest.skip(f"no conformance settings for the {name} backend")


@pytest.fixture(params=sorted(installedBackends()))
def backendSpec(request, tmp_path) -> str:
    """A C{--backend} spec for each installed backend, with fresh storage."""
    return _installedSpec(request.param, tmp_path, request)


@pytest.fixture(params=CANDIDATES, ids=lambda candidate: candidate.name)
def openBackend(request, runningReactor, tmp_path):
    """
    C{openBackend()}: a new, opened backend on the same storage each time,
    for each installed backend and the documented example.  A second call
    skips the test for a backend that keeps nothing across them.
    """
    candidate = request.param
    if candidate.name == DOCUMENTED:
        plugin = request.getfixturevalue("documentedPlugin")
        # Room for the suite's largest object (64 MiB).
        load = lambda: plugin.backend(str(tmp_path), {"limit": str(128 << 20)})  # noqa: E731
    else:
        spec = _installedSpec(candidate.name, tmp_path, request)
        load = lambda: loadBackend(spec, str(tmp_path))  # noqa: E731
    opened = []

    def openBackend():
        if opened and not candidate.persistent:
            pytest.skip(f"{candidate.name} keeps nothing from one backend to the next; "
                        "this test needs storage that survives a restart")
        backend = load()
        call(backend.open)
        opened.append(backend)
        return backend

    return openBackend


@pytest.fixture
def backend(openBackend):
    return openBackend()
