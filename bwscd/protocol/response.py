"""
What every answer is made of, and the one path that writes it.

Handlers return a L{Response} (or a Deferred of one) or raise a
L{bwscd.errors.SwiftError}; L{SwiftResource} sends the one and turns the
other into a plain-text refusal with a log line, never a traceback.
"""

from dataclasses import dataclass, field
from http import HTTPStatus

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from bwscd.errors import SwiftError
from bwscd.transfer.upload import Abandoned

log = Logger()


@dataclass
class Response:
    code: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    contentType: bytes = b"text/plain; charset=utf-8"
    length: int | None = None
    """Content-Length when it is not the body's (HEAD of an object)."""


def send(request, response: Response) -> None:
    """Write C{response} to C{request}, unless the client has gone."""
    if request._disconnected or request.finished:
        return
    # Twisted knows no reason phrase for some of the API's codes (422).
    request.setResponseCode(response.code, HTTPStatus(response.code).phrase.encode("ascii"))
    for name, value in response.headers:
        request.responseHeaders.addRawHeader(name, value)
    request.setHeader(b"Content-Type", response.contentType)
    length = len(response.body) if response.length is None else response.length
    request.setHeader(b"Content-Length", b"%d" % length)
    if response.body:
        request.write(response.body)
    request.finish()


def refusal(reason, request) -> Response | None:
    """The answer to a failed request; logs why."""
    error = reason.value
    where = f"{ascii(request.method)[2:-1]} {ascii(request.uri)[2:-1]}"
    if isinstance(error, Abandoned):
        log.info("{where}: {message}", where=where, message=str(error))
        return None
    if not isinstance(error, SwiftError):
        log.failure("{where} failed", reason, where=where)
        return Response(HTTPStatus.INTERNAL_SERVER_ERROR, body=b"internal error\n")
    log.info(
        "refused {where} from {peer}: {code} {message}",
        where=where,
        peer=request.getClientAddress().host,
        code=int(error.code),
        message=error.message,
    )
    return Response(
        error.code,
        headers=list(error.headers.items()),
        body=error.message.encode("utf-8") + b"\n",
    )


class SwiftResource(Resource):
    """A leaf whose C{handle} method returns a L{Response} or a Deferred of one."""

    isLeaf = True

    def render(self, request):
        d = maybeDeferred(self.handle, request)
        d.addErrback(refusal, request)
        d.addCallback(lambda response: response and send(request, response))
        return NOT_DONE_YET

    def handle(self, request):
        raise NotImplementedError


def swiftTimestamp(seconds: float) -> bytes:
    """Swift's X-Timestamp: seconds since the epoch, to 10 microseconds."""
    return b"%.5f" % seconds
