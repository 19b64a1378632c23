"""
Events: what happened, as small JSON objects, for operators and their systems.

L{Events} stamps each event and hands it to every L{IEventSink}: the
service's log (L{LogSink}), the L{EventLog} on disk, a L{WebhookSink}, or
anything else.  Sinks never block and never raise, so reporting an event
can't slow down or break an upload.
"""

import gzip
import json
import os
import queue
import re
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from bwscd.files import TEMPORARY_SUFFIX, replacingFile
from bwscd.interfaces import IEventSink
from bwscd.plugins import sizeInBytes
from bwscd.policy.categories import categoryKey

# The namespace integrators filter events on (docs/events.md): it stays
# the same wherever this module lives.
log = Logger(namespace="bwscd.events")

REQUEST_TIMEOUT = 30
"""Seconds a webhook has to answer an event, body included."""


def timestamp(seconds: float) -> str:
    """RFC 3339, UTC, milliseconds: C{2024-05-01T12:34:56.789Z}."""
    stamp = datetime.fromtimestamp(seconds, timezone.utc)
    return stamp.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def _encode(event: dict) -> bytes:
    # Sorted keys give the same bytes for the same event, whatever order its
    # fields were given in; UTF-8 keeps names readable in the file.
    return json.dumps(event, ensure_ascii=False, sort_keys=True).encode("utf-8")


class Events:
    """
    The hub: stamps events and hands each one to every sink, in order.

    @param sinks: L{IEventSink} providers.
    @param clock: returns seconds since the epoch, for the C{"time"} field.
    """

    def __init__(self, sinks: list, clock=time.time):
        self._sinks = list(sinks)
        self._clock = clock

    def emit(self, type: str, **fields) -> dict:
        """
        Report that something happened.  Returns at once.

        @return: the event handed to the sinks: C{fields} with C{"time"} and
            C{"type"}.
        """
        event = {"time": timestamp(self._clock()), "type": type, **fields}
        self.deliver(event)
        return event

    def deliver(self, event: dict) -> None:
        """Hand an event already made (by a worker process) to every sink."""
        for sink in self._sinks:
            try:
                sink.emit(event)
            except Exception:
                # The contract says sinks don't raise; one that does anyway
                # must not cost the other sinks their event.
                log.failure("event sink {sink!r} failed", sink=sink)


@implementer(IEventSink)
class LogSink:
    """Each event as one line of the service's log, for operators who read only that."""

    def emit(self, event: dict) -> None:
        # repr for what JSON can't say: a line in the log beats none.
        text = json.dumps(event, ensure_ascii=False, sort_keys=True, default=repr)
        log.info("event {event}", event=text)


ARCHIVED = ".gz"
"""How the rotated files of the event log end once compressed."""

DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Retention:
    """
    How much of the event log's history an operator chose to keep
    (C{--event-log-keep}): rotated files up to C{bytes} in all, the newest
    ones, or rotated files whose last event is at most C{days} old.
    Without one, nothing is ever deleted: the event log is the record of
    what arrived and what was deleted, and is kept as long as the evidence.
    """

    bytes: int | None = None
    days: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Retention":
        """C{"400d"}: days; C{"50G"} (a size, as for C{--quota}): bytes.

        @raise ValueError: for anything else, or 0."""
        if text[-1:].lower() == "d" and text[:-1].isdigit():
            retention = cls(days=int(text[:-1]))
        else:
            retention = cls(bytes=sizeInBytes(text))
        if not (retention.days or retention.bytes):
            raise ValueError("nothing would be kept")
        return retention

    def beyond(self, files: list[str], now: float) -> list[str]:
        """Which of C{files} (rotated files, oldest first) are not kept."""
        if self.days is not None:
            cutoff = now - self.days * DAY
            return [name for name in files if os.stat(name).st_mtime < cutoff]
        total = 0
        for index in range(len(files) - 1, -1, -1):
            total += os.stat(files[index]).st_size
            if total > self.bytes:
                return files[: index + 1]
        return []

    def __str__(self):
        return f"{self.days}d" if self.days is not None else f"{self.bytes} bytes"


def _rotatedPath(path: str, serial: int) -> str:
    """Where the C{serial}th file rotated out of C{path} goes (C{events.000001.jsonl})."""
    root, extension = os.path.splitext(path)
    return f"{root}.{serial:06d}{extension}"


