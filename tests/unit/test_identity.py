"""
Tests for how bwscd identifies itself and its client: the account key and
tokens (L{bwscd.security.tokens}), the TLS certificate (L{bwscd.security.certificate}) and
the connection file that carries both to the system controller
(L{bwscd.config.connectionfile}).
"""

import base64
import datetime
import hashlib
import json
import re
import socket
import ssl
import string
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from bwscd.security import tokens

from bwscd.security import certificate

from bwscd.config import connectionfile
from bwscd.security.tokens import TokenAuthority
from bwscd.config.connectionfile import ConnectionFileError

SECRET = b"s" * 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- account names and keys


def test_new_user_name_is_header_safe():
    names = {tokens.newUserName() for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9-]{1,64}", name)


def test_new_key_is_random_and_fits():
    keys = {tokens.newKey() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key)


def test_key_hash_round_trip():
    key = tokens.newKey()
    encoded = tokens.hashKey(key)
    assert encoded.startswith("scrypt$16384$8$1$")
    assert key not in encoded
    assert tokens.verifyKey(key, encoded)


def test_key_hash_salted():
    assert tokens.hashKey("same") != tokens.hashKey("same")


def test_wrong_key_rejected():
    encoded = tokens.hashKey("right key")
    assert not tokens.verifyKey("wrong key", encoded)
    assert not tokens.verifyKey("", encoded)
    assert not tokens.verifyKey("right key ", encoded)


def test_non_ascii_key():
    encoded = tokens.hashKey("nyckel-åäö")
    assert tokens.verifyKey("nyckel-åäö", encoded)
    assert not tokens.verifyKey("nyckel-aao", encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "scrypt",
        "bcrypt$16384$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$AAAA",
        "scrypt$16384$8$1$!!!!$AAAA",
        "scrypt$16384$8$1$AAA$AAAA",
        "scrypt$16383$8$1$AAAA$AAAA",
        "scrypt$0$8$1$AAAA$AAAA",
        "scrypt$16384$0$1$AAAA$AAAA",
        "scrypt$1048576$8$1$AAAA$AAAA",
        "scrypt$99999999999999$8$1$AAAA$AAAA",
        "scrypt$١٦٣٨٤$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$AAAA$AAAA\n",
        " " + "scrypt$16384$8$1$AAAA$AAAA",
    ],
)
def test_malformed_hash_is_no_match(encoded):
    assert tokens.verifyKey("key", encoded) is False


def test_hash_with_other_parameters_still_verifies():
    """
    A hash written with another cost verifies with the cost it records.
    """
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"key", salt=salt, n=1024, r=4, p=2, dklen=24)
    encoded = f"scrypt$1024$4$2${b64(salt)}${b64(digest)}"
    assert tokens.verifyKey("key", encoded)
    assert not tokens.verifyKey("other", encoded)


# --- tokens


def test_token_round_trip():
    clock = FakeClock()
    authority = TokenAuthority(SECRET, 900, clock)
    token, expiry = authority.issue("bws-0123456789ab")
    assert expiry == int(clock.now) + 900
    assert token.startswith("BWS_")
    assert len(token) <= tokens.MAX_TOKEN_LENGTH
    assert authority.verify(token) == "bws-0123456789ab"


def test_tokens_are_unique():
    authority = TokenAuthority(SECRET, 900, FakeClock())
    assert authority.issue("a")[0] != authority.issue("a")[0]


def test_token_for_non_ascii_account():
    authority = TokenAuthority(SECRET, 900, FakeClock())
    token, _ = authority.issue("kamera-ö\u2603")
    assert token.isascii()
    assert authority.verify(token) == "kamera-ö\u2603"


def test_token_expires():
    clock = FakeClock()
    authority = TokenAuthority(SECRET, 900, clock)
    token, expiry = authority.issue("a")
    clock.now = expiry - 0.5
    assert authority.verify(token) == "a"
    clock.now = expiry
    assert authority.verify(token) is None
    clock.now = expiry + 10_000
    assert authority.verify(token) is None


