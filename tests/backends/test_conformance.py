"""
The storage contract (bwscd/interfaces.py), tested the same way for every
installed backend.  A backend passes when the engine can rely on it.
"""

import hashlib
import os
import threading
import time

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from bwscd.errors import Conflict, NotFound
from bwscd.interfaces import Digests, IObjectWriter, IStorageBackend, IStorageSpace
from tests.support.backends import STORAGE, digestsOf
from tests.support.reactor import call

RECORDING = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b_B8A44F000001_20240501T101500Z"


def store(backend, container, name, data, metadata=None, writeOnce=False, chunk=65536,
          contentType=None):
    """Write an object as the engine does: open, stream, commit."""
    writer = call(backend.openObject, container, name, metadata or {}, len(data), writeOnce,
                  contentType=contentType)
    assert IObjectWriter.providedBy(writer)
    for offset in range(0, len(data), chunk):
        writer.write(data[offset:offset + chunk])
    return writer.commit(digestsOf(data))


def raises(exception, function, *args):
    with pytest.raises(exception):
        call(function, *args)


def test_provides_the_interface(backend):
    assert IStorageBackend.providedBy(backend)
    assert backend.description


def test_containers_are_created_once_and_merge_metadata(backend):
    assert call(backend.putContainer, RECORDING, {"Status": "Transferring", "A": "1"}) is True
    assert call(backend.putContainer, RECORDING, {"B": "2"}) is False
    info = call(backend.updateContainer, RECORDING, {"A": "", "Status": "Complete"})
    assert info.metadata == {"Status": "Complete", "B": "2"}
    assert call(backend.containerInfo, RECORDING).metadata == {"Status": "Complete", "B": "2"}
    assert call(backend.containerInfo, "Nothing") is None
    raises(NotFound, backend.updateContainer, "Nothing", {"A": "1"})


def test_write_then_commit(backend):
    call(backend.putContainer, RECORDING, {})
    data = os.urandom(300_001)
    info = store(backend, RECORDING, "clip.mkv", data, {"Starttime": "1714558470"})
    assert info.digests == digestsOf(data) and info.name == "clip.mkv"
    stored = call(backend.objectInfo, RECORDING, "clip.mkv")
    assert stored.digests == digestsOf(data)
    assert stored.metadata == {"Starttime": "1714558470"}
    assert stored.modified > 0


def test_write_then_abort_leaves_nothing(backend):
    call(backend.putContainer, RECORDING, {})
    writer = call(backend.openObject, RECORDING, "clip.mkv", {}, 10, True)
    writer.write(b"01234")
    writer.abort()
    assert call(backend.objectInfo, RECORDING, "clip.mkv") is None
    # And the name is free for a whole upload afterwards.
    assert store(backend, RECORDING, "clip.mkv", b"0123456789", writeOnce=True).existed is False


def test_an_interrupted_write_is_never_visible(openBackend):
    first = openBackend()
    call(first.putContainer, RECORDING, {})
    writer = call(first.openObject, RECORDING, "crash.mkv", {}, 1 << 20, True)
    writer.write(os.urandom(1 << 19))
    # The process dies here: no commit, no abort.  The next start cleans up.
    second = openBackend()
    assert call(second.objectInfo, RECORDING, "crash.mkv") is None
    data = os.urandom(1000)
    assert store(second, RECORDING, "crash.mkv", data, writeOnce=True).digests == digestsOf(data)


def test_opening_an_object_needs_its_container(backend):
    raises(NotFound, backend.openObject, "Nothing", "clip.mkv", {}, 1, True)


def test_write_once_keeps_the_first_bytes(backend):
    call(backend.putContainer, RECORDING, {})
    first, second = b"first take", b"other bytes"
    assert store(backend, RECORDING, "clip.mkv", first, writeOnce=True).existed is False
    again = store(backend, RECORDING, "clip.mkv", first, writeOnce=True)
    assert again.existed is True and again.name == "clip.mkv"
    other = store(backend, RECORDING, "clip.mkv", second, writeOnce=True)
    assert other.name != "clip.mkv" and other.existed is False
    assert call(backend.objectInfo, RECORDING, "clip.mkv").digests == digestsOf(first)
    assert call(backend.objectInfo, RECORDING, other.name).digests == digestsOf(second)
    assert store(backend, RECORDING, "clip.mkv", second, writeOnce=True).name == other.name


def test_without_write_once_an_object_is_replaced(backend):
    call(backend.putContainer, "Users", {})
    store(backend, "Users", "u1", b"", {"Name": "Anna"})
    store(backend, "Users", "u1", b"x", {"Name": "Anna Lind"})
    info = call(backend.objectInfo, "Users", "u1")
    assert info.digests == digestsOf(b"x") and info.metadata == {"Name": "Anna Lind"}


