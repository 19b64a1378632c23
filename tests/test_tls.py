"""
TLS: 1.2 or newer, with forward secrecy and authenticated encryption only.

Each refusal is checked against a control server that accepts everything,
with the same client settings and the same certificate: if the control
handshake fails, this machine's OpenSSL can't speak what is being tried, and
the test is skipped rather than passing for the wrong reason.  bwscd runs
without the system's OpenSSL configuration (Debian's raises the minimum to
TLS 1.2 by itself), so what is refused is refused by bwscd's own settings.
"""

import os
import socket
import ssl
import threading
import warnings

import pytest

from tests.support.server import HOST


class ControlServer:
    """A TLS server that accepts TLS 1.0 to 1.3 with every cipher."""

    def __init__(self, data: str):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.context.minimum_version = ssl.TLSVersion.TLSv1
        self.context.set_ciphers("ALL:@SECLEVEL=0")
        self.context.load_cert_chain(os.path.join(data, "server.crt"),
                                     os.path.join(data, "server.key"))
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(connection, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.listener.close()


@pytest.fixture
def server(launch, dataDirectory, tmp_path, monkeypatch):
    empty = tmp_path / "openssl.cnf"
    empty.write_text("")
    monkeypatch.setenv("OPENSSL_CONF", str(empty))
    return launch(dataDirectory)


@pytest.fixture
def control(server):
    running = ControlServer(server.data)
    yield running
    running.close()


def handshake(port: int, caFile: str, version=None, ciphers=None) -> str:
    """The version agreed, or the L{ssl.SSLError} raised."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(caFile)
    context.check_hostname = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            context.minimum_version = context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers + ":@SECLEVEL=0")
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.version()


def refused(server, control, **settings):
    try:
        handshake(control.port, server.caFile, **settings)
    except ssl.SSLError as e:
        pytest.skip(f"this machine's OpenSSL can't make that handshake at all: {e}")
    with pytest.raises(ssl.SSLError):
        handshake(server.port, server.caFile, **settings)


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_1_2_is_refused(server, control, version):
    refused(server, control, version=getattr(ssl.TLSVersion, version), ciphers="ALL")


@pytest.mark.parametrize("cipher", [
    "ECDHE-ECDSA-AES128-SHA",  # CBC
    "ECDHE-ECDSA-AES256-SHA384",  # CBC
])
def test_tls_1_2_without_authenticated_encryption_is_refused(server, control, cipher):
    refused(server, control, version=ssl.TLSVersion.TLSv1_2, ciphers=cipher)


@pytest.mark.parametrize("version, ciphers", [
    (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"),
    (ssl.TLSVersion.TLSv1_3, None),
])
def test_modern_tls_is_served(server, version, ciphers):
    assert handshake(server.port, server.caFile, version=version,
                     ciphers=ciphers) == version.name.replace("_", ".")
