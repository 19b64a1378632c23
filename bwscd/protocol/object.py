"""
The object level, C{/v1/AUTH_<user>/<container>/<object>}: store one
(C{PUT}), replace its metadata (C{POST}), say what it is (C{HEAD}), read it
(C{GET}, one byte range), delete it (C{DELETE}, from a finished recording
only).  The server's own documents (C{System/Capabilities.json},
C{System/Categories.json}) are read here too, never written.
"""

from http import HTTPStatus

from twisted.internet.defer import inlineCallbacks
from twisted.web.http import datetimeToString
from twisted.web.iweb import UNKNOWN_LENGTH

from bwscd import constraints
from bwscd.constraints import GNSS_CHECK_LIMIT, OBJECT, SYSTEM
from bwscd.errors import Forbidden, NotFound
from bwscd.policy.evidence import GNSS_SUFFIX
from bwscd.protocol.ranges import byteRange
from bwscd.protocol.response import Response, swiftTimestamp
from bwscd.security.roles import BWS
from bwscd.transfer.bodyrate import MinimumRate
from bwscd.transfer.download import Download
from bwscd.transfer.upload import Upload


def _objectHeaders(info) -> list[tuple[bytes, bytes]]:
    return [
        (b"Etag", info.digests.md5.encode("ascii")),
        (b"Last-Modified", datetimeToString(info.modified)),
        (b"X-Timestamp", swiftTimestamp(info.modified)),
        (b"Content-Type", _contentType(info)),
    ] + constraints.metadataHeaders(info.metadata, OBJECT)


def _contentType(info) -> bytes:
    return constraints.contentType(info.name, info.contentType).encode("ascii")


def _document(document, body: bytes) -> Response:
    """A document the server publishes, with C{body} (none for a HEAD)."""
    return Response(
        HTTPStatus.OK,
        headers=[(b"Etag", document.etag.encode("ascii"))],
        body=body,
        contentType=b"application/json",
        length=len(document.body),
    )


def _created(stored) -> Response:
    return Response(
        HTTPStatus.CREATED,
        headers=[
            (b"Etag", stored.digests.md5.encode("ascii")),
            (b"Last-Modified", datetimeToString(stored.modified)),
        ],
    )


@inlineCallbacks
def serveObject(request, backend, downloads, evidence, container: str, name: str,
                account: str):
    """
    Send object C{name} of C{container} (the C{Range} asked for, or all of
    it) to C{request}, read on the C{downloads} pool, and audit the read
    of evidence as C{account}'s (L{EvidenceRules.objectRead}).
    """
    info = yield backend.objectInfo(container, name)
    if info is None:
        raise NotFound(f"no object {name!r} in {container!r}")
    wanted = byteRange(request.getHeader(b"range"), info.digests.length)
    reader = yield backend.readObject(container, name, wanted.first, wanted.length)
    request.setResponseCode(HTTPStatus.PARTIAL_CONTENT if wanted.partial else HTTPStatus.OK)
    for header, value in _objectHeaders(info):
        request.responseHeaders.addRawHeader(header, value)
    request.setHeader(b"Accept-Ranges", b"bytes")
    request.setHeader(b"Content-Length", b"%d" % wanted.length)
    if wanted.partial:
        request.setHeader(b"Content-Range", wanted.contentRange)
    try:
        yield Download(downloads, reader, request, wanted.length).start()
    finally:
        if evidence.isEvidence(container):
            # sentLength counts only what a connected client was given:
            # all of it is a complete read, even if the client is gone by
            # the time this runs.
            sent = request.sentLength
            evidence.objectRead(container, name, account, info, wanted.first, wanted.last,
                                sent, complete=sent == wanted.length)
    if not request._disconnected:
        request.finish()


