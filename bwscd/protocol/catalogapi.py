"""
C{/catalog/v1/...}: the evidence catalog as JSON, for integrators (and the
viewer's pages' data).

The same C{X-Auth-Token} as the Swift API; reader and admin accounts may
read (L{bwscd.security.roles.mayReadCatalog}), the controller's
account gets 403.  Who is asking is decided by an C{accountOf(request)}
callable, so that the viewer can plug in its session cookie.  Routes are an
explicit table of patterns (L{CatalogAPI.routes}); a new endpoint is one
line there.  Everything is read with GET; the legal holds
(C{/catalog/v1/holds}) are also changed, by admin accounts only, with
C{POST} (parameters in the query string) and C{DELETE}.  Answers go through L{bwscd.protocol.response}: JSON with
C{application/json}, refusals as 4xx with a message.
"""

import json
import re
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import inlineCallbacks, maybeDeferred

from bwscd import constraints
from bwscd.catalog.geo import geojson, gpx
from bwscd.catalog.query import parseFilters
from bwscd.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Unauthorized
from bwscd.protocol.object import serveObject
from bwscd.protocol.response import Response, SwiftResource
from bwscd.security import roles

PREFIX = b"/catalog/v1/"


def tokenAccount(authority, credentials):
    """
    The C{accountOf} of the Swift API's tokens: C{(user, role)} of a valid
    C{X-Auth-Token}, else L{None}.
    """
    def accountOf(request):
        token = request.getHeader(b"x-auth-token") or request.getHeader(b"x-storage-token")
        user = authority.verify(token.decode("latin-1")) if token else None
        role = None if user is None else credentials.roleOf(user)
        return None if role is None else (user, role)
    return accountOf


def jsonAnswer(value, code=HTTPStatus.OK) -> Response:
    body = json.dumps(value, ensure_ascii=False, indent=None).encode("utf-8")
    return Response(code, body=body, contentType=b"application/json")


def _segments(path: bytes) -> str:
    """What follows C{/catalog/v1/}, each segment percent-decoded as UTF-8."""
    rest = path[len(PREFIX):] if path.startswith(PREFIX) else b""
    try:
        return "/".join(unquote_to_bytes(part).decode("utf-8") for part in rest.split(b"/"))
    except UnicodeDecodeError:
        raise BadRequest("the path is not UTF-8")


def _arguments(request) -> dict[str, str]:
    arguments = {}
    for name, values in (request.args or {}).items():
        try:
            key = name.decode("utf-8")
            if len(values) != 1:
                raise BadRequest(f"{key!r} given {len(values)} times; give it once")
            arguments[key] = values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the query string is not UTF-8")
    return arguments


