"""
HTTP to a remote object store (Swift, S3), from worker threads: where a
URL points, one request and its answer, an answer read after bytes of it
were read already, and keep-alive connections kept one per thread.

Every call here blocks, and runs in a worker thread: a backend's own pool
for small requests, an upload's or a download's thread for a body.  A body
is sent from the thread that has it, so the bytes never pass through the
reactor on their way out; the socket's send buffer is the backpressure.
Python's http.client does the HTTP: the requests are few and plain, and a
body streamed from a thread needs no event loop.

Anything the store does wrong (it can't be reached, answers late, answers
5xx) is L{Unreachable}, which a backend turns into the API's 503: the
controller keeps its recording and retries.

Imports only bwscd's top-level modules.
"""

import datetime
import http.client
import io
import os
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

from zope.interface import implementer

from bwscd.errors import NotFound
from bwscd.interfaces import IObjectReader

TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


class Unreachable(Exception):
    """The store could not be reached, or failed: say why, in one line."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    """Names lower case, values as UTF-8 text."""
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def json(self):
        return json.loads(self.body)

    def etag(self) -> str:
        """The C{ETag}, unquoted."""
        return (self.header("etag") or "").strip('"')


def headersOf(message: http.client.HTTPResponse) -> list[tuple[str, str]]:
    # http.client decodes header bytes as Latin-1; Swift sends UTF-8.
    return [(name.lower(), value.encode("latin-1").decode("utf-8", "replace"))
            for name, value in message.getheaders()]


def encodedHeaders(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(name, value.encode("utf-8")) for name, value in headers.items()]


BACKOFF = (1, 2, 5, 10, 30)
"""
Seconds a store that could not be reached is left alone after each failure
to connect in a row, the last one repeated: while it is down, requests fail
at once (the controller's get 503 and it retries) instead of each waiting
to connect, and the store coming back is not met by all of them at once.
"""


class Backoff:
    """When the next attempt to connect to an endpoint may be made."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._until = 0.0

    def attempt(self, connect) -> None:
        """
        C{connect()}, unless the endpoint is being left alone.

        @raise ConnectionRefusedError: it is, saying for how long.
        @raise OSError: C{connect} failed: it is left alone a while.
        """
        with self._lock:
            wait = self._until - self._clock()
            if wait > 0:
                raise ConnectionRefusedError(
                    f"not connecting for {wait:.1f} s more, after {self._failures} failed "
                    "attempt(s) in a row")
        try:
            connect()
        except OSError:
            with self._lock:
                self._failures += 1
                self._until = self._clock() + BACKOFF[min(self._failures, len(BACKOFF)) - 1]
            raise
        with self._lock:
            self._failures, self._until = 0, 0.0


class _HTTPConnection(http.client.HTTPConnection):
    backoff: Backoff

    def connect(self):
        self.backoff.attempt(super().connect)


class _HTTPSConnection(http.client.HTTPSConnection):
    backoff: Backoff

    def connect(self):
        self.backoff.attempt(super().connect)


class Endpoint:
    """
    Where a URL points: the connection to make for it, and its path.
    Connections to it share one L{Backoff}.
    """

    def __init__(self, url: str, context: ssl.SSLContext | None, timeout: float):
        parsed = urllib.parse.urlsplit(url)
        try:
            port = parsed.port
        except ValueError:
            port = 0
        if parsed.scheme not in ("http", "https") or not parsed.hostname or port == 0:
            raise ValueError(f"not an http or https URL: {url!r}")
        self.url = url.rstrip("/")
        self.secure = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = port or (443 if self.secure else 80)
        self.path = parsed.path.rstrip("/")
        self.context = context or (ssl.create_default_context() if self.secure else None)
        self.timeout = timeout
        self.backoff = Backoff()

    @property
    def origin(self) -> str:
        """C{scheme://host[:port]}, as a request's C{Host} names it."""
        default = 443 if self.secure else 80
        return (f"{'https' if self.secure else 'http'}://{self.host}"
                + ("" if self.port == default else f":{self.port}"))

    def connect(self) -> http.client.HTTPConnection:
        """A connection, made on its first request (see L{Backoff})."""
        if self.secure:
            connection = _HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                          context=self.context)
        else:
            connection = _HTTPConnection(self.host, self.port, timeout=self.timeout)
        connection.backoff = self.backoff
        return connection


def listedTime(text: str) -> float:
    """
    Seconds since the epoch of a time as listings give it: ISO 8601, UTC
    whether it says so (S3's C{Z}) or not (Swift's).
    """
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=when.tzinfo or datetime.timezone.utc).timestamp()


