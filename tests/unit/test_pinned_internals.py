"""
The private parts of Twisted and pyOpenSSL that bwscd relies on, each
exactly as it uses it.  setup.cfg bounds both from above; a new version
within the bounds that drops or reshapes one of these fails here, naming
it, rather than in a server under load.

    bwscd.protocol.channel   HTTPChannel's parser hooks and state, Request's
    bwscd.protocol.swift     Request._disconnected
    bwscd.service.balance    tcp.Port._fromListeningDescriptor, numberAccepts,
                             transport; tcp.Server's constructor
    bwscd.service.signals    the reactor's _exitSignal (twistd's exit status)
    bwscd.security.tlsreceive  OpenSSL._util, Connection._ssl and
                             Connection._raise_ssl_error
    bwscd.backends.s3.bucket   botocore's S3 signer reading the request's
                             client_config for unsigned bodies
"""

import inspect

from OpenSSL import SSL
from twisted.internet import tcp
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def missing(checks: list[tuple[str, bool]]) -> list[str]:
    """The names of the checks that failed."""
    return [name for name, holds in checks if not holds]


def test_http_channel_hooks():
    methods = {
        # What StreamingChannel overrides and calls up to, with its arguments.
        "allHeadersReceived": ["self"],
        "allContentReceived": ["self"],
        "_send100Continue": ["self"],
        "_respondToBadRequestAndDisconnect": ["self"],
        "rawDataReceived": ["self", "data"],
        "lineReceived": ["self", "line"],
    }
    assert missing([
        (f"HTTPChannel.{name}({', '.join(wanted)})",
         callable(getattr(HTTPChannel, name, None))
         and parameters(getattr(HTTPChannel, name)) == wanted)
        for name, wanted in methods.items()
    ]) == []


def test_http_channel_state_after_the_headers():
    """What StreamingChannel.allHeadersReceived reads once a request's headers are in."""
    seen = {}

    class Looking(HTTPChannel):
        def allHeadersReceived(self):
            HTTPChannel.allHeadersReceived(self)
            seen.update({name: getattr(self, name, missing) for name in
                         ("_command", "_path", "_version", "length", "requests",
                          "persistent")})

    channel = Looking()
    channel.requestFactory = Request
    channel.makeConnection(StringTransport())
    channel.dataReceived(b"PUT /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    assert missing([
        ("HTTPChannel._command", seen.get("_command") == b"PUT"),
        ("HTTPChannel._path", seen.get("_path") == b"/v1/a"),
        ("HTTPChannel._version", seen.get("_version") == b"HTTP/1.1"),
        ("HTTPChannel.length", seen.get("length") == 5),
        ("HTTPChannel.requests", isinstance(seen.get("requests"), list)
         and isinstance(seen["requests"][-1], Request)),
        ("HTTPChannel.persistent", isinstance(seen.get("persistent"), (bool, int))),
    ]) == []


def test_request_state():
    """What StreamingRequest and the Swift resources read of a request."""
    assert missing([
        ("Request._disconnected", hasattr(Request, "_disconnected")),
        ("Request.startedWriting", hasattr(Request, "startedWriting")),
        ("Request.gotLength(self, length)", parameters(Request.gotLength) == ["self", "length"]),
        ("Request.handleContentChunk(self, data)",
         parameters(Request.handleContentChunk) == ["self", "data"]),
        ("Request.requestReceived(self, command, path, version)",
         parameters(Request.requestReceived) == ["self", "command", "path", "version"]),
    ]) == []


def test_tcp_port_internals():
    assert missing([
        ("tcp.Port._fromListeningDescriptor(reactor, fd, addressFamily, factory)",
         callable(getattr(tcp.Port, "_fromListeningDescriptor", None))
         and len(parameters(tcp.Port._fromListeningDescriptor)) == 4),
        # Set when it starts listening; BalancedPort sets it to 1 before each read.
        ("tcp.Port.numberAccepts (read by doRead)",
         "self.numberAccepts" in inspect.getsource(tcp.Port.doRead)),
        ("tcp.Port.transport (the connection class it makes)",
         isinstance(getattr(tcp.Port, "transport", None), type)
         and issubclass(tcp.Port.transport, tcp.Server)),
        ("tcp.Port.doRead(self)", parameters(tcp.Port.doRead) == ["self"]),
        ("tcp.Server(sock, protocol, client, server, sessionno, reactor)",
         len(parameters(tcp.Server.__init__)) == 7),
        ("tcp.Connection.bufferSize", hasattr(tcp.Connection, "bufferSize")),
    ]) == []


def test_pyopenssl_bindings():
    try:
        from OpenSSL import _util
    except ImportError:
        _util = None
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    ffi, lib = getattr(_util, "ffi", None), getattr(_util, "lib", None)
    assert missing([
        ("OpenSSL._util", _util is not None),
        ("OpenSSL._util.ffi.buffer", callable(getattr(ffi, "buffer", None))),
        ("OpenSSL._util.lib.SSL_read", callable(getattr(lib, "SSL_read", None))),
        ("OpenSSL._util.no_zero_allocator", callable(getattr(_util, "no_zero_allocator", None))),
        ("Connection._ssl", getattr(connection, "_ssl", None) is not None),
        ("Connection._raise_ssl_error(self, ssl, result)",
         callable(getattr(SSL.Connection, "_raise_ssl_error", None))
         and len(parameters(SSL.Connection._raise_ssl_error)) == 3),
    ]) == []


def test_the_exit_signal_twistd_reads():
    from twisted.application import app
    from twisted.internet import base
    assert hasattr(base.ReactorBase, "_exitSignal")
    assert "reactor._exitSignal" in inspect.getsource(app.ApplicationRunner)


def test_botocore_signs_without_the_body_when_told():
    from bwscd.backends.remote import Endpoint
    from bwscd.backends.s3.bucket import Bucket

    bucket = Bucket(Endpoint("http://127.0.0.1:9", None, 1), "b", "us-east-1", "key", "secret")
    headers = dict(bucket.signed("PUT", bucket.path("k"), {"Content-MD5": "x"}))
    assert headers["X-Amz-Content-SHA256"] == b"UNSIGNED-PAYLOAD"
    assert headers["Authorization"].startswith(b"AWS4-HMAC-SHA256 Credential=key/")
