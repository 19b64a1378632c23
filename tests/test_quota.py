"""
--quota: the most the controller's account may store.  An upload that
would pass it gets 507 (before its body when it has a Content-Length, as
soon as it passes the quota when chunked), nothing of it is stored, and the
controller can send it again once there is room.
"""

import os
import subprocess

from tests.support.storage import temporaryFiles
from tests.support.swift import inPieces, status

KiB = 1024


def used(swift) -> int:
    headers = swift.head_account()
    return int(headers["x-account-bytes-used"])


def test_uploads_beyond_the_quota_get_507_and_store_nothing(launch, dataDirectory,
                                                           recording):
    server = launch(dataDirectory, "--quota", "1M")
    swift = server.connection()
    container = recording.start(swift)
    assert swift.head_account()["x-account-meta-quota-bytes"] == str(1 << 20)
    base = used(swift)  # the published documents in System
    first = os.urandom(600 * KiB)
    swift.put_object(container, "1.mkv", first)
    assert used(swift) == base + len(first)
    second = os.urandom(600 * KiB)
    # With a Content-Length: refused before the body.
    assert status(swift.put_object, container, "2.mkv", second) == 507
    # Chunked: refused once the bytes pass the quota.
    assert status(swift.put_object, container, "2.mkv", inPieces(second)) == 507
    assert status(swift.head_object, container, "2.mkv") == 404
    assert temporaryFiles(server.storage) == []
    assert used(swift) == base + len(first)
    assert "the account's quota of 1048576 bytes is used up" in server.log()
    # What fits is stored, chunked or not.
    swift.put_object(container, "3.mkv", inPieces(os.urandom(200 * KiB)))
    swift.put_object(container, "4.mkv", os.urandom(100 * KiB))
    assert used(swift) == base + 900 * KiB


def test_room_made_by_an_admin_and_counted_again_at_start(launch, dataDirectory,
                                                          recording):
    server = launch(dataDirectory, "--quota", "1M")
    swift = server.connection()
    container = recording.start(swift)
    data = os.urandom(700 * KiB)
    swift.put_object(container, "1.mkv", data)
    swift.post_container(container, {"X-Container-Meta-Status": "Complete"})
    stored = used(swift)
    server.stop()
    # At the next start, what is stored is counted from the storage.
    server = launch(dataDirectory, "--quota", "1M")
    swift = server.connection()
    assert used(swift) == stored
    assert status(swift.put_object, container, "2.mkv", data) == 507
    admin = server.addAccount("archive", "admin")
    admin.delete_object(container, "1.mkv")
    assert used(swift) == stored - len(data)
    swift.put_object(container, "2.mkv", data)


def test_without_a_quota_nothing_is_counted(server, swift):
    # At start, that is: the account's HEAD counts, as Swift's always says.
    assert "quota:" not in server.log()
    headers = swift.head_account()
    assert "x-account-meta-quota-bytes" not in headers
    documents = [os.path.join(server.storage, "System", name)
                 for name in ("Capabilities.json", "Categories.json")]
    assert headers["x-account-bytes-used"] == str(sum(map(os.path.getsize, documents)))


def test_a_quota_must_be_a_size(twistdCommand, dataDirectory):
    done = subprocess.run([*twistdCommand, "bwscd", "--data", dataDirectory,
                           "--quota", "lots"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--quota 'lots' is not a size like 500G" in done.stdout + done.stderr