def test_token_from_another_secret():
    clock = FakeClock()
    token, _ = TokenAuthority(b"o" * 32, 900, clock).issue("a")
    assert TokenAuthority(SECRET, 900, clock).verify(token) is None


def test_tampered_signature():
    authority = TokenAuthority(SECRET, 900, FakeClock())
    token, _ = authority.issue("a")
    body, signature = token.rsplit(".", 1)
    flipped = "A" if signature[0] != "A" else "B"
    assert authority.verify(f"{body}.{flipped}{signature[1:]}") is None
    assert authority.verify(body + ".") is None
    assert authority.verify(body) is None


def test_every_one_character_change_rejected():
    """
    No other spelling of a token is accepted, including base64 that differs
    only in its unused trailing bits.
    """
    authority = TokenAuthority(SECRET, 900, FakeClock())
    token, _ = authority.issue("a")
    for index, original in enumerate(token):
        for replacement in string.ascii_letters + string.digits + "-_.":
            if replacement != original:
                changed = token[:index] + replacement + token[index + 1 :]
                assert authority.verify(changed) is None, changed


def test_forged_payload_rejected():
    """
    A payload naming another account or a later expiry, with the original
    signature, is rejected.
    """
    authority = TokenAuthority(SECRET, 900, FakeClock())
    token, _ = authority.issue("a")
    body, signature = token[len("BWS_") :].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["a"] = "b"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    assert authority.verify(f"BWS_{forged.decode()}.{signature}") is None


def test_issue_refuses_unverifiable_token():
    authority = TokenAuthority(SECRET, 900, FakeClock())
    with pytest.raises(ValueError):
        authority.issue("a" * 1000)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "BWS_",
        "BWS_.",
        "BWS_a.b",
        "BWS_A.A",
        "BWS_YQ.YQ",
        "BWS_YQ==.YQ==",
        "bws_YQ.YQ",
        "BWS_\u00e9.\u00e9",
        "BWS_YQ.YQ\n",
        "BWS_" + "A" * 5000 + "." + "A" * 43,
        "\ud800",
    ],
)
def test_garbage_tokens(token):
    assert TokenAuthority(SECRET, 900, FakeClock()).verify(token) is None


@given(st.text())
def test_verify_never_raises(token):
    assert TokenAuthority(SECRET, 900, FakeClock()).verify(token) is None


TOKEN_CHARACTERS = string.ascii_letters + string.digits + "-_.="


@given(st.text(alphabet=TOKEN_CHARACTERS))
def test_verify_never_raises_on_token_shaped_text(rest):
    assert TokenAuthority(SECRET, 900, FakeClock()).verify("BWS_" + rest) is None


# --- certificate


def test_subject_alt_names_for_ip_and_dns_name():
    certPEM, _ = certificate.createSelfSigned(
        ["192.0.2.7", "bwscd.example", "2001:DB8:0:0::1"]
    )
    assert certificate.subjectAltNames(certPEM) == [
        "192.0.2.7",
        "bwscd.example",
        "2001:db8::1",
    ]


