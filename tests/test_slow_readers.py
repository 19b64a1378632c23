"""
Readers that read slowly hold no thread the controller needs: downloads
and uploads have pools of their own (docs/threads.md), and a download whose
client has stopped reading waits for it without a thread.
"""

import hashlib
import os
import socket
import ssl
import urllib.parse

from tests.support.server import HOST

SIZE = 8 << 20
READERS = 4  # more than --max-downloads and --max-uploads


def startReading(server, url: str, token: str, path: str) -> tuple[ssl.SSLSocket, bytes]:
    """
    A GET whose client reads the headers and a few bytes, then stops: the
    small receive buffer fills, and the server must wait for it.
    """
    raw = socket.socket()
    # Before connecting (not server.connectTLS): the window is agreed then.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    raw.settimeout(30)
    raw.connect((HOST, server.port))
    tls = server.clientContext().wrap_socket(raw, server_hostname=HOST)
    base = urllib.parse.urlsplit(url).path
    tls.sendall(f"GET {base}/{path} HTTP/1.1\r\nHost: {HOST}\r\n"
                f"X-Auth-Token: {token}\r\n\r\n".encode("ascii"))
    received = b""
    while b"\r\n\r\n" not in received:
        received += tls.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return tls, body


def readToTheEnd(tls: ssl.SSLSocket, body: bytes) -> bytes:
    while len(body) < SIZE:
        piece = tls.recv(1 << 20)
        assert piece, "the download ended early"
        body += piece
    return body


def test_stalled_downloads_hold_no_upload_or_download_thread(launch, dataDirectory, recording):
    server = launch(dataDirectory, "--max-uploads", "2", "--max-downloads", "2")
    swift = server.connection(timeout=20)
    container = recording.start(swift)
    clips = {f"20240501_10150{i}_1.mkv": os.urandom(SIZE) for i in range(READERS)}
    for name, data in clips.items():
        swift.put_object(container, name, data)
    swift.put_object(container, "small.mkv", b"s" * 1000)
    reader = server.addAccount("integrator", "reader")
    reader.timeout = 20
    url, token = reader.get_auth()
    stalled = [startReading(server, url, token, f"{container}/{name}") for name in clips]
    try:
        # With every download stalled, the controller still uploads...
        stored = swift.put_object(container, "20240501_101510_1.mkv", b"n" * 100_000)
        assert stored == hashlib.md5(b"n" * 100_000).hexdigest()
        # ... and another reader still downloads.
        _, body = reader.get_object(container, "small.mkv")
        assert body == b"s" * 1000
        # A stalled download goes on where it stopped once its client reads.
        tls, body = stalled[0]
        assert readToTheEnd(tls, body) == clips[sorted(clips)[0]]
    finally:
        for tls, _ in stalled:
            tls.close()
