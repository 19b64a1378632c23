"""
Request bodies as streams, byte by byte, against a real C{twistd bwscd}.

These tests talk to the server over raw TLS sockets so that they control
exactly which bytes go out and when: the C{100 Continue} must come before
any body byte, a refusal must come without the body, a body cut short must
leave nothing behind, and reading must pause when the storage falls behind.
They pin the behaviour of the private L{twisted.web.http.HTTPChannel} hooks
that L{bwscd.protocol.channel} relies on.
"""

import hashlib
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import swiftclient.client

from tests.support.storage import temporaryFiles
from tests.support.waiting import waitFor

# An evidence container the server takes without any registration: objects
# in it are plain write-once uploads, which is all these tests need.
CONTAINER = "RejectedContent_UnknownTime_streaming"
TIMEOUT = 5.0


# Helpers.


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def closes(self) -> bool:
        return any("close" in v.lower() for v in self.all("Connection"))


class Closed(Exception):
    """The server closed the connection before a whole response came."""


class Client:
    """One raw TLS connection to the server."""

    def __init__(self, server, timeout=TIMEOUT):
        self.sock = server.connectTLS(timeout)
        self.buffer = b""
        self.received = b""  # everything ever received, for "never sent" checks
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        """Read more; False at the end of the stream."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        self.received += data
        return True

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise Closed(f"wanted {count} bytes, got {self.buffer!r}")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def readHead(self) -> Response:
        """A status line and headers (an interim 1xx response included)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise Closed(f"no complete response head: {self.buffer!r}")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return Response(int(status), reason[0] if reason else "", headers, raw=head + b"\r\n\r\n")

    def readResponse(self, method="GET", interim=False) -> Response:
        """
        The next final response (or the next response of any kind when
        C{interim}), with its body: Content-Length bytes, none for HEAD, or
        up to the close when there is no Content-Length.
        """
        while True:
            response = self.readHead()
            if interim or response.status >= 200:
                break
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            return response
        length = response.header("Content-Length")
        if length is not None:
            response.body = self._take(int(length))
        else:
            while self._fill():
                pass
            response.body, self.buffer = self.buffer, b""
        return response

    def assertClosedByServer(self, timeout=TIMEOUT) -> None:
        """Nothing more comes, and the server ends the connection (TLS and TCP)."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except socket.timeout:
            raise AssertionError(
                f"the server kept the connection open; extra bytes {self.buffer!r}"
            )
        assert self.buffer == b"", f"bytes after the last response: {self.buffer!r}"
        # The TLS stream ended; the TCP connection must end too.
        try:
            raw = self.sock.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            return  # already torn down at the TCP level
        assertTCPClosed(raw, timeout)

    def nothingYet(self, wait=0.3) -> bytes:
        """Whatever the server sends within C{wait} seconds (b"" if nothing)."""
        self.sock.settimeout(wait)
        try:
            self._fill()
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(TIMEOUT)
        return self.buffer


def assertTCPClosed(raw: socket.socket, timeout=TIMEOUT) -> None:
    """The peer closes the TCP connection within C{timeout} (bytes before are ignored)."""
    raw.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if raw.recv(65536) == b"":
                return
    except ConnectionResetError:
        return
    except socket.timeout:
        pass
    finally:
        raw.close()
    raise AssertionError("the server kept the TCP connection open")


@dataclass
class Account:
    storageURL: str
    token: str
    path: str  # /v1/AUTH_...

    def objectPath(self, name: str, container=CONTAINER) -> str:
        return f"{self.path}/{container}/{name}"


def head(method: str, path: str, headers=(), token=None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"X-Auth-Token: {token}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def chunked(*pieces: bytes) -> bytes:
    """C{pieces} in chunked transfer coding, with the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def containerFiles(server, container=CONTAINER) -> set[str]:
    return set(os.listdir(os.path.join(server.storage, container)))


def assertNothingStored(server, name="obj", before=None):
    """No final file, no metadata file, no temporary file left."""
    assert waitFor(lambda: temporaryFiles(server.storage) == []), temporaryFiles(server.storage)
    files = containerFiles(server)
    assert name not in files
    assert f"{CONTAINER}.{name}.metadata.json" not in files
    if before is not None:
        assert files == before


