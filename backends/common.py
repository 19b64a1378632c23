"""
What every storage backend shipped with bwscd does alike, whatever holds
the bytes (files, a database, a remote host): which names a listing shows
and in what order, which names from the storage can be listed at all
(UTF-8), the write-once rule for evidence and the name of its conflict
copy, the refusal a failing storage gets, and when a container counts as
complete.  The file layout that the filesystem and SFTP backends share is
L{bwscd.backends.layout}.

Imports only bwscd's top-level modules (layer 0).
"""

import dataclasses
import hashlib
import posixpath
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from twisted.logger import Logger

from bwscd.constraints import COMPLETE
from bwscd.errors import (
    BadRequest, InsufficientStorage, NotFound, ServiceUnavailable, SwiftError)
from bwscd.interfaces import Digests, ObjectInfo

CONFLICT_SUFFIX = ".conflict-"

REPORTED_LIMIT = 10_000
"""Names not in UTF-8 remembered as logged; further ones are logged each time they are seen."""

log = Logger()
_reported: set[str] = set()


# Listings.


def chosen(names: Iterable[str], prefix: str, marker: str, limit: int) -> list[str]:
    """
    The names a listing shows, of C{names} (in UTF-8, see L{utf8Names}):
    those starting with C{prefix}, after C{marker}, in the order of their
    UTF-8 bytes (Swift's), at most C{limit}.
    """
    after = marker.encode("utf-8")
    return sorted(
        (n for n in names if n.startswith(prefix) and n.encode("utf-8") > after),
        key=lambda n: n.encode("utf-8"),
    )[:limit]


def prefixEnd(prefix: str) -> str | None:
    """
    The least name after every name that starts with C{prefix}, in the
    order of L{chosen} (UTF-8 bytes, which order as code points do); L{None}
    if there is none (C{prefix} is empty, or all U+10FFFF).  For a storage
    that answers C{chosen} with a range of its own index.
    """
    characters = list(prefix)
    while characters:
        following = ord(characters.pop()) + 1
        if 0xD800 <= following <= 0xDFFF:
            following = 0xE000  # surrogates have no UTF-8
        if following <= 0x10FFFF:
            return "".join(characters) + chr(following)
    return None


def utf8Names(names: Iterable[str], directory: str) -> list[str]:
    """
    The entries C{names} of C{directory} (as the OS or the SFTP server gives
    them, bytes that are not UTF-8 as surrogates) that can be a container's
    or an object's name, or hold one: those in UTF-8.  Any other was put
    there by something else than bwscd: it is left out of listings and
    counts (never a failure of them), and logged the first time it is seen.
    """
    found = []
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            path = posixpath.join(directory, name)
            if path not in _reported:
                if len(_reported) < REPORTED_LIMIT:
                    _reported.add(path)
                log.warn("left out of listings: {path}, whose name is not UTF-8 "
                         "(it can't be a container's or an object's)",
                         path=ascii(path.encode("utf-8", "surrogateescape"))[2:-1])
            continue
        found.append(name)
    return found


# Evidence.


def conflictName(name: str, sha256: str) -> str:
    """Where different bytes for an evidence object's name are kept."""
    return f"{name}{CONFLICT_SUFFIX}{sha256[:16]}"


def placeOnce(name: str, digests: Digests,
              claim: Callable[[str], tuple[ObjectInfo, bool]],
              discard: Callable[[], object]) -> ObjectInfo:
    """
    Store an evidence object without ever replacing one (the write-once
    rule of docs/backends.md): under C{name} if it is free; if the same
    bytes are there, store nothing and answer the object there as one that
    L{existed<ObjectInfo.existed>}; if other bytes are, do the same under
    L{conflictName}, so that sending these again is idempotent too.

    @param claim: C{claim(candidate)} places these bytes under C{candidate}
        if no object has that name, checking and taking it in one atomic
        step: C{(the placed object, True)}, or C{(the object there, False)}.
    @param discard: forgets these bytes, found stored already.
    @raise BadRequest: both names hold other bytes.
    """
    for candidate in (name, conflictName(name, digests.sha256)):
        found, placed = claim(candidate)
        if placed:
            return found
        if found.digests == digests:
            discard()
            return dataclasses.replace(found, existed=True)
    raise BadRequest(f"{name!r} and its conflict copy both hold other bytes")


