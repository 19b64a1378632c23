"""
The expiry sweep through a real C{twistd bwscd --backend ...} for every
installed backend (docs/retention.md, Expiry), killed with C{SIGKILL}
halfway: the next start finishes it, and deletes nothing that must stay.
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


def sendDue(swift, count: int, clips: int) -> list[str]:
    """C{count} Complete recordings of L{DUE}'s, stopped in 2024, C{clips} small clips each."""
    swift.put_object("Users", DUE, b"", headers=meta("Object", {"Name": "Per Due"}))
    containers = []
    for n in range(count):
        container = f"{DUE}_{CAM_1}_20240601T{n // 60:02d}{n % 60:02d}00Z"
        swift.put_container(container, headers=meta("Container", {
            "Status": "Complete", "Stoptime": int(OLD), "Triggerontime": int(OLD) - 60}))
        for clip in range(clips):
            swift.put_object(container, f"20240601_0000{clip:02d}_1.mkv", b"due %d" % clip)
        containers.append(container)
    return containers


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
    admin = first.addAccount("archive", "admin")
    CatalogClient.of(first, admin).waitFor()
    clips = storedObjects(admin, due[0])
    # R1 held by a recording hold, R2 by its person's, R3 not Complete: all old.
    stays = {c: storedObjects(admin, c) for c in (R1, R2, R3, LATE, YOUNG)}
    first.stop()
    backdate(request, tmp_path, R1, R2, R3, *due)
    bwscd("catalog", "rebuild", "--data", dataDirectory, *backend)
    bwscd("retention", "set", "--data", dataDirectory, "--default", "90")
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