def test_private_key_matches_certificate():
    certPEM, keyPEM = certificate.createSelfSigned(["localhost"])
    assert keyPEM.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(keyPEM, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(certPEM)
    assert cert.public_key() == key.public_key()


def test_certificate_is_a_self_signed_ca_for_itself_only():
    """
    OpenSSL 3 accepts a self-signed leaf as a trust anchor too, so the
    handshake tests below cannot tell; stricter clients need the CA flag
    and keyCertSign.
    """
    certPEM, _ = certificate.createSelfSigned(["127.0.0.1"])
    cert = x509.load_pem_x509_certificate(certPEM)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.signature_hash_algorithm.name == "sha256"
    extensions = cert.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert (basic.value.ca, basic.value.path_length) == (True, 0)
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.key_cert_sign
    assert not usage.value.crl_sign
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.subject.rfc4514_string() == "O=bwscd,CN=127.0.0.1"


def test_common_name_truncated():
    name = "a" * 63 + "." + "b" * 20
    certPEM, _ = certificate.createSelfSigned([name, "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(certPEM)
    [commonName] = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    assert commonName.value == name[:64]
    assert certificate.subjectAltNames(certPEM) == [name, "127.0.0.1"]


def test_validity():
    certPEM, _ = certificate.createSelfSigned(["localhost"], days=30)
    notAfter = certificate.notValidAfter(certPEM)
    assert notAfter.utcoffset() is not None
    lifetime = notAfter - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)


def test_no_addresses():
    with pytest.raises(ValueError):
        certificate.createSelfSigned([])


@pytest.mark.parametrize("data", [b"", b"junk", b"-----BEGIN CERTIFICATE-----\n"])
def test_unparseable_certificate(data):
    with pytest.raises(certificate.CertificateError):
        certificate.subjectAltNames(data)
    with pytest.raises(certificate.CertificateError):
        certificate.notValidAfter(data)


def _handshake(tmp_path, serverAddresses, trustedPEM, serverHostname):
    """
    Serve TLS on 127.0.0.1 with a certificate for C{serverAddresses} and
    connect to it trusting only C{trustedPEM}, as the system controller
    does.  Returns what the client read, or raises the client's error.
    """
    certPEM, keyPEM = certificate.createSelfSigned(serverAddresses)
    if trustedPEM is None:
        trustedPEM = certPEM
    (tmp_path / "server.pem").write_bytes(certPEM)
    (tmp_path / "server.key").write_bytes(keyPEM)
    (tmp_path / "trusted.pem").write_bytes(trustedPEM)

    serverContext = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serverContext.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        try:
            connection, _ = listener.accept()
            with serverContext.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError):
            pass  # The client refused us; the client side reports it.

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        # The client's settings are Python's defaults plus strict X.509
        # checking, which Python 3.13 turns on by default.
        clientContext = ssl.create_default_context(cafile=tmp_path / "trusted.pem")
        clientContext.verify_flags |= ssl.VERIFY_X509_STRICT
        with socket.create_connection(listener.getsockname(), timeout=10) as raw:
            with clientContext.wrap_socket(raw, server_hostname=serverHostname) as tls:
                return tls.recv(5)
    finally:
        server.join(10)
        listener.close()


def test_certificate_is_its_own_trust_anchor(tmp_path):
    assert _handshake(tmp_path, ["127.0.0.1"], None, "127.0.0.1") == b"hello"


def test_certificate_verifies_dns_name(tmp_path):
    assert _handshake(tmp_path, ["127.0.0.1", "bwscd.test"], None, "bwscd.test") == (
        b"hello"
    )


def test_other_certificate_not_trusted(tmp_path):
    otherPEM, _ = certificate.createSelfSigned(["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, ["127.0.0.1"], otherPEM, "127.0.0.1")


def test_wrong_address_not_accepted(tmp_path):
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tmp_path, ["192.0.2.7", "bwscd.test"], None, "127.0.0.1")


# --- connection file

CERT_PEM, _ = certificate.createSelfSigned(["127.0.0.1"])
RSA_PUBLIC_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)
EC_PUBLIC_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)


def buildArguments(**overrides):
    arguments = dict(
        siteName="Station 7",
        applicationName="bwscd",
        applicationVersion="0.1.0",
        tokenURIs=["https://127.0.0.1:8443/auth/v1.0"],
        certificatesPEM=[CERT_PEM],
        userName="bws-0123456789ab",
        key="k" * 43,
    )
    arguments.update(overrides)
    return arguments


def validDocument():
    return json.loads(connectionfile.build(**buildArguments()))


