"""
Events: the hub, the event log on disk, and the webhook, which is driven
through L{StubTreq} (a real L{Site} over an in-memory connection) and a
L{Clock}, so that retries and timeouts run without waiting.
"""

import gzip
import json
import os
import re
import time

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from bwscd.policy.events import (
    REQUEST_TIMEOUT, EventFilter, EventLog, Events, FilteredSink, LogSink, Retention,
    WebhookSink, readEvents,
)

URL = "http://webhook.example/events"


def texts(events) -> list[str]:
    return [formatEvent(event) for event in events]


class Recorder:
    """A sink that notes what it got, and in which order among others."""

    def __init__(self, name, seen):
        self.name = name
        self.seen = seen

    def emit(self, event):
        self.seen.append((self.name, event))


# Events


def test_time_is_rfc3339_utc_with_milliseconds():
    event = Events([], clock=lambda: 1700000000.1239).emit("upload.stored")
    assert event["time"] == "2023-11-14T22:13:20.123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"])
    assert Events([], clock=lambda: 0).emit("x")["time"] == "1970-01-01T00:00:00.000Z"


def test_field_order_is_irrelevant(tmp_path):
    events = Events([], clock=lambda: 0)
    one = events.emit("upload.stored", container="c", name="n", size=3)
    other = events.emit("upload.stored", size=3, name="n", container="c")
    assert one == other == {
        "time": "1970-01-01T00:00:00.000Z",
        "type": "upload.stored",
        "container": "c",
        "name": "n",
        "size": 3,
    }
    path = str(tmp_path / "events.jsonl")
    eventLog = EventLog(path)
    eventLog.emit(one)
    eventLog.emit(other)
    eventLog.close()
    first, second = open(path, "rb").read().splitlines()
    assert first == second


def test_every_sink_gets_the_same_event_in_order():
    seen = []
    events = Events([Recorder("a", seen), Recorder("b", seen), Recorder("c", seen)])
    event = events.emit("upload.stored", name="n")
    assert [name for name, _ in seen] == ["a", "b", "c"]
    assert all(got is event for _, got in seen)


def test_a_raising_sink_does_not_stop_the_others(logged):
    class Broken:
        def emit(self, event):
            raise RuntimeError("broken sink")

    seen = []
    events = Events([Broken(), Recorder("after", seen)])
    event = events.emit("upload.stored")
    assert seen == [("after", event)]
    assert [e["log_failure"].value.args for e in logged if "log_failure" in e] == [
        ("broken sink",)
    ]


# LogSink


def test_the_log_gets_one_line_per_event(logged):
    LogSink().emit({"type": "clip.stored", "name": "café", "odd": object()})
    [line] = texts(logged)
    assert line.startswith("event {") and '"type": "clip.stored"' in line
    assert "café" in line and "<object object at" in line


# EventLog


def test_lines_are_json_with_non_ascii_kept(tmp_path):
    path = str(tmp_path / "events.jsonl")
    eventLog = EventLog(path)
    eventLog.emit({"type": "upload.stored", "name": "café/日本 ✓"})
    eventLog.emit({"type": "b", "line": "two\nlines"})
    raw = open(path, "rb").read()
    assert "café/日本 ✓".encode("utf-8") in raw
    lines = raw.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"type": "upload.stored", "name": "café/日本 ✓"},
        {"type": "b", "line": "two\nlines"},
    ]


def rotateMany(tmp_path, count, **kwargs):
    """An event log, started, that rotates every few events; closed."""
    path = str(tmp_path / "events.jsonl")
    eventLog = EventLog(path, rotateLength=200, **kwargs)
    eventLog.start()
    for index in range(count):
        eventLog.emit({"type": "t", "index": index, "name": "日" * 40})
    eventLog.close()
    return path


