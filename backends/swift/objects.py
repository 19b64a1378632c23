"""
What this backend keeps where in the Swift account (docs/swift-backend.md),
and how bwscd's metadata and digests travel as Swift headers.

  - a container C{C} is the Swift container C{PREFIX + C}, its metadata
    C{X-Container-Meta-*};
  - an object is a plain Swift object, or a Static Large Object when it is
    larger than a segment (or of a length not known in advance), its
    metadata C{X-Object-Meta-*} and its Content-Type Swift's; bwscd's own
    keys beside it (L{bwscd.backends.storemeta}, and L{UPLOAD} on a large
    one);
  - everything else lives in one container of bwscd's own, C{PREFIX +
    .bwscd}, which listings leave out: C{state/NAME} (the registry and the
    service's documents), C{segments/ID/NNNNNNNN} (a large object's
    segments) and C{uploads/ID} (a large upload under way: where it goes,
    removed once its manifest is written).
"""

import time

from bwscd import constraints
from bwscd.backends import layout, storemeta
from bwscd.interfaces import ContainerInfo, Digests, ObjectInfo

OWN = layout.STATE_DIRECTORY
"""
The name, after the prefix, of the container of bwscd's own objects: a name
no container of the API has (the engine refuses names starting with a dot).
"""

UPLOAD = storemeta.RESERVED + "Upload"
"""On a large object's manifest: the upload whose segments it names."""
OWN_KEYS = {**storemeta.LARGEST_OWN, UPLOAD: "0" * 32}


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
    Refuse, as the API's 400, metadata this store can't keep as given
    (L{storemeta.storable}, within the cluster's C{/info} limits).
    """
    storemeta.storable(metadata, limits.get("max_meta_count", constraints.MAX_META_COUNT),
                       limits.get("max_meta_overall_size", constraints.MAX_META_OVERALL_SIZE),
                       OWN_KEYS, underscores=False)


def metadataHeaders(kind: str, metadata: dict[str, str], merge: bool = False) -> dict[str, str]:
    """
    C{metadata} as request headers: to set them, or with C{merge} (a
    container's), to merge them, where an empty value removes a key.
    """
    headers = storemeta.headersFor(f"X-{kind}-Meta-", {k: v for k, v in metadata.items()
                                                       if v or not merge})
    if merge:
        headers.update(storemeta.headersFor(f"X-Remove-{kind}-Meta-", {
            k: "x" for k, v in metadata.items() if not v}))
    return headers


def metadataOf(kind: str, headers) -> dict[str, str]:
    """Every C{X-KIND-Meta-*} of C{headers}, keys canonical."""
    return storemeta.metadataOf(f"x-{kind}-meta-", headers)


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
    metadata, own = storemeta.ownMetadata(metadataOf(constraints.OBJECT, response.headers))
    length = int(response.header("content-length", "0"))
    if response.status == 206:
        length = int(response.header("content-range").rsplit("/", 1)[1])
    md5 = own.get(storemeta.MD5) or response.header("etag", "").strip('"')
    typed = storemeta.UNTYPED not in own
    return ObjectInfo(container, name, Digests(length, md5, own.get(storemeta.SHA256, "")),
                      timestamp(response), metadata,
                      contentType=response.header("content-type") if typed else None)


def containerInfo(name: str, response, count: int, size: int, newest: float) -> ContainerInfo:
    """
    A container as its C{HEAD} gives its metadata, and its listing the
    C{count} of its objects, their C{size} and the time the C{newest} was
    stored (Swift's container timestamps don't move with its objects).
    """
    return ContainerInfo(name, metadataOf(constraints.CONTAINER, response.headers),
                         count, size, max(timestamp(response), newest))
