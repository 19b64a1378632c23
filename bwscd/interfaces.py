"""
The storage contract: what a backend promises the protocol engine.

The engine (L{bwscd.protocol}) checks names, metadata and credentials before it
calls a backend, hashes every byte, and compares the hash with the client's
ETag; a backend stores and makes durable.  Names handed to a backend have
passed L{bwscd.constraints}: valid UTF-8, no control characters, no empty,
C{.} or C{..} segment, bounded lengths.  Metadata keys are canonical and
values decoded.

Methods that return a L{Deferred} never block the reactor thread.  Failures
are L{bwscd.errors.SwiftError} instances (L{NotFound}, L{BadRequest} for a
name the backend can never store, L{Conflict}, L{InsufficientStorage},
L{ServiceUnavailable})
so the client gets the API's status code; anything else is a bug.

What integrators' Swift tools show (C{swift stat}, C{rclone about}) comes
from here too: every L{ContainerInfo} carries what its container holds, and
the account's totals are the sum over L{IStorageBackend.listContainers}
(L{bwscd.policy.usage}), so no backend keeps a count of its own that could drift
from what it lists.  Counting costs what listing costs: the SQLite backend
answers from its index, the file-based ones (filesystem, sftp) read the
container's directory, which for a recording holds tens of clips; the
account's totals read every container's, and the engine keeps them for a
few seconds (L{bwscd.policy.usage.AccountUsage}) so that repeated HEADs of the
account don't.
"""

from dataclasses import dataclass, field

from zope.interface import Attribute, Interface


@dataclass(frozen=True)
class Digests:
    """What the engine measured of an object's bytes as they streamed in."""

    length: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    metadata: dict[str, str]
    objectCount: int
    """How many objects it holds (those L{IStorageBackend.listObjects} lists)."""
    bytesUsed: int
    """The sum of their lengths."""
    modified: float
    """
    Seconds since the epoch of its last change that the backend records: at
    least its creation and its newest object's L{ObjectInfo.modified}
    (Swift's C{X-Timestamp} and a listing's C{last_modified}).
    """


@dataclass(frozen=True)
class ObjectInfo:
    container: str
    name: str
    digests: Digests
    modified: float
    """Seconds since the epoch at which the object became visible."""
    metadata: dict[str, str] = field(default_factory=dict)
    existed: bool = False
    """The same bytes were already stored under this name (write-once)."""
    contentType: str | None = None
    """
    The Content-Type given to L{IStorageBackend.openObject}, kept with the
    object; L{None} for an object stored without one (by an earlier bwscd,
    or copied in by hand): the engine then answers what
    L{bwscd.constraints.contentType} makes of its name.
    """


class IObjectWriter(Interface):
    """
    One object being written.

    The engine calls these methods from a single worker thread, never from
    the reactor thread, in this order: L{write} any number of times, then
    exactly one of L{commit} or L{abort}.  They may block.  Until L{commit}
    returns, nothing is visible under the object's name: a reader sees the
    previous version or nothing.
    """

    def write(data: bytes) -> None:
        """
        Store the next bytes of the object.

        @raise InsufficientStorage: out of space; the engine then calls
            L{abort}.
        """

    def commit(digests: Digests) -> ObjectInfo:
        """
        Make the bytes written and the metadata given to
        L{IStorageBackend.openObject} durable, then visible under the final
        name in one atomic step (replacing any earlier version), then
        durable again.  Returns once a crash could no longer lose the
        object.  C{digests} were measured and verified by the engine; the
        backend keeps them for L{IStorageBackend.objectInfo}.
        """

    def abort() -> None:
        """
        Forget everything written: nothing of it ever becomes visible, and no
        leftover survives.  Safe to call after a failed L{write} or
        L{commit}.
        """


class IObjectReader(Interface):
    """
    One object being read, from one worker thread, never the reactor
    thread: L{read} until it returns C{b""}, then L{close}.  It may block.
    """

    info = Attribute("The L{ObjectInfo} of the object being read.")

    def read(size: int) -> bytes:
        """
        Up to C{size} further bytes of the range asked for; C{b""} at its
        end.
        """

    def close() -> None:
        """Release what the reader holds.  Safe to call more than once."""


