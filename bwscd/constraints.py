"""
The protocol's rules for names and metadata, in one place.

Every name and every metadata header that reaches a backend has passed
through this module, so a backend can rely on: valid UTF-8, no control
characters, no C{.} or C{..} path segment, no empty segment, bounded sizes.
The limits are OpenStack Swift's defaults, which the API inherits; metadata sizes are
counted on the decoded UTF-8, so that percent-encoding a user's non-ASCII
name does not eat the budget the API promises it.
"""

import mimetypes
import posixpath
import re
import unicodedata
from urllib.parse import quote, unquote_to_bytes

from bwscd.errors import BadRequest, UnprocessableEntity

MAX_CONTAINER_NAME_LENGTH = 256
MAX_OBJECT_NAME_LENGTH = 1024
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_CONTENT_TYPE_LENGTH = 256
"""Bytes of an object's Content-Type (a media type and its parameters)."""
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_TOKEN_LENGTH = 1024
"""Characters of an auth token: longer ones are refused unread."""
LISTING_LIMIT = 10_000
"""Names in one listing, as Swift's default C{container_listing_limit}."""
GNSS_CHECK_LIMIT = 16 << 20
"""Bytes of a GNSS track held in memory to check it: tracks are small (a
point every few seconds), a larger one is stored unchecked."""

SWIFT_METHODS = ("GET", "PUT", "POST", "HEAD", "DELETE", "COPY")
"""The methods of the Swift API: another is not allowed at all (405)."""

# The two kinds of thing that carry metadata, as spelled in header names.
CONTAINER = "Container"
OBJECT = "Object"

# The containers the API names; every other container holds evidence.
SYSTEM = "System"
USERS = "Users"
DEVICES = "Devices"

COMPLETE = "Complete"
"""
The C{Status} of a recording's container once the camera system has sent
all of it (Recording container metadata).
"""

# A Content-Type as kept and sent back: printable ASCII, no control
# characters, something before the end.
_CONTENT_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")
# Python's own table of types by file name suffix, without the machine's
# /etc/mime.types: the same guess wherever bwscd runs.
_TYPES = mimetypes.MimeTypes()

# Characters left as they are when metadata is sent back percent-encoded:
# RFC 3986's unreserved set plus the delimiters that are safe in a header
# value.  "+" and "%" are always encoded so that no decoder can misread them.
_META_SAFE = "-._~!$&'()*,;=:@/"

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def _decoded(raw: bytes, what: str) -> str:
    """
    Percent-decode C{raw} to UTF-8 text without control characters.  A C{+}
    stays a C{+}: the API percent-encodes, it does not form-encode.
    """
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not percent-encoded UTF-8")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise BadRequest(f"{what} contains a control character")
    return text


def containerName(raw: bytes) -> str:
    """
    Decode and check a container name as it appears, percent-encoded, in a
    request path.

    @raise BadRequest: if it is not a name bwscd will ever store.
    """
    name = _decoded(raw, "container name")
    size = len(name.encode("utf-8"))
    if not 0 < size <= MAX_CONTAINER_NAME_LENGTH:
        raise BadRequest(
            f"container name must be 1 to {MAX_CONTAINER_NAME_LENGTH} bytes"
        )
    if "/" in name:
        raise BadRequest("container name contains '/'")
    if name.startswith("."):
        # Also rules out "." and "..": hidden names are the backends' own.
        raise BadRequest("container name starts with '.'")
    return name


def objectName(raw: bytes) -> str:
    """
    Decode and check an object name (everything after the container in the
    path, which may contain C{/}).

    @raise BadRequest: if it is not a name bwscd will ever store.
    """
    name = _decoded(raw, "object name")
    size = len(name.encode("utf-8"))
    if not 0 < size <= MAX_OBJECT_NAME_LENGTH:
        raise BadRequest(f"object name must be 1 to {MAX_OBJECT_NAME_LENGTH} bytes")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequest("object name has an empty, '.' or '..' segment")
    return name


def canonicalKey(key: str) -> str:
    """
    The canonical spelling of a metadata key: first letter and every letter
    after a hyphen upper case, the rest lower case.  Header names are
    case-insensitive, so this is the one spelling that is stored; it is the
    spelling the vendor's example server writes to its JSON files (for
    instance C{Triggeron}).
    """
    return "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))


