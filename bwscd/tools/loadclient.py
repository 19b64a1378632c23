"""
The HTTP client of C{bwscd loadtest} (L{bwscd.tools.loadtest}): what it
takes from a connection file, a clip's bytes prepared once, and keep-alive
connections that write requests by hand, with the standard library's
C{ssl}, so that the client costs little CPU beside the server.
"""

import base64
import hashlib
import http.client
import random
import select
import socket
import ssl
import time
from dataclasses import dataclass

from bwscd.config import connectionfile

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
MB = 1000 * 1000

BUFFER_LIMIT = 16 * MiB
"""The random buffer: the clip size, at most this; a larger clip repeats it."""
PIECE = 1 * MiB
"""Bytes handed to one C{sendall} with Content-Length."""
CONNECT_TIMEOUT = 10
IO_TIMEOUT = 300
"""Seconds any one socket operation may take (the server fsyncs each clip)."""
EXPECT_WAIT = 5
"""Seconds to wait for C{100 Continue} before sending the body anyway."""
STALE_AFTER = 20
"""A connection idle this long is made anew before the clock starts."""


class LoadTestError(ValueError):
    """A load test that can't start: the message says why, in one line."""


# The connection file.


@dataclass(frozen=True)
class Target:
    """What the controller takes from a connection file."""

    tokenURIs: list[str]
    user: str
    key: str
    certificatesPEM: list[str]
    containerType: str

    def tlsContext(self) -> ssl.SSLContext | None:
        """
        Trust exactly the connection file's certificates, check the host
        name against them; L{None} when there are none (plain HTTP).
        """
        if not self.certificatesPEM:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks names
        context.load_verify_locations(cadata="\n".join(self.certificatesPEM))
        # A listed certificate is a trust anchor even if it is not
        # self-signed (a leaf or an intermediate issued by someone else).
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context


