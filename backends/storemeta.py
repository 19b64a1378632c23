"""
An object's metadata on a remote object store that keeps it as headers
(Swift's C{X-Object-Meta-*}, S3's C{x-amz-meta-*}): the client's keys, and
bwscd's own beside them (the SHA-256 it measured, the MD5 where the store's
ETag is not one, that no Content-Type was given), which clients may not
set.

Imports only bwscd's top-level modules.
"""

import urllib.parse

from bwscd import constraints
from bwscd.errors import BadRequest

RESERVED = "Bwscd-"
"""Metadata keys bwscd keeps beside an object's own: refused from clients."""
SHA256 = RESERVED + "Sha256"
MD5 = RESERVED + "Md5"
UNTYPED = RESERVED + "Untyped"
"""
Set on an object stored without a Content-Type, which the store gives one
of its own: bwscd says it has none, as the contract has it.
"""
LARGEST_OWN = {SHA256: "0" * 64, MD5: "0" * 32, UNTYPED: "1"}
"""bwscd's own keys at their largest, which must fit beside the client's."""


def storable(metadata: dict[str, str], count: int, size: int, own: dict[str, str],
             underscores: bool = True) -> None:
    """
    Refuse, as the API's 400, metadata a store can't keep as given: keys of
    bwscd's own; with C{underscores} false, keys with a C{_} (which Swift's
    WSGI server turns into C{-}); more than C{count} items or C{size}
    bytes of keys and values once bwscd's C{own} (at their largest) are added.
    """
    for key in metadata:
        if key.startswith(RESERVED):
            raise BadRequest(f"metadata keys starting {RESERVED} are this store's own")
        if not underscores and "_" in key:
            raise BadRequest(f"metadata key {key} has a '_', which this store can't keep")
    if len(metadata) + len(own) > count:
        raise BadRequest(f"more metadata items than this store keeps ({count - len(own)})")
    overall = sum(len(k) + len(v.encode("utf-8")) for k, v in {**metadata, **own}.items())
    if overall > size:
        reserved = sum(len(k) + len(v) for k, v in own.items())
        raise BadRequest(f"metadata larger than this store keeps ({size - reserved} bytes)")


def headersFor(prefix: str, metadata: dict[str, str], encoded: bool = False) -> dict[str, str]:
    """
    C{metadata} as request headers named C{prefix} + key; with C{encoded},
    values percent-encoded (S3 keeps only ASCII there, as the API sends
    metadata), else as UTF-8 (Swift keeps it as it is).
    """
    return {f"{prefix}{key}": constraints.encodedValue(value) if encoded else value
            for key, value in metadata.items()}


def metadataOf(prefix: str, headers, encoded: bool = False) -> dict[str, str]:
    """
    Every header of C{headers} (names lower case) named C{prefix} + key,
    keys canonical; with C{encoded}, values percent-decoded.
    """
    prefix = prefix.lower()
    return {constraints.canonicalKey(name[len(prefix):]):
            urllib.parse.unquote(value) if encoded else value
            for name, value in headers if name.startswith(prefix)}


def ownMetadata(metadata: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split stored metadata into the client's and bwscd's own."""
    own = {k: v for k, v in metadata.items() if k.startswith(RESERVED)}
    return {k: v for k, v in metadata.items() if k not in own}, own
