"""
Retention, legal holds and expiry through a real C{twistd bwscd}
(docs/retention.md): the recordings of the catalog's tests, some of them
made old by backdating their files (their arrival) on the filesystem
backend, since their StopTime is in 2024 already.
"""

import json
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.catalog import (ANNA_2, R1, R2, R3, REJECTED, CatalogClient, meta,
                                   sendRecordings)
from tests.support.retention import LATE, OLD, backdate
from tests.support.server import HOST, freePort
from tests.support.swift import refusal, status, storedObjects
from tests.support.waiting import waitFor
from tests.test_operator import bwscd, refused
from tests.test_viewer import clientOf, url

SOON = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%d")
"""A date for plan --as-of: when what arrives now has not expired yet."""


def holdAdded(data, *arguments) -> str:
    added = bwscd("hold", "add", "--data", data, *arguments, "--account", "clerk").stdout
    return added.split()[1]


def catalogued(server):
    """The catalog tests' recordings sent and catalogued; an admin's account."""
    swift = server.connection()
    sendRecordings(swift)
    swift.close()
    admin = server.addAccount("archive", "admin")
    CatalogClient.of(server, admin).waitFor()
    return admin


@pytest.fixture
def recordings(server):
    return catalogued(server)


def test_an_admin_may_not_delete_a_held_recording(server, recordings):
    admin, data = recordings, server.data
    clip = "20240501_101430_1.mkv"
    hold = holdAdded(data, "--recording", R1, "--reason", "Case 2024-117: court order")
    refused_ = refusal(admin.delete_object, R1, clip)
    assert refused_.http_status == 409
    assert "Case 2024-117: court order" in refused_.http_response_content.decode()
    # A person's hold keeps every recording of theirs; a tag's, those bookmarked with it.
    holdAdded(data, "--person", ANNA_2, "--reason", "internal inquiry")
    assert status(admin.delete_object, R2, "20240502_075930_2.mkv") == 409
    bwscd("hold", "remove", "--data", data, hold, "--account", "clerk")
    tag = holdAdded(data, "--tag", "plate:ABC123", "--reason", "stolen car")
    assert status(admin.delete_object, R1, clip) == 409
    bwscd("hold", "remove", "--data", data, tag, "--account", "clerk")
    admin.delete_object(R1, clip)
    assert [(e["type"], e["account"], e["kind"]) for e in server.events()
            if e["type"].startswith("hold.")] == [
        ("hold.added", "clerk", "recording"), ("hold.added", "clerk", "person"),
        ("hold.removed", "clerk", "recording"), ("hold.added", "clerk", "tag"),
        ("hold.removed", "clerk", "tag")]


def test_admins_place_and_release_holds_through_the_catalog_api(server, recordings):
    admin = CatalogClient.of(server, recordings)
    reader = CatalogClient.of(server, server.addAccount("auditor", "reader"))
    order = {"kind": "recording", "target": R1, "reason": "Case 2024-117"}
    assert reader.request("POST", "holds", order).status_code == 403
    placed = admin.request("POST", "holds", order)
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert (hold["account"], hold["target"]) == ("archive", R1)
    assert reader.json("holds")["items"] == [hold]
    assert status(recordings.delete_object, R1, "20240501_101430_1.mkv") == 409
    assert reader.request("DELETE", f"holds/{hold['id']}").status_code == 403
    assert admin.request("DELETE", f"holds/{hold['id']}").status_code == 200
    assert admin.request("DELETE", f"holds/{hold['id']}").status_code == 404
    assert reader.json("holds")["items"] == []
    assert [(e["type"], e["account"]) for e in server.events()
            if e["type"].startswith("hold.")] == [("hold.added", "archive"),
                                                   ("hold.removed", "archive")]
    recordings.delete_object(R1, "20240501_101430_1.mkv")


def test_a_period_under_90_days_is_refused_unless_acknowledged(tmp_path):
    data = str(tmp_path / "data")
    bwscd("init", "--data", data)
    assert "90-day minimum the partner checklist asks for" in refused(
        "retention", "set", "--data", data, "--default", "30")
    assert "no retention policy" in bwscd("retention", "show", "--data", data).stdout
    bwscd("retention", "set", "--data", data, "--default", "30",
          "--acknowledge-short-retention")
    assert "30 days" in bwscd("retention", "show", "--data", data).stdout


