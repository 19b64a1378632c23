"""
Faults for the tests of the backends that store elsewhere (SFTP, Swift,
S3): an upload cut off halfway by something breaking, an upload retried
until the store is back, and a relay to the store that damages bytes on
their way, or puts TLS in front of it.
"""

import os
import socket
import ssl
import threading
import time

from swiftclient.exceptions import ClientException

from tests.support.recording import Recording
from tests.support.server import HOST, freePort

RECORDING = Recording().container
MiB = 1 << 20


class Stalling:
    """
    A body of C{before} bytes, then a wait until told, then C{after} more:
    iterated, it goes chunked; read, with its length given.
    """

    def __init__(self, before: int, after: int):
        self.before, self.after = before, after
        self.sent = threading.Event()
        self.go = threading.Event()
        self._blocks = iter(self)

    def __iter__(self):
        block = os.urandom(MiB)
        for _ in range(self.before // MiB):
            yield block
        self.sent.set()
        self.go.wait(30)
        for _ in range(self.after // MiB):
            yield block

    def read(self, size=-1):
        return next(self._blocks, b"")


def cutOffBy(fault, server, name="cut.mkv", length=None):
    """
    Upload C{name} into the recording of L{Recording}() (chunked, or with
    C{length} given), cause C{fault} halfway, and return what the upload
    got: no 201, but a 503 or a dropped connection.
    """
    body = Stalling(8 * MiB, 24 * MiB)
    outcome = []

    def upload():
        connection = server.connection()
        try:
            outcome.append(connection.put_object(
                RECORDING, name, iter(body) if length is None else body, content_length=length))
        except Exception as e:
            outcome.append(e)
        finally:
            connection.close()

    uploading = threading.Thread(target=upload)
    uploading.start()
    assert body.sent.wait(30)
    fault()
    body.go.set()
    uploading.join(60)
    [failure] = outcome
    assert isinstance(failure, Exception), "the upload was stored"
    if isinstance(failure, ClientException) and failure.http_status is not None:
        assert failure.http_status == 503
    return failure


def storedOnceBack(swift, name="late.mkv") -> None:
    """Upload, retrying while bwscd answers 503 (at most 30 s), until stored."""
    deadline = time.monotonic() + 30
    while True:
        try:
            swift.put_object(RECORDING, name, b"late")
            return
        except ClientException as e:
            assert e.http_status == 503 and time.monotonic() < deadline, e
            time.sleep(0.2)


class Relay:
    """
    A TCP relay on loopback to the store.  With C{context}, it speaks TLS to
    its clients: a store behind TLS.  With C{damage}, it flips one byte of
    the first C{PUT} body it carries for that name (on a connection of its
    own, or after other requests on a kept one): bytes damaged on the way.
    With C{silence}, it drops the connection of the first request whose
    request line holds it as soon as the store answers: the store did it,
    and the client never hears.
    """

    def __init__(self, target: tuple[str, int], damage: bytes | None = None,
                 context: ssl.SSLContext | None = None, silence: bytes | None = None):
        self.port = freePort()
        self._target = target
        self._name = damage
        self._context = context
        self._silence = silence
        self.corrupted = 0
        self.silenced = 0
        self._listener = socket.create_server((HOST, self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._context is not None:
                try:
                    client = self._context.wrap_socket(client, server_side=True)
                except OSError:
                    client.close()
                    continue  # a client that does not trust the certificate
            upstream = socket.create_connection(self._target)
            silencing = threading.Event()  # the request to silence went out on this one
            threading.Thread(target=self._pipe, args=(client, upstream, True, silencing),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False, silencing),
                             daemon=True).start()

    def _pipe(self, source, sink, outgoing, silencing):
        window = b""  # the latest bytes sent, to find a request's head in
        countdown = None  # bytes to let through before the one flipped
        try:
            while data := source.recv(65536):
                if self._silence is not None and not self.silenced:
                    if outgoing and any(self._silence in line for line in data.split(b"\r\n")
                                        if line.startswith((b"PUT ", b"POST "))):
                        silencing.set()
                    elif not outgoing and silencing.is_set():
                        self.silenced += 1
                        break  # the answer dropped, and the connection with it
                if outgoing and self._name is not None and not self.corrupted:
                    if countdown is None:
                        window = (window + data)[-(1 << 16):]
                        countdown = self._bodyAt(window, data)
                    if countdown is not None and countdown < len(data):
                        data = data[:countdown] + bytes([data[countdown] ^ 1]) + \
                            data[countdown + 1:]
                        self.corrupted += 1
                    elif countdown is not None:
                        countdown -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _bodyAt(self, window: bytes, data: bytes) -> int | None:
        """
        Where in C{data} the byte to flip is, if C{window} (ending with it)
        holds the head of a C{PUT} for the name: 500 bytes into its body.
        """
        start = window.find(b"PUT ")
        while start != -1:
            end = window.find(b"\r\n\r\n", start)
            if end == -1:
                return None
            if self._name in window[start:window.find(b"\r\n", start)]:
                return len(data) - (len(window) - end - 4) + 500
            start = window.find(b"PUT ", end)
        return None

    def close(self):
        self._listener.close()