def encode(document) -> bytes:
    return json.dumps(document).encode("utf-8")


def assertInvalid(document, *attributes):
    """
    Validating C{document} fails, with one line naming each of
    C{attributes}, in the order given.
    """
    data = document if isinstance(document, bytes) else encode(document)
    with pytest.raises(ConnectionFileError) as info:
        connectionfile.validate(data)
    lines = str(info.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == list(attributes), lines
    return str(info.value)


def test_build_validate_round_trip():
    data = connectionfile.build(**buildArguments())
    document = connectionfile.validate(data)
    assert list(document) == [
        "ConnectionFileVersion",
        "SiteName",
        "ApplicationName",
        "ApplicationVersion",
        "ContentDestinationAsNTPServer",
        "AuthenticationTokenURI",
        "HTTPSCertificate",
        "BlobAPIKey",
        "BlobAPIUserName",
        "ContainerType",
        "FullStoreAndReadSupport",
        "WantEncryption",
    ]
    assert document["ConnectionFileVersion"] == "1.0"
    assert document["SiteName"] == "Station 7"
    assert document["AuthenticationTokenURI"] == ["https://127.0.0.1:8443/auth/v1.0"]
    assert base64.b64decode(document["HTTPSCertificate"][0]) == CERT_PEM
    assert document["BlobAPIUserName"] == "bws-0123456789ab"
    assert document["BlobAPIKey"] == "k" * 43
    assert document["ContainerType"] == "mkv"
    assert document["ContentDestinationAsNTPServer"] is False
    assert document["FullStoreAndReadSupport"] is False
    assert document["WantEncryption"] is False
    assert b'\n  "SiteName": "Station 7",\n' in data


def test_build_plain_http():
    document = connectionfile.validate(
        connectionfile.build(
            **buildArguments(
                tokenURIs=["http://192.0.2.7:8080/auth/v1.0"], certificatesPEM=[]
            )
        )
    )
    assert "HTTPSCertificate" not in document


def test_build_with_encryption():
    document = connectionfile.validate(
        connectionfile.build(
            **buildArguments(
                containerType="mp4",
                fullStoreAndReadSupport=True,
                contentDestinationAsNTPServer=True,
                publicKeyPEM=RSA_PUBLIC_PEM,
                publicKeyId="site-key-1.pem",
            )
        )
    )
    assert document["WantEncryption"] is True
    assert base64.b64decode(document["PublicKey"]) == RSA_PUBLIC_PEM
    assert document["PublicKeyId"] == "site-key-1.pem"
    assert document["ContainerType"] == "mp4"
    assert document["FullStoreAndReadSupport"] is True
    assert document["ContentDestinationAsNTPServer"] is True
    assert list(document)[-3:] == ["WantEncryption", "PublicKey", "PublicKeyId"]


def test_build_non_ascii():
    siteName = "Polisstation Å" + "ö" * 49
    data = connectionfile.build(**buildArguments(siteName=siteName))
    assert "ö".encode() in data
    assert connectionfile.validate(data)["SiteName"] == siteName


@pytest.mark.parametrize(
    "overrides, attributes",
    [
        (dict(publicKeyPEM=RSA_PUBLIC_PEM), ["PublicKeyId"]),
        (dict(publicKeyId="id"), ["PublicKeyId"]),
        (dict(certificatesPEM=[]), ["HTTPSCertificate"]),
        (dict(tokenURIs=[]), ["AuthenticationTokenURI"]),
        (dict(siteName="s" * 65, key=""), ["SiteName", "BlobAPIKey"]),
    ],
)
def test_build_refuses_invalid(overrides, attributes):
    with pytest.raises(ConnectionFileError) as info:
        connectionfile.build(**buildArguments(**overrides))
    assert [line.split(":")[0] for line in str(info.value).splitlines()] == attributes


def test_length_limits_in_characters():
    document = validDocument()
    document.update(
        SiteName="ö" * 64,
        ApplicationName="a" * 256,
        ApplicationVersion="1" * 128,
        BlobAPIKey="k" * 64,
        BlobAPIUserName="u" * 64,
        AuthenticationTokenURI=["https://h/" + "p" * 502],
    )
    connectionfile.validate(encode(document))


@pytest.mark.parametrize(
    "name, value",
    [
        ("SiteName", "s" * 65),
        ("ApplicationName", "a" * 257),
        ("ApplicationVersion", "1" * 129),
        ("BlobAPIKey", "k" * 65),
        ("BlobAPIUserName", "u" * 65),
        ("BlobAPIKey", ""),
        ("BlobAPIUserName", ""),
        ("AuthenticationTokenURI", ["https://h/" + "p" * 503]),
    ],
)
def test_too_long(name, value):
    document = validDocument()
    document[name] = value
    message = assertInvalid(document, name)
    assert "characters" in message


@pytest.mark.parametrize(
    "name, value",
    [
        ("ConnectionFileVersion", 1.0),
        ("ConnectionFileVersion", "1.1"),
        ("SiteName", 7),
        ("SiteName", None),
        ("ApplicationName", ["bwscd"]),
        ("ApplicationVersion", 1),
        ("ContentDestinationAsNTPServer", "false"),
        ("ContentDestinationAsNTPServer", 0),
        ("AuthenticationTokenURI", "https://h/auth/v1.0"),
        ("AuthenticationTokenURI", [7]),
        ("BlobAPIKey", 1234),
        ("BlobAPIUserName", {"name": "u"}),
        ("HTTPSCertificate", b64(CERT_PEM)),
        ("ContainerType", "avi"),
        ("ContainerType", "MKV"),
        ("FullStoreAndReadSupport", "true"),
        ("FullStoreAndReadSupport", 1),
        ("WantEncryption", None),
    ],
)
def test_bad_types(name, value):
    document = validDocument()
    document[name] = value
    assertInvalid(document, name)


@pytest.mark.parametrize(
    "name",
    [
        "ConnectionFileVersion",
        "SiteName",
        "ApplicationName",
        "ApplicationVersion",
        "ContentDestinationAsNTPServer",
        "AuthenticationTokenURI",
        "BlobAPIKey",
        "BlobAPIUserName",
    ],
)
def test_missing_required(name):
    document = validDocument()
    del document[name]
    assert "required" in assertInvalid(document, name)


def test_optional_attributes_may_be_absent():
    document = validDocument()
    for name in ["ContainerType", "FullStoreAndReadSupport", "WantEncryption"]:
        del document[name]
    connectionfile.validate(encode(document))


def test_ten_uris_allowed_eleven_not():
    document = validDocument()
    document["AuthenticationTokenURI"] = [f"https://h{i}/auth/v1.0" for i in range(10)]
    connectionfile.validate(encode(document))
    document["AuthenticationTokenURI"].append("https://h10/auth/v1.0")
    assert "11" in assertInvalid(document, "AuthenticationTokenURI")


def test_eleven_certificates():
    document = validDocument()
    document["HTTPSCertificate"] = [b64(CERT_PEM)] * 11
    assertInvalid(document, "HTTPSCertificate")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "/auth/v1.0",
        "127.0.0.1:8443/auth/v1.0",
        "ftp://h/auth",
        "https:///auth/v1.0",
        "https://h:99999/auth",
        "https://[::1/auth",
    ],
)
def test_bad_uri(uri):
    document = validDocument()
    document["AuthenticationTokenURI"] = ["https://ok/auth/v1.0", uri]
    assert "entry 2" in assertInvalid(document, "AuthenticationTokenURI")


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        b64(b"not a certificate"),
        b64(RSA_PUBLIC_PEM),
        CERT_PEM.decode("ascii"),
        "A" * 16388,
    ],
)
def test_bad_certificate(value):
    document = validDocument()
    document["HTTPSCertificate"] = [value]
    assertInvalid(document, "HTTPSCertificate")


