"""
L{bwscd.transfer.upload.Upload}: reading pauses while the worker is behind, and
resumes before the worker runs dry.
"""

import hashlib
import queue
import threading

import pytest
from bwscd.threads import Pool
from bwscd.transfer import upload
from bwscd.transfer.upload import HIGH_WATER, LOW_WATER, Upload
from tests.support.bodies import HandFedBody

PIECE = HIGH_WATER // 2  # as a socket read brings them


class FakeReactor:
    """Runs what worker threads hand it only when the test says so."""

    def __init__(self):
        self.calls = queue.Queue()

    def callFromThread(self, f, *args, **kwargs):
        self.calls.put((f, args, kwargs))

    def runOne(self, timeout=5):
        f, args, kwargs = self.calls.get(timeout=timeout)
        f(*args, **kwargs)


class GatedWriter:
    """An L{IObjectWriter} whose every write waits for the test's go."""

    def __init__(self):
        self.gate = threading.Semaphore(0)
        self.written = []

    def write(self, data):
        assert self.gate.acquire(timeout=10)
        self.written.append(bytes(data))

    def commit(self, digests):
        return digests

    def abort(self):
        pass


@pytest.fixture
def start():
    """
    C{start()} begins an upload into a L{GatedWriter}: the fake reactor,
    the writer, the body, and the upload's result.  Afterwards a worker the
    test left waiting (a failed assertion) is let go.
    """
    started = []

    def start():
        reactor, writer, body = FakeReactor(), GatedWriter(), HandFedBody()
        pool = Pool(reactor, "uploads", 1)
        pool.start()
        started.append((writer, body, pool))
        return reactor, writer, body, Upload(reactor, pool, writer, None, None).receive(body)

    yield start
    for writer, body, pool in started:
        for _ in range(1000):
            writer.gate.release()
        if not body.done.called:
            body.done.errback(Exception("the test ended"))
        pool.stop()


def test_pauses_over_high_water_and_resumes_with_a_piece_queued(start):
    reactor, writer, body, result = start()
    pieces = [bytes([i]) * PIECE for i in range(3)]

    body.consumer.write(pieces[0])
    body.consumer.write(pieces[1])
    assert not body.paused  # HIGH_WATER queued: not over it
    body.consumer.write(pieces[2])
    assert body.paused

    writer.gate.release()
    reactor.runOne()  # the first piece is done
    assert body.paused, "still more than LOW_WATER queued"
    assert 2 * PIECE >= LOW_WATER

    writer.gate.release()
    reactor.runOne()  # the second piece is done
    assert not body.paused, "reading resumes while the third piece waits"
    assert len(writer.written) == 2

    writer.gate.release()
    reactor.runOne()
    body.done.callback(None)
    reactor.runOne()  # the result
    digests = result.result
    assert writer.written == pieces
    assert digests.length == 3 * PIECE
    assert digests.md5 == hashlib.md5(b"".join(pieces)).hexdigest()
    assert digests.sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_small_pieces_are_reported_together(start, monkeypatch):
    """
    Small pieces (a slow client's) cost one report per L{REPORT_EVERY}
    bytes, not one each, and the last ones are reported before the worker
    waits for more.
    """
    reactor, writer, body, result = start()
    count = 2 * upload.REPORT_EVERY // 1024 + 3
    for _ in range(count):
        body.consumer.write(b"s" * 1024)
    # Before the worker can report: it looks the method up as it does.
    reports = []
    monkeypatch.setattr(Upload, "_written", lambda self, n: reports.append(n))
    for _ in range(count):
        writer.gate.release()
    while sum(reports) < count * 1024:
        reactor.runOne()
    assert reports == [upload.REPORT_EVERY, upload.REPORT_EVERY, 3 * 1024]
    body.done.callback(None)
    reactor.runOne()
    assert result.result.length == count * 1024