def expiryCase(server, launch, *arguments):
    """
    R1 (Complete), R3 (not Complete), R2 (Complete, its person held) and
    the rejected content all made old, LATE stopped long ago but arrived
    now, a 90-day policy, and the server started again: its sweep at start.
    """
    holdAdded(server.data, "--person", ANNA_2, "--reason", "internal inquiry")
    # Docked late: stopped in 2024, arrived now.
    swift = server.connection()
    swift.put_container(LATE, headers=meta("Container", {
        "Status": "Complete", "Stoptime": int(OLD), "Triggerontime": int(OLD) - 60}))
    swift.put_object(LATE, "20240601_000000_1.mkv", b"late")
    swift.close()
    server.stop()
    backdate(server, R1, R2, R3, REJECTED)
    bwscd("catalog", "rebuild", "--data", server.data)  # with the old arrivals
    bwscd("retention", "set", "--data", server.data, "--default", "90")
    planned = bwscd("retention", "plan", "--data", server.data, "--as-of", SOON).stdout
    again = launch(server.data, *arguments)
    waitFor(lambda: len(again.eventsOf("recording.expired")) == 2, timeout=60)
    return again, planned


def test_the_sweep_deletes_old_complete_recordings_and_keeps_the_rest(server, recordings,
                                                                      launch):
    clips = {o["name"]: o["hash"] for o in recordings.get_container(R1)[1]}
    again, _ = expiryCase(server, launch)
    expired = {e["container"]: e for e in again.eventsOf("recording.expired")}
    assert sorted(expired) == sorted([R1, REJECTED])
    assert expired[R1]["rule"] == "default" and expired[R1]["days"] == 90
    assert expired[R1]["age"] > 90 and expired[R1]["categories"] == ["7"]
    assert {o["object"] for o in expired[R1]["objects"]} >= set(clips)
    assert all(len(o["sha256"]) == 64 for o in expired[R1]["objects"])
    for gone in (R1, REJECTED):
        assert not os.path.exists(os.path.join(again.storage, gone))
    catalog = CatalogClient.of(again, again.addAccount("reader", "reader"))
    waitFor(lambda: catalog.get(f"recordings/{R1}").status_code == 404)
    for kept in (R2, R3, LATE):
        assert catalog.get(f"recordings/{kept}").status_code == 200
    assert not os.path.exists(os.path.join(again.data, "expiring.json"))


def test_retention_plan_says_what_goes_when_and_why(server, recordings, launch):
    _, planned = expiryCase(server, launch)
    assert R1 in planned and REJECTED in planned
    assert R2 not in planned and R3 not in planned and LATE not in planned
    assert f"2 recordings expire by {SOON}" in planned and "1 more are kept" in planned


def test_with_workers_one_process_sweeps(server, recordings, launch):
    again, _ = expiryCase(server, launch, "--workers", "2")
    waitFor(lambda: "recordings expired" in again.log())
    time.sleep(2)  # what a second sweeper would have done by now
    assert sorted(e["container"] for e in again.eventsOf("recording.expired")) == \
        sorted([R1, REJECTED])
    # Every process's log is the main one's: one sweep was made.
    assert again.log().count("recordings expired") == 1


def test_a_hold_on_a_recording_keeps_its_rejected_content(server, recordings, launch):
    clip = "20240501_101630_1.mkv"  # REJECTED's, which came from R1
    holdAdded(server.data, "--recording", R1, "--reason", "Case 2024-117")
    refused_ = refusal(recordings.delete_object, REJECTED, clip)
    assert refused_.http_status == 409 and b"Case 2024-117" in refused_.http_response_content
    server.stop()
    backdate(server, R1, REJECTED)
    bwscd("catalog", "rebuild", "--data", server.data)
    bwscd("retention", "set", "--data", server.data, "--default", "90")
    planned = bwscd("retention", "plan", "--data", server.data, "--as-of", SOON).stdout
    assert REJECTED not in planned and "0 recordings expire" in planned
    assert "2 more are kept" in planned
    again = launch(server.data)
    waitFor(lambda: "recordings expired" in again.log(), timeout=60)
    assert again.eventsOf("recording.expired") == []
    auditor = again.addAccount("auditor", "reader")
    assert storedObjects(auditor, REJECTED) == [clip]


