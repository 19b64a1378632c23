"""
The Swift account as this backend speaks to it: its token (tempauth's v1
auth or Keystone's v3 password auth, renewed before it expires and on a
401), and requests to its storage
URL (L{bwscd.backends.remote}, which says how they run): small ones, a
streamed C{PUT}, a streamed C{GET}.
"""

import datetime
import json
import threading
import time
import urllib.parse

from bwscd.backends.remote import (
    TRANSPORT_ERRORS, Connections, Endpoint, Response, Unreachable, answerOf, encodedHeaders,
    exchange, headersOf, openGet)

RENEW_BEFORE = 60
"""Seconds before a token's expiry at which a new one is asked for."""

DEFAULT_TOKEN_LIFE = 3600
"""Seconds a token is taken to last when the auth service does not say."""


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
        except TRANSPORT_ERRORS as e:
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


class KeystoneAuth:
    """
    Keystone v3 password auth: C{POST /v3/auth/tokens} for a token scoped
    to C{project}; the answer gives the token (C{X-Subject-Token}), when it
    expires, and the catalog, whose C{object-store} endpoint for
    C{interface} (and C{region}, if given) is the account's storage URL.
    """

    def __init__(self, endpoint: Endpoint, user: str, key: str, project: str,
                 userDomain: str, projectDomain: str, region: str | None,
                 interface: str = "public", clock=time.time):
        self._endpoint = endpoint
        self._user = user
        self._key = key
        self._project = project
        self._userDomain = userDomain
        self._projectDomain = projectDomain
        self._region = region
        self._interface = interface
        self._clock = clock

    def authenticate(self) -> tuple[str, str, float]:
        """@return: the token, the storage URL and the seconds the token lasts."""
        request = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self._user, "domain": {"name": self._userDomain},
                "password": self._key}}},
            "scope": {"project": {"name": self._project,
                                  "domain": {"name": self._projectDomain}}}}}
        connection = self._endpoint.connect()
        try:
            answer = exchange(connection, "POST", self._endpoint.path + "/auth/tokens",
                              encodedHeaders({"Content-Type": "application/json"}),
                              json.dumps(request).encode())
        except TRANSPORT_ERRORS as e:
            raise Unreachable(f"Keystone at {self._endpoint.url} unreachable: {e}") from None
        finally:
            connection.close()
        where = f"Keystone at {self._endpoint.url}"
        if answer.status in (401, 403):
            raise Unreachable(f"{where} refused user {self._user!r} for project "
                              f"{self._project!r}: {answer.status} (check user=, key=, "
                              "project= and the domains)")
        token = answer.header("x-subject-token")
        if answer.status != 201 or not token:
            raise Unreachable(f"{where} answered {answer.status} {answer.reason} without a "
                              "token")
        issued = answer.json()["token"]
        expires = datetime.datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
        return token, self._storageURL(issued.get("catalog", []), where), \
            expires.timestamp() - self._clock()

    def _storageURL(self, catalog: list, where: str) -> str:
        for service in catalog:
            if service.get("type") != "object-store":
                continue
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == self._interface and (
                        self._region is None or endpoint.get("region") == self._region):
                    return endpoint["url"]
        raise Unreachable(f"{where}: no {self._interface} object-store endpoint"
                          + (f" in region {self._region}" if self._region else "")
                          + " in the token's catalog")


class Account:
    """
    The Swift account: a token kept fresh, and requests to its storage URL.

    @param storageURL: overrides the storage URL the auth service gives
        (when bwscd reaches the store by another address than its clients).
    """

    def __init__(self, auth, storageURL: str | None, context, timeout: float,
                 clock=time.monotonic):
        self._auth = auth
        self._storageURL = storageURL
        self._context = context
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renewAt = 0.0
        self._endpoint: Endpoint | None = None
        self._connections: Connections | None = None

    # The token.

    def token(self, stale: str | None = None) -> str:
        """
        A token that has a while to live; a new one if C{stale} (the one a
        request was refused with) is still the current one.
        """
        with self._lock:
            if (self._token is None or self._token == stale
                    or self._clock() > self._renewAt):
                token, url, life = self._auth.authenticate()
                self._token = token
                # A token that lives less than two minutes is renewed halfway.
                self._renewAt = self._clock() + (
                    life - RENEW_BEFORE if life > 2 * RENEW_BEFORE else life / 2)
                endpoint = Endpoint(self._storageURL or url, self._context, self._timeout)
                if self._endpoint is None or endpoint.url != self._endpoint.url:
                    self._endpoint = endpoint
                    self._connections = Connections(endpoint)
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
                query: dict[str, str] | None = None, path: str | None = None) -> Response:
        """
        One small request (metadata, listings, manifests, bwscd's state),
        its answer read whole.  A 401 is answered by a new token and the
        request sent again, once.

        @raise Unreachable: no answer, or a 5xx.
        """
        target = path or self.path(container, name, query)
        for attempt in range(2):
            token = self.token()
            answer = self._connections.request(
                method, target, encodedHeaders({"X-Auth-Token": token, **(headers or {})}), body)
            if answer.status != 401 or attempt:
                break
            self.token(stale=token)
        if answer.status >= 500 and answer.status != 507:
            raise Unreachable(f"{method} {target}: {answer.status} {answer.reason}")
        return answer


CONTINUE_WAIT = 10.0
"""
Seconds a streamed PUT waits for C{100 Continue} before it sends its body
anyway, as RFC 9110 lets a client (a store that ignores C{Expect}).
"""


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
            except TRANSPORT_ERRORS as e:
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
                    raise ConnectionResetError("closed before answering")
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
        except TRANSPORT_ERRORS as e:
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
        connection, answer = openGet(account.endpoint, account.path(container, name),
                                     encodedHeaders({"X-Auth-Token": token, **headers}))
        if answer.status != 401 or attempt:
            return connection, answer
        connection.close()
        account.token(stale=token)