def test_object_metadata_is_replaced_whole(backend):
    call(backend.putContainer, "Devices", {})
    store(backend, "Devices", "B1", b"", {"Name": "Cam", "Model": "W110"})
    info = call(backend.replaceObjectMetadata, "Devices", "B1", {"Name": "Cam 2"})
    assert info.metadata == {"Name": "Cam 2"}
    assert call(backend.objectInfo, "Devices", "B1").metadata == {"Name": "Cam 2"}
    raises(NotFound, backend.replaceObjectMetadata, "Devices", "nothing", {})


def test_large_objects_stream(backend):
    call(backend.putContainer, RECORDING, {})
    block = os.urandom(1 << 20)
    writer = call(backend.openObject, RECORDING, "big.mkv", {}, 64 << 20, True)
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    for _ in range(64):
        writer.write(block)
        md5.update(block)
        sha256.update(block)
    digests = Digests(64 << 20, md5.hexdigest(), sha256.hexdigest())
    assert writer.commit(digests).digests == digests
    assert call(backend.objectInfo, RECORDING, "big.mkv").digests.length == 64 << 20


def test_non_ascii_names_and_metadata(backend):
    container = "RejectedContent_UnknownTime_pålitlig"
    call(backend.putContainer, container, {"Rejectedcontentreason": "trasig fil ✂"})
    store(backend, container, "klipp/ö 1.mkv", b"data", {"Name": "Jörg Åström 👮"})
    assert call(backend.objectInfo, container, "klipp/ö 1.mkv").metadata == {
        "Name": "Jörg Åström 👮"}
    assert call(backend.containerInfo, container).metadata == {
        "Rejectedcontentreason": "trasig fil ✂"}


def test_state_documents(openBackend):
    backend = openBackend()
    assert call(backend.readState, "registry.json") is None
    call(backend.writeState, "registry.json", b'{"users": {}}')
    call(backend.writeState, "registry.json", b'{"users": {"u": 1}}')
    assert call(openBackend().readState, "registry.json") == b'{"users": {"u": 1}}'


def test_free_space_is_a_count_of_bytes_or_unknown(backend):
    """Optional (IStorageSpace): a backend that says, says bytes beyond its reserve."""
    space = IStorageSpace(backend, None)
    if space is None:
        pytest.skip("this backend can't say its free space")
    free = call(space.freeSpace)
    assert free is None or (isinstance(free, int) and free >= 0)


