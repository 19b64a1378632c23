"""
The audit trail of a running server: every access line names its account,
every download of evidence is an event that names the account, the bytes
asked for and the bytes sent, refusals that stop offload (507, 503) are
reported as episodes, from start to end, and the event log keeps all of its
history unless the operator chose a limit.
"""

import gzip
import hashlib
import json
import os
import re
import subprocess
import time

import pytest
from swiftclient.exceptions import ClientException

from tests.support.waiting import waitFor


def accessLines(server) -> list[str]:
    return [line for line in server.log().splitlines() if "[bwscd.access#" in line]


def test_each_download_of_evidence_is_an_event_naming_the_account(server, swift, recording):
    container = recording.start(swift)
    data = os.urandom(100_000)
    swift.put_object(container, "1.mkv", data)
    swift.put_object(container, "empty.mkv", b"")
    swift.put_container("System")
    swift.put_object("System", "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f", b"system record")
    reader = server.addAccount("integrator", "reader")
    assert reader.get_object(container, "1.mkv")[1] == data
    assert reader.get_object(container, "1.mkv", headers={"Range": "bytes=10-19"})[1] \
        == data[10:20]
    assert reader.get_object(container, "empty.mkv")[1] == b""
    # Not evidence: the controller's own system record, a published document,
    # a registry record.
    swift.get_object("System", "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f")
    reader.get_object("System", "Capabilities.json")
    reader.get_object("Users", recording.user)
    sha256 = hashlib.sha256(data).hexdigest()
    common = {"container": container, "account": "integrator", "complete": True}
    assert [e | {"time": None} for e in server.eventsOf("object.read")] == [
        {**common, "time": None, "type": "object.read", "object": "1.mkv", "first": 0,
         "last": len(data) - 1, "sent": len(data), "length": len(data), "sha256": sha256},
        {**common, "time": None, "type": "object.read", "object": "1.mkv", "first": 10,
         "last": 19, "sent": 10, "length": len(data), "sha256": sha256},
        {**common, "time": None, "type": "object.read", "object": "empty.mkv", "first": 0,
         "last": -1, "sent": 0, "length": 0, "sha256": hashlib.sha256(b"").hexdigest()},
    ]


def test_a_download_the_client_abandons_says_how_much_was_sent(server, swift, recording):
    container = recording.start(swift)
    # More than the sockets' buffers hold, so that most of it is never sent.
    data = os.urandom(48 << 20)
    swift.put_object(container, "big.mkv", data)
    reader = server.addAccount("integrator", "reader")
    url, token = reader.get_auth()
    client = server.httpsConnection()
    client.request("GET", url.split(str(server.port), 1)[1] + f"/{container}/big.mkv",
                   headers={"X-Auth-Token": token})
    answer = client.getresponse()
    assert answer.status == 200
    assert answer.read(1 << 20) == data[: 1 << 20]
    client.close()
    assert waitFor(lambda: server.eventsOf("object.read"), timeout=30)
    [read] = server.eventsOf("object.read")
    assert read["complete"] is False and read["account"] == "integrator"
    assert (read["first"], read["last"], read["length"]) == (0, len(data) - 1, len(data))
    assert 1 << 20 <= read["sent"] < len(data)


def test_every_access_line_names_the_account(server, swift, recording):
    container = recording.start(swift)
    reader = server.addAccount("integrator", "reader")
    reader.head_container(container)
    assert reader.get_container(container)
    controller = server.connectionFile["BlobAPIUserName"]
    anonymous = server.httpsConnection()
    anonymous.request("HEAD", f"/v1/AUTH_{controller}/{container}")
    assert anonymous.getresponse().status == 401
    lines = accessLines(server)
    account = re.compile(r"\] 127\.0\.0\.1 (\S+) (\S+) (\S+) (\d+) ")
    seen = {account.search(line).groups() for line in lines}
    path = f"/v1/AUTH_{controller}/{container}"
    assert ("integrator", "HEAD", path, "204") in seen
    assert ("integrator", "GET", f"{path}?format=json", "200") in seen
    assert ("-", "HEAD", path, "401") in seen
    assert (controller, "PUT", path, "201") in seen
    # A login names the account it proved.
    assert ("integrator", "GET", "/auth/v1.0", "200") in seen


