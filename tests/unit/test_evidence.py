"""
L{bwscd.policy.evidence.EvidenceRules}, without HTTP, over the filesystem
backend and the registry on it (see conftest.py).
"""

import hashlib

import pytest

from bwscd.errors import BadRequest, Conflict, Forbidden, NotFound
from bwscd.interfaces import Digests, ObjectInfo
from bwscd.policy.evidence import COMPLETE, EvidenceRules

USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
DEVICE = "B8A44F000001"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"
REJECTED = "RejectedContent_20240501T101500Z_1"
TRACK = "20240501_101500_1_B8A44F000001_gpstrail.json"


@pytest.fixture
def rules(store):
    """The rules, with the user and camera of L{RECORDING} registered."""
    for container, name in (("Users", USER), ("Devices", DEVICE)):
        store.call(store.backend.putContainer, container, {})
        store.call(store.registry.record, container, name, {"Name": "Cam " + name})
    del store.seen[:]
    rules = EvidenceRules(store.registry, store.backend, store.events, store.pools.checks)
    rules.store = store
    return rules


def stored(name, data=b"{}", existed=False):
    digests = Digests(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
    return ObjectInfo(RECORDING, name, digests, 0.0, existed=existed)


def test_everything_but_the_registry_is_evidence(rules):
    assert [rules.isEvidence(c) for c in ("System", "Users", "Devices", RECORDING, REJECTED,
                                          "anything")] == [False, False, False, True, True, True]


def test_status_is_read_from_the_recording_only(rules):
    store = rules.store
    assert store.call(rules.statusOf, RECORDING) is None  # no such container yet
    store.call(store.backend.putContainer, RECORDING, {"Status": COMPLETE})
    assert store.call(rules.statusOf, RECORDING) == COMPLETE
    assert store.call(rules.isComplete, RECORDING)
    store.call(store.backend.putContainer, "Users", {"Status": COMPLETE})
    assert store.call(rules.statusOf, "Users") is None
    assert not store.call(rules.isComplete, "Users")


def test_a_recording_is_described_from_the_registry_and_its_start_told(rules):
    store = rules.store
    recording = store.call(rules.recording, RECORDING)
    rules.containerCreated(RECORDING, {}, recording)
    [started] = store.seen
    assert started["type"] == "recording.started"
    assert (started["user"], started["device"], started["deviceName"]) == (
        USER, DEVICE, "Cam " + DEVICE)
    assert store.call(rules.recording, REJECTED) is None
    assert store.call(rules.recording, "Users") is None


def test_a_recording_of_an_unknown_camera_is_refused(rules):
    with pytest.raises(BadRequest, match="device B8A44F000002 is not registered"):
        rules.store.call(rules.recording, f"{USER}_B8A44F000002_20240501T101500Z")
    assert rules.store.kinds() == ["recording.refused"]


def test_rejected_content_is_told_with_where_it_came_from_and_why(rules):
    rules.containerCreated(REJECTED, {"Rejectedcontentoriginalcontainer": RECORDING,
                                      "Rejectedcontentreason": "no user"}, None)
    [received] = rules.store.seen
    assert (received["type"], received["originalContainer"], received["reason"]) == (
        "rejected.received", RECORDING, "no user")


def test_completion_is_noted_once_and_for_evidence_only(rules):
    rules.noteCompletion(RECORDING, "Transferring", {"Status": COMPLETE})
    rules.noteCompletion(RECORDING, COMPLETE, {"Status": COMPLETE})  # set again
    rules.noteCompletion(RECORDING, None, {"Status": "Transferring"})
    rules.noteCompletion("Users", None, {"Status": COMPLETE})
    assert rules.store.seen == [{"time": rules.store.seen[0]["time"],
                                 "type": "recording.complete", "container": RECORDING}]


def test_only_complete_recordings_and_rejected_content_may_be_deleted(rules):
    store = rules.store
    with pytest.raises(Forbidden, match="the Users records are kept"):
        store.call(rules.checkDeletable, "Users")
    with pytest.raises(NotFound):
        store.call(rules.checkDeletable, RECORDING)
    store.call(store.backend.putContainer, RECORDING, {"Status": "Transferring"})
    with pytest.raises(Conflict, match="is not Complete yet"):
        store.call(rules.checkDeletable, RECORDING)
    store.call(store.backend.updateContainer, RECORDING, {"Status": COMPLETE})
    store.call(rules.checkDeletable, RECORDING)
    store.call(store.backend.putContainer, REJECTED, {})
    store.call(rules.checkDeletable, REJECTED)


def test_a_clip_is_told_and_what_does_not_fit_is_an_anomaly(rules):
    store = rules.store
    store.call(rules.objectStored, RECORDING, "a.mkv", stored("a.mkv"), False, None)
    assert store.kinds() == ["clip.stored"]
    del store.seen[:]
    store.call(rules.objectStored, RECORDING, "a.mkv", stored("a.mkv.1"), True, None)
    assert store.kinds() == ["clip.stored", "recording.anomaly", "recording.anomaly"]
    assert [e["anomaly"] for e in store.seen[1:]] == [
        "different bytes for an existing object, kept as 'a.mkv.1'",
        "written after the recording was Complete"]


@pytest.mark.parametrize("kept, told", [
    (b'{"points": []}', []),
    (b"{not json", ["gnss.invalid"]),
    (None, ["gnss.unchecked"]),
])
def test_a_new_track_is_checked_and_kept_whatever_it_holds(rules, kept, told):
    store = rules.store
    store.call(rules.objectStored, RECORDING, TRACK, stored(TRACK), False, kept)
    assert store.kinds() == ["clip.stored"] + told


def test_tracks_already_stored_or_encrypted_are_not_checked(rules):
    store = rules.store
    store.call(rules.objectStored, RECORDING, TRACK, stored(TRACK, existed=True), False,
               b"{not json")
    rules.encrypted = True
    store.call(rules.objectStored, RECORDING, TRACK, stored(TRACK), False, b"{not json")
    assert store.kinds() == ["clip.stored", "clip.stored"]


def test_reads_and_deletions_say_who_and_what(rules):
    info = stored("a.mkv", b"0123456789")
    rules.objectRead(RECORDING, "a.mkv", "archive", info, 2, 5, 3, complete=False)
    rules.objectDeleted(RECORDING, "a.mkv", "admin", info)
    rules.containerDeleted(RECORDING, "admin")
    read, deleted, gone = rules.store.seen
    assert (read["type"], read["account"], read["first"], read["last"], read["sent"],
            read["complete"], read["length"]) == ("object.read", "archive", 2, 5, 3, False, 10)
    assert (deleted["type"], deleted["md5"], deleted["sha256"]) == (
        "object.deleted", info.digests.md5, info.digests.sha256)
    assert (gone["type"], gone["account"]) == ("container.deleted", "admin")
