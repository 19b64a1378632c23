"""
The Swift account as this backend speaks to it: its token (tempauth's v1
auth, renewed before it expires and on a 401), and HTTP requests to its
storage URL over keep-alive connections, one per thread.

Every call here blocks, and runs in a worker thread: the backend's own pool
for small requests, an upload's or a download's thread for a body.  A body
is sent from the thread that has it, so the bytes never pass through the
reactor on their way out; the socket's send buffer is the backpressure.

Anything the store does wrong (it can't be reached, answers late, answers
5xx) is L{Unreachable}, which the backend turns into the API's 503: the
controller keeps its recording and retries.
"""

import http.client
import io
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

RENEW_BEFORE = 60
"""Seconds before a token's expiry at which a new one is asked for."""

DEFAULT_TOKEN_LIFE = 3600
"""Seconds a token is taken to last when the auth service does not say."""


class Unreachable(Exception):
    """The store could not be reached, or failed: say why, in one line."""


class Refused(Exception):
    """The store answered with a status that the caller did not expect."""

    def __init__(self, response: "Response", what: str):
        super().__init__(f"{what}: {response.status} {response.reason}")
        self.response = response


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


def headersOf(message: http.client.HTTPResponse) -> list[tuple[str, str]]:
    # http.client decodes header bytes as Latin-1; Swift sends UTF-8.
    return [(name.lower(), value.encode("latin-1").decode("utf-8", "replace"))
            for name, value in message.getheaders()]


def encodedHeaders(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(name, value.encode("utf-8")) for name, value in headers.items()]


class Endpoint:
    """Where a URL points: the connection to make for it, and its path."""

    def __init__(self, url: str, context: ssl.SSLContext | None, timeout: float):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http or https URL: {url!r}")
        self.url = url.rstrip("/")
        self.secure = parsed.scheme == "https"
        self.host = parsed.hostname
        self.port = parsed.port or (443 if self.secure else 80)
        self.path = parsed.path.rstrip("/")
        self._context = context or ssl.create_default_context()
        self._timeout = timeout

    def connect(self) -> http.client.HTTPConnection:
        if self.secure:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self._timeout,
                                               context=self._context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self._timeout)

    def sameServer(self, other: "Endpoint") -> bool:
        return (self.secure, self.host, self.port) == (other.secure, other.host, other.port)


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


class TempAuth:
    """
    Swift's v1 auth (tempauth, swauth, Ceph RGW's): C{GET} the auth URL with
    C{X-Auth-User} and C{X-Auth-Key}; the answer gives the token, its
    lifetime (C{X-Auth-Token-Expires}) and the account's storage URL.
    """

    def __init__(self, endpoint: Endpoint, user: str, key: str):
        self._endpoint = endpoint
        self._user = user
        self._key = key

    def authenticate(self) -> tuple[str, str, float]:
        """@return: the token, the storage URL and the seconds the token lasts."""
        connection = self._endpoint.connect()
        try:
            answer = exchange(connection, "GET", self._endpoint.path or "/",
                              encodedHeaders({"X-Auth-User": self._user,
                                              "X-Auth-Key": self._key}), None)
        except OSError as e:
            raise Unreachable(f"auth at {self._endpoint.url} unreachable: {e}") from None
        finally:
            connection.close()
        if answer.status in (401, 403):
            raise Unreachable(f"auth at {self._endpoint.url} refused user {self._user!r}: "
                              f"{answer.status} (check user= and key=)")
        token, url = answer.header("x-auth-token"), answer.header("x-storage-url")
        if answer.status // 100 != 2 or not token or not url:
            raise Unreachable(f"auth at {self._endpoint.url} answered {answer.status} "
                              f"{answer.reason} without a token and a storage URL")
        life = answer.header("x-auth-token-expires")
        return token, url, float(life) if life else DEFAULT_TOKEN_LIFE


