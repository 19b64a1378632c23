"""
The evidence package: one recording as a ZIP file, written as it is read.

A package holds, in this order:

  - C{objects/NAME}: every object of the recording container, byte for
    byte as stored (clips, key objects, bookmarks, the GNSS track, conflict
    copies);
  - C{decrypted/NAME}: with a decryption (the operator's private key, see
    C{bwscd export --key}), the plaintext of each encrypted clip and track;
  - C{metadata/recording.json}: the container's metadata;
  - C{metadata/objects.json}: each object's metadata, length, MD5 and
    SHA-256 as stored, and when it arrived;
  - C{custody.json}: the chain of custody: each object's arrival (time,
    account, hashes), the reads and exports before this one, and this
    export (who, when, why);
  - C{manifest.json}: every file above with its length and SHA-256;
  - C{manifest.sha256}: the same in C{sha256sum} format, with the line of
    C{manifest.json} too, so that C{sha256sum -c manifest.sha256} checks an
    unzipped package.

Entries are stored, not compressed: video does not compress, and a stored
entry's bytes are the object's.  Each is streamed with a data descriptor
(its CRC-32 and length follow its bytes), so nothing is held but the chunk
on its way to the consumer, whatever the recording's size; ZIP64 records
are written where a size, an offset or the number of entries needs them.
The SHA-256 of an object is computed as its bytes stream into the package
and compared with the one stored with it: a difference ends the export
with an error and an event (C{recording.export-failed}) before the ZIP's
central directory is written, so what was sent is no valid package, never
a package that silently differs from what was stored.

Reading goes through the storage contract (L{IStorageBackend.listObjects},
L{IStorageBackend.readObject}); each chunk is read and hashed on a thread of
the given L{bwscd.threads.Pool}, and the next is asked for only while the
consumer keeps up (it pauses us): a slow client holds no thread.
"""

import hashlib
import json
import struct
import time
import zlib
from dataclasses import dataclass

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from bwscd import __version__
from bwscd.constraints import DEVICES, SYSTEM, USERS
from bwscd.errors import BadRequest, NotFound
from bwscd.policy.events import timestamp

CHUNK = 256 << 10
"""Bytes read from storage, hashed and written at a time."""
LISTING_PAGE = 1000
REASON_LIMIT = 1000
"""Characters of a reason, at most: a sentence or two, not a document."""
SMALL_OBJECT_LIMIT = 65536
"""The largest object L{readContent} reads whole (key objects are a few hundred bytes)."""

OBJECTS = "objects/"
DECRYPTED = "decrypted/"
RECORDING = "metadata/recording.json"
OBJECT_LIST = "metadata/objects.json"
CUSTODY = "custody.json"
MANIFEST = "manifest.json"
CHECKSUMS = "manifest.sha256"

ARRIVAL = "clip.stored"
READS = frozenset({"object.read", "recording.viewed", "recording.exported"})
"""Custody events that read a recording, as opposed to changing it."""

# ZIP records (PKWARE's APPNOTE.TXT, sections 4.3 and 4.5).
ZIP64_LIMIT = 0xFFFFFFFF
"""Sizes and offsets from here on need ZIP64 records."""
_LOCAL = 0x04034B50
_DESCRIPTOR = 0x08074B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50
_ZIP64_EXTRA = 0x0001
_TIME_EXTRA = 0x5455  # "UT": the modification time in Unix seconds, which unzip restores
_STORED = 0
_DATA_DESCRIPTOR = 1 << 3
_UTF8_NAMES = 1 << 11
_FLAGS = _DATA_DESCRIPTOR | _UTF8_NAMES
_VERSION = 20
_VERSION64 = 45
_MADE_BY_UNIX = 3 << 8
_FILE_MODE = 0o100644 << 16


def checkReason(reason) -> str:
    """
    Why an export is made, as it goes into the custody record and the
    event: required, one or two sentences of printable text.

    @raise BadRequest: with a message saying what is wrong.
    """
    if reason is None or not reason.strip():
        raise BadRequest("an export needs a reason: say why it is made (reason=...)")
    reason = reason.strip()
    if len(reason) > REASON_LIMIT:
        raise BadRequest(f"the reason is {len(reason)} characters long; at most "
                         f"{REASON_LIMIT} are kept")
    if any(not character.isprintable() for character in reason):
        raise BadRequest("the reason holds control characters: give it as one line of text")
    return reason


