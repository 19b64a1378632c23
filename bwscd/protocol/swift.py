"""
The Swift API subset the system controller speaks, as twisted.web resources.

Handlers are thin: they check the token, decode names and metadata through
L{bwscd.constraints}, call the backend, and say what the answer is.  One
function, L{_send}, writes every answer; refusals are L{SwiftError}s and get
a plain-text message and a log line, never a traceback.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus

from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.web.http import datetimeToString
from twisted.web.iweb import UNKNOWN_LENGTH
from twisted.web.resource import Resource
from twisted.python.threadpool import ThreadPool
from twisted.web.server import NOT_DONE_YET

from bwscd import constraints

from bwscd.security import tokens
from bwscd.constraints import CONTAINER, OBJECT, SYSTEM
from bwscd.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RangeNotSatisfiable,
    SwiftError,
    Unauthorized,
    UnprocessableEntity,
    UploadSlotsBusy,
)
from bwscd.security.accounts import ADMIN, BWS, READER
from bwscd.transfer.bodyrate import MinimumRate
from bwscd.transfer.download import Download
from bwscd.policy.registry import isRejectedContent
from bwscd.transfer.upload import Abandoned, Upload
from bwscd.policy.usage import AccountUsage

log = Logger()

COMPLETE = "Complete"
GNSS_SUFFIX = "_gpstrail.json"
# GNSS tracks are small (a point every few seconds); this bounds what is
# held in memory to check one.
GNSS_CHECK_LIMIT = 16 << 20
_HOST = re.compile(rb"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Response:
    code: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    contentType: bytes = b"text/plain; charset=utf-8"
    length: int | None = None
    """Content-Length when it is not the body's (HEAD of an object)."""


def _send(request, response: Response) -> None:
    if request._disconnected or request.finished:
        return
    # Twisted knows no reason phrase for some of the API's codes (422).
    request.setResponseCode(response.code, HTTPStatus(response.code).phrase.encode("ascii"))
    for name, value in response.headers:
        request.responseHeaders.addRawHeader(name, value)
    request.setHeader(b"Content-Type", response.contentType)
    length = len(response.body) if response.length is None else response.length
    request.setHeader(b"Content-Length", b"%d" % length)
    if response.body:
        request.write(response.body)
    request.finish()


def _refusal(reason, request) -> Response | None:
    """The answer to a failed request; logs why."""
    error = reason.value
    where = f"{ascii(request.method)[2:-1]} {ascii(request.uri)[2:-1]}"
    if isinstance(error, Abandoned):
        log.info("{where}: {message}", where=where, message=str(error))
        return None
    if not isinstance(error, SwiftError):
        log.failure("{where} failed", reason, where=where)
        return Response(HTTPStatus.INTERNAL_SERVER_ERROR, body=b"internal error\n")
    log.info(
        "refused {where} from {peer}: {code} {message}",
        where=where,
        peer=request.getClientAddress().host,
        code=int(error.code),
        message=error.message,
    )
    return Response(
        error.code,
        headers=list(error.headers.items()),
        body=error.message.encode("utf-8") + b"\n",
    )


class SwiftResource(Resource):
    """A leaf whose C{handle} method returns a L{Response} or a Deferred of one."""

    isLeaf = True

    def render(self, request):
        d = maybeDeferred(self.handle, request)
        d.addErrback(_refusal, request)
        d.addCallback(lambda response: response and _send(request, response))
        return NOT_DONE_YET

    def handle(self, request):
        raise NotImplementedError


class NotFoundResource(SwiftResource):
    def handle(self, request):
        raise NotFound("no such path; the API lives under /auth/v1.0 and /v1/")


class Root(Resource):
    """C{/auth/v1.0} (also C{/auth/v1}) and C{/v1/...}; a 404 anywhere else."""

    def __init__(self, authentication, storage):
        super().__init__()
        self._auth = authentication
        self._storage = storage

    def getChild(self, name, request):
        if name == b"auth" and request.postpath in ([b"v1.0"], [b"v1"]):
            return self._auth
        if name == b"v1":
            return self._storage
        return NotFoundResource()


def storageURL(request, userName: str) -> bytes:
    """
    The storage URL for this account, with the scheme and host the client
    used to reach us, as Swift's auth does.
    """
    host = request.getHeader(b"host")
    if host is None or not _HOST.match(host):
        address = request.getHost()
        host = f"{address.host}:{address.port}".encode("ascii")
    scheme = b"https" if request.isSecure() else b"http"
    return b"%s://%s/v1/%s" % (scheme, host, accountName(userName).encode("ascii"))