def parseMetadata(headers, kind: str) -> dict[str, str]:
    """
    The metadata carried by a request's headers, keys canonical and values
    percent-decoded.  C{X-Remove-<kind>-Meta-<Key>} and an empty value both
    map to C{""}, which means "delete this key" where metadata is merged.

    @param headers: the request's L{twisted.web.http_headers.Headers}.
    @param kind: L{CONTAINER} or L{OBJECT}.
    @raise BadRequest: on a bad encoding, a conflict or a broken limit.
    """
    prefixes = {
        f"x-{kind.lower()}-meta-".encode("ascii"): False,
        f"x-remove-{kind.lower()}-meta-".encode("ascii"): True,
    }
    metadata: dict[str, str] = {}
    overall = 0
    for rawName, rawValues in headers.getAllRawHeaders():
        lowered = rawName.lower()
        for prefix, removal in prefixes.items():
            if lowered.startswith(prefix):
                break
        else:
            continue
        key = canonicalKey(rawName[len(prefix) :].decode("ascii"))
        if not key:
            raise BadRequest(f"metadata header {ascii(rawName)[2:-1]} has no key")
        if len(rawValues) != 1 or key in metadata:
            raise BadRequest(f"metadata key {key} given more than once")
        value = "" if removal else _decoded(rawValues[0], f"metadata value of {key}")
        if len(key) > MAX_META_NAME_LENGTH:
            raise BadRequest(
                f"metadata key {key[:32]}... longer than {MAX_META_NAME_LENGTH} bytes"
            )
        if len(value.encode("utf-8")) > MAX_META_VALUE_LENGTH:
            raise BadRequest(
                f"metadata value of {key} longer than {MAX_META_VALUE_LENGTH} bytes"
            )
        metadata[key] = value
        overall += len(key) + len(value.encode("utf-8"))
    if len(metadata) > MAX_META_COUNT:
        raise BadRequest(f"more than {MAX_META_COUNT} metadata items")
    if overall > MAX_META_OVERALL_SIZE:
        raise BadRequest(f"metadata larger than {MAX_META_OVERALL_SIZE} bytes")
    return metadata


def encodedValue(value: str) -> str:
    """A metadata value as a header carries it: percent-encoded UTF-8, ASCII."""
    return quote(value, safe=_META_SAFE)


def metadataHeaders(metadata: dict[str, str], kind: str) -> list[tuple[bytes, bytes]]:
    """
    Stored metadata as response headers, values percent-encoded UTF-8.
    """
    return [
        (f"X-{kind}-Meta-{key}".encode("ascii"), encodedValue(value).encode("ascii"))
        for key, value in sorted(metadata.items())
    ]


def objectMetadata(headers) -> dict[str, str]:
    """
    The metadata an object PUT or POST sets: all of it, replacing what was
    there, so a key with an empty value is simply not set.
    """
    return mergeMetadata({}, parseMetadata(headers, OBJECT))


def mergeMetadata(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    """
    Container metadata after a PUT or POST: an empty value deletes its key,
    any other value adds or replaces it.
    """
    merged = dict(current)
    for key, value in changes.items():
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    return merged


def givenContentType(headers) -> str | None:
    """
    The Content-Type an object PUT gives, stripped; L{None} if none.

    @raise BadRequest: for more than one, one longer than
        L{MAX_CONTENT_TYPE_LENGTH}, or one that is not printable ASCII.
    """
    values = headers.getRawHeaders(b"content-type")
    if values is None:
        return None
    if len(values) != 1:
        raise BadRequest("Content-Type given more than once")
    value = values[0].strip()
    if len(value) > MAX_CONTENT_TYPE_LENGTH:
        raise BadRequest(f"Content-Type longer than {MAX_CONTENT_TYPE_LENGTH} bytes")
    if not _CONTENT_TYPE.fullmatch(value.decode("latin-1")):
        raise BadRequest("Content-Type is empty or not printable ASCII")
    return value.decode("ascii")


def contentType(name: str, given: str | None) -> str:
    """
    An object's Content-Type: the one given, else, as OpenStack Swift does,
    the one its name's suffix suggests (Python's table, C{.json} is
    C{application/json}), else L{DEFAULT_CONTENT_TYPE}.
    """
    # The suffix alone: guess_type reads a whole name as a URL ("data:...").
    suffix = posixpath.splitext(name)[1]
    return given or _TYPES.guess_type("object" + suffix, strict=False)[0] or DEFAULT_CONTENT_TYPE


def requireBodyLength(headers) -> None:
    """
    An object PUT says how its body ends: a Content-Length, or chunked
    encoding.

    @raise BadRequest: if it says neither.
    """
    if not (headers.hasHeader(b"content-length") or headers.hasHeader(b"transfer-encoding")):
        raise BadRequest("an object needs Content-Length or chunked encoding")


def expectedMD5(headers) -> str | None:
    """
    The MD5 an object PUT's C{ETag} says its body has (lower-case hex, quotes
    stripped); L{None} without one.

    @raise UnprocessableEntity: for an ETag that is not an MD5 hex digest: no
        body can ever match it.
    """
    etag = headers.getRawHeaders(b"etag")
    if etag is None:
        return None
    md5 = etag[-1].decode("latin-1").strip().strip('"').lower()
    if not _MD5_HEX.match(md5):
        raise UnprocessableEntity("ETag is not an MD5 hex digest: it can never match")
    return md5