def readConnectionFile(path: str) -> Target:
    """
    @raise LoadTestError: if the file can't be read or is not a valid
        connection file.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LoadTestError(f"can't read the connection file {path}: {e.strerror}")
    try:
        document = connectionfile.validate(data)
    except connectionfile.ConnectionFileError as e:
        raise LoadTestError(f"{path}: " + "; ".join(str(e).splitlines()))
    return Target(
        tokenURIs=list(document["AuthenticationTokenURI"]),
        user=document["BlobAPIUserName"],
        key=document["BlobAPIKey"],
        certificatesPEM=[
            base64.b64decode(c).decode("ascii") for c in document.get("HTTPSCertificate", [])
        ],
        containerType=document.get("ContainerType", connectionfile.DEFAULT_CONTAINER_TYPE),
    )


class Payload:
    """
    A clip's bytes: one random buffer, repeated to C{size}, handed out as
    slices of the buffer (never copied), with its MD5 worked out once.
    With C{chunkSize}, the chunked transfer coding of the clip is prepared
    too, so that sending it chunked costs no more than sending it plain.
    """

    def __init__(self, size: int, rng: random.Random, limit: int = BUFFER_LIMIT,
                 chunkSize: int | None = None):
        self.size = size
        self._view = memoryview(rng.randbytes(min(size, limit)))
        md5 = hashlib.md5()
        for piece in self.pieces(BUFFER_LIMIT):
            md5.update(piece)
        self.md5 = md5.hexdigest()
        self.chunkSize = chunkSize
        if chunkSize is not None:
            periods, tail = divmod(size, len(self._view))
            self._framedBuffer = self._frame(len(self._view), chunkSize)
            self._framedTail = self._frame(tail, chunkSize) if tail else None
            self._periods = periods

    def pieces(self, largest: int):
        """The clip as slices of at most C{largest} bytes."""
        view, length = self._view, len(self._view)
        offset, remaining = 0, self.size
        while remaining:
            n = min(largest, remaining, length - offset)
            yield view[offset : offset + n]
            offset = (offset + n) % length
            remaining -= n

    def _frame(self, length: int, chunkSize: int):
        """
        The first C{length} bytes of the buffer as chunks, framed, in one
        piece; and where to cut it into slices of whole chunks, about
        L{PIECE} bytes each, with the clip bytes each slice holds.
        """
        chunks = [self._view[o : min(o + chunkSize, length)]
                  for o in range(0, length, chunkSize)]
        framed = memoryview(b"".join(
            part for chunk in chunks for part in (b"%x\r\n" % len(chunk), chunk, b"\r\n")))
        perSlice = max(1, PIECE // chunkSize)
        cuts, start = [], 0
        for first in range(0, len(chunks), perSlice):
            group = chunks[first : first + perSlice]
            clipBytes = sum(len(chunk) for chunk in group)
            end = start + clipBytes + sum(len(b"%x\r\n" % len(c)) + 2 for c in group)
            cuts.append((start, end, clipBytes))
            start = end
        return framed, cuts

    def framed(self):
        """
        The clip in the chunked transfer coding (without the last, empty
        chunk), as slices of the prepared framing: (slice, clip bytes in it).
        """
        parts = [self._framedBuffer] * self._periods
        if self._framedTail is not None:
            parts.append(self._framedTail)
        for framed, cuts in parts:
            for start, end, clipBytes in cuts:
                yield framed[start:end], clipBytes


# HTTP, by hand over a socket: the request as one write, the body as slices.


class Interrupted(Exception):
    """The load test was stopped while a request was under way."""


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def message(self) -> str:
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return text[0][:160] if text else http.client.responses.get(self.status, "")


class _SharedReader:
    """
    The connection's one buffered reader, as http.client.HTTPResponse wants
    a socket to be: it must not close it, and a status line already read
    (while waiting for C{100 Continue}) is handed back first.
    """

    def __init__(self, reader):
        self._reader = reader
        self._unread = b""

    def makefile(self, mode="rb"):
        return self

    def unread(self, line: bytes) -> None:
        self._unread = line

    def readline(self, limit=-1):
        if self._unread:
            line, self._unread = self._unread, b""
            return line
        return self._reader.readline(limit)

    def read(self, amount=None):
        return self._reader.read(amount)

    def readinto(self, buffer):
        return self._reader.readinto(buffer)

    def read1(self, amount=-1):
        return self._reader.read1(amount)

    def peek(self, amount=0):
        return self._reader.peek(amount)

    def close(self):
        pass

    def flush(self):
        pass


class Connection:
    """One keep-alive HTTP/1.1 connection, made again when it drops."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext | None):
        if scheme == "https" and context is None:
            raise LoadTestError("an https URI, but the connection file lists no certificate")
        self.host, self.port = host, port
        self._context = context if scheme == "https" else None
        self._hostHeader = (f"[{host}]" if ":" in host else host) + f":{port}"
        self._socket = None
        self._reader = None
        self.lastUsed = 0.0

    def connect(self) -> None:
        self.close()
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = (
                self._context.wrap_socket(raw, server_hostname=self.host)
                if self._context is not None else raw
            )
        except BaseException:
            raw.close()
            raise
        sock.settimeout(IO_TIMEOUT)
        self._socket = sock
        self._reader = _SharedReader(sock.makefile("rb"))
        self.lastUsed = time.monotonic()

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
        self._socket = self._reader = None

    def refresh(self) -> None:
        """Make the connection anew if the server may have closed it as idle."""
        if self._socket is None or time.monotonic() - self.lastUsed > STALE_AFTER:
            self.connect()

    def request(
        self, method: str, path: str, headers: dict[str, str], payload: Payload | None = None,
        *, chunked: bool = False, sent=None, stop=None,
    ) -> Answer:
        """
        One request and its answer.  With a C{payload} (sent C{chunked}, in
        the chunks it was prepared with, or with Content-Length), C{sent(n)}
        is called as each slice goes out, with the clip bytes in it, and
        C{stop} (an event) interrupts the body.

        @raise OSError, http.client.HTTPException: the connection failed;
            it is closed, and made anew by the next request.
        @raise Interrupted: C{stop} was set while the body was being sent.
        """
        if self._socket is None:
            self.connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._hostHeader}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if payload is None:
            if method in ("PUT", "POST"):
                lines.append("Content-Length: 0")
        else:
            lines.append("Transfer-Encoding: chunked" if chunked
                         else f"Content-Length: {payload.size}")
            if payload.size:
                lines.append("Expect: 100-continue")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        try:
            self._socket.sendall(head)
            if payload is not None and (not payload.size or self._proceed()):
                try:
                    self._sendBody(payload, chunked, sent, stop)
                except OSError:
                    # The server may have answered (a refusal) and closed:
                    # its answer says more than the reset does.
                    answer = self._tryAnswer(method)
                    self.close()
                    if answer is None:
                        raise
                    return answer
            return self._answer(method)
        except BaseException:
            self.close()
            raise

    def _proceed(self) -> bool:
        """
        After C{Expect: 100-continue}: whether to send the body.  C{False}
        when the server answered at once (its final answer is then read
        next); C{True} on C{100 Continue}, or when it says nothing for
        L{EXPECT_WAIT} seconds.
        """
        readable = self._socket.pending() if self._context is not None else 0
        if not readable:
            readable, _, _ = select.select([self._socket], [], [], EXPECT_WAIT)
        if not readable:
            return True
        line = self._reader.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection")
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1] == b"100":
            while self._reader.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return True
        self._reader.unread(line)
        return False

    def _sendBody(self, payload: Payload, chunked: bool, sent, stop) -> None:
        send = self._socket.sendall
        slices = payload.framed() if chunked else (
            (piece, len(piece)) for piece in payload.pieces(PIECE))
        for data, clipBytes in slices:
            if stop is not None and stop.is_set():
                raise Interrupted()
            send(data)
            if sent is not None:
                sent(clipBytes)
        if chunked:
            send(b"0\r\n\r\n")

    def _answer(self, method: str) -> Answer:
        response = http.client.HTTPResponse(self._reader, method=method)
        response.begin()
        body = response.read()
        if response.will_close:
            self.close()
        else:
            self.lastUsed = time.monotonic()
        return Answer(response.status, response.msg, body)

    def _tryAnswer(self, method: str) -> Answer | None:
        try:
            self._socket.settimeout(2)
            return self._answer(method)
        except (OSError, http.client.HTTPException):
            return None