def _serials(path: str) -> dict[int, str]:
    """The rotated files of this version, by serial: compressed, or not yet."""
    directory, name = os.path.split(path)
    root, extension = os.path.splitext(name)
    pattern = re.compile(re.escape(root) + r"\.(\d+)" + re.escape(extension)
                         + "(" + re.escape(ARCHIVED) + ")?")
    files: dict[int, str] = {}
    for entry in os.listdir(directory or "."):
        match = pattern.fullmatch(entry)
        # Both, when a crash came between compressing and removing: the
        # compressed one is whole.
        if match and (match[2] or int(match[1]) not in files):
            files[int(match[1])] = os.path.join(directory, entry)
    return files


def rotatedFiles(path: str) -> list[str]:
    """
    The files rotated out of the event log at C{path}, oldest first: those
    an earlier version of bwscd left (C{events.jsonl.N}, N from the largest
    down to 1), then C{events.N.jsonl.gz} by N (C{events.N.jsonl} while it
    is not compressed yet).
    """
    directory, name = os.path.split(path)
    legacy = re.compile(re.escape(name) + r"\.(\d+)")
    earlier = sorted(
        (int(match[1]), os.path.join(directory, entry))
        for entry in os.listdir(directory or ".")
        if (match := legacy.fullmatch(entry))
    )
    serials = _serials(path)
    return [name for _, name in reversed(earlier)] + [serials[n] for n in sorted(serials)]


