"""
How much the server reads from a socket at once
(L{bwscd.protocol.channel.SOCKET_READ_SIZE}), over TLS and plain TCP, with the
reactor's real transports.
"""

import subprocess
import sys
import textwrap

import pytest

from bwscd.protocol.channel import SOCKET_READ_SIZE

SERVER = """
    import socket, ssl, sys, tempfile, threading
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from bwscd.protocol import channel
    from bwscd.security import tls
    from bwscd.security.certificate import createSelfSigned

    https = sys.argv[1] == "https"
    seen = []
    made = channel.StreamingChannel.connectionMade

    def connectionMade(self):
        made(self)
        seen.append(channel._tcpConnection(self.transport))

    channel.StreamingChannel.connectionMade = connectionMade
    site = channel.StreamingSite(Resource())
    if https:
        directory = tempfile.mkdtemp()
        certificatePEM, keyPEM = createSelfSigned(["127.0.0.1"])
        open(directory + "/c", "wb").write(certificatePEM)
        open(directory + "/k", "wb").write(keyPEM)
        creator = tls.ServerCertificate(directory + "/c", directory + "/k")
        port = reactor.listenSSL(0, site, creator, interface="127.0.0.1")
    else:
        port = reactor.listenTCP(0, site, interface="127.0.0.1")

    def client():
        connection = socket.create_connection(("127.0.0.1", port.getHost().port))
        if https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = context.wrap_socket(connection)
        connection.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        connection.recv(100)
        connection.close()
        reactor.callFromThread(reactor.stop)

    reactor.callWhenRunning(threading.Thread(target=client).start)
    reactor.run()
    print(type(seen[0]).__name__, seen[0].bufferSize)
"""


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_read_size(scheme):
    """
    The TCP connection under the channel is found (under Twisted's TLS
    layer too) and reads L{SOCKET_READ_SIZE} at a time, not Twisted's
    64 KiB.
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVER), scheme],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Server", str(SOCKET_READ_SIZE)]
    assert SOCKET_READ_SIZE > 64 << 10
