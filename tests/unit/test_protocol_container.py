"""
L{bwscd.protocol.container}: containers created, changed, described, listed
and deleted, in memory (L{StubTreq}) over the filesystem backend.
"""

import json

from bwscd.security.roles import ADMIN, READER


def kinds(api):
    return [event["type"] for event in api.store.seen]


def test_a_recording_is_created_once_and_its_start_told(api):
    api.startRecording()
    assert kinds(api)[-1] == "recording.started"
    again = api.request("PUT", api.recording, headers={"X-Container-Meta-Status": "Transferring"})
    assert again.code == 202
    assert kinds(api).count("recording.started") == 1


def test_a_recording_of_an_unregistered_user_is_400(api):
    answer = api.request("PUT", "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a_B8A44F000001_"
                                "20240501T101500Z")
    assert answer.code == 400
    assert b"is not registered" in answer.body


def test_complete_is_told_once_whether_put_or_posted(api):
    api.startRecording()
    for _ in range(2):
        assert api.request("POST", api.recording,
                           headers={"X-Container-Meta-Status": "Complete"}).code == 204
        assert api.request("PUT", api.recording,
                           headers={"X-Container-Meta-Status": "Complete"}).code == 202
    assert kinds(api).count("recording.complete") == 1


def test_head_says_what_the_container_holds(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/a.mkv", data=b"clip")
    head = api.request("HEAD", api.recording, role=READER)
    assert head.code == 204
    assert (head.headers["x-container-object-count"], head.headers["x-container-bytes-used"],
            head.headers["x-container-meta-status"]) == ("1", "4", "Transferring")
    assert api.request("HEAD", "nothing-here", role=READER).code == 404


def test_objects_are_listed_as_swift_lists_them(api):
    api.startRecording()
    for name in ("b.mkv", "a.mkv", "a.json"):
        api.request("PUT", f"{api.recording}/{name}", data=b"clip")
    plain = api.request("GET", api.recording, role=READER)
    assert plain.body == b"a.json\na.mkv\nb.mkv\n"
    page = api.request("GET", f"{api.recording}?format=json&prefix=a.&marker=a.json&limit=5",
                       role=READER)
    [entry] = json.loads(page.body)
    assert (entry["name"], entry["bytes"], entry["content_type"]) == (
        "a.mkv", 4, "application/octet-stream")
    assert api.request("GET", f"{api.recording}?limit=x", role=READER).code == 400


def test_an_admin_deletes_an_empty_complete_recording_only(api):
    api.startRecording()
    assert api.request("DELETE", api.recording, role=ADMIN).code == 409
    assert api.request("DELETE", "Users", role=ADMIN).code == 403
    api.request("POST", api.recording, headers={"X-Container-Meta-Status": "Complete"})
    assert api.request("DELETE", api.recording, role=ADMIN).code == 204
    assert (api.store.seen[-1]["type"], api.store.seen[-1]["account"]) == (
        "container.deleted", "boss")
    assert api.request("DELETE", api.recording, role=ADMIN).code == 404