def measuredFrom(reader, length: int) -> Digests:
    """The digests of what C{reader} (an L{IObjectReader}) reads, to its end; it is closed."""
    measured = Measured()
    try:
        while chunk := reader.read(1 << 20):
            measured.update(chunk)
    finally:
        reader.close()
    return measured.digests(length)


class UploadsUnderWay:
    """
    How many uploads into each container are under way, in this process:
    for a store that can't say, and would let a container be deleted
    beneath them.  Threads admit and release.
    """

    def __init__(self):
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, container: str) -> Callable[[], None]:
        """Count one upload into C{container}; the call returned ends it (once)."""
        with self._lock:
            self._counts[container] += 1
        released = []

        def release():
            with self._lock:
                if not released:
                    released.append(True)
                    self._counts[container] -= 1
                    if not self._counts[container]:
                        del self._counts[container]
        return release

    def into(self, container: str) -> bool:
        with self._lock:
            return bool(self._counts[container])


UNREADABLE = (ValueError, KeyError, IndexError, TypeError, SyntaxError)
"""
What reading an answer of a remote store that is not what it should be
raises: JSON and XML that do not parse (C{ParseError} is a
C{SyntaxError}), or lack what they should hold.
"""


def fromStore(function, storage: str, log: Logger):
    """
    C{function}, whose store's answers that can't be read (L{UNREADABLE})
    are a L{storageError} (503, logged), not a failure of bwscd (500).
    """
    def called(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UNREADABLE as e:
            raise storageError("reading its answer", f"{type(e).__name__}: {e}", False, log,
                               storage) from e
    return called


class StoreWriter:
    """
    What the writers of the remote object stores' backends share: their
    upload counted as under way (L{UploadsUnderWay}) from their start to
    their L{commit} or L{abort}, whichever comes first, done or failed; and
    the store's answers that can't be read as its failure (L{fromStore}).
    Subclasses give L{_write}, L{_commit} and L{_abort}, and C{storage}
    and C{log}.
    """

    def __init__(self, release: Callable[[], None]):
        self._release = release

    def write(self, data):
        fromStore(self._write, self.storage, self.log)(data)

    def commit(self, digests):
        try:
            return fromStore(self._commit, self.storage, self.log)(digests)
        finally:
            self._release()

    def abort(self):
        try:
            self._abort()
        finally:
            self._release()


class Measured:
    """
    The digests of an object's bytes, given piece by piece: for an object
    found stored without the digests bwscd measured as it arrived (copied
    in by hand, or where they could not be kept).
    """

    def __init__(self):
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self._sha256.update(chunk)

    def digests(self, length: int) -> Digests:
        return Digests(length, self._md5.hexdigest(), self._sha256.hexdigest())


def isComplete(metadata: dict[str, str]) -> bool:
    """
    Whether a container's metadata says its recording is complete: when a
    storage shows that on its own (the layout's C{complete} file).
    """
    return metadata.get("Status") == COMPLETE


# Failures.


def storeRefusal(what: str, status: int, detail: str, tooLarge: bool, log: Logger,
                 storage: str) -> SwiftError:
    """
    The API's refusal for an answer of a remote object store (Swift, S3)
    that stops C{what}: 404 as such, the store out of space as 507, an
    object C{tooLarge} for it as 400, anything else as L{storageError}.
    """
    if status == 404:
        return NotFound(f"not found while {what}")
    if status == 507:
        return InsufficientStorage(f"the store is out of space while {what}")
    if tooLarge:
        return BadRequest(f"larger than the store takes while {what}")
    return storageError(what, detail, False, log, storage)


def storageError(what: str, error: object, full: bool, log: Logger,
                 storage: str = "storage", where: str = "") -> SwiftError:
    """
    The API's refusal for a storage operation, C{what} ("writing an
    object"), that failed with C{error}: 507 when C{full} (the storage is
    out of space), anything else 503, logged as an error on the backend's
    C{log}; either way the controller keeps the recording and retries.

    @param storage: what failed, in the 503's message.
    @param where: where space ran out, in the 507's message.
    """
    if full:
        return InsufficientStorage(f"out of disk space{where} while {what}")
    log.error("{storage} failure while {what}: {error}", storage=storage, what=what,
              error=error)
    return ServiceUnavailable(f"{storage} failure while {what}")
