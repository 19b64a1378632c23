"""
L{bwscd.policy.registry.Registry} over a real filesystem backend: what the
controller registers, the history of names, the check of a recording
container's name, and the rebuild from the stored objects when the
registry's document is lost.
"""

import json
import os

import pytest

from bwscd.backends.filesystem import FilesystemBackend
from bwscd.config.processlock import ProcessLock
from bwscd.constraints import DEVICES, SYSTEM, USERS
from bwscd.errors import BadRequest, Forbidden
from bwscd.policy.capabilities import PublishedDocuments
from bwscd.policy.events import Events
from bwscd.policy.registry import STATE, Registry
from tests.support.backends import digestsOf
from tests.support.events import EventRecorder
from tests.support.reactor import call
from tests.support.recording import Recording

RECORDING = Recording()
MAY_1 = 1714521600.0  # 2024-05-01T00:00:00Z
MAY_2 = MAY_1 + 86400


class Store:
    """A filesystem backend in a temporary directory, and registries over it."""

    def __init__(self, directory, reactor):
        self.directory = str(directory)
        self.reactor = reactor
        self.backend = FilesystemBackend(os.path.join(self.directory, "storage"), reserve=0)
        call(self.backend.open)
        self.now = MAY_1

    def registry(self) -> Registry:
        """A new registry (as in a new process), loaded; its events in C{.seen}."""
        recorder = EventRecorder()
        registry = Registry(self.backend, Events([recorder], clock=lambda: self.now),
                            ProcessLock(os.path.join(self.directory, "registry.lock"),
                                        self.reactor),
                            clock=lambda: self.now)
        registry.seen = recorder.events
        call(registry.load)
        return registry

    def put(self, container, name, metadata):
        """Store an empty registry object, as the upload engine does, but past the registry."""
        call(self.backend.putContainer, container, {})
        writer = call(self.backend.openObject, container, name, metadata, 0)
        writer.commit(digestsOf(b""))


@pytest.fixture
def store(tmp_path, runningReactor) -> Store:
    return Store(tmp_path, runningReactor)


def stored(store, kind: str, identifier: str) -> dict | None:
    """The registry's entry for C{identifier} as it was persisted in the storage."""
    return json.loads(call(store.backend.readState, STATE))[kind].get(identifier)


def types(registry) -> list[str]:
    return [event["type"] for event in registry.seen]


def test_a_recording_needs_its_user_and_its_camera_registered(store):
    registry = store.registry()
    for missing in (f"user {RECORDING.user} is not registered",
                    f"device {RECORDING.device} is not registered"):
        with pytest.raises(BadRequest, match=missing):
            call(registry.recording, RECORDING.container)
        call(registry.record, USERS, RECORDING.user, {"Name": "Anna"})
    call(registry.record, DEVICES, RECORDING.device, {"Name": "Cam"})
    checked = call(registry.recording, RECORDING.container)
    assert (checked.user, checked.device) == (RECORDING.user, RECORDING.device)
    assert checked.triggerOnTime.isoformat() == "2024-05-01T10:15:00+00:00"
    refused = [e for e in registry.seen if e["type"] == "recording.refused"]
    assert [e["status"] for e in refused] == [400, 400]


@pytest.mark.parametrize("container, problem", [
    ("not-a-recording", "not a recording container name"),
    (f"{RECORDING.user}_{RECORDING.device}_20241341T101500Z",
     "20241341T101500Z is not a valid UTC time"),
])
def test_a_malformed_recording_name_is_refused_with_what_is_wrong(store, container, problem):
    registry = store.registry()
    with pytest.raises(BadRequest, match=problem):
        call(registry.recording, container)
    assert registry.seen[-1]["reason"].startswith(problem)


def test_a_recording_shows_the_name_its_user_had_when_it_was_made(store):
    registry = store.registry()
    call(registry.record, USERS, RECORDING.user, {"Name": "Anna", "Userid": "A-17"})
    call(registry.record, DEVICES, RECORDING.device, {"Name": "Cam 1"})
    store.now = MAY_2
    call(registry.record, USERS, RECORDING.user, {"Name": "Anna Berg", "Userid": "A-17"})
    call(registry.record, USERS, RECORDING.user, {"Name": "Anna Berg", "Userid": "A-17"})
    assert types(registry) == ["user.registered", "device.registered", "user.renamed"]
    described = registry.describe(call(registry.recording, RECORDING.container))
    assert (described["userName"], described["userNameNow"], described["deviceName"]) == (
        "Anna (A-17)", "Anna Berg (A-17)", "Cam 1")
    history = stored(store, USERS, RECORDING.user)["history"]
    assert [(h["name"], h["since"]) for h in history] == [
        ("Anna", "2024-05-01T00:00:00Z"), ("Anna Berg", "2024-05-02T00:00:00Z")]


def test_a_change_that_is_not_a_rename_is_an_update(store):
    registry = store.registry()
    call(registry.record, DEVICES, RECORDING.device, {"Name": "Cam", "Active": "True"})
    call(registry.record, DEVICES, RECORDING.device, {"Name": "Cam", "Active": "False"})
    assert types(registry) == ["device.registered", "device.updated"]
    assert registry.seen[-1]["previous"] == {"name": "Cam", "active": "True"}


def test_what_one_process_registers_another_finds(store):
    first, second = store.registry(), store.registry()
    call(first.record, USERS, RECORDING.user, {"Name": "Anna"})
    call(first.record, DEVICES, RECORDING.device, {"Name": "Cam"})
    assert call(second.recording, RECORDING.container).user == RECORDING.user
    assert json.loads(call(store.backend.readState, STATE))[USERS][RECORDING.user]["name"] \
        == "Anna"


def test_a_system_connection_id_is_set_once(store):
    first, second = store.registry(), store.registry()
    call(first.record, SYSTEM, "north", {"Systemname": "North", "Connectionid": "c-1"})
    call(second.check, SYSTEM, "north", {"Connectionid": "c-1"})  # the same: allowed
    with pytest.raises(Forbidden, match="ConnectionId is set once"):
        call(second.check, SYSTEM, "north", {"Connectionid": "c-2"})
    assert second.seen[-1] == {
        "type": "system.connection-id-refused", "time": "2024-05-01T00:00:00.000Z",
        "system": "north", "connectionId": "c-1", "attempted": "c-2"}
    # A name change keeps the ConnectionId even if a new one comes with it.
    call(second.record, SYSTEM, "north", {"Systemname": "South", "Connectionid": "c-2"})
    assert stored(store, SYSTEM, "north") | {"history": None} == {
        "systemName": "South", "connectionId": "c-1", "history": None}


def test_a_lost_registry_is_rebuilt_from_the_stored_objects(store):
    store.put(USERS, RECORDING.user, {"Name": "Anna"})
    store.put(DEVICES, RECORDING.device, {"Name": "Cam", "Model": "W110"})
    store.put(SYSTEM, "north", {"Systemname": "North"})
    store.put(SYSTEM, PublishedDocuments.CAPABILITIES, {})  # a published document, not a system
    registry = store.registry()
    assert call(registry.recording, RECORDING.container).device == RECORDING.device
    assert stored(store, DEVICES, RECORDING.device)["model"] == "W110"
    assert stored(store, SYSTEM, "north")["systemName"] == "North"
    assert stored(store, SYSTEM, PublishedDocuments.CAPABILITIES) is None
    assert call(store.backend.readState, STATE) is not None
