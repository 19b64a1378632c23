"""
The shared layout (L{bwscd.backends.layout}) read over an SFTP session: an
object's info, with its digests record; a container's, with what its
directory holds; the objects under a container's directory; whether a name
can be stored.  Deferreds fail with what the server or the connection said.
"""

import posixpath

from twisted.internet.defer import DeferredSemaphore, FirstError, gatherResults, inlineCallbacks

from bwscd.backends import common, layout
from bwscd.backends.sftp.digests import kept
from bwscd.backends.sftp.session import isDirectory, isFile
from bwscd.errors import BadRequest
from bwscd.interfaces import ContainerInfo, ObjectInfo

LISTING_REQUESTS = 16
"""Objects or containers of one listing whose metadata is read at once."""


@inlineCallbacks
def containerDescription(session, container: str, metadata: dict[str, str]):
    """The container's info: its metadata, and what its directory holds."""
    top = layout.container(container)
    objects = yield objectEntries(session, top, "", "")
    stamp = yield session.stat(layout.containerMetadata(container))
    if stamp is None:  # a directory made by hand
        stamp = yield session.stat(top)
    modified = max([float((stamp or {}).get("mtime", 0))]
                   + [float(attributes["mtime"]) for _, attributes in objects])
    return ContainerInfo(container, metadata, len(objects),
                         sum(attributes["size"] for _, attributes in objects), modified)


@inlineCallbacks
def objectInfo(session, container: str, name: str):
    attributes = yield session.stat(layout.object(container, name))
    if not isFile(attributes):
        return None
    digests, contentType = yield kept(session, container, name, attributes)
    metadata = yield session.read(layout.objectMetadata(container, name))
    return ObjectInfo(container, name, digests, float(attributes["mtime"]),
                      layout.decodeMetadata(metadata), contentType=contentType)


@inlineCallbacks
def checkObjectName(session, container, name, writeOnce):
    """
    Refuse, before the body is read, a name the layout can't hold: one
    reserved for the layout's own files, one too long, or one whose path
    would need a file to be a directory or the other way round.
    """
    layout.checkObjectName(container, name, writeOnce, session.nameMax)
    for parent in layout.objectParents(container, name):
        attributes = yield session.stat(parent)
        if attributes is not None and not isDirectory(attributes):
            raise BadRequest(f"object name {name!r}: a prefix of it is an object")
    if isDirectory((yield session.stat(layout.object(container, name)))):
        raise BadRequest(f"object name {name!r} is a prefix of other objects")


@inlineCallbacks
def objectEntries(session, top: str, relative: str, prefix: str):
    """
    The names and attributes of the objects under C{relative} in the
    container's directory C{top}, without the layout's own files, and
    without the directories that can't hold a name starting with
    C{prefix}.
    """
    directory = posixpath.join(top, relative)
    entries = yield session.entries(directory)
    readable = set(common.utf8Names([name for name, _ in entries],
                                    posixpath.join(session.root, directory)))
    entries = [(name, attributes) for name, attributes in entries if name in readable]
    if not relative:
        # The layout's own: the 'complete' marker, and the metadata
        # files, "<Container>.<Object>.metadata.json", which are in
        # "<Container>.<a>/" for an object named "<a>/<b>".
        ownFiles = posixpath.basename(top) + "."
        entries = [(name, attributes) for name, attributes in entries
                   if name != layout.COMPLETE_MARKER and not name.startswith(ownFiles)]
    objects = []
    for name, attributes in entries:
        path = relative + name
        if isFile(attributes):
            objects.append((path, attributes))
        elif isDirectory(attributes):
            below = path + "/"
            if below.startswith(prefix) or prefix.startswith(below):
                objects += yield objectEntries(session, top, below, prefix)
    return objects


@inlineCallbacks
def each(function, items, *args):
    """
    C{function(item, *args)} for every item, L{LISTING_REQUESTS} at a
    time: their results, in order, or the first failure.
    """
    semaphore = DeferredSemaphore(LISTING_REQUESTS)
    try:
        return (yield gatherResults(
            [semaphore.run(function, item, *args) for item in items], consumeErrors=True))
    except FirstError as e:
        e.subFailure.raiseException()
