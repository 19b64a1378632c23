"""
Real parts for the unit tests of the policy objects and the protocol
handlers: the filesystem backend in a temporary directory, with the
registry on it, on the session's running reactor (its threads report back
through the reactor); and the resource tree over them, run in memory by
treq's L{StubTreq}, with the server's own streaming channel.
"""

import os
from dataclasses import dataclass, field

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock, LoopingCall
from twisted.internet.threads import blockingCallFromThread

from bwscd.config import datadir
from bwscd.config.processlock import ProcessLock
from bwscd.config.settings import Settings
from bwscd.plugins import loadBackend
from bwscd.policy.capabilities import PublishedDocuments
from bwscd.policy.categories import PublishedCategories
from bwscd.policy.events import Events
from bwscd.policy.refusals import RefusalEpisodes
from bwscd.policy.registry import Registry
from bwscd.protocol.auth import Authentication
from bwscd.protocol.channel import StreamingSite
from bwscd.protocol.routing import Root
from bwscd.protocol.storageapi import StorageAPI
from bwscd.security.accounts import Credentials
from bwscd.security.roles import ADMIN, BWS, READER
from bwscd.security.tokens import TokenAuthority
from bwscd.threads import Pools
from bwscd.transfer.quota import Quota


@dataclass
class Store:
    """An opened filesystem backend, its registry, and the events they emitted."""

    reactor: object
    backend: object
    registry: Registry
    events: Events
    pools: Pools
    seen: list[dict] = field(default_factory=list)

    def call(self, function, *args, **kwargs):
        """C{function}'s result, run in the reactor thread, its Deferred waited for."""
        return blockingCallFromThread(self.reactor, function, *args, **kwargs)

    def kinds(self) -> list[str]:
        return [event["type"] for event in self.seen]


class _Recorder:
    def __init__(self, seen):
        self._seen = seen

    def emit(self, event):
        self._seen.append(event)


@pytest.fixture
def store(runningReactor, tmp_path):
    seen = []
    events = Events([_Recorder(seen)])
    backend = loadBackend(f"filesystem:root={tmp_path}/storage", str(tmp_path))
    lock = ProcessLock(os.path.join(str(tmp_path), "registry.lock"), runningReactor)
    registry = Registry(backend, events, lock)
    pools = Pools(runningReactor, uploads=2, downloads=2)
    pools.start()
    store = Store(runningReactor, backend, registry, events, pools, seen)
    store.call(backend.open)
    store.call(registry.load)
    yield store
    pools.stop()


USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
DEVICE = "B8A44F000001"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"
"""A recording container, named for its user and camera as the API says."""


@dataclass
class Answer:
    code: int
    headers: dict[str, str]
    """By lower-case name."""
    body: bytes


@dataclass
class API:
    """The resource tree of a server over L{Store}, and a token for each role."""

    store: Store
    storage: StorageAPI
    stub: StubTreq
    account: str
    tokens: dict[str, str]
    recording: str = RECORDING
    user: str = USER

    def request(self, method: str, path: str = "", role: str | None = BWS,
                headers: dict | None = None, data: bytes | None = None) -> Answer:
        """
        C{method} on C{/v1/<account>/<path>} (or on C{path} itself if it
        starts with C{/}), with the token of C{role} (none for L{None}).
        """
        url = "http://127.0.0.1" + (path if path.startswith("/") else
                                    f"/v1/{self.account}/{path}".rstrip("/"))
        headers = dict(headers or {})
        if role is not None:
            headers["X-Auth-Token"] = self.tokens[role]
        return self.store.call(self._exchange, method, url, headers, data)

    def startRecording(self, status: str = "Transferring") -> str:
        """
        What the controller does before it sends a recording's clips:
        register the user and the camera, create the container.
        """
        for container, name in (("Users", USER), ("Devices", DEVICE)):
            assert self.request("PUT", container).code in (201, 202)
            assert self.request("PUT", f"{container}/{name}", data=b"",
                                headers={"X-Object-Meta-Name": "Cam"}).code == 201
        answer = self.request("PUT", RECORDING, headers={"X-Container-Meta-Status": status})
        assert answer.code == 201, answer.body
        return RECORDING

    @inlineCallbacks
    def _exchange(self, method, url, headers, data):
        # The answer may wait for the backend's threads: move the bytes
        # between client and server until it is in.
        pump = LoopingCall(self.stub.flush)
        pump.start(0.001)
        try:
            response = yield self.stub.request(method, url, headers=headers, data=data)
            body = yield response.content()
        finally:
            pump.stop()
        return Answer(response.code, {name.decode().lower(): values[-1].decode() for name, values
                                       in response.headers.getAllRawHeaders()}, body)


def _inMemory(root) -> StubTreq:
    """L{StubTreq} over C{root}, its site the server's L{StreamingSite}."""
    stub = StubTreq(root)
    # StubTreq's agent serves a plain Site, whose requests have no streamed
    # body (request.body) for an object PUT: give it the server's own.
    agent = stub._agent
    assert type(agent._serverFactory).__name__ == "Site", "treq's StubTreq changed"
    agent._serverFactory = StreamingSite(root, reactor=agent._memoryReactor)
    return stub


@pytest.fixture
def api(store, tmp_path) -> API:
    """
    The server's resource tree over L{store}, as the service assembles it
    (L{bwscd.service.assembly.makeService}), a reader ("archive") and an
    admin ("boss") account beside the controller's.
    """
    directory = str(tmp_path / "data")
    destination = datadir.prepare(directory, port=8080, https=False)
    settings = Settings.load(directory)
    settings.addAccount("archive", READER)
    settings.addAccount("boss", ADMIN)
    credentials = Credentials(settings)
    authority = TokenAuthority(credentials.tokenSecret, 3600)
    documents = PublishedDocuments(store.backend, destination.capabilities,
                                   PublishedCategories(destination.categoryFile, store.events),
                                   store.pools.uploads)
    store.call(documents.mirrorAll)
    quota = Quota(None, os.path.join(directory, "quota"))
    refusals = RefusalEpisodes(store.events, Clock(), 60)

    def assemble():
        storage = StorageAPI(authority, credentials, store.backend, store.registry,
                             store.events, store.reactor, store.pools, documents, quota,
                             refusals)
        return storage, Root(Authentication(credentials, authority, store.reactor, store.pools.auth), storage)

    storage, root = store.call(assemble)
    tokens = {BWS: authority.issue(credentials.userName)[0],
              READER: authority.issue("archive")[0], ADMIN: authority.issue("boss")[0]}
    return API(store, storage, _inMemory(root), f"AUTH_{credentials.userName}", tokens)
