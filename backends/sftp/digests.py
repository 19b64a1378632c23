"""
The digests records of the SFTP backend: what the filesystem backend keeps
in extended attributes, which SFTP can't set, kept in a tree of their own,
C{.bwscd/digests/<Container>/<Object>}: the object's length, MD5, SHA-256
and Content-Type, and the modification time of the file they describe.  A
record is written before its object appears; one that does not match the
file there (copied in or replaced by hand) is not used.
"""

import json
import posixpath

from twisted.internet.defer import inlineCallbacks

from bwscd.backends import common, layout
from bwscd.interfaces import Digests

DIGESTS = posixpath.join(layout.STATE_DIRECTORY, "digests")


def digestsPath(container: str, name: str) -> str:
    """
    Where an object's digests are kept: a tree beside the containers that
    mirrors theirs, so that a name that fits the one fits the other.
    """
    return posixpath.join(DIGESTS, layout.object(container, name))


def record(digests: Digests, contentType: str | None, mtime) -> bytes:
    """
    The record of an object's digests and Content-Type, for its file
    modified at C{mtime} (as the server gives it).
    """
    return json.dumps({
        "length": digests.length, "md5": digests.md5, "sha256": digests.sha256,
        "contentType": contentType,
        # The object's file keeps the time of its last write through the
        # rename: this tells the digests of this file from a stale record.
        "mtime": mtime,
    }).encode("ascii")


@inlineCallbacks
def kept(session, container, name, attributes) -> tuple[Digests, str | None]:
    """
    The digests and the Content-Type kept for the object, or its digests
    computed from it and no Content-Type when there are none for the
    file that is there now (copied in or replaced by hand).
    """
    data = yield session.read(digestsPath(container, name))
    try:
        kept = json.loads(data)
        if (kept["length"], kept["mtime"]) == (attributes["size"], attributes["mtime"]):
            return (Digests(kept["length"], kept["md5"], kept["sha256"]),
                    kept.get("contentType"))
    except (TypeError, ValueError, KeyError):
        pass  # none, or not ours
    measured = common.Measured()
    yield session.read(layout.object(container, name), measured.update)
    return measured.digests(attributes["size"]), None