def storedAccordingToLog(server, name) -> bool:
    """Whether the access log shows a successful PUT of C{name}."""
    return f"/{CONTAINER}/{name} 201 " in server.log()


def assertQuietLog(server, mark=0):
    """The server logged no unhandled error (given a moment to notice a close)."""
    time.sleep(0.3)
    log = server.log()[mark:]
    assert "Unhandled Error" not in log, log
    assert "Traceback" not in log, log


def assertStillServing(server, account):
    client = Client(server)
    client.send(head("GET", f"{account.path}/System/Capabilities.json", token=account.token))
    assert client.readResponse("GET").status == 200
    client.close()


def noServerError(response: Response):
    assert response.status < 500, response
    assert b"Traceback" not in response.raw + response.body


def makeAccount(server) -> Account:
    conf = server.connectionFile
    url, token = swiftclient.client.get_auth(
        server.authURL, conf["BlobAPIUserName"], conf["BlobAPIKey"], cacert=server.caFile
    )
    connection = server.connection(preauthurl=url, preauthtoken=token)
    connection.put_container(CONTAINER)
    connection.close()
    return Account(url, token, urlsplit(url).path)


@pytest.fixture
def account(server) -> Account:
    return makeAccount(server)


@pytest.fixture(scope="module")
def shared(moduleServer):
    """
    One server for the table-driven cases, which use names of their own and
    need no fresh log or empty directories: a server per case would make the
    module slow.  Cases about failures, logs and memory get a fresh server.
    """
    return moduleServer, makeAccount(moduleServer)


@pytest.fixture
def onShared(shared):
    """The shared server, its account, and a fresh connection to it."""
    server, account = shared
    connection = Client(server)
    yield server, account, connection
    connection.close()


@pytest.fixture
def client(server):
    connection = Client(server)
    yield connection
    connection.close()


def storedBytes(server, name="obj", container=CONTAINER) -> bytes:
    with open(os.path.join(server.storage, container, name), "rb") as f:
        return f.read()


# 1. Expect: 100-continue, accepted.


def test_continue_before_body(server, account, client):
    """
    The C{100 Continue} comes before any body byte is sent; then the body
    is stored under its name, byte for byte, and the ETag is its MD5.
    """
    body = os.urandom(100_000)
    client.send(head("PUT", account.objectPath("obj"), token=account.token, headers=[
        ("Content-Length", len(body)), ("Expect", "100-continue"),
    ]))
    interim = client.readResponse("PUT", interim=True)
    assert interim.status == 100
    assert interim.raw == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not os.path.exists(os.path.join(server.storage, CONTAINER, "obj"))
    client.send(body)
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(body)
    assert storedBytes(server) == body
    assert temporaryFiles(server.storage) == []
    assert not response.closes


# 2. Expect: 100-continue, refused: no 100, no body read, connection closed.


def refusedBeforeBody(server, client, path, token, code,
                      framing=(("Content-Length", 1000),)):
    client.send(head("PUT", path, token=token,
                     headers=[*framing, ("Expect", "100-continue")]))
    response = client.readResponse("PUT", interim=True)
    assert response.status == code, response
    assert b"100 Continue" not in client.received
    assert response.closes, response.headers
    assert response.body.endswith(b"\n") and len(response.body) > 1
    noServerError(response)
    client.assertClosedByServer()
    assert b"100 Continue" not in client.received
    return response


@pytest.mark.parametrize("token", ["BWS_not-a-token", "", None])
def test_continue_refused_bad_token(onShared, token):
    server, account, client = onShared
    refusedBeforeBody(server, client, account.objectPath("badtoken"), token, 401)
    assertNothingStored(server, "badtoken")


@pytest.mark.parametrize("framing", [
    [("Content-Length", 1000)],
    [("Transfer-Encoding", "chunked")],
])
def test_continue_refused_missing_container(onShared, framing):
    server, account, client = onShared
    refusedBeforeBody(server, client, account.objectPath("obj", container="Nope"),
                      account.token, 404, framing)
    assert not os.path.exists(os.path.join(server.storage, "Nope"))
    assert temporaryFiles(server.storage) == []


