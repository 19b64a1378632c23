"""
The evidence package (L{bwscd.catalog.export}) over a real filesystem
backend, on the session's reactor: what python's zipfile, Info-ZIP's unzip
and sha256sum make of it, its memory, and what it does when storage no
longer holds what was stored.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tracemalloc
import zipfile

import pytest
from twisted.internet.defer import succeed
from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from bwscd.catalog.export import (
    CHECKSUMS, CUSTODY, MANIFEST, OBJECT_LIST, RECORDING, Exporter, PackageAborted,
    StreamedZip, checkReason)
from bwscd.errors import BadRequest, NotFound
from bwscd.interfaces import Digests

CONTAINER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b_B8A44F000001_20240501T101500Z"
CLIP = "20240501_101500_1.mkv"
MiB = 1 << 20


def put(store, name: str, chunks, metadata=None, contentType="video/x-matroska"):
    """Store an object the way an upload does (write-once), its bytes given in C{chunks}."""
    md5, sha256, length = hashlib.md5(), hashlib.sha256(), 0
    writer = store.call(store.backend.openObject, CONTAINER, name, metadata or {}, None,
                        True, contentType)
    for chunk in chunks:
        md5.update(chunk)
        sha256.update(chunk)
        length += len(chunk)
        writer.write(chunk)
    return writer.commit(Digests(length, md5.hexdigest(), sha256.hexdigest()))


@implementer(IConsumer)
class FileConsumer:
    """
    A consumer writing to a file.  A slow one pauses its producer after
    every write and resumes it on a later turn of the reactor, as a web
    request does whose client reads slowly.
    """

    def __init__(self, reactor, path: str, slow: bool = False):
        self._reactor = reactor
        self._file = open(path, "wb")
        self._slow = slow
        self.producer = None
        self.pauses = 0
        self.paused = False
        self.ignored = 0
        """Writes of an entry's bytes (not the ZIP's small records) while paused."""

    def registerProducer(self, producer, streaming):
        assert streaming
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None
        self._file.close()

    def write(self, data):
        self._file.write(data)
        if self.paused and len(data) > 100:
            self.ignored += 1
        if self._slow and self.producer is not None and not self.paused:
            self.pauses += 1
            self.paused = True
            self.producer.pauseProducing()
            self._reactor.callLater(0.001, self._resume, self.producer)

    def _resume(self, producer):
        self.paused = False
        producer.resumeProducing()


@pytest.fixture
def recording(store):
    """A recording with a clip, its key object, a bookmark, a GNSS track and a conflict copy."""
    store.call(store.backend.putContainer, CONTAINER, {"Status": "Complete", "Timezone": "Europe/Stockholm"})
    objects = {
        CLIP: os.urandom(MiB + 3),
        "20240501_101500_1.key": b'{"EncryptedKey": "AAAA"}',
        "bookmark_20240501T101600Z_1": "Stopped a car, the driver ran".encode(),
        "20240501_101500_1_B8A44F000001_gpstrail.json": b'{"type": "FeatureCollection"}',
    }
    metadata = {CLIP: {"Starttime": "1714558500", "Containertype": "mkv"},
                "bookmark_20240501T101600Z_1": {"Categoryid": "7", "Categoryname": "Traffic"}}
    stored = {}
    for name, data in objects.items():
        stored[name] = put(store, name, [data], metadata.get(name))
    # Other bytes under a name already stored are kept apart, as a conflict copy.
    conflict = put(store, CLIP, [b"other bytes"])
    assert conflict.name != CLIP
    objects[conflict.name] = b"other bytes"
    stored[conflict.name] = conflict
    return objects, stored


def export(store, path, slow=False, custody=None, zip64Limit=None, account="reader1",
           reason="Court case 2024/17: the defence asked for the recording"):
    kwargs = {} if zip64Limit is None else {"zip64Limit": zip64Limit}
    exporter = Exporter(store.backend, store.pools.downloads, store.events, custody=custody,
                        **kwargs)
    package = store.call(exporter.prepare, CONTAINER, account, reason, "api")
    consumer = FileConsumer(store.reactor, path, slow)
    exported = store.call(package.stream, consumer)
    assert consumer.producer is None  # unregistered at the end
    return exported, consumer


def test_every_object_is_in_the_package_byte_for_byte(store, recording, tmp_path):
    objects, stored = recording
    path = str(tmp_path / "package.zip")
    exported, consumer = export(store, path, slow=True)
    assert consumer.pauses > 10 and consumer.ignored == 0  # backpressure honoured
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None  # every CRC-32 right
        names = package.namelist()
        assert names == [f"objects/{name}" for name in sorted(objects)] + [
            RECORDING, OBJECT_LIST, CUSTODY, MANIFEST, CHECKSUMS]
        for name, data in objects.items():
            info = package.getinfo(f"objects/{name}")
            assert info.compress_type == zipfile.ZIP_STORED
            assert package.read(info) == data
        manifest = json.loads(package.read(MANIFEST))
        assert manifest["recording"] == CONTAINER
        listed = {f["name"]: f for f in manifest["files"]}
        assert list(listed) == names[:-2]
        for name in names[:-2]:
            data = package.read(name)
            assert listed[name] == {"name": name, "length": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}
        checksums = package.read(CHECKSUMS).decode()
        assert checksums.splitlines()[-1] == \
            f"{hashlib.sha256(package.read(MANIFEST)).hexdigest()}  {MANIFEST}"
        assert len(checksums.splitlines()) == len(names) - 1

        described = {o["name"]: o for o in json.loads(package.read(OBJECT_LIST))["objects"]}
        assert sorted(described) == sorted(objects)
        for name, info in stored.items():
            assert described[name]["sha256"] == info.digests.sha256
            assert described[name]["md5"] == info.digests.md5
            assert described[name]["length"] == info.digests.length
            assert described[name]["metadata"] == info.metadata
        assert described["bookmark_20240501T101600Z_1"]["metadata"]["Categoryname"] == "Traffic"
        container = json.loads(package.read(RECORDING))
        assert container["metadata"] == {"Status": "Complete", "Timezone": "Europe/Stockholm"}
        custody = json.loads(package.read(CUSTODY))
    # No custody source: each arrival from what storage keeps, with no account.
    assert {a["storedAs"]: a["sha256"] for a in custody["arrivals"]} == \
        {name: info.digests.sha256 for name, info in stored.items()}
    assert {a["account"] for a in custody["arrivals"]} == {None}
    assert custody["export"]["account"] == "reader1"
    assert custody["export"]["reason"] == "Court case 2024/17: the defence asked for the recording"

    [event] = [e for e in store.seen if e["type"] == "recording.exported"]
    with zipfile.ZipFile(path) as package:
        assert event["sha256"] == hashlib.sha256(package.read(MANIFEST)).hexdigest()
    assert event["files"] == len(names) == len(exported.files)
    assert event["bytes"] == os.path.getsize(path) == exported.length
    assert (event["container"], event["account"], event["via"]) == (CONTAINER, "reader1", "api")

    # What an evidence clerk does with it: unzip, then sha256sum -c.
    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", path, "-d", str(unpacked)], check=True)
    checked = subprocess.run(["sha256sum", "-c", CHECKSUMS], cwd=unpacked,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(names) - 1


def test_custody_source_names_the_accounts(store, recording, tmp_path):
    objects, stored = recording
    clip = stored[CLIP]
    # As the catalog gives them (CatalogQuery.custody): its columns, and the whole event.
    stored = {"time": "2024-05-01T10:20:00.000Z", "type": "clip.stored", "container": CONTAINER,
              "object": CLIP, "account": "bws-upload", "storedAs": CLIP,
              "length": clip.digests.length, "md5": clip.digests.md5,
              "sha256": clip.digests.sha256, "alreadyStored": False}
    read = {"time": "2024-05-02T08:00:00.000Z", "type": "object.read", "container": CONTAINER,
            "object": CLIP, "account": "reader1", "first": 0, "last": 9, "complete": True}
    deleted = {"time": "2024-05-03T08:00:00.000Z", "type": "object.deleted",
               "container": CONTAINER, "object": "bookmark_old", "account": "admin1"}
    given = [{"time": e["time"], "type": e["type"], "account": e["account"],
              "object": e["object"], "event": e} for e in (stored, read, deleted)]
    asked = []

    def custody(container):
        asked.append(container)
        return succeed(given)

    path = str(tmp_path / "package.zip")
    export(store, path, custody=custody)
    assert asked == [CONTAINER]
    with zipfile.ZipFile(path) as package:
        document = json.loads(package.read(CUSTODY))
    arrivals = {a["storedAs"]: a for a in document["arrivals"]}
    assert arrivals[CLIP]["account"] == "bws-upload"
    assert arrivals[CLIP]["sha256"] == clip.digests.sha256
    assert arrivals[CLIP]["from"] == "custody"
    # The objects custody knows no arrival of still have one, from storage.
    assert sorted(arrivals) == sorted(objects)
    assert {arrivals[name]["from"] for name in objects if name != CLIP} == {"storage"}
    assert [(r["type"], r["account"], r["first"]) for r in document["reads"]] == \
        [("object.read", "reader1", 0)]
    assert [c["type"] for c in document["changes"]] == ["object.deleted"]


def test_zip64_records_where_sizes_and_offsets_need_them(store, recording, tmp_path):
    """
    Every size and offset past the limit: ZIP64 extra fields, data
    descriptors and end records, as a package over 4 GiB gets them.
    """
    objects, _ = recording
    path = str(tmp_path / "package.zip")
    export(store, path, zip64Limit=1000)
    with open(path, "rb") as f:
        data = f.read()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # the ZIP64 end record and locator
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        for name, content in objects.items():
            assert package.read(f"objects/{name}") == content
    tested = subprocess.run(["unzip", "-t", path], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_zip64_many_entries():
    """More than 65535 entries: the count is in the ZIP64 end record."""
    framing = StreamedZip()
    out = io.BytesIO()
    for number in range(70000):
        out.write(framing.header(f"f{number}", 0, 1))
        out.write(b"x")
        out.write(framing.descriptor(0x8CDC1683, 1))  # zlib.crc32(b"x")
    out.write(framing.directory())
    with zipfile.ZipFile(out) as package:
        assert len(package.infolist()) == 70000
        assert package.read("f69999") == b"x"


def test_a_large_object_streams_in_flat_memory(store, tmp_path):
    """64 MiB, from a generator into storage and out into the package: never held whole."""
    store.call(store.backend.putContainer, CONTAINER, {"Status": "Complete"})
    piece = os.urandom(MiB)

    def clip():
        for number in range(64):
            yield number.to_bytes(4, "big") + piece[4:]

    expected = hashlib.sha256(b"".join(clip())).hexdigest()
    put(store, CLIP, clip())
    path = str(tmp_path / "package.zip")
    tracemalloc.start()
    try:
        export(store, path, slow=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB at most while exporting 64 MiB"
    with zipfile.ZipFile(path) as package:
        with package.open(f"objects/{CLIP}") as entry:
            digest = hashlib.file_digest(entry, "sha256").hexdigest()
    assert digest == expected


def test_storage_that_differs_from_what_was_stored_aborts_the_export(store, recording, tmp_path):
    """One byte of a clip changed on disk: no package, an error and an event."""
    objects, stored = recording
    clipPath = os.path.join(store.backend.root, CONTAINER, CLIP)
    with open(clipPath, "r+b") as f:
        f.seek(1000)
        original = f.read(1)
        f.seek(1000)
        f.write(bytes([original[0] ^ 1]))
    path = str(tmp_path / "package.zip")
    with pytest.raises(PackageAborted) as caught:
        export(store, path)
    assert CLIP in str(caught.value) and stored[CLIP].digests.sha256 in str(caught.value)
    [failed] = [e for e in store.seen if e["type"] == "recording.export-failed"]
    assert failed["container"] == CONTAINER and failed["account"] == "reader1"
    assert CLIP in failed["problem"]
    assert not [e for e in store.seen if e["type"] == "recording.exported"]
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path)


def test_a_truncated_object_in_storage_aborts_the_export(store, recording, tmp_path):
    """The filesystem backend then lists the length on disk: the SHA-256 tells."""
    clipPath = os.path.join(store.backend.root, CONTAINER, CLIP)
    os.truncate(clipPath, 1000)
    with pytest.raises(PackageAborted, match="SHA-256 of '20240501_101500_1.mkv'"):
        export(store, str(tmp_path / "package.zip"))


def test_a_reason_is_required():
    for missing in (None, "", "   "):
        with pytest.raises(BadRequest, match="needs a reason"):
            checkReason(missing)
    with pytest.raises(BadRequest, match="control characters"):
        checkReason("line one\nline two")
    with pytest.raises(BadRequest, match="characters long"):
        checkReason("x" * 1001)
    assert checkReason("  Court case 17 ") == "Court case 17"


def test_unknown_and_registry_containers_are_refused(store, tmp_path):
    exporter = Exporter(store.backend, store.pools.downloads, store.events)
    with pytest.raises(NotFound):
        store.call(exporter.prepare, CONTAINER, "reader1", "why", "api")
    with pytest.raises(BadRequest, match="registry"):
        store.call(exporter.prepare, "Users", "reader1", "why", "api")


def test_the_unzip_tool_restores_the_objects_times(store, recording, tmp_path):
    objects, stored = recording
    path = str(tmp_path / "package.zip")
    export(store, path)
    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", path, "-d", str(unpacked)], check=True)
    assert int(os.stat(unpacked / "objects" / CLIP).st_mtime) == int(stored[CLIP].modified)


pytestmark = pytest.mark.skipif(shutil.which("unzip") is None or shutil.which("sha256sum") is None,
                                reason="needs unzip and sha256sum")