def test_https_without_certificate():
    document = validDocument()
    del document["HTTPSCertificate"]
    message = assertInvalid(document, "HTTPSCertificate")
    assert "https" in message


def test_mixed_schemes_need_certificate():
    document = validDocument()
    document["AuthenticationTokenURI"] = ["http://h/auth/v1.0", "https://h/auth/v1.0"]
    connectionfile.validate(encode(document))
    del document["HTTPSCertificate"]
    assertInvalid(document, "HTTPSCertificate")


def test_http_with_certificate():
    document = validDocument()
    document["AuthenticationTokenURI"] = ["http://h/auth/v1.0"]
    assertInvalid(document, "HTTPSCertificate")


def encryptedDocument():
    document = validDocument()
    document.update(
        WantEncryption=True, PublicKey=b64(RSA_PUBLIC_PEM), PublicKeyId="key-1"
    )
    return document


def test_encryption_consistent():
    connectionfile.validate(encode(encryptedDocument()))


@pytest.mark.parametrize("missing", ["PublicKey", "PublicKeyId"])
def test_encryption_without_key(missing):
    document = encryptedDocument()
    del document[missing]
    assertInvalid(document, missing)


@pytest.mark.parametrize("want", [False, None])
def test_key_without_encryption(want):
    document = encryptedDocument()
    if want is None:
        del document["WantEncryption"]
    else:
        document["WantEncryption"] = want
    assertInvalid(document, "PublicKey", "PublicKeyId")