def _document(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8") + b"\n"


def _dosTime(seconds: float) -> tuple[int, int]:
    """The MS-DOS time and date fields of C{seconds} (UTC; 1980 at the earliest)."""
    t = time.gmtime(max(seconds, 315532800))
    return ((t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
            ((min(t.tm_year, 2107) - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


def _timeExtra(seconds: float) -> bytes:
    """The "UT" extra field: flags (bit 0: a modification time follows), the time."""
    return struct.pack("<HHBI", _TIME_EXTRA, 5, 1, min(max(int(seconds), 0), 0x7FFFFFFF))


@dataclass
class _Written:
    name: bytes
    offset: int
    time: int
    date: int
    zip64: bool
    modified: float
    crc: int = 0
    length: int = 0


class StreamedZip:
    """
    The records of a ZIP file written in one pass, around entries whose
    bytes the caller writes: L{header}, the entry's bytes, L{descriptor},
    for each entry; then L{directory}.  Each returns the bytes to write;
    nothing of the entries' bytes is kept.

    @param zip64Limit: sizes and offsets from which ZIP64 records are
        written (lower it only to test them).
    """

    def __init__(self, zip64Limit: int = ZIP64_LIMIT):
        self._limit = zip64Limit
        self.offset = 0
        """Bytes of the file so far."""
        self._entries: list[_Written] = []
        self._open: _Written | None = None

    def header(self, name: str, modified: float, largest: int) -> bytes:
        """
        The local header of the next entry, which will hold at most
        C{largest} bytes (whether its sizes need 8 bytes is said here,
        before they are known).
        """
        encoded = name.encode("utf-8")
        zip64 = largest >= self._limit
        dosTime, dosDate = _dosTime(modified)
        extra = _timeExtra(modified)
        size = 0
        if zip64:
            # Sizes in the data descriptor, 8 bytes each: said by this
            # extra field, with zeros, as python's zipfile writes it.
            extra = struct.pack("<HHQQ", _ZIP64_EXTRA, 16, 0, 0) + extra
            size = 0xFFFFFFFF
        record = struct.pack(
            "<IHHHHHIIIHH", _LOCAL, _VERSION64 if zip64 else _VERSION, _FLAGS, _STORED,
            dosTime, dosDate, 0, size, size, len(encoded), len(extra)) + encoded + extra
        self._open = _Written(encoded, self.offset, dosTime, dosDate, zip64, modified)
        self.offset += len(record)
        return record

    def descriptor(self, crc: int, length: int) -> bytes:
        """The data descriptor after the C{length} bytes of the entry begun last."""
        entry, self._open = self._open, None
        if length >= self._limit and not entry.zip64:
            raise ValueError(f"{entry.name!r} holds {length} bytes, more than it said")
        entry.crc, entry.length = crc, length
        record = struct.pack("<IIQQ" if entry.zip64 else "<IIII", _DESCRIPTOR, crc, length, length)
        self.offset += length + len(record)
        self._entries.append(entry)
        return record

    def directory(self) -> bytes:
        """The central directory and the end records: the last bytes of the file."""
        start = self.offset
        records = []
        for entry in self._entries:
            large = []
            size = offset = None
            if entry.zip64 or entry.length >= self._limit:
                large += [entry.length, entry.length]
                size = 0xFFFFFFFF
            if entry.offset >= self._limit:
                large.append(entry.offset)
                offset = 0xFFFFFFFF
            extra = (struct.pack("<HH" + "Q" * len(large), _ZIP64_EXTRA, 8 * len(large), *large)
                     if large else b"") + _timeExtra(entry.modified)
            records.append(struct.pack(
                "<IHHHHHHIIIHHHHHII", _CENTRAL, _MADE_BY_UNIX | _VERSION64,
                _VERSION64 if large else _VERSION, _FLAGS, _STORED, entry.time, entry.date,
                entry.crc, size or entry.length, size or entry.length, len(entry.name),
                len(extra), 0, 0, 0, _FILE_MODE, offset or entry.offset) + entry.name + extra)
        central = b"".join(records)
        count, length = len(self._entries), len(central)
        end = b""
        if count >= 0xFFFF or start >= self._limit or length >= self._limit:
            end64 = start + length
            end = struct.pack("<IQHHIIQQQQ", _END64, 44, _MADE_BY_UNIX | _VERSION64,
                              _VERSION64, 0, 0, count, count, length, start)
            end += struct.pack("<IIQI", _LOCATOR64, 0, end64, 1)
            count, length, start = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF
        end += struct.pack("<IHHHHIIH", _END, 0, 0, count, count, length, start, 0)
        self.offset += len(central) + len(end)
        return central + end


class PackageAborted(Exception):
    """The export stopped before the package was whole; the message says why."""


@dataclass
class Entry:
    """
    One file of a package.

    @ivar open: returns a L{Deferred} of a reader (C{read(size)} and
        C{close()}, called on a thread: an L{IObjectReader}).
    @ivar largest: the most bytes the file can hold (for ZIP64).
    @ivar source: the object it is read from, for messages.
    @ivar stored: the source's length and SHA-256 as stored
        (L{bwscd.interfaces.Digests}), compared with what is read; L{None}:
        nothing to compare (the package's own documents).
    @ivar transform: makes an object whose C{update(bytes)} and
        C{finalize()} turn what is read into the file's bytes (a
        decryption); L{None}: the file is what is read.
    """

    name: str
    modified: float
    largest: int
    open: object
    source: str | None = None
    stored: object = None
    transform: object = None


class _BytesReader:
    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._at = 0

    def read(self, size: int) -> bytes:
        chunk = bytes(self._data[self._at:self._at + size])
        self._at += len(chunk)
        return chunk

    def close(self) -> None:
        pass


def documentEntry(name: str, data: bytes, modified: float) -> Entry:
    """A file of the package made here (JSON), hashed as the objects are."""
    return Entry(name, modified, len(data), lambda: succeed(_BytesReader(data)))


class _Reading:
    """One entry's bytes on their way, measured.  Used by one thread at a time."""

    def __init__(self, entry: Entry, reader):
        self.entry = entry
        self.reader = reader
        self.transform = entry.transform() if entry.transform is not None else None
        self.hash = hashlib.sha256()
        self.crc = 0
        self.length = 0
        # Without a transform the file is the source: one hash for both.
        self._sourceHash = hashlib.sha256() if self.transform is not None else self.hash
        self._sourceLength = 0

    def next(self) -> tuple[bytes, bool]:
        """
        On a thread: the file's next bytes, and whether they are its last
        (the reader then closed, and the source checked).

        @raise PackageAborted: if the source differs from what was stored.
        """
        while True:
            data = self.reader.read(CHUNK)
            if not data:
                self.reader.close()
                out = self.transform.finalize() if self.transform is not None else b""
                self._measure(out)
                self._check(final=True)
                return out, True
            self._sourceLength += len(data)
            if self.transform is not None:
                self._sourceHash.update(data)
            self._check(final=False)
            out = self.transform.update(data) if self.transform is not None else data
            if out:
                self._measure(out)
                return out, False
            # A transform may hold everything back (a block cipher's last
            # block): read on.

    def _measure(self, data: bytes) -> None:
        self.hash.update(data)
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)

    def _check(self, final: bool) -> None:
        stored = self.entry.stored
        if stored is None:
            return
        if self._sourceLength > stored.length or final and self._sourceLength != stored.length:
            raise PackageAborted(
                f"{self.entry.source!r} is {'more than ' if not final else ''}"
                f"{self._sourceLength} bytes long in storage, but {stored.length} were "
                "stored: the package is not made")
        if final and stored.sha256 and self._sourceHash.hexdigest() != stored.sha256:
            raise PackageAborted(
                f"the SHA-256 of {self.entry.source!r} is {self._sourceHash.hexdigest()} "
                f"in storage, but {stored.sha256} was stored with it: the package is not made")


@dataclass(frozen=True)
class Exported:
    """What a finished package holds."""

    files: list[dict]
    """Each file of the package, in order: C{name}, C{length}, C{sha256}."""
    manifestSHA256: str
    length: int
    """Bytes of the ZIP file."""


@implementer(IPushProducer)
class PackageStream:
    """
    Write a package's files to a consumer (an L{IConsumer}: a web request,
    a file), then the manifest, then the ZIP's directory.

    @param pool: the L{bwscd.threads.Pool} that reads and hashes.
    @param entries: the L{Entry}s, in order; the manifest follows them.
    """

    def __init__(self, pool, entries: list[Entry], recording: str, created: float,
                 zip64Limit: int = ZIP64_LIMIT):
        self._pool = pool
        self._entries = list(entries)
        self._recording = recording
        self._created = created
        self._zip = StreamedZip(zip64Limit)
        self._files: list[dict] = []
        self._index = 0
        self._closing = 0
        self._reading: _Reading | None = None
        self._busy = False
        self._paused = False
        self._stopped = False
        self._ended = False
        self._then = None
        """What to do once resumed: read on, or begin the next entry."""
        self.stopReason = "the client went away"
        """Why L{stopProducing} was called, as the consumer may say (a file it could not write)."""
        self._done = Deferred()

    def start(self, consumer) -> Deferred:
        """
        @return: L{Deferred} firing with the L{Exported} once the last
            byte is written, or failing (L{PackageAborted}, or storage's
            error) with the package left unfinished.
        """
        self._consumer = consumer
        consumer.registerProducer(self, True)
        self._begin()
        return self._done

    def _begin(self) -> None:
        """Begin the next entry; after the last, the manifest; after it, the end."""
        if self._index == len(self._entries):
            # The given entries are written: the manifest of them, then
            # its checksums, then the end.
            self._closing += 1
            if self._closing == 1:
                self._entries.append(documentEntry(MANIFEST, self._manifest(), self._created))
            elif self._closing == 2:
                self._entries.append(documentEntry(CHECKSUMS, self._checksums(), self._created))
            else:
                self._consumer.write(self._zip.directory())
                return self._end(None)
        entry = self._entries[self._index]
        self._consumer.write(self._zip.header(entry.name, entry.modified, entry.largest))
        self._busy = True
        entry.open().addCallbacks(self._opened, self._fail, callbackArgs=(entry,))

    def _opened(self, reader, entry: Entry) -> None:
        self._reading = _Reading(entry, reader)
        self._busy = False
        if self._stopped:
            return self._fail(Failure(PackageAborted(self.stopReason)))
        # The header's write may have paused us.
        self._continue(self._readNext)

    def _readNext(self) -> None:
        self._busy = True
        self._pool.run(self._reading.next).addCallbacks(self._arrived, self._fail)

    def _arrived(self, result: tuple[bytes, bool]) -> None:
        data, last = result
        self._busy = False
        if self._stopped:
            return self._fail(Failure(PackageAborted(self.stopReason)))
        if data:
            # May pause or stop us: what comes next is decided below.
            self._consumer.write(data)
        then = self._readNext
        if last:
            reading, self._reading = self._reading, None
            self._consumer.write(self._zip.descriptor(reading.crc, reading.length))
            self._files.append({"name": reading.entry.name, "length": reading.length,
                                "sha256": reading.hash.hexdigest()})
            self._index += 1
            then = self._begin
        self._continue(then)

    def _continue(self, then) -> None:
        """C{then()} now, or once resumed."""
        if self._paused:
            self._then = then
        else:
            then()

    def _manifest(self) -> bytes:
        return _document({
            "recording": self._recording,
            "created": timestamp(self._created),
            "algorithm": "SHA-256",
            "files": list(self._files),
        })

    def _checksums(self) -> bytes:
        # sha256sum's format: the hash, two spaces (text mode, which is
        # binary on every system that matters), the name.
        return "".join(f"{f['sha256']}  {f['name']}\n" for f in self._files).encode("utf-8")

    def _fail(self, reason: Failure) -> None:
        self._busy = False
        if self._ended:
            return
        reading, self._reading = self._reading, None
        if reading is None:
            return self._end(reason)
        # Closing is safe more than once (the contract), and may block.
        self._pool.run(reading.reader.close).addBoth(lambda _: self._end(reason))

    def _end(self, outcome: Failure | None) -> None:
        if self._ended:
            return
        self._ended = True
        # A web request whose connection is lost has no channel any more,
        # and no producer registered with it.
        if getattr(self._consumer, "channel", self._consumer) is not None:
            self._consumer.unregisterProducer()
        if outcome is not None:
            self._done.errback(outcome)
        else:
            manifest = self._files[-2]
            self._done.callback(Exported(self._files, manifest["sha256"], self._zip.offset))

    # IPushProducer, called on the reactor thread.

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        then, self._then = self._then, None
        if then is not None and not self._ended:
            then()

    def stopProducing(self) -> None:
        self._stopped = True
        then, self._then = self._then, None
        if then is not None or not self._busy:
            self._fail(Failure(PackageAborted(self.stopReason)))


def _flatten(event: dict) -> dict:
    """
    A custody event (L{bwscd.catalog.query.CatalogQuery.custody}: C{time},
    C{type}, C{account}, C{object}, and the whole C{event}) as one flat
    dict: the event's own fields, which the catalog's columns win over.
    """
    flat = {key: value for key, value in event.items() if key != "event"}
    whole = event.get("event")
    if isinstance(whole, dict):
        for key, value in whole.items():
            if flat.get(key) is None:
                flat[key] = value
    return flat


def _arrival(event: dict) -> dict:
    return {
        "time": event.get("time"),
        "object": event.get("object"),
        "storedAs": event.get("storedAs", event.get("object")),
        "account": event.get("account"),
        "length": event.get("length"),
        "md5": event.get("md5"),
        "sha256": event.get("sha256"),
        "alreadyStored": event.get("alreadyStored", False),
        "from": "custody",
    }


def custodyDocument(recording: str, objects: list, events: list[dict], export: dict) -> dict:
    """
    The chain of custody of C{recording}: arrivals, reads, other changes
    (from C{events}, the custody events oldest first), and C{export}.

    An object with no arrival among C{events} (stored before custody was
    recorded, or with no custody source) gets one from what storage keeps
    of it: the time it became visible and its hashes, with no account.
    """
    flat = [_flatten(event) for event in events]
    arrivals = [_arrival(event) for event in flat if event.get("type") == ARRIVAL]
    arrived = {arrival["storedAs"] for arrival in arrivals}
    for info in objects:
        if info.name not in arrived:
            arrivals.append({
                "time": timestamp(info.modified), "object": info.name, "storedAs": info.name,
                "account": None, "length": info.digests.length, "md5": info.digests.md5,
                "sha256": info.digests.sha256, "alreadyStored": False, "from": "storage",
            })
    arrivals.sort(key=lambda arrival: (arrival["time"] or "", arrival["storedAs"] or ""))
    return {
        "recording": recording,
        "arrivals": arrivals,
        "reads": [event for event in flat if event.get("type") in READS],
        "changes": [event for event in flat
                    if event.get("type") != ARRIVAL and event.get("type") not in READS],
        "export": export,
    }


def _objectDocument(info, arrivals: dict, decrypted: bool) -> dict:
    arrival = arrivals.get(info.name, {})
    document = {
        "name": info.name,
        "file": OBJECTS + info.name,
        "length": info.digests.length,
        "md5": info.digests.md5,
        "sha256": info.digests.sha256,
        "arrived": timestamp(info.modified),
        "account": arrival.get("account"),
        "contentType": info.contentType,
        "metadata": info.metadata,
    }
    if decrypted:
        document["decrypted"] = DECRYPTED + info.name
    return document


def readContent(backend, pool, container: str, info, limit: int = SMALL_OBJECT_LIMIT):
    """
    The whole of a small object (a key object), read on C{pool}.

    @return: L{Deferred} firing with its bytes.
    @raise PackageAborted: if it is larger than C{limit}.
    """
    if info.digests.length > limit:
        return fail(PackageAborted(f"{info.name!r} is {info.digests.length} bytes: too "
                                   "large for a key object"))

    def read(reader):
        try:
            return reader.read(limit + 1)
        finally:
            reader.close()

    return backend.readObject(container, info.name, 0, None).addCallback(
        lambda reader: pool.run(read, reader))


@dataclass
class Package:
    """A recording's package, ready to stream: see L{Exporter.prepare}."""

    recording: str
    account: str
    reason: str
    via: str
    entries: list[Entry]
    created: float
    events: object
    pool: object
    zip64Limit: int

    @property
    def filename(self) -> str:
        return f"{self.recording}.zip"

    @inlineCallbacks
    def stream(self, consumer):
        """
        Write the package to C{consumer}; emit C{recording.exported}, or
        C{recording.export-failed} with the reason and fail.

        @return: L{Deferred} firing with the L{Exported}.
        """
        fields = {"container": self.recording, "account": self.account,
                  "reason": self.reason, "via": self.via}
        stream = PackageStream(self.pool, self.entries, self.recording, self.created,
                               self.zip64Limit)
        try:
            exported = yield stream.start(consumer)
        except Exception as e:
            self.events.emit("recording.export-failed", **fields, problem=str(e))
            raise
        self.events.emit("recording.exported", **fields, files=len(exported.files),
                         bytes=exported.length, sha256=exported.manifestSHA256)
        return exported


class Exporter:
    """
    Makes evidence packages of the recordings in C{backend}.

    @param pool: the L{bwscd.threads.Pool} that reads and hashes (the
        downloads pool, in the server).
    @param events: the L{bwscd.policy.events.Events} told of each export.
    @param custody: C{custody(recording)} returns a L{Deferred} of its
        custody events, oldest first (L{bwscd.catalog.query.CatalogQuery.custody});
        L{None}: none known, the arrivals come from what storage keeps.
    """

    def __init__(self, backend, pool, events, custody=None, clock=time.time,
                 zip64Limit: int = ZIP64_LIMIT):
        self._backend = backend
        self._pool = pool
        self._events = events
        self._custody = custody
        self._clock = clock
        self._zip64Limit = zip64Limit

    @inlineCallbacks
    def _objects(self, container: str):
        objects, marker = [], ""
        while True:
            page = yield self._backend.listObjects(container, "", marker, LISTING_PAGE)
            objects.extend(page)
            if len(page) < LISTING_PAGE:
                return objects
            marker = page[-1].name

    @inlineCallbacks
    def prepare(self, recording: str, account: str, reason: str, via: str,
                decryption=None):
        """
        Everything about C{recording} a package says, read now; its objects'
        bytes are read as the package is streamed (L{Package.stream}).

        @param via: C{api} or C{command}, for the custody record.
        @param decryption: C{decryption(objects)} returns a L{Deferred} of
            a dict: for each encrypted object's name, what makes its
            transform (see L{Entry}) into plaintext.
        @return: L{Deferred} firing with a L{Package}; failing with
            L{BadRequest} for a bad reason or a registry container,
            L{NotFound} for a recording that does not exist.
        """
        reason = checkReason(reason)
        if recording in (USERS, DEVICES, SYSTEM):
            raise BadRequest(f"{recording} holds the registry's records, not a recording")
        info = yield self._backend.containerInfo(recording)
        if info is None:
            raise NotFound(f"no recording {recording!r}")
        objects = yield self._objects(recording)
        events = yield (self._custody(recording) if self._custody is not None else succeed([]))
        decrypting = yield (decryption(objects) if decryption is not None else succeed({}))
        created = self._clock()
        export = {"time": timestamp(created), "account": account, "reason": reason,
                  "via": via, "tool": f"bwscd {__version__}",
                  "decrypted": sorted(DECRYPTED + name for name in decrypting)}
        custody = custodyDocument(recording, objects, events, export)
        arrivals = {arrival["storedAs"]: arrival for arrival in custody["arrivals"]}
        entries = [self._objectEntry(recording, o) for o in objects]
        entries += [self._objectEntry(recording, o, decrypting[o.name])
                    for o in objects if o.name in decrypting]
        entries += [
            documentEntry(RECORDING, _document({
                "recording": recording, "metadata": info.metadata,
                "objectCount": info.objectCount, "bytes": info.bytesUsed,
                "modified": timestamp(info.modified),
            }), created),
            documentEntry(OBJECT_LIST, _document({
                "recording": recording,
                "objects": [_objectDocument(o, arrivals, o.name in decrypting) for o in objects],
            }), created),
            documentEntry(CUSTODY, _document(custody), created),
        ]
        return Package(recording, account, reason, via, entries, created, self._events,
                       self._pool, self._zip64Limit)

    def _objectEntry(self, recording: str, info, transform=None) -> Entry:
        return Entry(
            (DECRYPTED if transform is not None else OBJECTS) + info.name, info.modified,
            info.digests.length,
            lambda: self._backend.readObject(recording, info.name, 0, None),
            source=info.name, stored=info.digests, transform=transform)
