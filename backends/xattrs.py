"""
What the filesystem backend keeps with an object's file, in its extended
attributes: the MD5 and SHA-256 that bwscd measured as the object arrived,
and its Content-Type.  A file without them (copied in by hand, or on a
filesystem without user extended attributes) has its digests computed
from its bytes, and no Content-Type.
"""

import errno
import os

from bwscd.backends.common import Measured
from bwscd.interfaces import Digests

MD5 = "user.bwscd.md5"
SHA256 = "user.bwscd.sha256"
CONTENT_TYPE = "user.bwscd.content-type"


def keep(fd: int, digests: Digests, contentType: str | None) -> None:
    """
    Keep C{digests} and C{contentType} with the open file C{fd}, where its
    filesystem can; where it can't, they are computed again when read.
    """
    attributes = [(MD5, digests.md5), (SHA256, digests.sha256)]
    if contentType is not None:
        attributes.append((CONTENT_TYPE, contentType))
    for attribute, value in attributes:
        try:
            os.setxattr(fd, attribute, value.encode("ascii"))
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise


def storedContentType(path: str) -> str | None:
    """The Content-Type kept with the file; L{None} for a file without one."""
    try:
        return os.getxattr(path, CONTENT_TYPE).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def storedDigests(path: str, length: int) -> Digests:
    """
    The digests kept with the file, or computed from it when the file came
    without them (copied in by hand, or onto a filesystem without extended
    attributes).
    """
    try:
        return Digests(
            length,
            os.getxattr(path, MD5).decode("ascii"),
            os.getxattr(path, SHA256).decode("ascii"),
        )
    except OSError:
        measured = Measured()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                measured.update(chunk)
        return measured.digests(length)
