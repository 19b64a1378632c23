"""
L{bwscd.protocol.channel.RequestBody}, the streaming request body, in a
real L{StreamingChannel} on Twisted's in-memory transport: the socket is
not read until a consumer wants the body, a consumer's pause stops reading
it, the body says its length, and its end (the last byte of a declared
length, the last chunk) or the connection's loss reaches the consumer.
"""

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.iweb import UNKNOWN_LENGTH
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from bwscd.protocol.channel import StreamingSite


class Rendered(Resource):
    """Keeps each request it renders, unanswered, for the test to drive."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []

    def render(self, request):
        self.requests.append(request)
        return NOT_DONE_YET


class Consumer:
    def __init__(self):
        self.received = []

    def write(self, data):
        self.received.append(data)


class Connection:
    """A channel of a L{StreamingSite} on a L{StringTransport}."""

    def __init__(self):
        self.resource = Rendered()
        site = StreamingSite(self.resource, reactor=Clock())
        self.channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8443))
        self.channel.callLater = site.reactor.callLater
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes):
        self.channel.dataReceived(data)

    @property
    def body(self):
        [request] = self.resource.requests
        return request.body

    @property
    def reading(self) -> bool:
        return self.transport.producerState == "producing"


@pytest.fixture
def connection() -> Connection:
    return Connection()


def put(headers: str) -> bytes:
    return f"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()


def started(body) -> tuple[Consumer, list]:
    """A consumer attached to C{body}; the outcome of its delivery, once there is one."""
    consumer, outcome = Consumer(), []
    body.startProducing(consumer).addBoth(outcome.append)
    return consumer, outcome


def test_the_body_is_not_read_until_a_consumer_wants_it(connection):
    connection.send(put("Content-Length: 10\r\n") + b"0123")
    body = connection.body
    assert body.length == 10 and not body.complete
    assert not connection.reading
    # Bytes already in flight when reading paused are kept for the consumer.
    consumer, outcome = started(body)
    assert consumer.received == [b"0123"] and connection.reading
    connection.send(b"456789")
    assert consumer.received == [b"0123", b"456789"]
    assert body.received == 10 and body.complete and outcome == [None]


def test_the_consumer_pauses_and_resumes_reading(connection):
    connection.send(put("Content-Length: 10\r\n"))
    consumer, outcome = started(connection.body)
    connection.body.pauseProducing()
    assert not connection.reading
    # The transport resumes on its own (a drained send buffer): data that
    # arrives is delivered, and reading is paused again.
    connection.transport.resumeProducing()
    connection.send(b"01234")
    assert consumer.received == [b"01234"] and not connection.reading
    connection.body.resumeProducing()
    assert connection.reading
    connection.send(b"56789")
    assert outcome == [None]


def test_a_chunked_body_has_no_length_and_ends_with_its_last_chunk(connection):
    connection.send(put("Transfer-Encoding: chunked\r\n"))
    body = connection.body
    assert body.length is UNKNOWN_LENGTH
    consumer, outcome = started(body)
    connection.send(b"5\r\nhello\r\n")
    assert consumer.received == [b"hello"] and outcome == []
    connection.send(b"0\r\n\r\n")
    assert body.complete and body.received == 5 and outcome == [None]


def test_a_request_without_a_body_is_complete_at_once(connection):
    connection.send(put("Content-Length: 0\r\n"))
    consumer, outcome = started(connection.body)
    assert connection.body.complete and consumer.received == [] and outcome == [None]


def test_a_lost_connection_fails_the_body(connection):
    connection.send(put("Content-Length: 10\r\n") + b"01234")
    consumer, outcome = started(connection.body)
    connection.channel.connectionLost(Failure(ConnectionError("gone")))
    [failure] = outcome
    assert failure.check(ConnectionError)
    assert not connection.body.complete
    # A consumer that comes after the loss is told at once.
    _, late = started(connection.body)
    assert late[0].check(ConnectionError)


def test_a_continue_is_sent_only_when_a_consumer_wants_the_body(connection):
    connection.send(put("Content-Length: 3\r\nExpect: 100-continue\r\n"))
    assert b"100 Continue" not in connection.transport.value()
    started(connection.body)
    assert connection.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
