"""
The expiry sweep through a real C{twistd bwscd --backend ...} for every
installed backend (docs/retention.md, Expiry): each rule (categories, the
longest of several, an id the policy lacks, holds on a recording, a
person and a tag, not Complete, docked late), and a sweep killed with
C{SIGKILL} halfway, which the next start finishes, deleting nothing that
must stay.
Recordings are made old by backdating their arrival in storage with the
server stopped (L{tests.support.retention}).
"""

import os
import time
from datetime import datetime, timezone

import pytest

from tests.support.backends import STORAGE
from tests.support.catalog import ANNA_1, ANNA_2, CAM_1, R1, R2, R3, CatalogClient, meta, \
    sendRecordings
from tests.support.retention import LATE, OLD, backdateFiles, backdateRows
from tests.support.swift import storedObjects
from tests.support.waiting import waitFor
from tests.test_operator import bwscd

DUE = "5e1f0c2a-7d3b-4a9e-8c6f-1b2a3c4d5e6f"
"""The person of the many due recordings; held by nobody."""
YOUNG = f"{ANNA_1}_{CAM_1}_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"


def oldRecording(swift, container: str, clips: int = 1, bookmarks=(),
                 status: str = "Complete") -> str:
    """C{container}, stopped in 2024: C{clips} small clips, a bookmark for each of C{bookmarks}."""
    swift.put_container(container, headers=meta("Container", {
        "Status": status, "Stoptime": int(OLD), "Triggerontime": int(OLD) - 60}))
    for clip in range(clips):
        swift.put_object(container, f"20240601_0000{clip:02d}_1.mkv", b"clip %d" % clip)
    for n, values in enumerate(bookmarks):
        swift.put_object(container, f"bookmark_20240601T000010Z_{n}", b"note",
                         headers=meta("Object", values))
    return container


def sendDue(swift, count: int, clips: int) -> list[str]:
    """C{count} Complete recordings of L{DUE}'s, stopped in 2024, C{clips} small clips each."""
    swift.put_object("Users", DUE, b"", headers=meta("Object", {"Name": "Per Due"}))
    return [oldRecording(swift, f"{DUE}_{CAM_1}_20240601T{n // 60:02d}{n % 60:02d}00Z", clips)
            for n in range(count)]


def catalogued(server):
    """An admin's account, once the catalog holds what C{server} was sent."""
    admin = server.addAccount("archive", "admin")
    CatalogClient.of(server, admin).waitFor()
    return admin


def madeOld(request, tmp_path, server, backendSpec, old, *policy) -> None:
    """
    C{server} stopped, C{old} backdated in its storage, the catalog rebuilt
    from it, and the retention policy set with C{policy} (options of
    C{bwscd retention set}).
    """
    server.stop()
    backdate(request, tmp_path, *old)
    bwscd("catalog", "rebuild", "--data", server.data, "--backend", backendSpec)
    bwscd("retention", "set", "--data", server.data, *policy)


@pytest.fixture(autouse=True)
def backdatable(request) -> None:
    """Skipped, before any work, on a backend whose storage can't be made old."""
    backend = request.node.callspec.params["backendSpec"]
    if backend not in STORAGE:
        pytest.skip(f"the {backend} backend's store keeps arrival times that a test can't "
                    "move back (Swift's own timestamps)")


def backdate(request, tmp_path, *containers) -> None:
    backend = request.node.callspec.params["backendSpec"]
    if backend == "sqlite":
        backdateRows(str(tmp_path / STORAGE[backend]), *containers)
    else:
        backdateFiles(str(tmp_path / STORAGE[backend]), *containers)


def holdAdded(data, *arguments) -> None:
    bwscd("hold", "add", "--data", data, *arguments, "--account", "clerk")