@implementer(IEventSink)
class EventLog:
    """
    Events appended to a file, one JSON object per line, in UTF-8.

    When the file has reached C{rotateLength} bytes, the next event starts a
    new one: the full file is renamed C{events.N.jsonl} (N counts up from 1,
    so later files hold later events) and a thread of the event log's own
    compresses it to C{events.N.jsonl.gz}, written durably before the
    uncompressed one is removed.  Nothing is deleted, unless C{retention}
    (a L{Retention}) says so.  Files are created readable by the service's
    user only: events name uploads and cameras.

    Compressing starts with L{start} (not before: twistd may still fork),
    with what a crash left unfinished.
    """

    def __init__(self, path: str, rotateLength: int = 10_000_000,
                 retention: Retention | None = None):
        self.path = path
        self._rotateLength = rotateLength
        self._retention = retention
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._archiver: threading.Thread | None = None
        serials = _serials(path)
        self._nextSerial = max(serials, default=0) + 1
        leftovers = [name for name in serials.values() if not name.endswith(ARCHIVED)]
        self._jobs.put(lambda: self._recover(leftovers))
        self._open()

    def _open(self) -> None:
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if created:
            os.fchmod(fd, 0o600)  # whatever the umask
        self._file = open(fd, "ab")
        self._size = os.fstat(fd).st_size

    def start(self) -> None:
        """Start compressing rotated files, in a thread."""
        if self._archiver is None:
            self._archiver = threading.Thread(target=self._archiveAll, name="bwscd-eventlog",
                                              daemon=True)
            self._archiver.start()

    def emit(self, event: dict) -> None:
        try:
            if self._size >= self._rotateLength and not self._file.closed:
                self._rotate()
            line = _encode(event) + b"\n"
            self._file.write(line)
            # In the kernel once emit returns, so a crash of the process
            # loses no event.  No fsync: it would block the reactor.
            self._file.flush()
            self._size += len(line)
        except Exception:
            log.failure("could not write an event to {path}", path=self.path)

    def _rotate(self) -> None:
        # A rename and an open: no more than appending costs the reactor.
        self._file.close()
        rotated = _rotatedPath(self.path, self._nextSerial)
        try:
            os.rename(self.path, rotated)
        except OSError:
            log.failure("could not rotate {path}; writing on to it", path=self.path)
            rotated = None
        self._open()
        if rotated is not None:
            self._nextSerial += 1
            self._jobs.put(lambda: self._archive(rotated))

    def close(self) -> None:
        """
        Close the file, and wait for the compressing under way (a fraction
        of a second for a file of 10 MB; only at stop).
        """
        self._file.close()
        if self._archiver is not None:
            self._jobs.put(None)
            self._archiver.join()
            self._archiver = None

    # In the archiving thread.

    def _archiveAll(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.failure("could not compress or remove rotated event log files of {path}; "
                            "they are kept as they are", path=self.path)

    def _recover(self, leftovers: list[str]) -> None:
        """Finish what a crash cut short, and apply the retention."""
        directory, name = os.path.split(self.path)
        root, extension = os.path.splitext(name)
        # replacingFile's temporary files: .events.000001.jsonl.gz.RANDOM.new
        cutShort = re.compile(r"\." + re.escape(root) + r"\.\d+" + re.escape(extension)
                              + re.escape(ARCHIVED) + r"\.[0-9a-f]+" + re.escape(TEMPORARY_SUFFIX))
        for entry in os.listdir(directory or "."):
            if cutShort.fullmatch(entry):  # the file it compressed is still there
                os.unlink(os.path.join(directory, entry))
        for rotated in leftovers:
            self._archive(rotated)
        self._applyRetention()

    def _archive(self, rotated: str) -> None:
        """Compress C{rotated} durably, then remove it."""
        status = os.stat(rotated)
        with replacingFile(rotated + ARCHIVED, status.st_mode & 0o777) as archive:
            with open(rotated, "rb") as source, gzip.GzipFile(
                    filename=os.path.basename(rotated), mode="wb", fileobj=archive,
                    mtime=int(status.st_mtime)) as compressed:
                shutil.copyfileobj(source, compressed, 1 << 20)
            # The time of the file's last event, which a retention in days
            # counts from.
            os.utime(archive.fileno(), ns=(status.st_atime_ns, status.st_mtime_ns))
        os.unlink(rotated)
        self._applyRetention()

    def _applyRetention(self) -> None:
        if self._retention is None:
            return
        _, extension = os.path.splitext(self.path)
        # Not those still to be compressed: they are, before the next look.
        files = [name for name in rotatedFiles(self.path) if not name.endswith(extension)]
        for name in self._retention.beyond(files, time.time()):
            os.unlink(name)
            log.info("removed {name}: the event log keeps {retention} "
                     "(--event-log-keep)", name=name, retention=str(self._retention))


def readEvents(path: str) -> list[dict]:
    """
    Every event an L{EventLog} at C{path} kept, oldest first: those of the
    rotated files (L{rotatedFiles}), then those of C{path}.
    """
    events = []
    for name in rotatedFiles(path) + [path]:
        try:
            f = gzip.open(name, "rt", encoding="utf-8") if name.endswith(ARCHIVED) else \
                open(name, encoding="utf-8")
        except FileNotFoundError:
            if name == path or name.endswith(ARCHIVED):
                raise
            f = gzip.open(name + ARCHIVED, "rt", encoding="utf-8")  # compressed meanwhile
        with f:
            events.extend(json.loads(line) for line in f)
    return events


@dataclass(frozen=True)
class EventFilter:
    """
    Which events a sink wants (C{--webhook URL;types=...;categories=...}):
    of these C{types} (a name, or C{prefix.*}), and naming one of these
    C{categories} (by CategoryID or name, compared as
    L{categoryKey} has them: events without a category, then, don't pass);
    L{None}: any.
    """

    types: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str) -> "EventFilter":
        """C{types=recording.categorised,clip.*;categories=Homicide,4}.

        @raise ValueError: saying what is wrong."""
        given: dict[str, frozenset[str]] = {}
        for part in text.split(";"):
            key, equals, values = part.partition("=")
            key = key.strip()
            if key not in ("types", "categories") or not equals or key in given:
                raise ValueError(f"{part!r}: a filter is types=A,B or categories=A,B, "
                                 "each at most once, separated by ;")
            names = [name.strip() for name in values.split(",") if name.strip()]
            if not names:
                raise ValueError(f"{part!r}: names no {key}")
            given[key] = frozenset(categoryKey(n) for n in names) \
                if key == "categories" else frozenset(names)
        return cls(**given)

    def accepts(self, event: dict) -> bool:
        if self.types is not None:
            type = event.get("type", "")
            if type not in self.types and not any(
                    pattern.endswith(".*") and type.startswith(pattern[:-1])
                    for pattern in self.types):
                return False
        if self.categories is not None:
            named = {categoryKey(value) for value in (event.get("categoryId"),
                                                      event.get("categoryName"))
                     if isinstance(value, str)}
            if not named & self.categories:
                return False
        return True


@implementer(IEventSink)
class FilteredSink:
    """The events of C{sink} that C{filter} (an L{EventFilter}) accepts."""

    def __init__(self, sink, filter: EventFilter):
        self._sink = sink
        self._filter = filter

    def emit(self, event: dict) -> None:
        if self._filter.accepts(event):
            self._sink.emit(event)