def test_rotated_files_are_compressed_and_nothing_is_deleted(tmp_path):
    path = rotateMany(tmp_path, 400)
    rotated = sorted(name for name in os.listdir(tmp_path) if name != "events.jsonl")
    # One file per rotation, numbered in order, each compressed.
    assert len(rotated) > 100
    assert rotated == [f"events.{n:06d}.jsonl.gz" for n in range(1, len(rotated) + 1)]
    lineLength = len(open(path, "rb").readline())
    for name in rotated:
        with gzip.open(tmp_path / name) as f:
            size = len(f.read())
        assert 200 <= size < 200 + lineLength
    assert [event["index"] for event in readEvents(path)] == list(range(400))


def test_a_restart_numbers_on_and_reads_what_earlier_versions_rotated(tmp_path):
    path = str(tmp_path / "events.jsonl")
    # An earlier version's rotated files: uncompressed, .1 the newest.
    for number, index in ((2, -2), (1, -1)):
        with open(f"{path}.{number}", "w") as f:
            f.write(json.dumps({"type": "t", "index": index}) + "\n")
    rotateMany(tmp_path, 20)
    before = len(os.listdir(tmp_path))
    rotateMany(tmp_path, 20)
    assert len(os.listdir(tmp_path)) > before
    assert [event["index"] for event in readEvents(path)] == \
        [-2, -1] + list(range(20)) + list(range(20))
    assert os.path.exists(f"{path}.1") and os.path.exists(f"{path}.2")


def test_what_a_crash_left_is_compressed_at_start(tmp_path):
    path = str(tmp_path / "events.jsonl")
    # Rotated, and a compression cut short, then the crash.
    with open(tmp_path / "events.000001.jsonl", "w") as f:
        f.write(json.dumps({"type": "t", "index": 0}) + "\n")
    with open(tmp_path / ".events.000001.jsonl.gz.0123456789ab.new", "wb") as f:
        f.write(b"\x1f\x8b half")
    with open(path, "w") as f:
        f.write(json.dumps({"type": "t", "index": 1}) + "\n")
    eventLog = EventLog(path)
    eventLog.start()
    eventLog.emit({"type": "t", "index": 2})
    eventLog.close()
    assert sorted(os.listdir(tmp_path)) == ["events.000001.jsonl.gz", "events.jsonl"]
    assert [event["index"] for event in readEvents(path)] == [0, 1, 2]


def test_a_size_limit_is_the_operators_choice(tmp_path, logged):
    path = rotateMany(tmp_path, 400, retention=Retention.parse("2K"))
    rotated = [name for name in os.listdir(tmp_path) if name.endswith(".gz")]
    assert 0 < sum(os.path.getsize(tmp_path / name) for name in rotated) <= 2048
    indexes = [event["index"] for event in readEvents(path)]
    assert indexes == list(range(400 - len(indexes), 400)) and len(indexes) < 100
    assert any("the event log keeps 2048 bytes (--event-log-keep)" in text
               for text in texts(logged))


def test_an_age_limit_is_the_operators_choice(tmp_path):
    path = rotateMany(tmp_path, 20)
    old = sorted(name for name in os.listdir(tmp_path) if name.endswith(".gz"))
    monthAgo = time.time() - 31 * 24 * 60 * 60
    for name in old[:-1]:
        os.utime(tmp_path / name, (monthAgo, monthAgo))
    eventLog = EventLog(path, rotateLength=200, retention=Retention.parse("30d"))
    eventLog.start()  # the limit applies at start, and after each rotation
    eventLog.close()
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith(".gz")) == old[-1:]


@pytest.mark.parametrize("text", ["0", "0d", "lots", "d", "-1d"])
def test_a_limit_must_keep_something(text):
    with pytest.raises(ValueError):
        Retention.parse(text)


def test_a_restart_appends(tmp_path):
    path = str(tmp_path / "events.jsonl")
    for index in range(2):
        eventLog = EventLog(path)
        eventLog.emit({"type": "t", "index": index})
        eventLog.close()
    assert readEvents(path) == [{"type": "t", "index": 0}, {"type": "t", "index": 1}]


def test_files_are_private(tmp_path):
    oldUmask = os.umask(0o022)
    try:
        path = str(tmp_path / "events.jsonl")
        eventLog = EventLog(path, rotateLength=50)
        eventLog.start()
        for index in range(5):
            eventLog.emit({"type": "t", "index": index})
        eventLog.close()
    finally:
        os.umask(oldUmask)
    assert os.path.exists(str(tmp_path / "events.000001.jsonl.gz"))
    for name in os.listdir(tmp_path):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600, name


