"""
The connection file: the JSON document an administrator uploads to the Body
worn manager so that the system controller can find and log in to us.

The manager's only feedback on a bad file is a generic failure, so
L{validate} holds a file to the spec's table (plus the raised
C{ApplicationVersion} limit of the API's newer revision, v1.6.10) and says exactly what is wrong;
L{build} refuses to write a file that would fail it.
"""

import base64
import collections
import json
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MAX_SIZE = 65536
MAX_URIS = 10
MAX_CERTIFICATES = 10
CONTAINER_TYPES = ("mkv", "mp4")
"""The video containers the controller may be asked for (C{ContainerType})."""
DEFAULT_CONTAINER_TYPE = "mkv"
VERSION = "1.0"

# A check returns why a value is wrong, or None if it is right.
_Check = Callable[[Any], str | None]


class ConnectionFileError(ValueError):
    """
    The connection file is invalid.  The message names each wrong attribute
    and why, one per line.
    """


def _kind(value: Any) -> str:
    """The JSON type of a parsed value, as a message would name it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _text(maxLength: int, minLength: int = 0) -> _Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, not {_kind(value)}"
        if len(value) > maxLength:
            return f"is {len(value)} characters long, at most {maxLength} allowed"
        if len(value) < minLength:
            return f"must be at least {minLength} characters long"
        return None

    return check


def _credential(value: Any) -> str | None:
    """
    A user name or key: the controller sends it as an HTTP header value, so
    anything but printable ASCII, or whitespace that header parsing strips,
    would make the login fail.
    """
    reason = _text(64, 1)(value)
    if reason is None and not (
        value.isascii() and value.isprintable() and value == value.strip()
    ):
        reason = (
            "must be printable ASCII without leading or trailing spaces "
            "(it is sent in an HTTP header)"
        )
    return reason


def _oneOf(*choices: str) -> _Check:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in choices:
            return None
        allowed = " or ".join(json.dumps(choice) for choice in choices)
        shown = json.dumps(value) if isinstance(value, str) else _kind(value)
        return f"must be {allowed}, not {shown[:70]}"

    return check


def _boolean(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    return f"must be true or false, not {_kind(value)}"


def _arrayOf(check: _Check, maxItems: int) -> _Check:
    def checkArray(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be an array, not {_kind(value)}"
        if not 1 <= len(value) <= maxItems:
            return f"has {len(value)} entries, 1 to {maxItems} allowed"
        reasons = [
            f"entry {index} {reason}"
            for index, item in enumerate(value, 1)
            if (reason := check(item)) is not None
        ]
        return "; ".join(reasons) or None

    return checkArray


def _uri(value: Any) -> str | None:
    reason = _text(512)(value)
    if reason is not None:
        return reason
    try:
        parts = urlsplit(value)
        # Reading the port checks it: a number in range.
        parts.port
    except ValueError as e:
        return f"is not a valid URI ({e})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http or https URI with a host"
    return None


def _base64(value: str) -> bytes:
    """Decode standard base64, strictly: stray characters are an error."""
    return base64.b64decode(value, validate=True)


def _certificate(value: Any) -> str | None:
    reason = _text(16384, 1)(value)
    if reason is not None:
        return reason
    try:
        x509.load_pem_x509_certificate(_base64(value))
    except ValueError:
        return "is not the base64 of a PEM X.509 certificate"
    return None


def _publicKey(value: Any) -> str | None:
    reason = _text(2048, 1)(value)
    if reason is not None:
        return reason
    try:
        key = serialization.load_pem_public_key(_base64(value))
    except (ValueError, UnsupportedAlgorithm):
        return "is not the base64 of a PEM public key"
    if not isinstance(key, rsa.RSAPublicKey):
        return "must be an RSA key (content keys are wrapped with RSA-OAEP)"
    return None


_REQUIRED: dict[str, _Check] = {
    "ConnectionFileVersion": _oneOf(VERSION),
    "SiteName": _text(64),
    "ApplicationName": _text(256),
    "ApplicationVersion": _text(128),
    "ContentDestinationAsNTPServer": _boolean,
    "AuthenticationTokenURI": _arrayOf(_uri, MAX_URIS),
    "BlobAPIKey": _credential,
    "BlobAPIUserName": _credential,
}

# Whether these may or must be present depends on other attributes; see
# _presenceProblems.
_OPTIONAL: dict[str, _Check] = {
    "HTTPSCertificate": _arrayOf(_certificate, MAX_CERTIFICATES),
    "ContainerType": _oneOf(*CONTAINER_TYPES),
    "FullStoreAndReadSupport": _boolean,
    "WantEncryption": _boolean,
    "PublicKey": _publicKey,
    "PublicKeyId": _text(128, 1),
}


def _uniqueNames(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """
    Build a JSON object, refusing repeated names: which of the values the
    controller would use is anybody's guess.
    """
    counts = collections.Counter(name for name, _ in pairs)
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        raise ConnectionFileError(
            "\n".join(f"{name}: appears more than once" for name in repeated)
        )
    return dict(pairs)


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_SIZE:
        raise ConnectionFileError(
            f"the file is {len(data)} bytes, at most {MAX_SIZE} allowed"
        )
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_uniqueNames)
    except UnicodeDecodeError as e:
        raise ConnectionFileError(f"the file is not UTF-8: {e}") from e
    except json.JSONDecodeError as e:
        raise ConnectionFileError(f"the file is not JSON: {e}") from e
    except RecursionError as e:
        raise ConnectionFileError("the file nests arrays or objects too deeply") from e
    if not isinstance(document, dict):
        raise ConnectionFileError(
            f"the file must hold a JSON object, not {_kind(document)}"
        )
    return document


def _presenceProblems(document: dict[str, Any], valid: set[str]) -> list[str]:
    """
    The rules that tie optional attributes to others.  Each is checked only
    once the attribute it depends on is valid, so that one mistake is not
    reported twice.
    """
    problems = []
    if "AuthenticationTokenURI" in valid:
        secure = any(
            urlsplit(uri).scheme == "https"
            for uri in document["AuthenticationTokenURI"]
        )
        if secure and "HTTPSCertificate" not in document:
            problems.append(
                "HTTPSCertificate: required, as an AuthenticationTokenURI is https"
            )
        if not secure and "HTTPSCertificate" in document:
            problems.append(
                "HTTPSCertificate: not allowed, as every AuthenticationTokenURI "
                "is plain http"
            )
    if "WantEncryption" in valid or "WantEncryption" not in document:
        wanted = document.get("WantEncryption", False)
        for name in ("PublicKey", "PublicKeyId"):
            if wanted and name not in document:
                problems.append(f"{name}: required, as WantEncryption is true")
            if not wanted and name in document:
                problems.append(f"{name}: not allowed unless WantEncryption is true")
    return problems


def validate(data: bytes) -> dict[str, Any]:
    """
    Check a connection file against the spec.

    @return: the parsed file.
    @raise ConnectionFileError: naming every wrong, missing or unknown
        attribute, one per line.
    """
    document = _parse(data)
    problems = []
    valid = set()
    for name, check in (_REQUIRED | _OPTIONAL).items():
        if name not in document:
            if name in _REQUIRED:
                problems.append(f"{name}: required")
            continue
        reason = check(document[name])
        if reason is None:
            valid.add(name)
        else:
            problems.append(f"{name}: {reason}")
    problems.extend(_presenceProblems(document, valid))
    problems.extend(
        f"{name}: unknown attribute"
        for name in document
        if name not in _REQUIRED and name not in _OPTIONAL
    )
    if problems:
        raise ConnectionFileError("\n".join(problems))
    return document


def _encode(pem: bytes) -> str:
    return base64.b64encode(pem).decode("ascii")


def build(
    *,
    siteName: str,
    applicationName: str,
    applicationVersion: str,
    tokenURIs: list[str],
    certificatesPEM: list[bytes],
    userName: str,
    key: str,
    containerType: str = DEFAULT_CONTAINER_TYPE,
    fullStoreAndReadSupport: bool = False,
    contentDestinationAsNTPServer: bool = False,
    publicKeyPEM: bytes | None = None,
    publicKeyId: str | None = None,
) -> bytes:
    """
    Write a connection file, attributes in the order of the spec's template.

    @param certificatesPEM: the certificates the controller is to trust for
        HTTPS, as PEM; none for plain HTTP.
    @param publicKeyPEM: the RSA public key to encrypt content with; giving
        one turns on C{WantEncryption}, and then C{publicKeyId} is required.

    @return: the file, as UTF-8 JSON.
    @raise ConnectionFileError: if the file would not pass L{validate}.
    """
    document: dict[str, Any] = {
        "ConnectionFileVersion": VERSION,
        "SiteName": siteName,
        "ApplicationName": applicationName,
        "ApplicationVersion": applicationVersion,
        "ContentDestinationAsNTPServer": contentDestinationAsNTPServer,
        "AuthenticationTokenURI": list(tokenURIs),
    }
    # Absent, not empty, is how the spec says "use plain HTTP".
    if certificatesPEM:
        document["HTTPSCertificate"] = [_encode(pem) for pem in certificatesPEM]
    document["BlobAPIKey"] = key
    document["BlobAPIUserName"] = userName
    document["ContainerType"] = containerType
    document["FullStoreAndReadSupport"] = fullStoreAndReadSupport
    document["WantEncryption"] = publicKeyPEM is not None
    # Each is written when given, even alone, so that validate reports the
    # mismatch rather than build silently dropping it.
    if publicKeyPEM is not None:
        document["PublicKey"] = _encode(publicKeyPEM)
    if publicKeyId is not None:
        document["PublicKeyId"] = publicKeyId
    data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    validate(data)
    return data
