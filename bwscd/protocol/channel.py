"""
Request bodies as streams.

Stock twisted.web reads a whole request body into memory or a temporary
file before it calls C{render} (Twisted issues #4688, #6928, #10190).  Here
a request that has a body is rendered as soon as its headers are in; the
resource decides whether it wants the body (token, names, space) and, if it
does, attaches a consumer to L{StreamingRequest.body}.  Until then the
socket is not read; once attached, bytes flow from the socket to the
consumer as they arrive, and the consumer's C{pauseProducing} stops reading
the socket.  A client that sent C{Expect: 100-continue} gets its C{100} only
when a consumer is attached, so a refused upload costs it nothing.

A resource that answers before the body has been read (a refusal, or a
storage failure halfway) makes the connection close after the response:
the unread rest of the body can't be told apart from a next request.

This relies on hooks of L{HTTPChannel} that are not public API:
C{allHeadersReceived}, C{allContentReceived}, C{_send100Continue},
C{_respondToBadRequestAndDisconnect} and C{rawDataReceived}; the tests in
C{tests/test_streaming.py} and C{tests/test_fuzz.py} pin their behaviour,
C{tests/unit/test_pinned_internals.py} their presence and shape.
"""

from io import BytesIO

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.tcp import Connection
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from twisted.web.server import Request, Site
from zope.interface import implementer


log = Logger()

# Bytes read from the socket at once, instead of Twisted's 64 KiB: each read
# costs a pass through the reactor loop, TLS and HTTP parsing in Python, so
# at a gigabit that per-read work is what the reactor thread spends most on.
# Not more: each connection's TLS layer keeps a buffer of about 4/3 of this
# (OpenSSL's memory BIO), and an upload queues up to one read more than its
# high-water mark (bwscd.transfer.upload), which eight uploads at once feel.
SOCKET_READ_SIZE = 128 << 10


class BodyAbandoned(Exception):
    """The response went out before the body was read; the rest is dropped."""


@implementer(IBodyProducer)
class RequestBody:
    """
    The body of one request, produced to a consumer as it arrives.

    @ivar length: the Content-Length, or L{UNKNOWN_LENGTH} for chunked.
    @ivar received: bytes received so far.
    @ivar complete: whether the whole body has been received.
    """

    def __init__(self, request: "StreamingRequest", length: int | None):
        self.length = UNKNOWN_LENGTH if length is None else length
        self.received = 0
        self.complete = length == 0
        self._transport = request.transport
        self._request = request
        self._consumer = None
        self._pending: list[bytes] = []
        self._paused = False
        self._done: Deferred | None = None
        self._failure: Failure | None = None
        if not self.complete:
            # Nobody wants the bytes yet: leave them in the socket.
            self._transport.pauseProducing()

    def startProducing(self, consumer) -> Deferred:
        """
        Deliver the body to C{consumer}'s C{write}; the result fires when it
        has all been delivered, or fails if the connection is lost first.
        """
        if self._failure is not None:
            return fail(self._failure)
        self._consumer = consumer
        self._request.continueIfExpected()
        pending, self._pending = self._pending, []
        for data in pending:
            consumer.write(data)
        if self.complete:
            return succeed(None)
        self._done = Deferred()
        if not self._paused:
            self._transport.resumeProducing()
        return self._done

    def pauseProducing(self) -> None:
        self._paused = True
        self._transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        if self._consumer is not None and not self.complete:
            self._transport.resumeProducing()

    def stopProducing(self) -> None:
        """Drop the rest of the body; the connection closes after the response."""
        self._fail(Failure(BodyAbandoned()))

    # Called by the request as the channel parses the body.

    def _dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        if self._consumer is not None:
            self._consumer.write(data)
            if self._paused:
                # The transport may have resumed reading on its own account
                # (a drained send buffer); the consumer still wants quiet.
                self._transport.pauseProducing()
        elif self._failure is None:
            # Data that was already in flight when reading paused.
            self._pending.append(data)

    def _finished(self) -> None:
        self.complete = True
        done, self._done = self._done, None
        if done is not None:
            done.callback(None)

    def _fail(self, reason: Failure) -> None:
        if self.complete or self._failure is not None:
            return
        self._failure = reason
        self._consumer = None
        self._pending = []
        done, self._done = self._done, None
        if done is not None:
            done.errback(reason)