class WebhookRefused(Exception):
    """The webhook answered with a status other than 2xx."""

    def __init__(self, code: int):
        super().__init__(f"HTTP status {code}")


@implementer(IEventSink)
class WebhookSink:
    """
    POST each event as JSON to C{url}, one request at a time, in order.

    An event that fails (no 2xx answer within L{REQUEST_TIMEOUT} seconds) is
    sent again after the next of C{retryDelays} seconds (the last one
    repeats), until it gets through, so events wait in memory while the
    webhook is down.  At most C{maxQueue} events wait, the one being sent
    included; beyond that the oldest is dropped.

    @param treq: the treq module (the default) or an object like it
        (L{treq.testing.StubTreq}).
    """

    def __init__(
        self,
        url: str,
        reactor,
        treq=None,
        maxQueue: int = 10_000,
        retryDelays=(1, 2, 5, 10, 30, 60),
    ):
        self._url = url
        self._reactor = reactor
        if treq is None:
            # Imported here: treq costs the server some 13 MB of memory,
            # which only a configured webhook should.
            import treq
        self._treq = treq
        self._maxQueue = maxQueue
        self._retryDelays = retryDelays
        self._queue: deque[bytes] = deque()  # waiting, oldest first
        self._current: bytes | None = None  # being sent, or waiting to be retried
        self._sending: Deferred | None = None
        self._retry = None  # the IDelayedCall of the next attempt
        self._failures = 0  # in a row, for the retry delay
        self._dropped = 0
        self._stopped = False

    def emit(self, event: dict) -> None:
        try:
            body = _encode(event)
        except (TypeError, ValueError):
            log.failure("an event could not be encoded; not sent to {url}", url=self._url)
            return
        self._queue.append(body)
        if len(self._queue) + (self._current is not None) > self._maxQueue:
            self._dropOldest()
        self._next()

    def stop(self) -> Deferred:
        """
        Send no more events, and cancel the pending retry, if any.

        @return: L{Deferred} firing with L{None} once the request on its way,
            if any, has ended.
        """
        self._stopped = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._sending is None:
            return succeed(None)
        ended = Deferred()
        self._sending.addBoth(lambda _: ended.callback(None))
        return ended

    def _dropOldest(self) -> None:
        if self._current is not None:
            # Even while it is on its way: its answer, whatever it is, then
            # moves on to the next event.
            self._current = None
        else:
            self._queue.popleft()
        self._dropped += 1
        log.warn(
            "webhook {url}: {maxQueue} events wait already; dropped the oldest "
            "({dropped} dropped so far)",
            url=self._url,
            maxQueue=self._maxQueue,
            dropped=self._dropped,
        )

    def _next(self) -> None:
        """Send the next event, unless one is on its way or waits for a retry."""
        if self._stopped or self._sending is not None or self._retry is not None:
            return
        if self._current is None:
            if not self._queue:
                return
            self._current = self._queue.popleft()
        # maybeDeferred: a treq that raises is one more failure to retry.
        self._sending = maybeDeferred(
            self._treq.post,
            self._url,
            data=self._current,
            headers={b"Content-Type": [b"application/json"]},
        )
        self._sending.addCallback(self._readAnswer)
        # One timeout over the whole exchange: a webhook that stalls in the
        # middle of its answer would otherwise hold up every later event.
        self._sending.addTimeout(REQUEST_TIMEOUT, self._reactor)
        self._sending.addCallbacks(self._delivered, self._failed)

    def _readAnswer(self, response):
        # Read the answer to its end, so that the connection can carry the
        # next event.
        def check(_):
            if not 200 <= response.code < 300:
                raise WebhookRefused(response.code)

        return self._treq.content(response).addCallback(check)

    def _delivered(self, _) -> None:
        self._sending = None
        self._current = None
        self._failures = 0
        self._next()

    def _failed(self, reason) -> None:
        self._sending = None
        if self._stopped:
            return
        delay = self._retryDelays[min(self._failures, len(self._retryDelays) - 1)]
        self._failures += 1
        # Never the event itself: it names uploads, and it may be large.
        log.warn(
            "could not deliver an event to webhook {url}: {why}; trying again "
            "in {delay}s",
            url=self._url,
            why=reason.getErrorMessage(),
            delay=delay,
        )
        self._retry = self._reactor.callLater(delay, self._retryNow)

    def _retryNow(self) -> None:
        self._retry = None
        self._next()
