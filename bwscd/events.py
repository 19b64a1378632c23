"""
Events: what happened, as small JSON objects, for operators and their systems.

L{Events} stamps each event and hands it to every L{IEventSink}: the
service's log (L{LogSink}), the L{EventLog} on disk, a L{WebhookSink}, or
anything else.  Sinks never block and never raise, so reporting an event
can't slow down or break an upload.
"""

import glob
import json
import time
from collections import deque
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.logfile import LogFile
from zope.interface import implementer

from bwscd.interfaces import IEventSink

log = Logger()

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


@implementer(IEventSink)
class EventLog:
    """
    Events appended to a file, one JSON object per line, in UTF-8.

    When the file reaches C{rotateLength} bytes it becomes C{path.1} (the
    previous C{path.1} becomes C{path.2}, and so on) and a new file starts;
    at most C{maxRotatedFiles} rotated files are kept.  Files are created
    readable by the service's user only: events name uploads and cameras.
    """

    def __init__(
        self, path: str, rotateLength: int = 10_000_000, maxRotatedFiles: int = 10
    ):
        self.path = path
        self._file = LogFile.fromFullPath(
            path,
            rotateLength=rotateLength,
            defaultMode=0o600,
            maxRotatedFiles=maxRotatedFiles,
        )

    def emit(self, event: dict) -> None:
        try:
            # Bytes, not text: LogFile counts what it is given toward
            # rotateLength, and only bytes count as the file counts.
            self._file.write(_encode(event) + b"\n")
            # In the kernel once emit returns, so a crash of the process
            # loses no event.  No fsync: it would block the reactor.
            self._file.flush()
        except Exception:
            log.failure("could not write an event to {path}", path=self.path)

    def close(self) -> None:
        self._file.close()


def readEvents(path: str) -> list[dict]:
    """
    Every event an L{EventLog} at C{path} kept, oldest first: those of the
    rotated files (C{path.N} down to C{path.1}), then those of C{path}.
    """
    prefix = path + "."
    rotated = sorted(
        (
            int(name[len(prefix):])
            for name in glob.glob(glob.escape(path) + ".*")
            if name[len(prefix):].isdecimal()
        ),
        reverse=True,
    )
    events = []
    for name in [f"{path}.{number}" for number in rotated] + [path]:
        with open(name, encoding="utf-8") as f:
            events.extend(json.loads(line) for line in f)
    return events


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
