"""
The certificate the server presents, replaced without a restart.

When C{DATA/server.crt} or C{DATA/server.key} change (C{bwscd cert
activate}, or an operator's own tooling such as an ACME client), the next
TLS connection gets the new certificate; connections already open keep the
one they started with, so uploads in flight complete.
"""

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    KeyPair,
    TLSVersion,
)
from twisted.logger import Logger
from zope.interface import implementer

from bwscd.files import ChangedFiles
from bwscd.security.tlsreceive import BatchedConnection

EXPIRY_WARNING = timedelta(days=30)

log = Logger()


def certificatesIn(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file: the server's first, then its chain."""
    return x509.load_pem_x509_certificates(pem)


# For TLS 1.2, Mozilla's "intermediate" choice: forward secrecy and
# authenticated encryption only (no CBC, no static RSA key exchange), for
# ECDSA (our own certificates) and RSA (imported ones) keys alike.  TLS
# 1.3's suites are all of that kind.
MODERN_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@implementer(IOpenSSLServerConnectionCreator)
class ServerCertificate:
    """
    TLS (1.2 or newer) with the certificate, chain and key in two files,
    read again by L{reloadIfChanged}.
    """

    def __init__(self, certificatePath: str, keyPath: str):
        self._certificatePath = certificatePath
        self._keyPath = keyPath
        self._files = ChangedFiles(certificatePath, keyPath)
        self._options: CertificateOptions | None = None
        self.reloadIfChanged()

    def serverConnectionForTLS(self, protocol):
        # No ALPN (HTTP/1.1 only), so nothing else for the connection.
        return BatchedConnection(self._options.getContext())

    def reloadIfChanged(self) -> bool:
        """
        Use the files' certificate for new connections if they changed.  A
        pair that can't be used (half-written, key not matching) is logged
        and the current one kept; the first load raises instead.
        """
        stamps = self._files.changes()
        if stamps is None:
            return False
        try:
            with open(self._certificatePath, "rb") as c, open(self._keyPath, "rb") as k:
                chainPEM, keyPEM = c.read(), k.read()
            chain = certificatesIn(chainPEM)
            options = CertificateOptions(
                privateKey=KeyPair.load(keyPEM, 1).original,
                certificate=Certificate.loadPEM(chainPEM).original,
                extraCertChain=[
                    Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)).original
                    for c in chain[1:]
                ],
                raiseMinimumTo=TLSVersion.TLSv1_2,
                acceptableCiphers=MODERN_CIPHERS,
            )
            options.getContext()  # fails now if the key does not match
        except Exception as e:
            if self._options is None:
                raise
            log.error("kept the current certificate: {path} can't be used: {error}",
                      path=self._certificatePath, error=e)
            return False
        self._files.takenUp(stamps)
        self._options = options
        self.notValidAfter = chain[0].not_valid_after_utc
        log.info("serving the certificate in {path}, valid until {until}",
                     path=self._certificatePath, until=self.notValidAfter.isoformat())
        return True

    def expiresSoon(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(timezone.utc)
        return self.notValidAfter - now < EXPIRY_WARNING
