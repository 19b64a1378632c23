"""
L{bwscd.protocol.account}: what the account holds and its containers, in
memory (L{StubTreq}) over the filesystem backend.
"""

import json

from bwscd.security.roles import BWS, READER


def test_head_counts_what_is_stored(api):
    api.startRecording()
    api.request("PUT", f"{api.recording}/a.mkv", data=b"clip")
    head = api.request("HEAD", role=BWS)
    assert head.code == 204
    # System (the published documents), Users, Devices and the recording.
    assert head.headers["x-account-container-count"] == "4"
    assert "x-account-meta-quota-bytes" not in head.headers


def test_containers_are_listed_as_swift_lists_them(api):
    api.startRecording()
    plain = api.request("GET", role=READER)
    assert plain.body.decode().split() == sorted(["Devices", "System", "Users", api.recording])
    page = api.request("GET", "?format=json&limit=1&marker=Devices", role=READER)
    [entry] = json.loads(page.body)
    assert (entry["name"], entry["count"]) == ("System", 2)
    nothing = api.request("GET", "?prefix=zzz", role=READER)
    assert (nothing.code, nothing.body) == (204, b"")