def test_a_sweep_killed_halfway_resumes_and_deletes_nothing_that_stays(
        request, tmp_path, dataDirectory, launch, backendSpec):
    backend = ["--backend", backendSpec]
    first = launch(dataDirectory, *backend)
    swift = first.connection()
    sendRecordings(swift)
    due = sendDue(swift, 80, 4)
    for kept in (LATE, YOUNG):  # docked late (stopped in 2024), and stopped just now
        swift.put_container(kept, headers=meta("Container", {
            "Status": "Complete", "Stoptime": int(OLD if kept == LATE else time.time())}))
        swift.put_object(kept, "20240601_000000_1.mkv", b"kept")
    swift.close()
    admin = catalogued(first)
    clips = storedObjects(admin, due[0])
    # R1 held by a recording hold, R2 by its person's, R3 not Complete: all old.
    stays = {c: storedObjects(admin, c) for c in (R1, R2, R3, LATE, YOUNG)}
    madeOld(request, tmp_path, first, backendSpec, [R1, R2, R3, *due], "--default", "90")
    holdAdded(dataDirectory, "--recording", R1, "--reason", "Case 2024-117")
    holdAdded(dataDirectory, "--person", ANNA_2, "--reason", "internal inquiry")

    journal = os.path.join(dataDirectory, "expiring.json")
    # Killed while a recording is in flight (its journal written), a quarter of the way
    # in; a kill that fell between two recordings is made again further on.
    for enough in range(len(due) // 4, len(due), 10):
        sweeping = launch(dataDirectory, *backend)
        assert waitFor(lambda: len(sweeping.eventsOf("recording.expired")) >= enough
                       and os.path.exists(journal), timeout=60, interval=0.005)
        sweeping.process.kill()  # kill -9
        sweeping.process.wait(10)
        if os.path.exists(journal):
            break
    else:
        pytest.fail("every kill came between two recordings")
    killedAfter = len(sweeping.eventsOf("recording.expired"))
    assert killedAfter < len(due), "the sweep was over before it could be killed"

    again = launch(dataDirectory, *backend)
    waitFor(lambda: "recordings expired" in again.log(), timeout=120)
    expired = again.eventsOf("recording.expired")
    # One event for each recording, the one in flight too (resumed, not announced twice),
    # naming every object it had, also those deleted before the kill.
    assert sorted(e["container"] for e in expired) == sorted(due)
    assert all(sorted(o["object"] for o in e["objects"]) == clips for e in expired)
    auditor = again.addAccount("auditor", "reader")
    assert not {c["name"] for c in auditor.get_account()[1]} & set(due)
    for container, objects in stays.items():
        assert storedObjects(auditor, container) == objects, container
    assert not os.path.exists(journal)


RULES = "7c2d0a4b-1e3f-4a5b-8c9d-0e1f2a3b4c5d"
"""The person of the recordings of each rule; held by nobody."""


def ruled(swift, name: str, bookmarks=(), status="Complete") -> str:
    """A recording of L{RULES}' stopped in 2024: a clip, and a bookmark for each C{bookmarks}."""
    return oldRecording(swift, f"{RULES}_{CAM_1}_20240601T{name}Z", bookmarks=bookmarks,
                        status=status)


def test_the_sweep_keeps_by_category_tag_hold_and_status_and_lets_the_rest_go(
        request, tmp_path, dataDirectory, launch, backendSpec):
    backend = ["--backend", backendSpec]
    first = launch(dataDirectory, *backend)
    swift = first.connection()
    sendRecordings(swift)
    swift.put_object("Users", RULES, b"", headers=meta("Object", {"Name": "Per Rule"}))
    theft, traffic, unknown = ({"Categoryid": "7", "Categoryname": "Theft"},
                               {"Categoryid": "9", "Categoryname": "Traffic"},
                               {"Categoryid": "99", "Categoryname": "Not in the policy"})
    kept = {
        "theft": ruled(swift, "000100", [theft]),  # ten years
        "both": ruled(swift, "000200", [traffic, theft]),  # the longest of the two
        "tagged": ruled(swift, "000300", [{"Tags": "Case:2024-117"}]),  # a tag's hold
        "open": ruled(swift, "000400", status="Transferring"),  # never Complete
    }
    going = {
        "traffic": ruled(swift, "000500", [traffic]),  # its category's 100 days
        "unknown": ruled(swift, "000600", [unknown]),  # an id the policy lacks: the default
        "none": ruled(swift, "000700"),  # the default
    }
    swift.close()
    catalogued(first)
    madeOld(request, tmp_path, first, backendSpec, [*kept.values(), *going.values()],
            "--default", "90", "--category", "7=3650", "--category", "9=100")
    holdAdded(dataDirectory, "--tag", "case:2024-117", "--reason", "court order")

    again = launch(dataDirectory, *backend)
    waitFor(lambda: "recordings expired" in again.log(), timeout=60)
    expired = {e["container"]: e for e in again.eventsOf("recording.expired")}
    assert sorted(expired) == sorted(going.values())
    assert (expired[going["traffic"]]["rule"], expired[going["traffic"]]["days"]) == (
        "category 9", 100)
    assert (expired[going["unknown"]]["rule"], expired[going["unknown"]]["categories"]) == (
        "default", ["99"])
    assert expired[going["none"]]["rule"] == "default"
    auditor = again.addAccount("auditor", "reader")
    stored = {c["name"] for c in auditor.get_account(full_listing=True)[1]}
    assert set(kept.values()) <= stored and not set(going.values()) & stored