def accountName(userName: str) -> str:
    return f"AUTH_{userName}"


class FailedLogins:
    """
    Failed logins per client address: past L{LIMIT} in L{WINDOW} seconds,
    an address is refused without its key being checked, so guessing is
    slow and can't keep the key checker busy.
    """

    LIMIT = 10
    WINDOW = 60

    def __init__(self, clock):
        self._clock = clock
        self._recent: dict[str, list[float]] = {}

    def _current(self, peer: str) -> list[float]:
        cutoff = self._clock() - self.WINDOW
        recent = [t for t in self._recent.get(peer, ()) if t > cutoff]
        if recent:
            self._recent[peer] = recent
        else:
            self._recent.pop(peer, None)
        return recent

    def throttled(self, peer: str) -> bool:
        return len(self._current(peer)) >= self.LIMIT

    def add(self, peer: str) -> None:
        self._recent[peer] = self._current(peer) + [self._clock()]
        if len(self._recent) > 10_000:  # many addresses: forget the quiet ones
            for address in list(self._recent):
                self._current(address)


class Authentication(SwiftResource):
    """C{GET /auth/v1.0}: credentials in, a signed, expiring token out."""

    def __init__(self, credentials, authority: tokens.TokenAuthority, reactor):
        super().__init__()
        self._credentials = credentials
        self._authority = authority
        self._reactor = reactor
        # One key check at a time, on one thread: scrypt takes 16 MiB while
        # it runs (given back after, see bwscd.security.tokens), and a flood of
        # logins must not multiply that.
        self._checker = ThreadPool(minthreads=0, maxthreads=1, name="bwscd-auth")
        self._failures = FailedLogins(reactor.seconds)
        reactor.callWhenRunning(self._checker.start)
        reactor.addSystemEventTrigger("during", "shutdown", self._checker.stop)

    @inlineCallbacks
    def handle(self, request):
        if request.method != b"GET":
            raise MethodNotAllowed("authenticate with GET")
        user = request.getHeader(b"x-auth-user") or request.getHeader(b"x-storage-user")
        key = request.getHeader(b"x-auth-key") or request.getHeader(b"x-storage-pass")
        if user is None or key is None:
            raise Unauthorized("X-Auth-User and X-Auth-Key are required")
        peer = request.getClientAddress().host
        if self._failures.throttled(peer):
            raise Unauthorized(
                f"too many failed logins from {peer}; wait {FailedLogins.WINDOW} s")
        userName = user.decode("utf-8", "replace")
        # The key check costs real CPU (scrypt), so it runs off the reactor;
        # it runs whatever the user name, so timing tells nothing.
        rightKey = yield deferToThreadPool(
            self._reactor, self._checker,
            self._credentials.accepts, userName, key.decode("utf-8", "replace"),
        )
        if not rightKey:
            self._failures.add(peer)
            raise Unauthorized("wrong user name or key")
        request.user = userName
        token, _ = self._authority.issue(userName)
        # Every account works on the one store: the controller's.
        url = storageURL(request, self._credentials.userName)
        return Response(
            HTTPStatus.OK,
            headers=[
                (b"X-Auth-Token", token.encode("ascii")),
                (b"X-Storage-Token", token.encode("ascii")),
                (b"X-Storage-Url", url),
                (b"X-Auth-Token-Expires", b"%d" % self._authority.lifetime),
            ],
        )


@dataclass(frozen=True)
class Target:
    """What a storage path names."""

    container: str | None
    object: str | None


def _parseTarget(request, account: str) -> Target:
    """Split C{/v1/<account>[/<container>[/<object>]]} and check the names."""
    rest = request.path[len(b"/v1/") :]
    rawAccount, _, rest = rest.partition(b"/")
    if rawAccount != account.encode("utf-8"):
        raise Forbidden("this token is not for that account")
    rawContainer, slash, rawObject = rest.partition(b"/")
    if not rawContainer and slash:
        raise BadRequest("empty container name")
    container = constraints.containerName(rawContainer) if rawContainer else None
    name = constraints.objectName(rawObject) if rawObject else None
    return Target(container, name)


def _expectedMD5(request) -> str | None:
    etag = request.getHeader(b"etag")
    if etag is None:
        return None
    return etag.decode("latin-1").strip().strip('"').lower()


