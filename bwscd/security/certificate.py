"""
The server's TLS certificate.

The system controller is given the certificate itself, in the connection
file's C{HTTPSCertificate}, and trusts nothing else for the connection.  So
a self-signed certificate is enough, as long as it is acceptable as a trust
anchor as well as a server certificate: it is a CA (that may sign nothing
but itself) naming every address the controller may use to reach us.
"""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The longest a CN may be (RFC 5280's ub-common-name).
_MAX_COMMON_NAME = 64


class CertificateError(ValueError):
    """
    The bytes given are not a PEM X.509 certificate.
    """


def _generalName(address: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        return x509.DNSName(address)


LONGEST_ACCEPTED_DAYS = 825
"""The longest validity Apple's clients (and browsers following the CA/Browser
Forum's rules) accept for a TLS server certificate, in days."""


def createSelfSigned(
    addresses: list[str], days: int = LONGEST_ACCEPTED_DAYS, keyPEM: bytes | None = None
) -> tuple[bytes, bytes]:
    """
    Create a self-signed certificate and its private key.

    @param addresses: the IP addresses and DNS names clients connect to;
        the first one also becomes the subject's common name.
    @param days: how long it is valid; by default L{LONGEST_ACCEPTED_DAYS}.

    @param keyPEM: the private key to certify (renewing a certificate
        without changing its key); a new one when L{None}.

    @return: the certificate PEM and the private key PEM (PKCS#8, not
        encrypted).
    @raise ValueError: if C{addresses} is empty or an address cannot go in
        a certificate: an empty one, or a DNS name that is not ASCII (give
        internationalised names as A-labels).
    """
    if not addresses:
        raise ValueError("a certificate needs at least one address")
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if keyPEM is None
        else serialization.load_pem_private_key(keyPEM, password=None)
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, addresses[0][:_MAX_COMMON_NAME]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bwscd"),
        ]
    )
    # Backdated so that a client whose clock is a little behind accepts it.
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([_generalName(a) for a in addresses]),
            critical=False,
        )
        # A CA, so that OpenSSL 3 accepts it as a cafile; path length 0, so
        # that its key cannot vouch for any other certificate.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _load(certPEM: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certPEM)
    except ValueError as e:
        raise CertificateError(f"not a PEM X.509 certificate: {e}") from e


def subjectAltNames(certPEM: bytes) -> list[str]:
    """
    The DNS names and IP addresses the certificate is valid for, in the
    certificate's order, IP addresses in their canonical text form.  Other
    kinds of subjectAltName play no part in TLS server identity and are left
    out; a certificate without the extension gives an empty list.

    @raise CertificateError: if C{certPEM} is not a PEM certificate.
    """
    certificate = _load(certPEM)
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return []
    except ValueError as e:
        # Extensions are parsed only when first asked for, so this is where
        # a malformed one shows.
        raise CertificateError(f"malformed extensions: {e}") from e
    names = []
    for name in extension.value:
        if isinstance(name, x509.IPAddress):
            names.append(str(name.value))
        elif isinstance(name, x509.DNSName):
            names.append(name.value)
    return names


def notValidAfter(certPEM: bytes) -> datetime.datetime:
    """
    When the certificate expires, as an aware UTC datetime.

    @raise CertificateError: if C{certPEM} is not a PEM certificate.
    """
    return _load(certPEM).not_valid_after_utc