class StreamingRequest(Request):
    """
    A L{Request} rendered when its headers are complete, its body a
    L{RequestBody} in C{self.body} rather than a file in C{self.content}.
    """

    _expectsContinue = False
    _rendered = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Replaced once the headers say how long the body is; until then (a
        # connection that fails inside the headers) there is none.
        self.body = RequestBody(self, 0)

    def gotLength(self, length):
        self.content = None
        self.body = RequestBody(self, length)

    def handleContentChunk(self, data):
        self.body._dataReceived(data)

    def headersReceived(self, command, path, version):
        """Render now, before the body: called by L{StreamingChannel}."""
        self._rendered = True
        self._renderRequest(command, path, version)

    def requestReceived(self, command, path, version):
        if self._rendered:
            self.body._finished()
        else:
            self._renderRequest(command, path, version)

    def _renderRequest(self, command, path, version):
        # Request.requestReceived parses the request line and arguments from
        # an empty stand-in for the body, then renders.
        self.content = BytesIO()
        Request.requestReceived(self, command, path, version)

    def expectContinue(self):
        self._expectsContinue = True

    def continueIfExpected(self):
        if self._expectsContinue and not self.startedWriting and not self._disconnected:
            self._expectsContinue = False
            self.channel.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def write(self, data):
        if not self.startedWriting and not self.body.complete:
            # Answering before the body is in: close after this response.
            self.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            self.channel.abandonRequestBody()
            self.body.stopProducing()
        Request.write(self, data)

    def connectionLost(self, reason):
        self.body._fail(reason)
        Request.connectionLost(self, reason)


def _tcpConnection(transport) -> Connection | None:
    """
    The TCP connection a channel's bytes come from: its transport, or under
    TLS (C{reactor.listenSSL} wraps the site's factory in Twisted's
    L{TLSMemoryBIOFactory}) the TLS layer's transport; L{None} for anything
    else.  tests/unit/test_readsize.py pins both.
    """
    for candidate in (transport, getattr(transport, "transport", None)):
        if isinstance(candidate, Connection):
            return candidate
    return None


class StreamingChannel(HTTPChannel):
    """
    An L{HTTPChannel} that renders requests with a body before reading it,
    and gives a client C{factory.headerTimeout} seconds from the first byte
    of a request to the end of its headers: the idle timeout alone lets a
    client that sends a byte now and then hold a connection for ever.
    """

    _abandoned = False
    _headerDeadline = None

    def connectionMade(self):
        connection = _tcpConnection(self.transport)
        if connection is not None:
            # Its bufferSize also bounds what it queues to send before it
            # pauses a producer: a download keeps up to that much queued.
            connection.bufferSize = SOCKET_READ_SIZE
        HTTPChannel.connectionMade(self)

    def lineReceived(self, line):
        if self._abandoned:
            return
        if self._headerDeadline is None:
            self._headerDeadline = self.callLater(
                self.factory.headerTimeout, self._headersTooSlow
            )
        HTTPChannel.lineReceived(self, line)

    def _headersTooSlow(self):
        self._headerDeadline = None
        log.info(
            "closing the connection from {peer}: its request headers took longer "
            "than {timeout} s",
            peer=self.transport.getPeer().host,
            timeout=self.factory.headerTimeout,
        )
        self.transport.abortConnection()

    def _cancelHeaderDeadline(self):
        if self._headerDeadline is not None:
            if self._headerDeadline.active():
                self._headerDeadline.cancel()
            self._headerDeadline = None

    def connectionLost(self, reason):
        self._cancelHeaderDeadline()
        HTTPChannel.connectionLost(self, reason)

    def _respondToBadRequestAndDisconnect(self):
        # HTTPChannel goes on reading the header lines after a bad one, and
        # would then run the request it has just refused: nothing more from
        # this connection is a request.
        self._abandoned = True
        HTTPChannel._respondToBadRequestAndDisconnect(self)

    def allContentReceived(self):
        if not self._abandoned:
            HTTPChannel.allContentReceived(self)

    def allHeadersReceived(self):
        self._cancelHeaderDeadline()
        if self._abandoned:
            return
        HTTPChannel.allHeadersReceived(self)
        if self.length != 0:
            self.requests[-1].headersReceived(self._command, self._path, self._version)

    def _send100Continue(self):
        self.requests[-1].expectContinue()

    def abandonRequestBody(self):
        """Read nothing more: the response being sent is the last one."""
        self._abandoned = True
        self.persistent = False
        self.transport.pauseProducing()

    def rawDataReceived(self, data):
        if not self._abandoned:
            HTTPChannel.rawDataReceived(self, data)


class StreamingSite(Site):
    """A L{Site} whose requests stream their bodies."""

    protocol = StreamingChannel
    requestFactory = StreamingRequest
    headerTimeout = 30
