"""
The container level, C{/v1/AUTH_<user>/<container>}: create it (C{PUT}),
change its metadata (C{POST}), say what it holds (C{HEAD}), list its
objects (C{GET}), delete it (C{DELETE}, a finished recording only).
"""

from http import HTTPStatus

from twisted.internet.defer import inlineCallbacks

from bwscd import constraints
from bwscd.constraints import CONTAINER
from bwscd.errors import NotFound
from bwscd.protocol.listing import describeObject, listingArguments, listingResponse
from bwscd.protocol.response import Response, swiftTimestamp


class ContainerHandler:
    """A container's methods, each called with the request and its L{Target}."""

    def __init__(self, backend, evidence, usage):
        self._backend = backend
        self._evidence = evidence
        self._usage = usage
        self.methods = {"PUT": self.put, "POST": self.post, "HEAD": self.head,
                        "GET": self.get, "DELETE": self.delete}

    @inlineCallbacks
    def put(self, request, target):
        container = target.container
        changes = constraints.parseMetadata(request.requestHeaders, CONTAINER)
        recording = yield self._evidence.recording(container)
        before = yield self._evidence.statusOf(container)
        created = yield self._backend.putContainer(container, changes)
        if created:
            self._usage.changed()
            self._evidence.containerCreated(container, changes, recording)
        elif changes:
            self._evidence.metadataChanged(container, None, request.user)
        self._evidence.noteCompletion(container, before, changes)
        return Response(HTTPStatus.CREATED if created else HTTPStatus.ACCEPTED)

    @inlineCallbacks
    def post(self, request, target):
        changes = constraints.parseMetadata(request.requestHeaders, CONTAINER)
        before = yield self._evidence.statusOf(target.container)
        yield self._backend.updateContainer(target.container, changes)
        self._evidence.metadataChanged(target.container, None, request.user)
        self._evidence.noteCompletion(target.container, before, changes)
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def delete(self, request, target):
        yield self._evidence.checkDeletable(target.container)
        if not (yield self._backend.deleteContainer(target.container)):
            raise NotFound(f"no container {target.container!r}")
        self._usage.changed()
        self._evidence.containerDeleted(target.container, request.user)
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def head(self, request, target):
        info = yield self._backend.containerInfo(target.container)
        if info is None:
            raise NotFound(f"no container {target.container!r}")
        return Response(
            HTTPStatus.NO_CONTENT,
            headers=[
                (b"X-Container-Object-Count", b"%d" % info.objectCount),
                (b"X-Container-Bytes-Used", b"%d" % info.bytesUsed),
                (b"X-Timestamp", swiftTimestamp(info.modified)),
                (b"X-Put-Timestamp", swiftTimestamp(info.modified)),
            ] + constraints.metadataHeaders(info.metadata, CONTAINER),
        )

    @inlineCallbacks
    def get(self, request, target):
        arguments = listingArguments(request.args)
        objects = yield self._backend.listObjects(
            target.container, arguments.prefix, arguments.marker, arguments.limit)
        return listingResponse(objects, arguments, describeObject)