def test_continue_refused_no_space(onShared):
    """
    Refused by the backend (in a thread, after the headers): a body larger
    than the free space gets 507 and no C{100 Continue}.
    """
    server, account, client = onShared
    client.send(head("PUT", account.objectPath("huge"), token=account.token, headers=[
        ("Content-Length", 1 << 60), ("Expect", "100-continue"),
    ]))
    response = client.readResponse("PUT", interim=True)
    assert response.status == 507, response
    assert b"100 Continue" not in client.received
    assert response.closes
    assert b"Traceback" not in response.body
    client.assertClosedByServer()
    assertNothingStored(server, "huge")


@pytest.mark.parametrize("name", ["a%2F..%2Fb", "a/../b", "..", "a/./b", "a//b"])
def test_continue_refused_bad_name(onShared, name):
    server, account, client = onShared
    before, top = containerFiles(server), sorted(os.listdir(server.storage))
    refusedBeforeBody(server, client, account.objectPath(name), account.token, 400)
    assert containerFiles(server) == before
    assert sorted(os.listdir(server.storage)) == top
    assert not os.path.exists(os.path.join(server.storage, "b"))
    assert temporaryFiles(server.storage) == []


# 3. A Content-Length body cut short.


def cutShort(server, account, how):
    body = os.urandom(200_000)
    before = containerFiles(server)
    client = Client(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Content-Length", len(body))]))
    client.send(body[: len(body) // 2])
    # The body must have reached the writer before the cut.
    assert waitFor(lambda: temporaryFiles(server.storage), timeout=2)
    how(client)
    assert waitFor(lambda: "nothing was stored" in server.log()), server.log()
    assertNothingStored(server, before=before)
    assertQuietLog(server)
    # A retry with the whole body goes through.
    connection = server.connection()
    etag = connection.put_object(CONTAINER, "obj", body)
    connection.close()
    assert etag == md5(body)
    assert storedBytes(server) == body
    assert temporaryFiles(server.storage) == []


def test_cut_short_close(server, account):
    cutShort(server, account, lambda client: client.close())


def test_cut_short_half_close(server, account):
    def halfClose(client):
        # SSLSocket.shutdown drops TLS: this is a bare TCP FIN, no close_notify.
        client.sock.shutdown(socket.SHUT_WR)
        assertTCPClosed(client.sock)

    cutShort(server, account, halfClose)


def test_cut_short_tls_close(server, account):
    """A clean TLS close_notify in the middle of the body: still a cut."""

    def tlsClose(client):
        try:
            client.sock.unwrap().close()
        except (OSError, ssl.SSLError):
            client.close()

    cutShort(server, account, tlsClose)


def test_stalled_upload_blocks_no_other(onShared):
    """One upload waiting for its body holds up neither the server nor another upload."""
    server, account, client = onShared
    slow, fast = os.urandom(20_000), os.urandom(20_000)
    client.send(head("PUT", account.objectPath("slow"), token=account.token,
                     headers=[("Content-Length", len(slow))]) + slow[:7000])
    other = Client(server)
    try:
        other.send(head("PUT", account.objectPath("fast"), token=account.token,
                        headers=[("Content-Length", len(fast))]) + fast)
        response = other.readResponse("PUT")
        assert response.status == 201, response
        assert response.header("Etag") == md5(fast)
    finally:
        other.close()
    assert client.nothingYet(0.1) == b""
    client.send(slow[7000:])
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(slow)
    assert storedBytes(server, "slow") == slow
    assert storedBytes(server, "fast") == fast


def test_cut_short_no_response(server, account):
    """
    A body that stops (without a close) gets no answer while it waits; the
    connection stays usable for the rest of it.
    """
    body = os.urandom(10_000)
    client = Client(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Content-Length", len(body))]))
    client.send(body[:5000])
    assert client.nothingYet(0.5) == b""
    client.send(body[5000:])
    response = client.readResponse("PUT")
    assert response.status == 201
    assert response.header("Etag") == md5(body)
    client.close()


# 4. Chunked bodies.


def test_chunked(server, account, client):
    pieces = [b"a" * 1, os.urandom(17), os.urandom(4096), b"hello", os.urandom(70_000)]
    data = b"".join(pieces)
    encoded = (
        b"1\r\n" + pieces[0] + b"\r\n"
        + b"11\r\n" + pieces[1] + b"\r\n"
        + b"1000\r\n" + pieces[2] + b"\r\n"
        + b"5;name=value\r\n" + pieces[3] + b"\r\n"
        + b"%X\r\n" % len(pieces[4]) + pieces[4] + b"\r\n"
        + b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked")]))
    # In several writes, split inside chunk-size lines and data.
    for start in range(0, len(encoded), 3001):
        client.send(encoded[start : start + 3001])
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(data)
    assert storedBytes(server) == data
    assert temporaryFiles(server.storage) == []
    assert not response.closes
    # And the connection goes on.
    client.send(head("HEAD", account.objectPath("obj"), token=account.token))
    response = client.readResponse("HEAD")
    assert response.status == 200
    assert response.header("Content-Length") == str(len(data))
    assert response.header("Etag") == md5(data)


def test_chunked_with_expect_continue(onShared):
    server, account, client = onShared
    data = b"x" * 10 + b"y" * 20
    client.send(head("PUT", account.objectPath("chunked-continue"), token=account.token, headers=[
        ("Transfer-Encoding", "chunked"), ("Expect", "100-continue"),
    ]))
    assert client.readResponse("PUT", interim=True).status == 100
    client.send(chunked(data[:10], data[10:]))
    response = client.readResponse("PUT")
    assert response.status == 201
    assert response.header("Etag") == md5(data)
    assert storedBytes(server, "chunked-continue") == data


@pytest.mark.parametrize("expect", [False, True])
@pytest.mark.parametrize("framing,body", [
    ([("Content-Length", "0")], b""),
    ([("Transfer-Encoding", "chunked")], b"0\r\n\r\n"),
])
def test_empty_object(onShared, framing, body, expect):
    """An empty body is an object too; the connection goes on after it."""
    server, account, client = onShared
    name = f"empty-{framing[0][0]}-{expect}"
    headers = framing + ([("Expect", "100-continue")] if expect else [])
    client.send(head("PUT", account.objectPath(name), token=account.token, headers=headers))
    if expect and body:
        assert client.readResponse("PUT", interim=True).status == 100
    if body:
        client.send(body)
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(b"")
    assert storedBytes(server, name) == b""
    assert not response.closes
    client.send(head("HEAD", account.objectPath(name), token=account.token))
    response = client.readResponse("HEAD")
    assert response.status == 200, response
    assert response.header("Content-Length") == "0"


def test_chunked_truncated(server, account, client):
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked")]))
    client.send(b"1000\r\n" + b"z" * 100 + b"\r\n" + b"1000\r\n" + b"z" * 2000)
    assert waitFor(lambda: temporaryFiles(server.storage), timeout=2)
    client.close()
    assert waitFor(lambda: "nothing was stored" in server.log()), server.log()
    assertNothingStored(server, before=before)
    assertQuietLog(server)


def test_chunked_malformed_size(server, account, client):
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked")]))
    client.send(b"5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n")
    response = client.readResponse("PUT")
    assert response.status == 400, response
    noServerError(response)
    client.assertClosedByServer()
    assert waitFor(lambda: "nothing was stored" in server.log()), server.log()
    assertNothingStored(server, before=before)
    assertQuietLog(server)


def test_chunked_malformed_first_size(server, account, client):
    """Malformed before any data: the upload is opened and must be dropped."""
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked")]) + b"zz\r\n")
    response = client.readResponse("PUT")
    assert response.status == 400, response
    client.assertClosedByServer()
    assertNothingStored(server, before=before)
    assertQuietLog(server)


def test_chunked_missing_crlf(server, account, client):
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked")]))
    client.send(b"5\r\nhelloXX0\r\n\r\n")
    response = client.readResponse("PUT")
    assert response.status == 400, response
    client.assertClosedByServer()
    assertNothingStored(server, before=before)
    assertQuietLog(server)


# 5. Ambiguous framing.


@pytest.mark.parametrize("framing", [
    [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
    [("Content-Length", "5"), ("Transfer-Encoding", "chunked"), ("X-Later", "1")],
    [("Content-Length", "5"), ("Content-Length", "6")],
    [("Content-Length", "5"), ("Content-Length", "6"), ("X-Later", "1")],
    [("Content-Length", "5, 6")],
    [("Content-Length", "-5")],
    [("Transfer-Encoding", "gzip, chunked")],
])
def test_ambiguous_framing(onShared, framing):
    server, account, client = onShared
    name = "framing-" + md5(repr(framing).encode())[:8]
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath(name), token=account.token,
                     headers=framing) + b"5\r\nhello\r\n0\r\n\r\n")
    response = client.readResponse("PUT")
    assert response.status == 400, response
    noServerError(response)
    client.assertClosedByServer()
    assertNothingStored(server, name, before=before)
    assert not storedAccordingToLog(server, name)


@pytest.mark.parametrize("badHead", [
    # Refused while the headers are parsed, before the request is rendered.
    b"PUT {path} HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
    b"PUT {path} HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"PUT {path} HTTP/1.1\r\nNo colon here\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT {path} HTTP/1.1 extra\r\nContent-Length: 5\r\n\r\nhello",
], ids=["CL+TE", "CL+CL", "header", "request-line"])
def test_bad_head_is_quiet(server, account, client, badHead):
    """
    A request refused while its head is parsed is never rendered; closing
    its connection is no error: nothing unhandled in the log.
    """
    client.send(badHead.replace(b"{path}", account.objectPath("obj").encode()))
    assert client.readResponse("PUT").status == 400
    client.assertClosedByServer()
    assertQuietLog(server)
    assertNothingStored(server)
    assertStillServing(server, account)


def test_headers_cut_short_is_quiet(server, account, client):
    """A client that goes away in the middle of its headers is no error."""
    client.send(f"PUT {account.objectPath('obj')} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
    time.sleep(0.1)
    client.close()
    assertQuietLog(server)
    assertNothingStored(server)
    assertStillServing(server, account)


# 6. No framing at all.


def test_no_length(server, account, client):
    client.send(head("PUT", account.objectPath("obj"), token=account.token))
    response = client.readResponse("PUT")
    assert response.status == 400, response
    assert b"Content-Length" in response.body
    noServerError(response)
    assertNothingStored(server)
    # Nothing was left unread: the connection goes on.
    client.send(head("HEAD", account.objectPath("obj"), token=account.token))
    assert client.readResponse("HEAD").status == 404


# 7. Keep-alive after streamed bodies.


def test_keep_alive(server, account, client):
    first, second = os.urandom(50_000), os.urandom(3)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Content-Length", len(first))]) + first)
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(first)
    assert not response.closes

    client.send(head("HEAD", account.objectPath("obj"), token=account.token))
    response = client.readResponse("HEAD")
    assert response.status == 200, response
    assert response.header("Etag") == md5(first)
    assert response.header("Content-Length") == str(len(first))

    # (Another name: evidence is write-once.)
    client.send(head("PUT", account.objectPath("obj2"), token=account.token,
                     headers=[("Content-Length", len(second)), ("Expect", "100-continue")]))
    assert client.readResponse("PUT", interim=True).status == 100
    client.send(second)
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(second)
    assert storedBytes(server) == first
    assert storedBytes(server, "obj2") == second
    # Nothing extra on the wire.
    assert client.nothingYet(0.2) == b""


def test_pipelined(server, account, client):
    body = b"pipelined body"
    client.send(
        head("PUT", account.objectPath("obj"), token=account.token,
             headers=[("Content-Length", len(body))])
        + body
        + head("HEAD", account.objectPath("obj"), token=account.token)
        + head("PUT", account.objectPath("two"), token=account.token,
               headers=[("Transfer-Encoding", "chunked")])
        + chunked(b"ab", b"cde")
        + head("HEAD", account.objectPath("two"), token=account.token)
    )
    put = client.readResponse("PUT")
    assert put.status == 201, put
    assert put.header("Etag") == md5(body)
    headResponse = client.readResponse("HEAD")
    assert headResponse.status == 200, headResponse
    assert headResponse.header("Etag") == md5(body)
    assert headResponse.header("Content-Length") == str(len(body))
    put = client.readResponse("PUT")
    assert put.status == 201, put
    assert put.header("Etag") == md5(b"abcde")
    headResponse = client.readResponse("HEAD")
    assert headResponse.status == 200, headResponse
    assert headResponse.header("Etag") == md5(b"abcde")
    assert storedBytes(server) == body
    assert storedBytes(server, "two") == b"abcde"


def test_refusal_after_keep_alive(server, account, client):
    """
    A refusal before the body closes the connection: what the client sends
    next is the unread body, never taken as a request.
    """
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Content-Length", 2)]) + b"ok")
    assert client.readResponse("PUT").status == 201
    smuggled = head("PUT", account.objectPath("smuggled"), token=account.token,
                    headers=[("Content-Length", 1)]) + b"x"
    client.send(head("PUT", account.objectPath("obj", container="Nope"),
                     token=account.token, headers=[("Content-Length", len(smuggled))]))
    response = client.readResponse("PUT")
    assert response.status == 404, response
    assert response.closes
    try:
        client.send(smuggled)
    except OSError:
        pass
    client.assertClosedByServer()
    time.sleep(0.2)
    assert "smuggled" not in containerFiles(server)
    assert "smuggled" not in server.log()
    assert storedBytes(server) == b"ok"


def test_refusal_with_whole_body_keeps_connection(server, account, client):
    """
    A refusal of a request whose small body came with its head: the body is
    read whole and dropped; the next request on the connection is answered.
    """
    body = b"tiny"
    client.send(head("PUT", account.objectPath("obj", container="Nope"),
                     token=account.token, headers=[("Content-Length", len(body))]) + body)
    response = client.readResponse("PUT")
    assert response.status == 404, response
    assert not response.closes
    client.send(head("HEAD", account.objectPath("obj"), token=account.token))
    assert client.readResponse("HEAD").status == 404
    assert temporaryFiles(server.storage) == []


def test_repeated_uploads_leave_no_temporary_file(onShared):
    """
    The same name again on one connection, with the same bytes and then with
    others (evidence is write-once: those are kept beside it): every answer
    is right and no temporary file stays behind.
    """
    server, account, client = onShared
    first, other = b"first bytes", b"other bytes"
    for body in (first, first, other, other):
        client.send(head("PUT", account.objectPath("again"), token=account.token,
                         headers=[("Content-Length", len(body))]) + body)
        response = client.readResponse("PUT")
        assert response.status == 201, response
        assert response.header("Etag") == md5(body)
        assert not response.closes
        assert waitFor(lambda: temporaryFiles(server.storage) == []), (
            temporaryFiles(server.storage))
    assert storedBytes(server, "again") == first


# 8. Backpressure.


def test_backpressure(server, account, client):
    """
    A big body does not pile up in the server's memory: once the upload's
    queue is full, the server stops reading the socket until the worker
    has caught up.  RSS is read while the client holds back mid-body and
    again at the end (VmHWM, the peak).
    """
    total, burst = 512 << 20, 64 << 20
    buffer = bytearray(os.urandom(1 << 20))
    view = memoryview(buffer)
    digest = hashlib.md5()
    baseline = server.status()["VmRSS"]
    client.send(head("PUT", account.objectPath("big"), token=account.token,
                     headers=[("Content-Length", total)]))
    client.sock.settimeout(30)
    sent = 0
    while sent < burst:
        buffer[:8] = sent.to_bytes(8, "big")  # every MiB different
        client.send(view)
        digest.update(view)
        sent += len(view)
    time.sleep(0.5)
    paused = server.status()
    assert paused["VmRSS"] < 150 << 20, paused
    # Holding 64 MiB would show; a few MiB of buffers would not.
    assert paused["VmRSS"] - baseline < 40 << 20, (baseline, paused)
    while sent < total:
        buffer[:8] = sent.to_bytes(8, "big")
        client.send(view)
        digest.update(view)
        sent += len(view)
        if sent % (64 << 20) == 0:
            assert server.status()["VmRSS"] < 150 << 20
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == digest.hexdigest()
    assert server.status()["VmHWM"] < 150 << 20
    assert os.path.getsize(os.path.join(server.storage, CONTAINER, "big")) == total
    assert temporaryFiles(server.storage) == []
    # Reading paused and resumed many times: the connection still works.
    client.send(head("HEAD", account.objectPath("big"), token=account.token))
    response = client.readResponse("HEAD")
    assert response.status == 200, response
    assert response.header("Content-Length") == str(total)
    assert response.header("Etag") == digest.hexdigest()
    # pytest keeps the last runs' directories: don't leave 512 MiB in each.
    os.remove(os.path.join(server.storage, CONTAINER, "big"))


# 9. ETags.


def test_etag_mismatch(server, account, client):
    body = b"some evidence"
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Content-Length", len(body)), ("Etag", md5(b"other"))])
                + body)
    response = client.readResponse("PUT")
    assert response.status == 422, response
    assert md5(body).encode() in response.body
    noServerError(response)
    assertNothingStored(server, before=before)
    # The whole body was read: the connection is still good.
    assert not response.closes
    client.send(head("HEAD", account.objectPath("obj"), token=account.token))
    assert client.readResponse("HEAD").status == 404


def test_etag_match_quoted_upper_case(onShared):
    server, account, client = onShared
    body = b"some evidence"
    client.send(head("PUT", account.objectPath("etag-quoted"), token=account.token,
                     headers=[("Content-Length", len(body)),
                              ("Etag", f'"{md5(body).upper()}"')]) + body)
    response = client.readResponse("PUT")
    assert response.status == 201, response
    assert response.header("Etag") == md5(body)
    assert storedBytes(server, "etag-quoted") == body


def test_etag_mismatch_chunked(server, account, client):
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token,
                     headers=[("Transfer-Encoding", "chunked"), ("Etag", "0" * 32)])
                + chunked(b"abc", b"def"))
    response = client.readResponse("PUT")
    assert response.status == 422, response
    assertNothingStored(server, before=before)


def test_malformed_etag_before_body(server, account, client):
    before = containerFiles(server)
    client.send(head("PUT", account.objectPath("obj"), token=account.token, headers=[
        ("Content-Length", 1000), ("Etag", "nothex"), ("Expect", "100-continue"),
    ]))
    response = client.readResponse("PUT", interim=True)
    assert response.status == 422, response
    assert b"100 Continue" not in client.received
    assert response.closes
    client.assertClosedByServer()
    assertNothingStored(server, before=before)


# 10. What the account may not do.


@pytest.mark.parametrize("method,path,code", [
    ("GET", "{account}/{container}/obj", 403),
    ("GET", "{account}/System/Other.json", 404),  # System records are readable
    ("GET", "{account}/{container}", 403),
    ("GET", "{account}", 403),
    ("DELETE", "{account}/{container}/obj", 403),
    ("DELETE", "{account}/{container}", 403),
    ("COPY", "{account}/{container}/obj", 403),
    ("BREW", "{account}/{container}/obj", 405),
    ("BREW", "{account}", 405),
    ("GET", "/", 404),
    ("GET", "/v2/whatever", 404),
    ("GET", "/auth/v2", 404),
    ("PUT", "/elsewhere/obj", 404),
    ("BREW", "/elsewhere", 404),
    ("GET", "/auth/v1.0/more", 404),
    ("PUT", "/auth/v1.0", 405),
    ("BREW", "/auth/v1.0", 405),
    ("GET", "/v1/AUTH_someoneelse/{container}/obj", 403),
])
def test_forbidden(onShared, method, path, code):
    server, account, client = onShared
    mark = len(server.log())
    connection = server.connection(preauthurl=account.storageURL, preauthtoken=account.token)
    connection.put_object(CONTAINER, "obj", b"data")
    connection.close()
    path = path.format(account=account.path, container=CONTAINER)
    client.send(head(method, path, token=account.token))
    response = client.readResponse(method)
    assert response.status == code, response
    noServerError(response)
    assert b"Traceback" not in client.received
    assert response.body.endswith(b"\n") and len(response.body) > 1
    # A refusal without a body leaves the connection usable.
    assert not response.closes
    client.send(head("GET", f"{account.path}/System/Capabilities.json", token=account.token))
    response = client.readResponse("GET")
    assert response.status == 200, response
    assert response.header("Etag") == md5(response.body)
    assert "Traceback" not in server.log()[mark:]


@pytest.mark.parametrize("document", ["Capabilities.json", "Categories.json"])
def test_published_documents(onShared, document):
    server, account, client = onShared
    client.send(head("GET", f"{account.path}/System/{document}", token=account.token))
    response = client.readResponse("GET")
    assert response.status == 200, response
    assert response.header("Content-Type") == "application/json"
    assert response.header("Etag") == md5(response.body)
