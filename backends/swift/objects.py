"""
What this backend keeps where in the Swift account (docs/swift-backend.md),
and how bwscd's metadata and digests travel as Swift headers.

  - a container C{C} is the Swift container C{PREFIX + C}, its metadata
    C{X-Container-Meta-*};
  - an object is a plain Swift object, or a Static Large Object when it is
    larger than a segment (or of a length not known in advance), its
    metadata C{X-Object-Meta-*} and its Content-Type Swift's; bwscd's own
    keys beside it (L{SHA256}, and L{MD5} and L{UPLOAD} on a large one,
    whose ETag is not its bytes' MD5);
  - everything else lives in one container of bwscd's own, C{PREFIX +
    .bwscd}, which listings leave out: C{state/NAME} (the registry and the
    service's documents), C{segments/ID/NNNNNNNN} (a large object's
    segments) and C{uploads/ID} (a large upload under way: where it goes,
    removed once its manifest is written).
"""

import time

from bwscd import constraints
from bwscd.errors import BadRequest
from bwscd.interfaces import ContainerInfo, Digests, ObjectInfo

OWN = ".bwscd"
"""The name, after the prefix, of the container that holds bwscd's own objects."""

RESERVED = "Bwscd-"
"""Metadata keys bwscd keeps beside an object's own: refused from clients."""
SHA256 = RESERVED + "Sha256"
MD5 = RESERVED + "Md5"
UPLOAD = RESERVED + "Upload"
UNTYPED = RESERVED + "Untyped"
"""
Set on an object stored without a Content-Type, which Swift gives one of
its own: bwscd says it has none, as the contract has it.
"""


def statePath(name: str) -> str:
    return f"state/{name}"


def segmentPath(upload: str, index: int) -> str:
    return f"segments/{upload}/{index:08d}"


def segmentsPrefix(upload: str) -> str:
    return f"segments/{upload}/"


def uploadPath(upload: str) -> str:
    return f"uploads/{upload}"


# Metadata as headers.


def storable(metadata: dict[str, str], limits: dict) -> None:
    """
    Refuse, as the API's 400, metadata this store can't keep as given:
    keys Swift would change (its WSGI server turns C{_} into C{-}), keys of
    bwscd's own, and more than the cluster's limits (C{/info}) allow once
    bwscd's own keys are added.
    """
    for key in metadata:
        if "_" in key:
            raise BadRequest(f"metadata key {key} has a '_', which this store can't keep")
        if key.startswith(RESERVED):
            raise BadRequest(f"metadata keys starting {RESERVED} are this store's own")
    own = {SHA256: "0" * 64, MD5: "0" * 32, UPLOAD: "0" * 32, UNTYPED: "1"}
    count = len(metadata) + len(own)
    size = sum(len(k) + len(v.encode("utf-8")) for k, v in {**metadata, **own}.items())
    if count > limits.get("max_meta_count", constraints.MAX_META_COUNT):
        raise BadRequest(f"more metadata items than this store keeps "
                         f"({limits['max_meta_count'] - len(own)})")
    if size > limits.get("max_meta_overall_size", constraints.MAX_META_OVERALL_SIZE):
        raise BadRequest(f"metadata larger than this store keeps "
                         f"({limits['max_meta_overall_size'] - 100} bytes)")


def metadataHeaders(kind: str, metadata: dict[str, str], merge: bool = False) -> dict[str, str]:
    """
    C{metadata} as request headers: to set them, or with C{merge} (a
    container's), to merge them, where an empty value removes a key.
    """
    headers = {}
    for key, value in metadata.items():
        if value or not merge:
            headers[f"X-{kind}-Meta-{key}"] = value
        else:
            headers[f"X-Remove-{kind}-Meta-{key}"] = "x"
    return headers


def metadataOf(kind: str, headers) -> dict[str, str]:
    """Every C{X-KIND-Meta-*} of C{headers}, keys canonical."""
    prefix = f"x-{kind.lower()}-meta-"
    return {constraints.canonicalKey(name[len(prefix):]): value
            for name, value in headers if name.startswith(prefix)}


def ownMetadata(metadata: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split stored metadata into the client's and bwscd's own."""
    own = {k: v for k, v in metadata.items() if k.startswith(RESERVED)}
    return {k: v for k, v in metadata.items() if k not in own}, own


def timestamp(response) -> float:
    value = response.header("x-timestamp") or response.header("x-put-timestamp")
    return float(value) if value else time.time()


def objectInfo(container: str, name: str, response) -> ObjectInfo:
    """
    What a C{HEAD} (or C{GET}) of an object says of it.  An object without
    bwscd's SHA-256 (copied in by other means, or stored by a bwscd that
    was killed between its C{PUT} and the C{POST} that adds it) has C{""}
    there: the backend measures it (L{Measured<bwscd.backends.common.Measured>}).
    """
    metadata, own = ownMetadata(metadataOf(constraints.OBJECT, response.headers))
    length = int(response.header("content-length", "0"))
    if response.status == 206:
        length = int(response.header("content-range").rsplit("/", 1)[1])
    md5 = own.get(MD5) or response.header("etag", "").strip('"')
    return ObjectInfo(container, name, Digests(length, md5, own.get(SHA256, "")),
                      timestamp(response), metadata,
                      contentType=None if UNTYPED in own else response.header("content-type"))


def containerInfo(name: str, response, count: int, size: int, newest: float) -> ContainerInfo:
    """
    A container as its C{HEAD} gives its metadata, and its listing the
    C{count} of its objects, their C{size} and the time the C{newest} was
    stored (Swift's container timestamps don't move with its objects).
    """
    return ContainerInfo(name, metadataOf(constraints.CONTAINER, response.headers),
                         count, size, max(timestamp(response), newest))