@pytest.mark.parametrize(
    "name, value",
    [
        ("PublicKey", b64(EC_PUBLIC_PEM)),
        ("PublicKey", b64(b"no key")),
        ("PublicKey", RSA_PUBLIC_PEM.decode("ascii")),
        ("PublicKey", "A" * 2052),
        ("PublicKeyId", ""),
        ("PublicKeyId", "i" * 129),
        ("PublicKeyId", 1),
    ],
)
def test_bad_encryption_values(name, value):
    document = encryptedDocument()
    document[name] = value
    assertInvalid(document, name)


def test_unknown_attribute():
    document = validDocument()
    document["Encryption"] = True
    assert "unknown" in assertInvalid(document, "Encryption")


def test_repeated_attribute():
    data = connectionfile.build(**buildArguments())
    data = data.replace(b"{", b'{\n  "SiteName": "Other",', 1)
    assertInvalid(data, "SiteName")


def test_all_problems_listed():
    document = validDocument()
    document.update(SiteName=1, ContainerType="avi", Extra=1)
    del document["BlobAPIKey"]
    assertInvalid(document, "SiteName", "BlobAPIKey", "ContainerType", "Extra")


@pytest.mark.parametrize(
    "value", [" key", "key ", "nyckel-ö", "key\r\nX-Evil: 1", "\t"]
)
def test_credential_not_header_safe(value):
    document = validDocument()
    document["BlobAPIKey"] = value
    assertInvalid(document, "BlobAPIKey")


def test_credential_with_inner_space():
    document = validDocument()
    document["BlobAPIKey"] = "correct horse"
    connectionfile.validate(encode(document))


def test_oversize():
    document = validDocument()
    document["SiteName"] = "s"
    data = encode(document)
    padded = data[:-1] + b" " * (connectionfile.MAX_SIZE - len(data)) + b"}"
    assert len(padded) == connectionfile.MAX_SIZE
    connectionfile.validate(padded)
    with pytest.raises(ConnectionFileError, match="65537 bytes"):
        connectionfile.validate(padded + b" ")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe{}",
        b"{",
        b"[]",
        b'"text"',
        b"[" * 30000,
        "\ufeff{}".encode("utf-8"),
    ],
)
def test_not_a_json_object(data):
    with pytest.raises(ConnectionFileError):
        connectionfile.validate(data)