class CatalogAPI(SwiftResource):
    """
    @param query: the L{bwscd.catalog.query.CatalogQuery}.
    @param accountOf: C{request -> (user, role)} or L{None} (or a Deferred of either).
    @param evidence: the L{bwscd.policy.evidence.EvidenceRules} that audit.
    @param exporter: the L{bwscd.catalog.export.Exporter} of evidence packages.
    @param via: what C{recording.viewed} names this resource: C{api} or C{viewer}.
    @param holds: the L{bwscd.config.holds.LegalHolds}, or L{None} where
        holds are not served (the viewer's mount, whose session cookie a
        page of another site could send along: changes need the token).
    """

    def __init__(self, query, accountOf, backend, evidence, downloads, exporter, via="api",
                 holds=None):
        super().__init__()
        self._query = query
        self._accountOf = accountOf
        self._backend = backend
        self._evidence = evidence
        self._downloads = downloads
        self._exporter = exporter
        self._via = via
        self._holds = holds
        self.routes = [
            (re.compile(r"people"), self.people),
            (re.compile(r"people/(?P<uuid>[^/]+)"), self.person),
            (re.compile(r"recordings"), self.recordings),
            (re.compile(r"recordings/(?P<id>[^/]+)"), self.recording),
            (re.compile(r"recordings/(?P<id>[^/]+)/track\.geojson"), self.trackGeoJSON),
            (re.compile(r"recordings/(?P<id>[^/]+)/track\.gpx"), self.trackGPX),
            (re.compile(r"recordings/(?P<id>[^/]+)/clips/(?P<name>.+)"), self.clip),
            (re.compile(r"recordings/(?P<id>[^/]+)/export"), self.export),
        ]
        """C{(pattern of the path below /catalog/v1/, handler(request, account, **groups))}."""
        if holds is not None:
            self.routes += [(re.compile(r"holds"), self.holdList),
                            (re.compile(r"holds/(?P<id>[^/]+)"), self.hold)]
        self.changes = {(self.holdList, "POST"): self.addHold,
                        (self.hold, "DELETE"): self.removeHold}
        """Handlers of what is not a GET, by the GET handler of their path and the method:
        admins only."""

    @inlineCallbacks
    def handle(self, request):
        account = yield maybeDeferred(self._accountOf, request)
        if account is None:
            raise Unauthorized("missing, invalid or expired auth token")
        user, role = account
        request.user = user  # for the access log, refused or not
        method = request.method.decode("latin-1")
        if not roles.mayReadCatalog(role):
            raise Forbidden("the catalog is not open to this account")
        path = _segments(request.path)
        for pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                break
        else:
            raise NotFound("no such path in the catalog; see docs/catalog.md")
        if method != "GET":
            change = self.changes.get((handler, method))
            if change is None:
                raise MethodNotAllowed(f"{method}: the catalog is read with GET")
            if role != roles.ADMIN:
                raise Forbidden("only an admin account changes legal holds")
            handler = change
        return (yield handler(request, user, **match.groupdict()))

    # legal holds (docs/retention.md)

    @inlineCallbacks
    def holdList(self, request, user):
        _noArguments(request)
        holds = yield self._holds.list()
        return jsonAnswer({"items": [hold.__dict__ for hold in holds]})

    @inlineCallbacks
    def hold(self, request, user, id):
        _noArguments(request)
        found = [hold for hold in (yield self._holds.list()) if hold.id == id]
        if not found:
            raise NotFound(f"no legal hold {id}")
        return jsonAnswer(found[0].__dict__)

    @inlineCallbacks
    def addHold(self, request, user):
        arguments = _arguments(request)
        if sorted(arguments) != ["kind", "reason", "target"]:
            raise BadRequest("a hold is POSTed with ?kind=recording|person|tag&target=...&reason=...")
        try:
            hold = yield self._holds.add(arguments["kind"], arguments["target"],
                                         arguments["reason"], user)
        except ValueError as e:
            raise BadRequest(str(e))
        return jsonAnswer(hold.__dict__, HTTPStatus.CREATED)

    @inlineCallbacks
    def removeHold(self, request, user, id):
        _noArguments(request)
        try:
            hold = yield self._holds.remove(id, user)
        except ValueError as e:
            raise NotFound(str(e))
        return jsonAnswer(hold.__dict__)

    @inlineCallbacks
    def people(self, request, user):
        _noArguments(request)
        return jsonAnswer({"items": (yield self._query.people())})

    @inlineCallbacks
    def person(self, request, user, uuid):
        _noArguments(request)
        found = yield self._query.person(uuid)
        if found is None:
            raise NotFound(f"no person {uuid!r}")
        return jsonAnswer(found)

    @inlineCallbacks
    def recordings(self, request, user):
        filters = parseFilters(_arguments(request))
        return jsonAnswer((yield self._query.recordings(**filters)))

    @inlineCallbacks
    def recording(self, request, user, id):
        _noArguments(request)
        found = yield self._query.recording(id)
        if found is None:
            raise NotFound(f"no recording {id!r} in the catalog")
        self._evidence.recordingViewed(id, user, self._via)
        return jsonAnswer(found)

    @inlineCallbacks
    def _track(self, id):
        points = yield self._query.track(id)
        if points is None:
            raise NotFound(f"no recording {id!r} in the catalog")
        return points

    @inlineCallbacks
    def trackGeoJSON(self, request, user, id):
        _noArguments(request)
        points = yield self._track(id)
        detail = yield self._query.recording(id)
        answer = jsonAnswer(geojson(id, points, detail and detail["triggerLocation"]))
        answer.contentType = b"application/geo+json"
        return answer

    @inlineCallbacks
    def trackGPX(self, request, user, id):
        _noArguments(request)
        points = yield self._track(id)
        return Response(HTTPStatus.OK, body=gpx(id, points), contentType=b"application/gpx+xml")

    @inlineCallbacks
    def clip(self, request, user, id, name):
        _noArguments(request)
        container = constraints.containerName(id.encode("utf-8"))
        name = constraints.objectName(name.encode("utf-8"))
        if not self._evidence.isEvidence(container):
            raise NotFound(f"{container!r} is not a recording")
        yield serveObject(request, self._backend, self._downloads, self._evidence,
                          container, name, user)

    @inlineCallbacks
    def export(self, request, user, id):
        arguments = _arguments(request)
        unknown = sorted(set(arguments) - {"reason"})
        if unknown:
            raise BadRequest(f"an export takes only a reason (given: {', '.join(unknown)})")
        if "reason" not in arguments:
            raise BadRequest("give the export's reason: ?reason=... (kept in its custody record)")
        container = constraints.containerName(id.encode("utf-8"))
        if not self._evidence.isEvidence(container):
            raise NotFound(f"{container!r} is not a recording")
        package = yield self._exporter.prepare(container, user, arguments["reason"], self._via)
        request.setResponseCode(HTTPStatus.OK)
        request.setHeader(b"Content-Type", b"application/zip")
        request.setHeader(b"Content-Disposition",
                          b'attachment; filename="%s"' % package.filename.encode("ascii", "replace"))
        try:
            yield package.stream(request)
        except Exception:
            # The headers are gone: only a cut connection tells the client
            # that what it got is no package (package.stream logged the
            # recording.export-failed event).
            if request.channel is not None:
                request.channel.forceAbortClient()
            return
        if not request._disconnected:
            request.finish()


def _noArguments(request) -> None:
    if request.args:
        names = ", ".join(sorted(n.decode("utf-8", "replace") for n in request.args))
        raise BadRequest(f"this path takes no parameters (given: {names})")
