"""
--min-upload-rate: a body that trickles in (a slow-loris after the
headers) loses its connection, and nothing of it is stored; one that
bwscd itself holds back (backpressure) does not.
"""

import os
import select
import time
from urllib.parse import urlsplit

import pytest
from twisted.internet.task import Clock

from bwscd.transfer.bodyrate import MinimumRate
from tests.support.bodies import HandFedBody
from tests.support.server import HOST

CONTAINER = "RejectedContent_UnknownTime_7d1e2f3a-4b5c-4d6e-8f9a-0b1c2d3e4f5a"


def test_a_trickling_body_is_cut_off_and_not_stored(launch, dataDirectory):
    server = launch(dataDirectory, "--idle-timeout", "2", "--min-upload-rate", "10K")
    swift = server.connection()
    swift.put_container(CONTAINER)
    url, token = swift.get_auth()
    path = f"{urlsplit(url).path}/{CONTAINER}/slow.mkv"
    sock = server.connectTLS()
    sock.sendall((f"PUT {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Auth-Token: {token}\r\n"
                  "Content-Length: 1048576\r\n\r\n").encode())
    started = time.monotonic()
    with pytest.raises(OSError):
        # Every 0.5 s, under the idle timeout each time, far under 10 KiB/s;
        # between sends, waiting only that long for the server to close.
        for _ in range(30):
            sock.sendall(b"x" * 100)
            if select.select([sock], [], [], 0.5)[0] and sock.recv(1) == b"":
                raise ConnectionResetError("closed")
    assert time.monotonic() - started < 8
    temporary = os.path.join(server.storage, ".bwscd", "tmp")
    for _ in range(100):  # the log line and the clean-up follow the close
        if "less than the minimum of 10240 bytes/s" in server.log() and not os.listdir(
                temporary):
            break
        time.sleep(0.05)
    else:
        pytest.fail("no log line, or the upload's temporary file is left")
    # A client at a normal pace is not affected.
    swift.put_object(CONTAINER, "fast.mkv", os.urandom(3 << 20))
    assert swift.head_object(CONTAINER, "fast.mkv")["content-length"] == str(3 << 20)
    assert "slow.mkv" not in os.listdir(os.path.join(server.storage, CONTAINER))


class Transport:
    aborted = False

    def getPeer(self):
        return "test"

    def abortConnection(self):
        self.aborted = True


class Consumer:
    def __init__(self):
        self.received = []

    def write(self, data):
        self.received.append(data)


@pytest.fixture
def guarded():
    """A hand-fed body of 1 MiB guarded at 100 bytes per 10 s period."""
    body, transport, clock = HandFedBody(1 << 20), Transport(), Clock()
    guard = MinimumRate(body, transport, 100, 10, clock)
    consumer = Consumer()
    guard.startProducing(consumer)
    return body, transport, clock, guard, consumer


def test_enough_bytes_per_period_keep_the_connection(guarded):
    body, transport, clock, guard, consumer = guarded
    for _ in range(5):
        body.consumer.write(b"x" * 1000)
        clock.advance(10)
    assert not transport.aborted and len(consumer.received) == 5
    body.done.callback(None)
    assert clock.getDelayedCalls() == []


def test_too_few_bytes_in_a_period_abort_the_connection(guarded):
    body, transport, clock, guard, consumer = guarded
    body.consumer.write(b"x" * 999)
    clock.advance(10)
    assert transport.aborted
    assert clock.getDelayedCalls() == []


def test_a_period_in_which_bwscd_paused_reading_is_excused(guarded):
    body, transport, clock, guard, consumer = guarded
    guard.pauseProducing()
    assert body.paused
    clock.advance(10)  # nothing arrived, but bwscd wasn't reading
    clock.advance(10)  # still paused
    guard.resumeProducing()
    clock.advance(10)  # resumed in that period: excused too
    assert not transport.aborted
    clock.advance(10)  # a whole period of reading, and nothing came
    assert transport.aborted