class Account:
    """
    The Swift account: a token kept fresh, and requests to its storage URL.

    @param storageURL: overrides the storage URL the auth service gives
        (when bwscd reaches the store by another address than its clients).
    """

    def __init__(self, auth: TempAuth, storageURL: str | None, context, timeout: float,
                 clock=time.monotonic):
        self._auth = auth
        self._storageURL = storageURL
        self._context = context
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._endpoint: Endpoint | None = None
        self._local = threading.local()

    # The token.

    def token(self, stale: str | None = None) -> str:
        """
        A token that has a while to live; a new one if C{stale} (the one a
        request was refused with) is still the current one.
        """
        with self._lock:
            if (self._token is None or self._token == stale
                    or self._clock() > self._expires - RENEW_BEFORE):
                token, url, life = self._auth.authenticate()
                self._token = token
                self._expires = self._clock() + life
                endpoint = Endpoint(self._storageURL or url, self._context, self._timeout)
                if self._endpoint is None or endpoint.url != self._endpoint.url:
                    self._endpoint = endpoint
            return self._token

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self.token()
        return self._endpoint

    def path(self, container: str | None = None, name: str | None = None,
             query: dict[str, str] | None = None) -> str:
        """The request path of the account, a container or an object."""
        path = self.endpoint.path
        if container is not None:
            path += "/" + urllib.parse.quote(container, safe="")
        if name is not None:
            path += "/" + urllib.parse.quote(name, safe="/")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return path

    # Requests.

    def request(self, method: str, container: str | None = None, name: str | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None,
                query: dict[str, str] | None = None, authenticated: bool = True,
                path: str | None = None) -> Response:
        """
        One request on this thread's connection, its answer read whole: for
        small ones (metadata, listings, manifests, bwscd's state).  A 401
        is answered by a new token and the request sent again once; a
        keep-alive connection the server closed meanwhile by a new one.

        @raise Unreachable: no answer, or a 5xx.
        """
        target = path or self.path(container, name, query)
        for attempt in range(3):
            token = self.token() if authenticated else None
            sent = encodedHeaders({**({"X-Auth-Token": token} if token else {}),
                                   **(headers or {})})
            connection = self._connection()
            try:
                answer = exchange(connection, method, target, sent, body)
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                self._dropConnection()
                if attempt == 0:
                    continue  # the server closed a keep-alive connection
                raise Unreachable(f"{method} {target}: {e}") from None
            except (OSError, http.client.HTTPException) as e:
                self._dropConnection()
                raise Unreachable(f"{method} {target}: {e or type(e).__name__}") from None
            if answer.header("connection") == "close":
                self._dropConnection()
            if answer.status == 401 and authenticated and attempt < 2:
                self.token(stale=token)
                continue
            if answer.status >= 500 and answer.status != 507:
                raise Unreachable(f"{method} {target}: {answer.status} {answer.reason}")
            return answer
        return answer

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self.endpoint.connect()
        return connection

    def _dropConnection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


CONTINUE_WAIT = 10.0
"""
Seconds a streamed PUT waits for C{100 Continue} before it sends its body
anyway, as RFC 9110 lets a client (a store that ignores C{Expect}).
"""


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


class StreamedPut:
    """
    A C{PUT} whose body is sent as it is given, in chunks (its length may
    not be known), and whose end is sent only by L{finish}: until then the
    store has no object, and a connection dropped by L{abandon} leaves none.

    It asks C{Expect: 100-continue} and waits for the store's go-ahead
    before returning, so a refusal (the name taken, for C{If-None-Match:
    *}; the container missing; no room) comes before any byte of the body.

    @ivar early: the store's answer if it refused before the body, else
        L{None}.
    """

    def __init__(self, account: Account, container: str, name: str, headers: dict[str, str]):
        for attempt in range(2):
            token = account.token()
            self._connection = account.endpoint.connect()
            try:
                self._connection.putrequest("PUT", account.path(container, name),
                                            skip_accept_encoding=True)
                for header, value in encodedHeaders({
                        "X-Auth-Token": token, "Transfer-Encoding": "chunked",
                        "Expect": "100-continue", **headers}):
                    self._connection.putheader(header, value)
                self._connection.endheaders()
                self._head, self.early = self._goAhead()
            except (OSError, http.client.HTTPException) as e:
                self.abandon()
                raise Unreachable(f"PUT {container}/{name}: {e or type(e).__name__}") from None
            if self.early is None or self.early.status != 401 or attempt:
                return
            self.abandon()
            account.token(stale=token)

    def _goAhead(self) -> tuple[bytes, Response | None]:
        sock = self._connection.sock
        head = b""
        sock.settimeout(CONTINUE_WAIT)
        try:
            while b"\r\n\r\n" not in head:
                received = sock.recv(4096)
                if not received:
                    raise http.client.RemoteDisconnected("closed before answering")
                head += received
        except TimeoutError:
            return head, None
        finally:
            sock.settimeout(self._connection.timeout)
        if head.startswith((b"HTTP/1.1 100", b"HTTP/1.0 100")):
            return head.split(b"\r\n\r\n", 1)[1], None
        answer = answerOf(self._connection, head)
        return b"", Response(answer.status, answer.reason, headersOf(answer), answer.read())

    def send(self, data) -> None:
        """
        The next bytes of the body.

        @raise Unreachable: the store stopped taking them.
        """
        try:
            self._connection.sock.sendall(b"%x\r\n%b\r\n" % (len(data), data))
        except OSError as e:
            raise Unreachable(f"sending to the store: {e}") from None

    def finish(self) -> Response:
        """End the body, and return the store's answer."""
        try:
            self._connection.sock.sendall(b"0\r\n\r\n")
            answer = answerOf(self._connection, self._head)
            return Response(answer.status, answer.reason, headersOf(answer), answer.read())
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"finishing an upload to the store: {e or type(e).__name__}") \
                from None
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Drop the connection: the body never ends, so nothing is stored."""
        self._connection.close()


def download(account: Account, container: str, name: str, headers: dict[str, str]):
    """
    A C{GET} whose body is left to be read: the connection (to close) and
    the answer (to read from).  A 401 is answered by a new token, once.
    """
    for attempt in range(2):
        token = account.token()
        connection = account.endpoint.connect()
        try:
            connection.putrequest("GET", account.path(container, name),
                                  skip_accept_encoding=True)
            for header, value in encodedHeaders({"X-Auth-Token": token, **headers}):
                connection.putheader(header, value)
            connection.endheaders()
            answer = answerOf(connection, method="GET")
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            raise Unreachable(f"GET {container}/{name}: {e or type(e).__name__}") from None
        if answer.status != 401 or attempt:
            return connection, answer
        connection.close()
        account.token(stale=token)
