"""
The vendor example's on-disk layout, as relative paths: shared by every
backend that stores files (the filesystem here, SFTP on a remote host), so
that integrators see the same tree wherever it lives::

    <Container>/                              one directory per container
    <Container>/<Container>.metadata.json     container metadata
    <Container>/complete                      when Status is Complete
    <Container>/<Object>                      the object's bytes
    <Container>/<Container>.<Object>.metadata.json
    .bwscd/tmp/                               files being written
    .bwscd/state/                             the service's own documents
    .bwscd/lock                               held by the service using the tree

C{:} in names becomes C{_}, as in the example server.  Names arrive checked
by L{bwscd.constraints} (no C{..}, no empty segment, containers without
C{/} and not starting with C{.}), so every path stays inside the root.
"""

import json
import posixpath

from bwscd.backends.common import conflictName
from bwscd.errors import BadRequest, Conflict

COMPLETE_MARKER = "complete"
METADATA_SUFFIX = ".metadata.json"
STATE_DIRECTORY = ".bwscd"
TEMPORARY = posixpath.join(STATE_DIRECTORY, "tmp")
STATE = posixpath.join(STATE_DIRECTORY, "state")
LOCK = posixpath.join(STATE_DIRECTORY, "lock")


def fsName(name: str) -> str:
    return name.replace(":", "_")


def container(name: str) -> str:
    return fsName(name)


def containerMetadata(name: str) -> str:
    return posixpath.join(fsName(name), fsName(name) + METADATA_SUFFIX)


def completeMarker(name: str) -> str:
    return posixpath.join(fsName(name), COMPLETE_MARKER)


def object(containerName: str, name: str) -> str:
    return posixpath.join(fsName(containerName), fsName(name))


def objectMetadata(containerName: str, name: str) -> str:
    return posixpath.join(
        fsName(containerName), f"{fsName(containerName)}.{fsName(name)}{METADATA_SUFFIX}"
    )


def state(name: str) -> str:
    return posixpath.join(STATE, name)


def encodeMetadata(metadata: dict[str, str]) -> bytes:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode("utf-8")


def decodeMetadata(data: bytes | None) -> dict[str, str]:
    return {} if data is None else json.loads(data)


def checkContainerName(name: str, nameMax: int) -> None:
    """
    @raise BadRequest: for a container name whose files the layout can't
        hold on a filesystem with C{nameMax}-byte file names.
    """
    _checkLengths(f"container name {name!r}", nameMax, containerMetadata(name))


def checkObjectName(containerName: str, name: str, writeOnce: bool, nameMax: int) -> None:
    """
    Refuse, before the body is read, an object name the layout can't hold:
    one reserved for the layout's own files, or one too long for the
    filesystem's file names (with the metadata suffix, and for evidence the
    conflict copy's).  A name that could never be stored is a 400, not a
    failure to retry.
    """
    paths = [object(containerName, name), objectMetadata(containerName, name)]
    if writeOnce:
        copy = conflictName(name, "0" * 16)
        paths += [object(containerName, copy), objectMetadata(containerName, copy)]
    _checkLengths(f"object name {name!r}", nameMax, *paths)
    first = fsName(name).split("/")[0]
    if first == COMPLETE_MARKER or first.startswith(fsName(containerName) + "."):
        raise BadRequest(
            f"object name {name!r} is reserved by the on-disk layout "
            "(the 'complete' marker and metadata files)"
        )


def _directoriesOf(path: str) -> list[str]:
    """
    The directories inside its container that C{path} (a file's, relative
    to the root) passes through, outermost first.
    """
    container, *parts = path.split("/")[:-1]
    return [posixpath.join(container, *parts[: i + 1]) for i in range(len(parts))]


def objectParents(containerName: str, name: str) -> list[str]:
    """The directories an object's path passes through inside its container."""
    return _directoriesOf(object(containerName, name))


def objectDirectories(containerName: str, name: str) -> list[str]:
    """
    The directories inside its container that an object's files (its bytes
    and its metadata) pass through, deepest first: what may be left empty
    once it is deleted.
    """
    found = {directory
             for path in (object(containerName, name), objectMetadata(containerName, name))
             for directory in _directoriesOf(path)}
    return sorted(found, key=lambda d: d.count("/"), reverse=True)


def _checkLengths(what: str, nameMax: int, *paths: str) -> None:
    for path in paths:
        if any(len(part.encode("utf-8")) > nameMax for part in path.split("/")):
            raise BadRequest(
                f"{what} is too long for this filesystem's {nameMax}-byte file names "
                "(with the layout's metadata suffix)"
            )


def containerNotEmpty(container: str) -> Conflict:
    """
    The refusal to delete a container whose directory holds anything but
    its own two files (objects, or files that are not), or one that an
    upload is being written into.
    """
    return Conflict(f"container {container!r} is not empty, or an upload into it is under way")