def _objectHeaders(info) -> list[tuple[bytes, bytes]]:
    return [
        (b"Etag", info.digests.md5.encode("ascii")),
        (b"Last-Modified", datetimeToString(info.modified)),
        (b"X-Timestamp", _timestamp(info.modified)),
        (b"Content-Type", _contentType(info)),
    ] + constraints.metadataHeaders(info.metadata, OBJECT)


def _contentType(info) -> bytes:
    return constraints.contentType(info.name, info.contentType).encode("ascii")


def _timestamp(seconds: float) -> bytes:
    """Swift's X-Timestamp: seconds since the epoch, to 10 microseconds."""
    return b"%.5f" % seconds


def _listingTime(seconds: float) -> str:
    """A listing's C{last_modified}, as Swift writes it (UTC, no zone)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _byteRange(header: bytes | None, size: int) -> tuple[int, int]:
    """
    The first and last byte a C{Range} header asks for (one range; any
    other form of the header is ignored, as RFC 9110 allows).

    @raise RangeNotSatisfiable: for a range outside the object.
    """
    whole = (0, size - 1)
    match = re.fullmatch(rb"bytes=(\d*)-(\d*)", header.strip()) if header else None
    if match is None or match.groups() == (b"", b""):
        return whole
    first, last = match.groups()
    if first == b"":  # the last N bytes
        return (max(size - int(last), 0), size - 1) if int(last) else _unsatisfiable(size)
    first = int(first)
    last = min(int(last), size - 1) if last else size - 1
    if first >= size or first > last:
        _unsatisfiable(size)
    return first, last


def _unsatisfiable(size: int):
    error = RangeNotSatisfiable(f"the object has {size} bytes")
    error.headers = {b"Content-Range": b"bytes */%d" % size}
    raise error


def _jsonProblem(data: bytes) -> str | None:
    try:
        json.loads(data)
    except ValueError as e:
        return f"not valid JSON: {e}"
    except RecursionError:
        return "not checked: nested too deeply to parse"
    return None


def _created(stored) -> Response:
    return Response(
        HTTPStatus.CREATED,
        headers=[
            (b"Etag", stored.digests.md5.encode("ascii")),
            (b"Last-Modified", datetimeToString(stored.modified)),
        ],
    )


def _metadataResponse(code, metadata, kind, extra=(), length=None,
                      contentType=Response.contentType) -> Response:
    return Response(
        code,
        headers=list(extra) + constraints.metadataHeaders(metadata, kind),
        length=length,
        contentType=contentType,
    )


# What each role may do: the controller exactly what the API needs (no
# listing, no reading evidence, no deleting); a reader only to list and read;
# an admin to list, read and delete (audited: every download of evidence and
# every deletion is an event).
_READING = {"HEAD_account", "GET_account", "HEAD_container", "GET_container",
            "HEAD_object", "GET_object"}
RIGHTS = {
    BWS: {"HEAD_account", "PUT_container", "POST_container", "HEAD_container",
          "PUT_object", "POST_object", "HEAD_object", "GET_object"},
    READER: _READING,
    ADMIN: _READING | {"DELETE_object", "DELETE_container"},
}
LISTING_LIMIT = 10_000


class Storage(SwiftResource):
    """
    Everything under C{/v1/}: the one account, its containers and objects,
    with the rights of the role that logged in (L{RIGHTS}).
    """

    def __init__(self, authority, credentials, backend, registry, events, reactor,
                 uploadPool, documents, quota, refusals, encrypted=False, maxUploads=32,
                 minimumRate=(0, 60)):
        super().__init__()
        self._refusals = refusals
        """The L{bwscd.policy.refusals.RefusalEpisodes} told of every refusal."""
        self._minimumRate = minimumRate
        """Bytes per second an upload's body must bring, over periods of seconds."""
        self._quota = quota
        self._credentials = credentials
        self._maxUploads = maxUploads
        self._uploads = 0
        self.encrypted = encrypted
        """Whether the controller encrypts content (its GNSS tracks are not JSON)."""
        self._authority = authority
        self._backend = backend
        self._registry = registry
        self._events = events
        self._reactor = reactor
        self._uploadPool = uploadPool
        self._documents = documents
        self._usage = AccountUsage(backend, reactor.seconds)

    def handle(self, request):
        token = request.getHeader(b"x-auth-token") or request.getHeader(b"x-storage-token")
        user = self._authority.verify(token.decode("latin-1")) if token else None
        role = None if user is None else self._credentials.roleOf(user)
        if role is None:
            raise Unauthorized("missing, invalid or expired auth token")
        target = _parseTarget(request, accountName(self._credentials.userName))
        level = "object" if target.object else "container" if target.container else "account"
        method = request.method.decode("latin-1")
        action = f"{method}_{level}"
        request.role, request.user = role, user
        if action not in RIGHTS[role]:
            if method in ("GET", "PUT", "POST", "HEAD", "DELETE", "COPY"):
                raise Forbidden(f"{method} on this {level} is not allowed for this account")
            raise MethodNotAllowed(f"{method} is not a Swift method")
        return maybeDeferred(getattr(self, action), request, target).addErrback(
            self._refusals.note)

    @inlineCallbacks
    def HEAD_account(self, request, target):
        totals = yield self._usage.current()
        # With a quota, the bytes it meters: kept exact by every process.
        used = totals.bytesUsed if self._quota.limit is None else self._quota.used
        headers = [(b"X-Account-Container-Count", b"%d" % totals.containers),
                   (b"X-Account-Object-Count", b"%d" % totals.objects),
                   (b"X-Account-Bytes-Used", b"%d" % used)]
        if self._quota.limit is not None:
            headers.append((b"X-Account-Meta-Quota-Bytes", b"%d" % self._quota.limit))
        return Response(HTTPStatus.NO_CONTENT, headers=headers)

    # Containers.

    def _isEvidence(self, container: str) -> bool:
        """Recordings and rejected content: written once, never replaced."""
        return not self._registry.handles(container)

    @inlineCallbacks
    def PUT_container(self, request, target):
        container = target.container
        changes = constraints.parseMetadata(request.requestHeaders, CONTAINER)
        recording = None
        if self._isEvidence(container) and not isRejectedContent(container):
            recording = yield self._registry.recording(container)
        before = yield self._statusOf(container)
        created = yield self._backend.putContainer(container, changes)
        if created:
            self._usage.changed()
        if created and recording is not None:
            self._events.emit("recording.started", container=container,
                              **self._registry.describe(recording))
        elif created and isRejectedContent(container):
            self._events.emit(
                "rejected.received",
                container=container,
                originalContainer=changes.get("Rejectedcontentoriginalcontainer", ""),
                reason=changes.get("Rejectedcontentreason", ""),
            )
        self._noteCompletion(container, before, changes)
        return Response(HTTPStatus.CREATED if created else HTTPStatus.ACCEPTED)

    @inlineCallbacks
    def POST_container(self, request, target):
        changes = constraints.parseMetadata(request.requestHeaders, CONTAINER)
        before = yield self._statusOf(target.container)
        yield self._backend.updateContainer(target.container, changes)
        self._noteCompletion(target.container, before, changes)
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def _statusOf(self, container):
        """A recording's Status; L{None} for anything else, or a new container."""
        if not self._isEvidence(container):
            return None
        info = yield self._backend.containerInfo(container)
        return None if info is None else info.metadata.get("Status")

    def _noteCompletion(self, container, before, changes):
        if (self._isEvidence(container) and before != COMPLETE
                and changes.get("Status") == COMPLETE):
            self._events.emit("recording.complete", container=container)

    @inlineCallbacks
    def DELETE_container(self, request, target):
        yield self._checkDeletable(target.container)
        if not (yield self._backend.deleteContainer(target.container)):
            raise NotFound(f"no container {target.container!r}")
        self._usage.changed()
        self._events.emit("container.deleted", container=target.container,
                          account=request.user)
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def _checkDeletable(self, container: str):
        """An admin deletes only from recordings the controller is done with."""
        if self._registry.handles(container):
            raise Forbidden(f"the {container} records are kept: they hold the "
                            "registry's history")
        info = yield self._backend.containerInfo(container)
        if info is None:
            raise NotFound(f"no container {container!r}")
        if not isRejectedContent(container) and info.metadata.get("Status") != COMPLETE:
            # The controller is still sending it, or will send it again.
            raise Conflict(f"recording {container!r} is not Complete yet")

    @inlineCallbacks
    def HEAD_container(self, request, target):
        info = yield self._backend.containerInfo(target.container)
        if info is None:
            raise NotFound(f"no container {target.container!r}")
        return _metadataResponse(HTTPStatus.NO_CONTENT, info.metadata, CONTAINER, extra=[
            (b"X-Container-Object-Count", b"%d" % info.objectCount),
            (b"X-Container-Bytes-Used", b"%d" % info.bytesUsed),
            (b"X-Timestamp", _timestamp(info.modified)),
            (b"X-Put-Timestamp", _timestamp(info.modified)),
        ])

    # Objects.

    def _published(self, target):
        if target.container == SYSTEM:
            return self._documents.get(target.object)
        return None

    @inlineCallbacks
    def GET_object(self, request, target):
        document = self._published(target)
        if document is not None:
            return Response(
                HTTPStatus.OK,
                headers=[(b"Etag", document.etag.encode("ascii"))],
                body=document.body,
                contentType=b"application/json",
            )
        # The controller reads back only its system records (StoreReadSystemID).
        if request.role == BWS and target.container != SYSTEM:
            raise Forbidden("stored objects can't be read with this account")
        info = yield self._backend.objectInfo(target.container, target.object)
        if info is None:
            raise NotFound(f"no object {target.object!r} in {target.container!r}")
        size = info.digests.length
        first, last = _byteRange(request.getHeader(b"range"), size)
        reader = yield self._backend.readObject(
            target.container, target.object, first, last - first + 1 if size else 0)
        request.setResponseCode(HTTPStatus.OK if (first, last) == (0, size - 1) or not size
                                else HTTPStatus.PARTIAL_CONTENT)
        for name, value in _objectHeaders(info):
            request.responseHeaders.addRawHeader(name, value)
        request.setHeader(b"Accept-Ranges", b"bytes")
        request.setHeader(b"Content-Length", b"%d" % (last - first + 1 if size else 0))
        if request.code == HTTPStatus.PARTIAL_CONTENT:
            request.setHeader(b"Content-Range", b"bytes %d-%d/%d" % (first, last, size))
        try:
            yield Download(self._reactor, self._uploadPool, reader, request).start()
        finally:
            if self._isEvidence(target.container):
                self._noteRead(request, target, info, first, last)
        if not request._disconnected:
            request.finish()

    def _noteRead(self, request, target, info, first, last):
        """
        Evidence was read: by whom, which bytes, and whether they all went
        out.  (The registry's records are not evidence: the controller
        reads its own System records back.)
        """
        sent = request.sentLength  # counts only what a connected client was given
        self._events.emit(
            "object.read",
            container=target.container,
            object=target.object,
            account=request.user,
            first=first,
            last=last,
            sent=sent,
            complete=not request._disconnected and sent == last - first + 1,
            length=info.digests.length,
            sha256=info.digests.sha256,
        )

    def GET_account(self, request, target):
        return self._listing(request, self._backend.listContainers, lambda c: {
            "name": c.name, "count": c.objectCount, "bytes": c.bytesUsed,
            "last_modified": _listingTime(c.modified)})

    def GET_container(self, request, target):
        return self._listing(
            request,
            lambda *args: self._backend.listObjects(target.container, *args),
            lambda o: {
                "name": o.name,
                "bytes": o.digests.length,
                "hash": o.digests.md5,
                "last_modified": _listingTime(o.modified),
                "content_type": _contentType(o).decode("ascii"),
            })

    @inlineCallbacks
    def _listing(self, request, list, describe):
        """Swift's listing: names one per line, or JSON with C{format=json}."""
        def argument(name, default):
            return request.args.get(name.encode(), [default.encode()])[0].decode(
                "utf-8", "replace")

        try:
            limit = min(int(argument("limit", str(LISTING_LIMIT))), LISTING_LIMIT)
        except ValueError:
            raise BadRequest("limit must be a number")
        entries = yield list(argument("prefix", ""), argument("marker", ""), max(limit, 0))
        if argument("format", "plain") == "json":
            body = json.dumps([describe(e) for e in entries], ensure_ascii=False)
            return Response(HTTPStatus.OK, body=body.encode("utf-8"),
                            contentType=b"application/json; charset=utf-8")
        if not entries:
            return Response(HTTPStatus.NO_CONTENT)
        return Response(HTTPStatus.OK,
                        body="".join(e.name + "\n" for e in entries).encode("utf-8"))

    @inlineCallbacks
    def HEAD_object(self, request, target):
        document = self._published(target)
        if document is not None:
            return Response(
                HTTPStatus.OK,
                headers=[(b"Etag", document.etag.encode("ascii"))],
                contentType=b"application/json",
                length=len(document.body),
            )
        info = yield self._backend.objectInfo(target.container, target.object)
        if info is None:
            raise NotFound(f"no object {target.object!r} in {target.container!r}")
        return Response(HTTPStatus.OK, headers=_objectHeaders(info),
                        length=info.digests.length, contentType=_contentType(info))

    @inlineCallbacks
    def DELETE_object(self, request, target):
        container = target.container
        yield self._checkDeletable(container)
        deleted = yield self._backend.deleteObject(container, target.object)
        if deleted is None:
            raise NotFound(f"no object {target.object!r} in {container!r}")
        self._usage.changed()
        self._quota.freed(deleted.digests.length)
        self._events.emit(
            "object.deleted",
            container=container,
            object=target.object,
            account=request.user,
            length=deleted.digests.length,
            md5=deleted.digests.md5,
            sha256=deleted.digests.sha256,
        )
        return Response(HTTPStatus.NO_CONTENT)

    @inlineCallbacks
    def POST_object(self, request, target):
        if self._published(target) is not None:
            raise Forbidden("published by the server")
        metadata = constraints.objectMetadata(request.requestHeaders)
        registered = self._registry.handles(target.container)
        if registered:
            yield self._registry.check(target.container, target.object, metadata)
        yield self._backend.replaceObjectMetadata(target.container, target.object, metadata)
        if registered:
            yield self._registry.record(target.container, target.object, metadata)
        return Response(HTTPStatus.ACCEPTED)

    @inlineCallbacks
    def PUT_object(self, request, target):
        container, name = target.container, target.object
        if self._published(target) is not None:
            raise Forbidden("published by the server")
        if not (
            request.requestHeaders.hasHeader(b"content-length")
            or request.requestHeaders.hasHeader(b"transfer-encoding")
        ):
            raise BadRequest("an object needs Content-Length or chunked encoding")
        metadata = constraints.objectMetadata(request.requestHeaders)
        contentType = constraints.contentType(
            name, constraints.givenContentType(request.requestHeaders))
        expectedMD5 = _expectedMD5(request)
        if expectedMD5 is not None and not _MD5_HEX.match(expectedMD5):
            raise UnprocessableEntity("ETag is not an MD5 hex digest: it can never match")
        evidence = self._isEvidence(container)
        if not evidence:
            yield self._registry.check(container, name, metadata)
        body = request.body
        rate, period = self._minimumRate
        if rate:
            body = MinimumRate(body, request.channel.transport, rate, period, self._reactor)
        length = None if body.length is UNKNOWN_LENGTH else body.length
        afterComplete = evidence and (yield self._statusOf(container)) == COMPLETE
        if self._uploads >= self._maxUploads:
            raise UploadSlotsBusy(
                f"all {self._maxUploads} upload slots are busy; try again shortly")
        allowance = self._quota.admit(length)
        self._uploads += 1
        try:
            try:
                writer = yield self._backend.openObject(container, name, metadata, length,
                                                        writeOnce=evidence,
                                                        contentType=contentType)
            except BaseException:
                allowance.release()
                raise
            upload = Upload(self._reactor, self._uploadPool, allowance.meter(writer),
                            length, expectedMD5,
                            keep=GNSS_CHECK_LIMIT if name.endswith(GNSS_SUFFIX) else 0)
            stored = yield upload.receive(body)
            self._usage.changed()
        finally:
            self._uploads -= 1
        if not evidence:
            yield self._registry.record(container, name, metadata)
            return _created(stored)
        self._events.emit(
            "clip.stored",
            container=container,
            object=name,
            storedAs=stored.name,
            length=stored.digests.length,
            md5=stored.digests.md5,
            sha256=stored.digests.sha256,
            alreadyStored=stored.existed,
        )
        if stored.name != name:
            self._anomaly(container, name, f"different bytes for an existing object, "
                                           f"kept as {stored.name!r}")
        if afterComplete:
            self._anomaly(container, name, "written after the recording was Complete")
        if name.endswith(GNSS_SUFFIX) and not stored.existed and not self.encrypted:
            yield self._checkTrack(container, stored.name, upload.kept)
        return _created(stored)

    def _anomaly(self, container, name, what):
        self._events.emit("recording.anomaly", container=container, object=name, anomaly=what)

    @inlineCallbacks
    def _checkTrack(self, container, name, kept):
        """
        A GNSS track is kept whatever it holds; one that is not JSON is
        flagged, one too large to hold in memory is reported unchecked.
        (Encrypted tracks are not JSON: they are not checked.)
        """
        if kept is None:
            self._events.emit("gnss.unchecked", container=container, object=name,
                              reason=f"larger than {GNSS_CHECK_LIMIT} bytes")
            return
        problem = yield deferToThreadPool(self._reactor, self._uploadPool, _jsonProblem, kept)
        if problem is not None:
            self._events.emit("gnss.invalid", container=container, object=name,
                              problem=problem)
