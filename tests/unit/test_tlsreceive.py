"""
L{bwscd.security.tlsreceive}: all the plaintext that has arrived, in one piece.
"""

import datetime
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL
from twisted.internet.ssl import CertificateOptions

from bwscd.security import tlsreceive
from bwscd.security.tlsreceive import BatchedConnection

RECORD = 16 << 10  # the most a TLS record carries


@pytest.fixture(scope="module")
def serverContext():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return CertificateOptions(privateKey=key, certificate=certificate).getContext()


def move(source: SSL.Connection, destination: SSL.Connection) -> None:
    """What C{source} sent, to C{destination}'s receive BIO."""
    while True:
        try:
            data = source.bio_read(1 << 20)
        except SSL.WantReadError:
            return
        destination.bio_write(data)


@pytest.fixture(params=["direct", "joined"])
def pair(request, serverContext, monkeypatch):
    """
    A server L{BatchedConnection} and a client, handshake done, memory BIOs;
    the server decrypting into its buffer, or joining pyOpenSSL's records
    (what it does when pyOpenSSL's internals are not there).
    """
    if request.param == "joined":
        monkeypatch.setattr(tlsreceive, "_direct", False)
    server = BatchedConnection(serverContext)
    server.set_accept_state()
    client = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD))
    client.set_connect_state()
    for _ in range(5):
        for connection in (client, server):
            try:
                connection.do_handshake()
            except SSL.WantReadError:
                pass
        move(client, server)
        move(server, client)
    # TLS 1.3: the server's tickets reach the client with its first read.
    with pytest.raises(SSL.WantReadError):
        client.recv(1)
    return server, client


def test_many_records_in_one_receive(pair):
    """
    Everything the received records hold comes out of one C{recv}, not one
    record's 16 KiB: C{recv(2**15)} in a loop, as Twisted's TLS layer calls
    it, returns 100 KiB and then wants more.
    """
    server, client = pair
    data = bytes(range(256)) * 400  # 100 KiB: 7 records
    client.sendall(data)
    move(client, server)
    assert server.recv(2**15) == data
    with pytest.raises(SSL.WantReadError):
        server.recv(2**15)


def test_at_most_the_limit(pair, monkeypatch):
    """A receive stops once it has L{tlsreceive.RECEIVE_LIMIT} bytes or more."""
    monkeypatch.setattr(tlsreceive, "RECEIVE_LIMIT", 2 * RECORD)
    server, client = pair
    data = b"x" * (5 * RECORD)
    client.sendall(data)
    move(client, server)
    pieces = []
    while True:
        try:
            pieces.append(server.recv(2**15))
        except SSL.WantReadError:
            break
    assert b"".join(pieces) == data
    assert [len(piece) for piece in pieces] == [2 * RECORD, 2 * RECORD, RECORD]


def test_close_after_data(pair):
    """
    The peer's close_notify right after its data: first the data, then, on
    the next call, L{SSL.ZeroReturnError}.
    """
    server, client = pair
    client.sendall(b"last words" * 5000)
    client.shutdown()
    move(client, server)
    assert server.recv(2**15) == b"last words" * 5000
    with pytest.raises(SSL.ZeroReturnError):
        server.recv(2**15)


def test_corrupt_record_after_data(pair):
    """
    A record that does not decrypt after good ones: the good ones' bytes,
    then the error.
    """
    server, client = pair
    client.sendall(b"a" * RECORD)
    client.sendall(b"b" * RECORD)
    wire = bytearray()
    while True:
        try:
            wire += client.bio_read(1 << 20)
        except SSL.WantReadError:
            break
    wire[-20] ^= 1  # inside the second record's ciphertext
    server.bio_write(bytes(wire))
    assert server.recv(2**15) == b"a" * RECORD
    with pytest.raises(SSL.Error):
        server.recv(2**15)


def test_peek(pair):
    """C{MSG_PEEK} reads as pyOpenSSL's C{recv} does, and consumes nothing."""
    server, client = pair
    client.sendall(b"peek")
    move(client, server)
    assert server.recv(2**15, socket.MSG_PEEK) == b"peek"
    assert server.recv(2**15) == b"peek"


def test_reads_directly_with_this_pyopenssl():
    """
    The pyOpenSSL installed has the internals the direct path uses; if this
    fails after an upgrade, TLS still works, joining records, more slowly.
    """
    assert tlsreceive._direct


def test_the_server_uses_it(tmp_path):
    """The server's TLS connections are L{BatchedConnection}s."""
    from bwscd.security.certificate import createSelfSigned
    from bwscd.security.tls import ServerCertificate

    certificatePEM, keyPEM = createSelfSigned(["127.0.0.1"])
    (tmp_path / "server.crt").write_bytes(certificatePEM)
    (tmp_path / "server.key").write_bytes(keyPEM)
    creator = ServerCertificate(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))
    assert isinstance(creator.serverConnectionForTLS(object()), BatchedConnection)