def connectionOptions(backend: str, options: dict[str, str], secret: str):
    """
    The options a backend on a remote store shares: its C{secret} (given,
    or the first line of the file C{secret_file} names), the TLS context
    of C{cafile}, and the C{timeout} in seconds (default 30).

    @raise ValueError: saying which option is wrong.
    """
    value = options.get(secret)
    if options.get(f"{secret}_file"):
        try:
            with open(options[f"{secret}_file"], encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as e:
            raise ValueError(f"{backend} backend: {secret}_file: {e.strerror}") from None
    context = None
    if options.get("cafile"):
        if not os.path.isfile(options["cafile"]):
            raise ValueError(f"{backend} backend: cafile={options['cafile']}: no such file")
        context = ssl.create_default_context(cafile=options["cafile"])
    try:
        timeout = float(options.get("timeout", "30"))
    except ValueError:
        timeout = 0
    if not timeout > 0:
        raise ValueError(f"{backend} backend: timeout={options['timeout']!r} is not seconds")
    return value, context, timeout


def exchange(connection: http.client.HTTPConnection, method: str, path: str,
             headers: list[tuple[str, bytes]], body: bytes | None) -> Response:
    """One request and its whole answer, on C{connection}."""
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    answer = connection.getresponse()
    return Response(answer.status, answer.reason, headersOf(answer), answer.read())


class _Replayed(io.RawIOBase):
    """A socket's bytes, after some already read from it."""

    def __init__(self, head: bytes, sock):
        self._head = head
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        return self._sock.recv_into(buffer)


class _ReplayingSocket:
    """What L{http.client.HTTPResponse} reads an answer from."""

    def __init__(self, head: bytes, sock):
        self._head = head
        self._sock = sock

    def makefile(self, mode):
        return io.BufferedReader(_Replayed(self._head, self._sock))


def answerOf(connection, head: bytes = b"", method: str = "PUT") -> http.client.HTTPResponse:
    """The answer on C{connection}'s socket, C{head} the part of it read already."""
    answer = http.client.HTTPResponse(_ReplayingSocket(head, connection.sock), method=method)
    answer.begin()
    return answer




class Connections:
    """
    Keep-alive connections to C{endpoint}, one per thread, for requests
    whose answers are read whole (metadata, listings, small objects).
    """

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self._local = threading.local()

    def request(self, method: str, path: str, headers: list[tuple[str, bytes]],
                body: bytes | None) -> Response:
        """
        One request on this thread's connection, sent again once on a new
        connection if the server had closed the kept one.

        @raise Unreachable: no answer.
        """
        for attempt in range(2):
            connection = self._connection()
            try:
                answer = exchange(connection, method, path, headers, body)
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                self.drop()
                if attempt == 0:
                    continue
                raise Unreachable(f"{method} {path}: {e}") from None
            except TRANSPORT_ERRORS as e:
                self.drop()
                raise Unreachable(f"{method} {path}: {e or type(e).__name__}") from None
            if answer.header("connection") == "close":
                self.drop()
            return answer

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.endpoint.connect()
        return connection

    def drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def openGet(endpoint: Endpoint, path: str, headers: list[tuple[str, bytes]]):
    """
    A C{GET} whose body is left to be read, on a connection of its own:
    the connection (to close) and the answer (to read from).

    @raise Unreachable: no answer.
    """
    connection = endpoint.connect()
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for header, value in headers:
            connection.putheader(header, value)
        connection.endheaders()
        return connection, answerOf(connection, method="GET")
    except TRANSPORT_ERRORS as e:
        connection.close()
        raise Unreachable(f"GET {path}: {e or type(e).__name__}") from None


@implementer(IObjectReader)
class BodyReader:
    """
    An object's bytes, or C{length} of them, read from the answer of an
    L{openGet}; a failure of the store to send them raised as what
    C{failed} makes of it (the API's 503).
    """

    def __init__(self, info, connection, answer, length: int, failed):
        self.info = info
        self._connection = connection
        self._answer = answer
        self._left = length
        self._failed = failed

    def read(self, size):
        if not self._left:
            return b""
        try:
            data = self._answer.read(min(size, self._left))
        except TRANSPORT_ERRORS as e:
            raise self._failed(Unreachable(f"reading {self.info.container}/{self.info.name}: "
                                           f"{e or type(e).__name__}"))
        if not data:
            raise self._failed(Unreachable(
                f"{self.info.container}/{self.info.name} ended {self._left} bytes early"))
        self._left -= len(data)
        return data

    def close(self):
        if self._connection is not None:
            self._connection.close()


def readerOf(connection, answer, offset: int, length: int | None, infoOf, infoNow, refused,
             failed) -> BodyReader:
    """
    The reader of an L{openGet}'s C{answer} for C{length} bytes (L{None}:
    to the end) from C{offset}, as both stores answer it: the range from
    the very end is nothing (C{416}), anything but C{200} or C{206} a
    refusal.

    @param infoOf: the object's L{ObjectInfo} from the answer's L{Response}.
    @param infoNow: the object's L{ObjectInfo} asked afresh, or L{None}.
    @param refused: C{refused(status, reason)}, the exception for a refusal.
    @param failed: what the reader raises for the store failing to send.
    @raise NotFound: there is no such object.
    """
    if answer.status == 416:
        connection.close()
        info = infoNow()
        if info is None:
            raise NotFound("no such object")
        return BodyReader(info, None, None, 0, failed)
    ranged = offset or length is not None
    if answer.status not in (200, 206) or (ranged and answer.status == 200 and length != 0):
        # (a 200 to a range: a store, or a proxy, that ignored it)
        connection.close()
        raise refused(answer.status, answer.reason)
    info = infoOf(Response(answer.status, answer.reason, headersOf(answer)))
    left = info.digests.length - offset if length is None else length
    return BodyReader(info, connection, answer, left, failed)


def rangeHeaders(offset: int, length: int | None) -> dict[str, str]:
    """The C{Range} of C{length} bytes (L{None}: to the end) from C{offset}; none for all."""
    if length == 0 or (offset == 0 and length is None):
        return {}  # the whole object (of which none is read, for no bytes)
    return {"Range": f"bytes={offset}-{'' if length is None else offset + length - 1}"}
