#!/usr/bin/env python3
"""
The discard receiver: the least a server can do with an upload.  It speaks
just enough of the Swift API for python-swiftclient to log in and PUT, reads
each request body off the socket and throws it away, and answers C{201}
with the ETag the client sent, unchecked.  bench/run.py sends it exactly
the uploads it sends bwscd, so that bwscd's figures are also ratios to what
this machine can receive at all.

    python bench/discard.py --port PORT [--certificate PEM --key PEM]

With a certificate it serves HTTPS (TLS 1.2 or newer, as bwscd), else plain
HTTP.  Only the standard library, and one thread per connection: reading
an C{ssl} or plain socket into a 1 MiB buffer releases the GIL, so the
decryption and copying run in OpenSSL and the kernel, not in Python.  It
prints C{listening} when it accepts connections and runs until killed.
"""

import argparse
import socket
import ssl
import threading

HOST = "127.0.0.1"
RECEIVE_SIZE = 1 << 20
HEAD_READ_SIZE = 64 << 10


def readHead(connection, received: bytes) -> tuple[bytes | None, bytes]:
    """
    A request's head (without the blank line) and what arrived after it;
    L{None} for the head when the client closed the connection.
    """
    while b"\r\n\r\n" not in received:
        more = connection.recv(HEAD_READ_SIZE)
        if not more:
            return None, b""
        received += more
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


def parseHead(head: bytes) -> tuple[str, str, dict[str, str]]:
    """The method, the target and the headers (names in lower case)."""
    requestLine, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = requestLine.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


def answer(method: str, target: str, headers: dict[str, str], storageURL: str) -> bytes:
    """A log-in gets a token for the one account; a PUT is C{Created}."""
    if method == "GET" and target.startswith("/auth/"):
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Auth-Token: discard\r\n"
                b"X-Storage-Url: " + storageURL.encode("ascii") + b"\r\n\r\n")
    if method == "PUT":
        etag = headers.get("etag", "d41d8cd98f00b204e9800998ecf8427e")
        return (b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nEtag: "
                + etag.encode("latin-1") + b"\r\n\r\n")
    return b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"


def discard(connection, buffer: memoryview, received: bytes, length: int) -> bool:
    """
    Read and drop a body of C{length} bytes, C{received} holding its start;
    L{False} if the connection ended first.
    """
    remaining = length - len(received)
    while remaining > 0:
        count = connection.recv_into(buffer, min(remaining, len(buffer)))
        if not count:
            return False
        remaining -= count
    return True


def serveConnection(connection, context: ssl.SSLContext | None, storageURL: str) -> None:
    """Requests one after the other (keep-alive), until the client closes."""
    with connection:
        try:
            if context is not None:
                connection = context.wrap_socket(connection, server_side=True)
            buffer = memoryview(bytearray(RECEIVE_SIZE))
            received = b""
            while True:
                head, received = readHead(connection, received)
                if head is None:
                    return
                method, target, headers = parseHead(head)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    # bench/run.py sends Content-Length only; say so plainly.
                    connection.sendall(b"HTTP/1.1 411 Length Required\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if headers.get("expect", "").lower() == "100-continue":
                    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                length = int(headers.get("content-length", "0"))
                # Whatever arrived with the head and belongs to the body.
                if not discard(connection, buffer, received[:length], length):
                    return
                received = received[length:]
                connection.sendall(answer(method, target, headers, storageURL))
                if headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ssl.SSLError):
            return


def serve(port: int, context: ssl.SSLContext | None) -> None:
    listener = socket.create_server((HOST, port), backlog=128)
    scheme = "http" if context is None else "https"
    storageURL = f"{scheme}://{HOST}:{port}/v1/AUTH_discard"
    print("listening", flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(
            target=serveConnection, args=(connection, context, storageURL), daemon=True
        ).start()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Receive Swift PUTs and discard their bodies: the benchmarks' baseline."
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certificate", help="PEM certificate: serve HTTPS")
    parser.add_argument("--key", help="PEM private key of the certificate")
    args = parser.parse_args(argv)
    context = None
    if args.certificate:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.certificate, args.key)
    serve(args.port, context)


if __name__ == "__main__":
    main()
