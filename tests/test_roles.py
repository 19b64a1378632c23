"""
Roles: the controller's account does what the API needs and nothing more;
a reader account lists and reads, through the Swift API, so that
python-swiftclient (and rclone) work for integrators; an admin account may
also delete, and every deletion is an event.
"""

import hashlib
import os

import pytest

from tests.support.swift import status

USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
DEVICE = "B8A44F000001"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"
SYSTEM_ID = "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f"


@pytest.fixture
def stored(server, swift):
    """A recording as the controller leaves it, and a reader account."""
    swift.put_container("Users")
    swift.put_object("Users", USER, b"", headers={"X-Object-Meta-Name": "Anna"})
    swift.put_container("Devices")
    swift.put_object("Devices", DEVICE, b"", headers={"X-Object-Meta-Name": "Cam"})
    swift.put_container("System")
    swift.put_object("System", SYSTEM_ID, b"system record",
                     headers={"X-Object-Meta-Connectionid": "conn-1"})
    swift.put_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})
    clips = {f"20240501_10150{i}_1.mkv": os.urandom(300_000 + i) for i in range(3)}
    for name, data in clips.items():
        swift.put_object(RECORDING, name, data, headers={"X-Object-Meta-Starttime": "1"})
    return server.addAccount("integrator", "reader"), clips


def test_a_reader_lists_and_downloads(server, stored):
    reader, clips = stored
    _, containers = reader.get_account(full_listing=True)
    assert RECORDING in [c["name"] for c in containers]
    _, objects = reader.get_container(RECORDING, full_listing=True)
    assert [o["name"] for o in objects] == sorted(clips)
    assert {o["name"]: o["hash"] for o in objects} == {
        n: hashlib.md5(d).hexdigest() for n, d in clips.items()}
    assert [o["name"] for o in reader.get_container(RECORDING, prefix="20240501_101501",
                                                     full_listing=True)[1]] == [
        "20240501_101501_1.mkv"]
    assert [o["name"] for o in reader.get_container(RECORDING, marker="20240501_101500_1.mkv",
                                                     limit=1)[1]] == ["20240501_101501_1.mkv"]
    name, data = sorted(clips.items())[0]
    headers, body = reader.get_object(RECORDING, name)
    assert body == data and headers["etag"] == hashlib.md5(data).hexdigest()
    assert headers["x-object-meta-starttime"] == "1"
    headers, part = reader.get_object(RECORDING, name, headers={"Range": "bytes=10-19"})
    assert part == data[10:20] and headers["content-range"] == f"bytes 10-19/{len(data)}"
    _, tail = reader.get_object(RECORDING, name, headers={"Range": "bytes=-5"})
    assert tail == data[-5:]
    assert status(reader.get_object, RECORDING, name,
                  headers={"Range": f"bytes={len(data)}-"}) == 416
    assert reader.head_container(RECORDING)["x-container-meta-status"] == "Complete"


def test_a_reader_cannot_write_or_delete(server, stored):
    reader, clips = stored
    assert status(reader.put_object, RECORDING, "new.mkv", b"x") == 403
    assert status(reader.post_container, RECORDING, {"X-Container-Meta-Status": "x"}) == 403
    assert status(reader.delete_object, RECORDING, sorted(clips)[0]) == 403
    assert status(reader.put_container, "Users") == 403


def test_the_controller_cannot_list_or_read_evidence(swift, stored):
    _, clips = stored
    assert status(swift.get_account) == 403
    assert status(swift.get_container, RECORDING) == 403
    assert status(swift.get_object, RECORDING, sorted(clips)[0]) == 403
    # ...but reads back its system records (StoreReadSystemID).
    headers, body = swift.get_object("System", SYSTEM_ID)
    assert body == b"system record" and headers["x-object-meta-connectionid"] == "conn-1"


def test_a_removed_reader_is_out(server, stored):
    reader, _ = stored
    server.removeAccount(reader)
    assert status(reader.get_container, RECORDING) == 401


def test_an_admin_deletes_and_each_deletion_is_an_event(server, swift, stored):
    _, clips = stored
    admin = server.addAccount("archive", "admin")
    name, data = sorted(clips.items())[0]
    assert admin.get_object(RECORDING, name)[1] == data
    admin.delete_object(RECORDING, name)
    assert status(admin.head_object, RECORDING, name) == 404
    assert status(admin.delete_object, RECORDING, name) == 404
    assert name not in [o["name"] for o in admin.get_container(RECORDING)[1]]
    storage = os.path.join(server.data, "storage", RECORDING)
    assert not os.path.exists(os.path.join(storage, name))
    assert not os.path.exists(os.path.join(storage, f"{RECORDING}.{name}.metadata.json"))
    [deleted] = [e for e in server.events() if e["type"] == "object.deleted"]
    assert deleted | {"time": None} == {
        "time": None, "type": "object.deleted", "container": RECORDING, "object": name,
        "account": "archive", "length": len(data), "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest()}
    # Deleted evidence may be sent again: the name is free.
    swift.put_object(RECORDING, name, data)


def test_an_admin_deletes_a_recording_with_the_swift_cli(server, stored):
    admin = server.addAccount("archive", "admin")
    done = server.swiftCommand(admin, "delete", RECORDING)
    assert done.returncode == 0, done.stderr
    assert RECORDING not in [c["name"] for c in admin.get_account()[1]]
    assert not os.path.exists(os.path.join(server.data, "storage", RECORDING))
    types = [e["type"] for e in server.events()]
    assert types.count("object.deleted") == 3 and types.count("container.deleted") == 1


def test_what_an_admin_cannot_delete(server, swift, stored):
    _, clips = stored
    admin = server.addAccount("archive", "admin")
    assert status(admin.delete_container, RECORDING) == 409  # not empty
    assert status(admin.delete_object, "Users", USER) == 403  # the registry's history
    assert status(admin.delete_container, "System") == 403
    assert status(admin.delete_object, "System", "capabilities.json") == 403
    assert status(admin.delete_object, "Nothing", "x") == 404
    assert status(admin.delete_container, "Nothing") == 404
    # A recording the controller is still sending is not deleted under it.
    sending = f"{USER}_{DEVICE}_20240502T101500Z"
    swift.put_container(sending, headers={"X-Container-Meta-Status": "Transferring"})
    swift.put_object(sending, "20240502_101500_1.mkv", b"clip")
    assert status(admin.delete_object, sending, "20240502_101500_1.mkv") == 409
    assert status(admin.delete_container, sending) == 409
    # An admin reads and deletes; it does not write.
    assert status(admin.put_object, RECORDING, "new.mkv", b"x") == 403
    assert status(admin.post_container, RECORDING, {"X-Container-Meta-Status": "x"}) == 403


def test_the_controller_cannot_delete(swift, stored):
    _, clips = stored
    assert status(swift.delete_object, RECORDING, sorted(clips)[0]) == 403
    assert status(swift.delete_container, RECORDING) == 403