def test_a_write_error_is_logged_not_raised(tmp_path, logged):
    eventLog = EventLog(str(tmp_path / "events.jsonl"))
    eventLog.close()
    eventLog.emit({"type": "t"})
    assert any("could not write an event" in text for text in texts(logged))


# WebhookSink


class Webhook(Resource):
    """
    Records each event POSTed, and answers with the next of C{codes} (200
    when there are none left), or holds the request when C{hold} is set.
    """

    isLeaf = True

    def __init__(self, codes=()):
        super().__init__()
        self.codes = list(codes)
        self.received = []
        self.contentTypes = []
        self.hold = False
        self.held = []

    def render_POST(self, request):
        self.received.append(json.loads(request.content.read()))
        self.contentTypes.append(request.getHeader("content-type"))
        if self.hold:
            self.held.append(request)
            return NOT_DONE_YET
        request.setResponseCode(self.codes.pop(0) if self.codes else 200)
        return b"ok"


def sinkFor(webhook, **kwargs):
    clock = Clock()
    stub = StubTreq(webhook)
    return WebhookSink(URL, clock, treq=stub, **kwargs), clock, stub


def event(index):
    return {"time": "2024-01-01T00:00:00.000Z", "type": "t", "index": index}


def test_events_arrive_in_order_as_json():
    webhook = Webhook()
    sink, clock, stub = sinkFor(webhook)
    for index in range(3):
        sink.emit(event(index))
    assert webhook.received == [event(0), event(1), event(2)]
    assert webhook.contentTypes == ["application/json"] * 3


def test_one_request_at_a_time():
    webhook = Webhook()
    webhook.hold = True
    sink, clock, stub = sinkFor(webhook)
    sink.emit(event(0))
    sink.emit(event(1))
    assert webhook.received == [event(0)]
    webhook.held.pop().finish()
    stub.flush()
    assert webhook.received == [event(0), event(1)]


def test_an_answer_counts_once_read_to_its_end():
    webhook = Webhook()
    webhook.hold = True
    sink, clock, stub = sinkFor(webhook)
    sink.emit(event(0))
    sink.emit(event(1))
    answer = webhook.held.pop()
    answer.write(b"still ")
    stub.flush()
    assert webhook.received == [event(0)]
    answer.finish()
    stub.flush()
    assert webhook.received == [event(0), event(1)]


def test_a_failure_is_retried_after_the_configured_delays(logged):
    webhook = Webhook(codes=[500, 404, 500])
    sink, clock, stub = sinkFor(webhook, retryDelays=(3, 7))
    sink.emit(event(0))
    sink.emit(event(1))
    for delay in (3, 7, 7):  # the last delay repeats
        attempts = len(webhook.received)
        clock.advance(delay - 0.01)
        assert len(webhook.received) == attempts
        clock.advance(0.01)
        assert webhook.received[attempts] == event(0)
    assert webhook.received == [event(0)] * 4 + [event(1)]
    warnings = [text for text in texts(logged) if "could not deliver" in text]
    assert len(warnings) == 3
    assert URL in warnings[0] and "500" in warnings[0] and "404" in warnings[1]
    assert not any('"index"' in text for text in texts(logged))


def test_the_delays_start_over_after_a_success():
    webhook = Webhook(codes=[500, 500, 200, 500])
    sink, clock, stub = sinkFor(webhook, retryDelays=(1, 10))
    sink.emit(event(0))
    clock.advance(1)
    clock.advance(10)
    sink.emit(event(1))
    assert len(webhook.received) == 4
    clock.advance(1)
    assert webhook.received[-1] == event(1) and len(webhook.received) == 5


def test_a_full_queue_drops_the_oldest(logged):
    webhook = Webhook(codes=[500])
    sink, clock, stub = sinkFor(webhook, maxQueue=3, retryDelays=(5,))
    for index in range(5):
        sink.emit(event(index))
    assert webhook.received == [event(0)]
    clock.advance(5)
    assert webhook.received == [event(0), event(2), event(3), event(4)]
    drops = [text for text in texts(logged) if "dropped" in text]
    assert len(drops) == 2
    assert URL in drops[1] and "2 dropped so far" in drops[1]


