"""
L{bwscd.protocol.object}: objects stored, described, read and deleted, in
memory (L{StubTreq}) over the filesystem backend.
"""

import hashlib

from bwscd.security.roles import ADMIN, BWS, READER

CLIP = "20240501_101500_1.mkv"
DATA = bytes(range(256)) * 4


def kinds(api):
    return [event["type"] for event in api.store.seen]


def test_a_clip_is_stored_once_and_told(api):
    api.startRecording()
    del api.store.seen[:]
    answer = api.request("PUT", f"{api.recording}/{CLIP}", data=DATA,
                         headers={"ETag": hashlib.md5(DATA).hexdigest()})
    assert (answer.code, answer.headers["etag"]) == (201, hashlib.md5(DATA).hexdigest())
    again = api.request("PUT", f"{api.recording}/{CLIP}", data=b"other bytes")
    assert again.code == 201
    stored, other, anomaly = api.store.seen
    assert (stored["type"], stored["length"], stored["alreadyStored"]) == (
        "clip.stored", len(DATA), False)
    assert other["storedAs"] != CLIP
    assert anomaly["type"] == "recording.anomaly"


def test_an_etag_that_is_no_md5_is_422_before_the_body(api):
    api.startRecording()
    answer = api.request("PUT", f"{api.recording}/{CLIP}", data=DATA, headers={"ETag": "abc"})
    assert (answer.code, answer.body) == (
        422, b"ETag is not an MD5 hex digest: it can never match\n")
    assert api.request("HEAD", f"{api.recording}/{CLIP}", role=READER).code == 404


def test_a_body_that_does_not_match_its_etag_is_not_stored(api):
    api.startRecording()
    answer = api.request("PUT", f"{api.recording}/{CLIP}", data=DATA, headers={"ETag": "0" * 32})
    assert answer.code == 422
    assert api.request("HEAD", f"{api.recording}/{CLIP}", role=READER).code == 404


def test_the_published_documents_are_read_never_written(api):
    answer = api.request("GET", "System/Capabilities.json")
    assert (answer.code, answer.headers["content-type"]) == (200, "application/json")
    head = api.request("HEAD", "System/Capabilities.json")
    assert head.headers["content-length"] == str(len(answer.body))
    for method in ("PUT", "POST"):
        refused = api.request(method, "System/Capabilities.json", data=b"{}")
        assert (refused.code, refused.body) == (403, b"published by the server\n")


def test_head_says_what_is_stored(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/{CLIP}", data=DATA,
                headers={"X-Object-Meta-Sequence": "1", "Content-Type": "video/mp4; x=y"})
    head = api.request("HEAD", f"{api.recording}/{CLIP}")
    assert (head.code, head.headers["content-length"], head.headers["etag"]) == (
        200, str(len(DATA)), hashlib.md5(DATA).hexdigest())
    assert head.headers["content-type"] == "video/mp4; x=y"
    assert head.headers["x-object-meta-sequence"] == "1"


def test_a_range_is_read_and_the_read_audited(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/{CLIP}", data=DATA)
    del api.store.seen[:]
    answer = api.request("GET", f"{api.recording}/{CLIP}", role=READER,
                         headers={"Range": "bytes=10-19"})
    assert (answer.code, answer.body) == (206, DATA[10:20])
    assert answer.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    whole = api.request("GET", f"{api.recording}/{CLIP}", role=READER)
    assert (whole.code, whole.body) == (200, DATA)
    assert api.request("GET", f"{api.recording}/{CLIP}", role=READER,
                       headers={"Range": "bytes=5000-"}).code == 416
    partial, full = api.store.seen
    assert (partial["type"], partial["account"], partial["first"], partial["last"],
            partial["sent"], partial["complete"]) == ("object.read", "archive", 10, 19, 10, True)
    assert (full["first"], full["last"], full["sent"]) == (0, len(DATA) - 1, len(DATA))


def test_the_controller_reads_back_only_its_system_records(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/{CLIP}", data=DATA)
    answer = api.request("GET", f"{api.recording}/{CLIP}", role=BWS)
    assert (answer.code, answer.body) == (
        403, b"stored objects can't be read with this account\n")
    system = "6f2d1c3a-8b4e-4f5a-9c6d-7e8f9a0b1c2d"
    assert api.request("PUT", f"System/{system}", data=b"",
                       headers={"X-Object-Meta-ConnectionId": "c-1"}).code == 201
    answer = api.request("GET", f"System/{system}", role=BWS)
    assert (answer.code, answer.headers["x-object-meta-connectionid"]) == (200, "c-1")


def test_an_admin_deletes_from_a_complete_recording_only(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/{CLIP}", data=DATA)
    refused = api.request("DELETE", f"{api.recording}/{CLIP}", role=ADMIN)
    assert refused.code == 409
    api.request("POST", api.recording, headers={"X-Container-Meta-Status": "Complete"})
    del api.store.seen[:]
    assert api.request("DELETE", f"{api.recording}/{CLIP}", role=ADMIN).code == 204
    assert api.request("DELETE", f"{api.recording}/{CLIP}", role=ADMIN).code == 404
    [deleted] = api.store.seen
    assert (deleted["type"], deleted["account"], deleted["length"]) == (
        "object.deleted", "boss", len(DATA))


def test_a_track_that_is_not_json_is_kept_and_flagged(api):
    api.startRecording()
    track = "20240501_101500_1_B8A44F000001_gpstrail.json"
    assert api.request("PUT", f"{api.recording}/{track}", data=b"{not json").code == 201
    assert kinds(api)[-2:] == ["clip.stored", "gnss.invalid"]
    assert api.request("GET", f"{api.recording}/{track}", role=READER).body == b"{not json"