class ObjectHandler:
    """An object's methods, each called with the request and its L{Target}."""

    def __init__(self, backend, registry, evidence, documents, usage, quota, admission,
                 reactor, pools, minimumRate):
        self._backend = backend
        self._registry = registry
        self._evidence = evidence
        self._documents = documents
        self._usage = usage
        self._quota = quota
        self._admission = admission
        self._reactor = reactor
        self._pools = pools
        """The service's L{bwscd.threads.Pools}."""
        self._minimumRate = minimumRate
        """Bytes per second an upload's body must bring, over periods of seconds."""
        self.methods = {"GET": self.get, "HEAD": self.head, "PUT": self.put,
                        "POST": self.post, "DELETE": self.delete}

    def _published(self, target):
        if target.container == SYSTEM:
            return self._documents.get(target.object)
        return None

    @inlineCallbacks
    def get(self, request, target):
        document = self._published(target)
        if document is not None:
            return _document(document, document.body)
        # The controller reads back only its system records (StoreReadSystemID).
        if request.role == BWS and target.container != SYSTEM:
            raise Forbidden("stored objects can't be read with this account")
        yield serveObject(request, self._backend, self._pools.downloads, self._evidence,
                          target.container, target.object, request.user)

    @inlineCallbacks
    def head(self, request, target):
        document = self._published(target)
        if document is not None:
            return _document(document, b"")
        info = yield self._backend.objectInfo(target.container, target.object)
        if info is None:
            raise NotFound(f"no object {target.object!r} in {target.container!r}")
        return Response(HTTPStatus.OK, headers=_objectHeaders(info),
                        length=info.digests.length, contentType=_contentType(info))

    @inlineCallbacks
    def delete(self, request, target):
        container = target.container
        yield self._evidence.checkDeletable(container)
        deleted = yield self._backend.deleteObject(container, target.object)
        if deleted is None:
            raise NotFound(f"no object {target.object!r} in {container!r}")
        self._usage.changed()
        self._quota.freed(deleted.digests.length)
        self._evidence.objectDeleted(container, target.object, request.user, deleted)
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def post(self, request, target):
        if self._published(target) is not None:
            raise Forbidden("published by the server")
        metadata = constraints.objectMetadata(request.requestHeaders)
        registered = self._registry.handles(target.container)
        if registered:
            yield self._registry.check(target.container, target.object, metadata)
        yield self._backend.replaceObjectMetadata(target.container, target.object, metadata)
        if registered:
            yield self._registry.record(target.container, target.object, metadata)
        else:
            self._evidence.metadataChanged(target.container, target.object, request.user)
        return Response(HTTPStatus.ACCEPTED)

    @inlineCallbacks
    def put(self, request, target):
        container, name = target.container, target.object
        if self._published(target) is not None:
            raise Forbidden("published by the server")
        constraints.requireBodyLength(request.requestHeaders)
        metadata = constraints.objectMetadata(request.requestHeaders)
        contentType = constraints.contentType(
            name, constraints.givenContentType(request.requestHeaders))
        expectedMD5 = constraints.expectedMD5(request.requestHeaders)
        evidence = self._evidence.isEvidence(container)
        if not evidence:
            yield self._registry.check(container, name, metadata)
        body = request.body
        rate, period = self._minimumRate
        if rate:
            body = MinimumRate(body, request.channel.transport, rate, period, self._reactor)
        length = None if body.length is UNKNOWN_LENGTH else body.length
        afterComplete = yield self._evidence.isComplete(container)
        with self._admission.upload(length) as allowance:
            writer = yield self._backend.openObject(container, name, metadata, length,
                                                    writeOnce=evidence,
                                                    contentType=contentType)
            upload = Upload(self._reactor, self._pools.uploads, allowance.meter(writer),
                            length, expectedMD5,
                            keep=GNSS_CHECK_LIMIT if name.endswith(GNSS_SUFFIX) else 0)
            stored = yield upload.receive(body)
            self._usage.changed()
        if not evidence:
            yield self._registry.record(container, name, metadata)
            return _created(stored)
        yield self._evidence.objectStored(container, name, stored, afterComplete, upload.kept,
                                          account=request.user)
        return _created(stored)