def test_concurrent_uploads_to_one_container(backend):
    call(backend.putContainer, RECORDING, {})
    blobs = {f"clip{i}.mkv": os.urandom(200_000 + i) for i in range(6)}
    results = {}

    def upload(name):
        results[name] = store(backend, RECORDING, name, blobs[name], writeOnce=True)

    threads = [threading.Thread(target=upload, args=(name,)) for name in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for name, data in blobs.items():
        assert results[name].digests == digestsOf(data)
        assert call(backend.objectInfo, RECORDING, name).digests == digestsOf(data)


def readAll(reader, size=7) -> bytes:
    chunks = []
    while chunk := reader.read(size):
        chunks.append(chunk)
    reader.close()
    return b"".join(chunks)


def test_listing_containers_and_objects(backend):
    for container in ("Users", "Devices", RECORDING):
        call(backend.putContainer, container, {"K": container[:3]})
    names = ["b.mkv", "a.mkv", "c/d.json", "é.key", "bookmark_1"]
    for name in names:
        store(backend, RECORDING, name, name.encode("utf-8"), {"Name": name})
    listed = call(backend.listContainers, "", "", 100)
    assert [c.name for c in listed] == [RECORDING, "Devices", "Users"]  # UTF-8 byte order
    assert listed[1].metadata == {"K": "Dev"}
    assert [c.name for c in call(backend.listContainers, "U", "", 10)] == ["Users"]
    assert [c.name for c in call(backend.listContainers, "", "Devices", 10)] == ["Users"]
    assert [c.name for c in call(backend.listContainers, "", "", 1)] == [RECORDING]
    objects = call(backend.listObjects, RECORDING, "", "", 100)
    assert [o.name for o in objects] == sorted(names, key=lambda n: n.encode("utf-8"))
    assert objects[0].digests == digestsOf(b"a.mkv") and objects[0].metadata == {"Name": "a.mkv"}
    assert [o.name for o in call(backend.listObjects, RECORDING, "", "b.mkv", 2)] == [
        "bookmark_1", "c/d.json"]
    assert [o.name for o in call(backend.listObjects, RECORDING, "c/", "", 10)] == ["c/d.json"]
    raises(NotFound, backend.listObjects, "Nothing", "", "", 10)


def test_reading_objects_and_ranges(backend):
    call(backend.putContainer, RECORDING, {})
    data = os.urandom(100_000)
    store(backend, RECORDING, "clip.mkv", data)
    reader = call(backend.readObject, RECORDING, "clip.mkv", 0, None)
    assert reader.info.digests == digestsOf(data)
    assert readAll(reader, 4096) == data
    assert readAll(call(backend.readObject, RECORDING, "clip.mkv", 3, 5)) == data[3:8]
    assert readAll(call(backend.readObject, RECORDING, "clip.mkv", 99_990, None)) == data[99_990:]
    assert readAll(call(backend.readObject, RECORDING, "clip.mkv", 100_000, None)) == b""
    raises(NotFound, backend.readObject, RECORDING, "nothing", 0, None)


def test_deleting_objects(openBackend):
    backend = openBackend()
    call(backend.putContainer, RECORDING, {"Status": "Complete"})
    data = os.urandom(100_000)
    store(backend, RECORDING, "clip.mkv", data, {"Starttime": "1"})
    store(backend, RECORDING, "c/d/e.json", b"{}")
    store(backend, RECORDING, "c/f.json", b"[]")
    deleted = call(backend.deleteObject, RECORDING, "clip.mkv")
    assert deleted.digests == digestsOf(data) and deleted.metadata == {"Starttime": "1"}
    assert call(backend.objectInfo, RECORDING, "clip.mkv") is None
    assert call(backend.deleteObject, RECORDING, "clip.mkv") is None
    assert call(backend.deleteObject, "Nothing", "clip.mkv") is None
    call(backend.deleteObject, RECORDING, "c/d/e.json")
    assert [o.name for o in call(backend.listObjects, RECORDING, "", "", 10)] == ["c/f.json"]
    # The name is free again, for a write-once upload too; and a restart
    # (a crash after the deletion returned) doesn't bring anything back.
    assert store(backend, RECORDING, "clip.mkv", b"new", writeOnce=True).existed is False
    call(backend.deleteObject, RECORDING, "clip.mkv")
    again = openBackend()
    assert [o.name for o in call(again.listObjects, RECORDING, "", "", 10)] == ["c/f.json"]


def test_a_deleted_object_being_read_can_be_read_to_its_end(backend):
    call(backend.putContainer, RECORDING, {})
    data = os.urandom(3 << 20)
    store(backend, RECORDING, "clip.mkv", data)
    reader = call(backend.readObject, RECORDING, "clip.mkv", 0, None)
    call(backend.deleteObject, RECORDING, "clip.mkv")
    assert readAll(reader, 1 << 20) == data


def test_only_empty_containers_are_deleted(backend):
    call(backend.putContainer, RECORDING, {"Status": "Complete"})
    store(backend, RECORDING, "a/clip.mkv", b"data")
    raises(Conflict, backend.deleteContainer, RECORDING)
    call(backend.deleteObject, RECORDING, "a/clip.mkv")
    writer = call(backend.openObject, RECORDING, "b.mkv", {}, 4, True)
    raises(Conflict, backend.deleteContainer, RECORDING)  # an upload is under way
    writer.abort()
    assert call(backend.deleteContainer, RECORDING) is True
    assert call(backend.containerInfo, RECORDING) is None
    assert call(backend.deleteContainer, RECORDING) is False
    assert [c.name for c in call(backend.listContainers, "", "", 10)] == []
    # Made again, it starts empty, without the old metadata.
    call(backend.putContainer, RECORDING, {"Status": "Transferring"})
    assert call(backend.containerInfo, RECORDING).metadata == {"Status": "Transferring"}


def test_containers_say_what_they_hold(openBackend):
    backend = openBackend()
    before = time.time() - 2  # (file times may be coarser than time.time())
    call(backend.putContainer, RECORDING, {"Status": "Transferring"})
    call(backend.putContainer, "Users", {})
    empty = call(backend.containerInfo, RECORDING)
    assert (empty.objectCount, empty.bytesUsed) == (0, 0) and empty.modified >= before
    clips = {"a.mkv": os.urandom(1000), "sub/b.mkv": os.urandom(2001), "c.json": b"{}"}
    for name, data in clips.items():
        store(backend, RECORDING, name, data, writeOnce=True)
    store(backend, RECORDING, "a.mkv", os.urandom(5), writeOnce=True)  # a conflict copy
    newest = max(o.modified for o in call(backend.listObjects, RECORDING, "", "", 10))
    expected = (4, sum(map(len, clips.values())) + 5)

    def check(backend):
        info = call(backend.containerInfo, RECORDING)
        assert (info.objectCount, info.bytesUsed) == expected
        assert info.metadata == {"Status": "Transferring"} and info.modified >= newest
        listed = {c.name: c for c in call(backend.listContainers, "", "", 10)}
        assert (listed[RECORDING].objectCount, listed[RECORDING].bytesUsed) == expected
        assert (listed["Users"].objectCount, listed["Users"].bytesUsed) == (0, 0)
        assert listed[RECORDING].modified >= newest

    check(backend)
    updated = call(backend.updateContainer, RECORDING, {"Status": "Transferring", "K": "v"})
    assert (updated.objectCount, updated.bytesUsed) == expected
    call(backend.updateContainer, RECORDING, {"K": ""})
    store(backend, RECORDING, "gone.mkv", b"12345")
    call(backend.deleteObject, RECORDING, "gone.mkv")
    check(openBackend())  # as stored, for the next start


def test_an_objects_content_type_is_kept(openBackend):
    backend = openBackend()
    call(backend.putContainer, RECORDING, {})
    call(backend.putContainer, "Users", {})
    store(backend, RECORDING, "clip.mkv", b"video", {"Starttime": "1"}, writeOnce=True,
          contentType="video/x-matroska")
    store(backend, RECORDING, "other.mkv", b"bytes", writeOnce=True)
    assert store(backend, RECORDING, "clip.mkv", b"video", writeOnce=True,
                 contentType="text/plain").contentType == "video/x-matroska"  # kept as it was
    store(backend, "Users", "u1", b"", contentType="application/json; charset=utf-8")
    store(backend, "Users", "u1", b"", contentType="text/plain")  # replaced, with its type
    # Metadata replaced by a POST leaves it as it is.
    call(backend.replaceObjectMetadata, RECORDING, "clip.mkv", {"Starttime": "2"})

    def check(backend):
        assert call(backend.objectInfo, RECORDING, "clip.mkv").contentType == "video/x-matroska"
        assert call(backend.objectInfo, RECORDING, "other.mkv").contentType is None
        assert call(backend.objectInfo, "Users", "u1").contentType == "text/plain"
        listed = {o.name: o.contentType for o in call(backend.listObjects, RECORDING, "", "", 10)}
        assert listed == {"clip.mkv": "video/x-matroska", "other.mkv": None}
        reader = call(backend.readObject, RECORDING, "clip.mkv", 0, None)
        assert reader.info.contentType == "video/x-matroska"
        reader.close()

    check(backend)
    check(openBackend())  # as stored, for the next start


def filesRoot(request, tmp_path):
    """
    Where the backend under test keeps the layout's files, for a test that
    touches them as something other than the backend would; or a skip.
    """
    candidate = request.node.callspec.params["openBackend"].name
    if candidate not in ("filesystem", "sftp"):
        pytest.skip(f"{candidate} keeps no files that something else can name")
    return tmp_path / STORAGE[candidate]


def test_a_deletion_cut_short_is_finished_by_the_next(request, openBackend, tmp_path):
    root = filesRoot(request, tmp_path)
    backend = openBackend()
    call(backend.putContainer, RECORDING, {"Status": "Complete"})
    store(backend, RECORDING, "clip.mkv", b"abc")
    # A kill between the layout's two unlinks: the object's file went, its metadata not.
    os.unlink(root / RECORDING / "clip.mkv")
    raises(Conflict, backend.deleteContainer, RECORDING)
    assert call(backend.deleteObject, RECORDING, "clip.mkv") is None  # still a 404
    assert call(backend.deleteContainer, RECORDING) is True


def test_names_that_are_not_utf8_are_left_out_and_logged_once(request, openBackend, tmp_path):
    root = os.fsencode(filesRoot(request, tmp_path))
    backend = openBackend()
    call(backend.putContainer, RECORDING, {})
    store(backend, RECORDING, "a.mkv", b"abc")
    # What an operator's tool (or a disk from another system) leaves there.
    container = os.path.join(root, os.fsencode(RECORDING))
    os.mkdir(os.path.join(root, b"\xfe"))
    os.mkdir(os.path.join(container, b"sub\xfd"))
    for path in (os.path.join(container, b"\xff.mkv"),
                 os.path.join(container, b"sub\xfd", b"x.mkv")):
        with open(path, "wb") as f:
            f.write(b"x")
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        for _ in range(2):
            assert [c.name for c in call(backend.listContainers, "", "", 10)] == [RECORDING]
            assert [o.name for o in call(backend.listObjects, RECORDING, "", "", 10)] == [
                "a.mkv"]
            info = call(backend.containerInfo, RECORDING)
            assert (info.objectCount, info.bytesUsed) == (1, 3)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    lines = [formatEvent(e) for e in logged if "not UTF-8" in (formatEvent(e) or "")]
    assert sorted(line.split(", whose")[0].rsplit("/", 1)[1] for line in lines) == [
        "\\xfe", "\\xff.mkv", "sub\\xfd"], lines