def test_refused_uploads_are_one_episode_from_start_to_end(launch, dataDirectory,
                                                           recording):
    server = launch(dataDirectory, "--quota", "1M", "--max-uploads", "1",
                    "--refusal-quiet-period", "3")
    swift = server.connection()
    container = recording.start(swift)
    swift.put_object(container, "1.mkv", os.urandom(600_000))
    for name in ("2.mkv", "3.mkv"):
        with pytest.raises(ClientException) as refused:
            swift.put_object(container, name, os.urandom(600_000))
        assert refused.value.http_status == 507
    [started] = server.eventsOf("refusal.started")
    assert started["status"] == 507 and started["kind"] == "quota"
    assert "quota of 1048576 bytes is used up" in started["reason"]
    # Every upload slot taken: 503, an episode of its own.
    slot = server.startUpload(swift, f"/{container}/4.mkv", 10, b"x")
    time.sleep(0.5)  # for the server to take the slot
    for name in ("5.mkv", "6.mkv", "7.mkv"):
        with pytest.raises(ClientException) as refused:
            swift.put_object(container, name, b"y")
        assert refused.value.http_status == 503
    slot.send(b"x" * 9)
    assert slot.getresponse().status == 201
    assert waitFor(lambda: len(server.eventsOf("refusal.ended")) == 2, timeout=30)
    ended = {e["kind"]: e for e in server.eventsOf("refusal.ended")}
    assert (ended["quota"]["status"], ended["quota"]["refused"]) == (507, 2)
    assert (ended["busy"]["status"], ended["busy"]["refused"]) == (503, 3)
    assert ended["busy"]["endedBy"] == "quiet"
    assert "upload slots are busy" in ended["busy"]["reason"]
    assert [e["kind"] for e in server.eventsOf("refusal.started")] == ["quota", "busy"]
    # An episode open at stop ends then, in the event log.
    with pytest.raises(ClientException):
        swift.put_object(container, "8.mkv", os.urandom(600_000))
    server.stop()
    last = server.events()[-1]
    assert (last["type"], last["kind"], last["endedBy"], last["refused"]) == \
        ("refusal.ended", "quota", "stop", 1)


def plantEvent(path, index, daysAgo, compressed=False):
    """An event log file of an earlier run, last written C{daysAgo} days ago."""
    line = json.dumps({"type": "planted", "index": index}).encode() + b"\n"
    with (gzip.open if compressed else open)(path, "wb") as f:
        f.write(line)
    then = time.time() - daysAgo * 24 * 60 * 60
    os.utime(path, (then, then))


def test_the_event_log_keeps_its_history_unless_told_otherwise(launch, dataDirectory,
                                                               twistdCommand):
    launch(dataDirectory).stop()
    path = os.path.join(dataDirectory, "events.jsonl")
    plantEvent(path + ".1", 0, daysAgo=90)  # rotated by an earlier version
    plantEvent(os.path.join(dataDirectory, "events.000001.jsonl.gz"), 1, daysAgo=60,
               compressed=True)
    # Rotated, not compressed yet when the server stopped.
    plantEvent(os.path.join(dataDirectory, "events.000002.jsonl"), 2, daysAgo=1)
    server = launch(dataDirectory)
    assert waitFor(lambda: os.path.exists(path[:-len(".jsonl")] + ".000002.jsonl.gz"), timeout=30)
    server.stop()
    assert [e["index"] for e in server.events() if e["type"] == "planted"] == [0, 1, 2]
    assert sorted(name for name in os.listdir(dataDirectory) if name.startswith("events")) \
        == ["events.000001.jsonl.gz", "events.000002.jsonl.gz", "events.jsonl",
            "events.jsonl.1"]
    # An age limit is the operator's choice: what is older goes, and is logged.
    server = launch(dataDirectory, "--event-log-keep", "30d")
    assert waitFor(lambda: not os.path.exists(path + ".1"), timeout=30)
    assert waitFor(lambda: "events.000001.jsonl.gz: the event log keeps 30d" in server.log(),
                   timeout=30)
    assert [e["index"] for e in server.events() if e["type"] == "planted"] == [2]
    server.stop()
    done = subprocess.run([*twistdCommand, "bwscd", "--data", dataDirectory,
                           "--event-log-keep", "forever"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "--event-log-keep 'forever' is neither a size like 50G nor days like 400d" \
        in done.stdout + done.stderr