def cutShort(server, container, admin) -> None:
    """
    Stop the server and leave what a sweep killed while expiring
    C{container} leaves: its record in expiring.json, written before any
    of its objects went.
    """
    objects = admin.get_container(container)[1]
    server.stop()
    record = {"container": container, "rule": "default", "days": 90, "age": 400.0,
              "clockStart": "2024-06-01T00:00:00.000Z", "categories": [],
              "objects": [{"object": o["name"], "length": o["bytes"], "sha256": "0" * 64}
                          for o in objects]}
    with open(os.path.join(server.data, "expiring.json"), "w") as f:
        json.dump(record, f)


@pytest.mark.parametrize("backend", ["filesystem", "sqlite"])
def test_a_sweep_cut_short_is_finished_at_the_next_start(dataDirectory, launch, backend):
    first = launch(dataDirectory, "--backend", backend)
    cutShort(first, R1, catalogued(first))
    again = launch(dataDirectory, "--backend", backend)  # no policy: only what was begun goes
    waitFor(lambda: again.eventsOf("recording.expired"))
    waitFor(lambda: not os.path.exists(os.path.join(again.data, "expiring.json")))
    assert [e["container"] for e in again.eventsOf("recording.expired")] == [R1]
    kept = {c["name"] for c in again.addAccount("auditor", "reader").get_account()[1]}
    assert R1 not in kept and {R2, R3, REJECTED} <= kept


def test_a_hold_placed_meanwhile_keeps_what_a_cut_short_sweep_left(server, recordings,
                                                                  launch):
    cutShort(server, R2, recordings)
    holdAdded(server.data, "--person", ANNA_2, "--reason", "inquiry opened after the crash")
    again = launch(server.data)
    waitFor(lambda: not os.path.exists(os.path.join(again.data, "expiring.json")))
    assert again.eventsOf("recording.expired") == []
    assert R2 in os.listdir(again.storage)


def loggedIn(server, account):
    """A requests session of the viewer, logged in as C{account}, and the page's CSRF token."""
    client = clientOf(server)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(url(server, "/login")).text)
    answer = client.post(url(server, "/login"), data={
        "csrf": token.group(1), "user": account.user, "key": account.key},
        headers={"Origin": f"https://{HOST}:{server.viewerPort}"}, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get(url(server, "/holds")).text
    return client, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_admins_place_and_remove_holds_in_the_viewer(dataDirectory, launch):
    port = freePort()
    server = launch(dataDirectory, "--catalog-port", str(port))
    server.viewerPort = port
    origin = {"Origin": f"https://{HOST}:{server.viewerPort}"}
    admin, csrf = loggedIn(server, server.addAccount("archive", "admin"))
    order = {"kind": "tag", "target": "Case:2024-117", "reason": "court order <17>"}
    assert admin.post(url(server, "/holds"), data=order, headers=origin).status_code == 403
    placed = admin.post(url(server, "/holds"), data=dict(order, csrf=csrf), headers=origin)
    assert placed.status_code == 200 and "court order &lt;17&gt;" in placed.text
    [hold] = server.eventsOf("hold.added")
    assert (hold["account"], hold["target"]) == ("archive", "Case:2024-117")
    reader, readerCSRF = loggedIn(server, server.addAccount("auditor", "reader"))
    page = reader.get(url(server, "/holds")).text
    assert "Case:2024-117" in page and "Place a hold" not in page
    assert reader.post(url(server, f"/holds/{hold['hold']}/remove"),
                       data={"csrf": readerCSRF}, headers=origin).status_code == 403
    removed = admin.post(url(server, f"/holds/{hold['hold']}/remove"), data={"csrf": csrf},
                         headers=origin)
    assert removed.status_code == 200 and "No legal holds" in removed.text
    assert [e["account"] for e in server.eventsOf("hold.removed")] == ["archive"]