def test_dropping_the_event_on_its_way_keeps_the_next():
    webhook = Webhook()
    webhook.hold = True
    sink, clock, stub = sinkFor(webhook, maxQueue=1)
    sink.emit(event(0))
    sink.emit(event(1))  # drops event 0, already on its way
    webhook.hold = False
    webhook.held.pop().finish()
    stub.flush()
    assert webhook.received == [event(0), event(1)]


def test_a_webhook_that_never_answers_times_out(logged):
    webhook = Webhook()
    webhook.hold = True
    sink, clock, stub = sinkFor(webhook, retryDelays=(1,))
    sink.emit(event(0))
    clock.advance(REQUEST_TIMEOUT)
    assert any("could not deliver" in text for text in texts(logged))
    webhook.hold = False
    clock.advance(1)
    assert webhook.received == [event(0), event(0)]


class BrokenTreq:
    """A treq whose post raises, then fails, then reaches C{webhook}."""

    def __init__(self, webhook):
        self.stub = StubTreq(webhook)
        self.calls = 0

    def post(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("treq is broken")
        if self.calls == 2:
            return fail(ConnectionRefusedError())
        return self.stub.post(*args, **kwargs)

    def content(self, response):
        return self.stub.content(response)


def test_emit_never_raises(logged):
    webhook = Webhook()
    clock = Clock()
    treq = BrokenTreq(webhook)
    sink = WebhookSink(URL, clock, treq=treq, retryDelays=(1,))
    sink.emit(event(0))
    sink.emit({"type": "t", "notJSON": object()})
    assert treq.calls == 1
    clock.advance(1)
    assert treq.calls == 2
    clock.advance(1)
    assert webhook.received == [event(0)]
    warnings = [text for text in texts(logged) if "could not deliver" in text]
    assert "treq is broken" in warnings[0] and "refused" in warnings[1]


def test_stop_cancels_a_pending_retry():
    webhook = Webhook(codes=[500])
    sink, clock, stub = sinkFor(webhook, retryDelays=(1,))
    sink.emit(event(0))
    assert clock.getDelayedCalls()
    stopped = sink.stop()
    assert stopped.called
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    sink.emit(event(1))
    assert webhook.received == [event(0)]


def test_stop_waits_for_the_request_on_its_way():
    webhook = Webhook()
    webhook.hold = True
    sink, clock, stub = sinkFor(webhook)
    sink.emit(event(0))
    sink.emit(event(1))
    stopped = sink.stop()
    assert not stopped.called
    webhook.held.pop().finish()
    stub.flush()
    assert stopped.called
    assert webhook.received == [event(0)]


def test_an_event_filter_chooses_by_type_and_category():
    chosen = EventFilter.parse("types=recording.categorised, clip.*;categories=Homicide,7")
    assert chosen.accepts({"type": "recording.categorised", "categoryName": "HOMICIDE "})
    assert chosen.accepts({"type": "recording.categorised", "categoryId": "7"})
    assert not chosen.accepts({"type": "recording.categorised", "categoryId": "5",
                               "categoryName": "Traffic"})
    assert not chosen.accepts({"type": "recording.started", "categoryId": "7"})
    assert not chosen.accepts({"type": "clip.stored"})  # names no category
    assert EventFilter.parse("types=clip.*").accepts({"type": "clip.stored"})
    seen = []

    class Kept:
        def emit(self, event):
            seen.append(event)

    sink = FilteredSink(Kept(), EventFilter.parse("types=a.b"))
    sink.emit({"type": "a.b"})
    sink.emit({"type": "a.c"})
    assert seen == [{"type": "a.b"}]


@pytest.mark.parametrize("text", ["types", "colour=red", "types=", "types=a;types=b"])
def test_a_filter_that_makes_no_sense_is_refused(text):
    with pytest.raises(ValueError):
        EventFilter.parse(text)