class IStorageBackend(Interface):
    """
    Containers of objects, each with string metadata, kept durably.

    Metadata changes are atomic: a reader sees the old or the new set, never
    a mix.  Merging metadata follows L{bwscd.constraints.mergeMetadata}.
    """

    description = Attribute("One line saying what and where, for the start-up log.")
    lockPath = Attribute(
        "A local file whose lock (L{bwscd.config.processlock.ServiceLock}) makes the storage "
        "one service's alone, taken before L{open}; or L{None} for storage that has no "
        "local place for one.")

    def open(recover: bool = True):
        """
        Make ready to serve: create what is missing and, with C{recover},
        remove the leftovers of writes that a crash interrupted.  Called
        once, before any other method.  Without C{recover} (bwscd's worker
        processes, while the main process and other workers write to the
        same storage) nothing that may be another process's write under way
        is touched.

        @return: L{Deferred} firing with L{None}.
        """

    def containerInfo(container: str):
        """
        @return: L{Deferred} firing with the L{ContainerInfo} (its metadata
            and what it holds), or with L{None} if the container does not
            exist.
        """

    def putContainer(container: str, metadata: dict[str, str]):
        """
        Create the container if it does not exist, and merge C{metadata} into
        its metadata.

        @return: L{Deferred} firing with C{True} if the container was
            created, C{False} if it already existed.
        """

    def updateContainer(container: str, metadata: dict[str, str]):
        """
        Merge C{metadata} into an existing container's metadata.

        @return: L{Deferred} firing with the new L{ContainerInfo}; fails with
            L{NotFound} if there is no such container.
        """

    def objectInfo(container: str, name: str):
        """
        @return: L{Deferred} firing with the L{ObjectInfo}, or with L{None}
            if there is no such object.
        """

    def replaceObjectMetadata(container: str, name: str, metadata: dict[str, str]):
        """
        Replace all metadata of an existing object with C{metadata}.

        @return: L{Deferred} firing with the new L{ObjectInfo}; fails with
            L{NotFound} if there is no such object.
        """

    def openObject(
        container: str,
        name: str,
        metadata: dict[str, str],
        length: int | None,
        writeOnce: bool = False,
        contentType: str | None = None,
    ):
        """
        Get ready to receive an object of C{length} bytes (L{None}: not known
        in advance) that will carry C{metadata} and C{contentType} (checked
        by L{bwscd.constraints}: printable ASCII, bounded), both kept
        durably with it and given back in its L{ObjectInfo}.  This is the
        last moment to refuse before the client sends the body.

        With C{writeOnce}, the writer's L{IObjectWriter.commit} never replaces
        an existing object: identical bytes (same length, MD5 and SHA-256)
        leave the existing object as it is, and different bytes are kept
        beside it under another name (the L{ObjectInfo} it returns says
        which).  Evidence is written once.

        @return: L{Deferred} firing with an L{IObjectWriter}; fails with
            L{NotFound} if the container does not exist, L{InsufficientStorage}
            if the object would not fit, L{BadRequest} if this backend can
            never store an object of that name.
        """

    def deleteObject(container: str, name: str):
        """
        Remove an object and its metadata, durably: once the result fires, a
        crash can't bring it back, and nothing of it is visible any more.  A
        reader already reading it may finish.

        @return: L{Deferred} firing with the L{ObjectInfo} of what was
            removed, or with L{None} if there was no such object.
        """

    def deleteContainer(container: str):
        """
        Remove an empty container and its metadata, durably.

        @return: L{Deferred} firing with C{True} once removed, C{False} if
            there was no such container; fails with L{Conflict} if it still
            holds objects or uploads into it are under way.
        """

    def listContainers(prefix: str, marker: str, limit: int):
        """
        Containers whose names start with C{prefix} and sort after
        C{marker} (by their UTF-8 bytes), in that order, at most C{limit}.

        @return: L{Deferred} firing with a list of L{ContainerInfo}.
        """

    def listObjects(container: str, prefix: str, marker: str, limit: int):
        """
        The objects of a container, chosen and ordered as for
        L{listContainers}.

        @return: L{Deferred} firing with a list of L{ObjectInfo}; fails with
            L{NotFound} if there is no such container.
        """

    def readObject(container: str, name: str, offset: int, length: int | None):
        """
        Open an object to read C{length} bytes from C{offset} (L{None}: to
        its end); the engine checks the range against the object's length
        first.

        @return: L{Deferred} firing with an L{IObjectReader}; fails with
            L{NotFound} if there is no such object.
        """

    def readState(name: str):
        """
        One of the service's own small documents (the registry of users,
        devices and systems), kept with the data but outside every container.

        @return: L{Deferred} firing with its bytes, or L{None} if it was
            never written.
        """

    def writeState(name: str, data: bytes):
        """
        Replace one of the service's own documents, atomically and durably.

        @return: L{Deferred} firing with L{None} once a crash can't lose it.
        """


class IStorageSpace(Interface):
    """
    What a backend can say of its free space: optional, beside
    L{IStorageBackend}.  Capacity (L{bwscd.policy.capacity}) adapts a
    backend to it with C{IStorageSpace(backend, None)}; one that does not
    provide it has an unknown free space, and so has no "days until full".
    """

    def freeSpace():
        """
        Bytes that objects can still take before uploads get 507: free to
        bwscd on the storage's filesystem (with what the store will reuse
        inside itself), less the backend's reserve; never below 0.

        @return: L{Deferred} firing with an C{int}, or with L{None} if the
            storage can't say (an SFTP server without
            C{statvfs@openssh.com}).
        """


class IBackendPlugin(Interface):
    """
    A storage backend as a Twisted plugin (L{twisted.plugin.IPlugin}), found
    by C{name} in the C{twisted.plugins} package and chosen with
    C{--backend NAME:key=value:...}.
    """

    name = Attribute("The name given to --backend, e.g. C{filesystem}.")
    description = Attribute("One line for --help: what it stores, and its options.")

    def backend(dataDirectory: str, options: dict[str, str]) -> IStorageBackend:
        """
        Build the backend from its C{--backend} options.  C{dataDirectory} is
        the service's C{--data} directory, where a backend keeps its data by
        default.

        @raise ValueError: with one line per mistake in C{options}.
        """


class IEventSink(Interface):
    """
    Somewhere events go: the event log, a webhook, an operator's system.

    An event is a JSON-serialisable dict with at least C{"time"} (RFC 3339,
    UTC) and C{"type"} (see docs/events.md).  Sinks are called on the
    reactor thread for every event, in order.
    """

    def emit(event: dict) -> None:
        """
        Take one event.  Must return at once (queue, don't wait), and must
        not raise: a sink that can't deliver logs why and keeps going, so
        that events never slow down or break an upload.
        """
