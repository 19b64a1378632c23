"""
The viewer's resource tree: its pages, login and logout, the static files,
and the catalog's JSON API mounted for its own pages; the security headers
every answer carries.
"""

import os
import re
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import xstatic.pkg.leaflet
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.static import File

from bwscd.catalog.query import parseFilters

from bwscd.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, SwiftError, Unauthorized
from bwscd.protocol.response import Response, SwiftResource, refusal, send
from bwscd.security.logins import FailedLogins
from bwscd.security.roles import ADMIN
from bwscd.viewer import pages
from bwscd.viewer.session import VIEWER_ROLES, Sessions, sameOrigin, tokensMatch

log = Logger()

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_FORM = 16 << 10
"""The most a form's body may hold: a login, a logout, an export's reason."""
PAGE_SIZE = 50


def contentSecurityPolicy(tiles: str | None) -> bytes:
    """
    Only this server's own scripts, styles, media and data; images from it
    and from the map's tile host; no frames, no plugins, forms only to itself.
    """
    images = "'self'"
    if tiles:
        parts = urlsplit(tiles)
        images += f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {images}; media-src 'self'; connect-src 'self'; font-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'").encode("ascii")


def secure(request, policy: bytes, cacheable: bool = False) -> None:
    """The headers every answer of the viewer carries."""
    request.setHeader(b"Content-Security-Policy", policy)
    request.setHeader(b"X-Frame-Options", b"DENY")
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Referrer-Policy", b"same-origin")
    request.setHeader(b"Strict-Transport-Security", b"max-age=31536000")
    request.setHeader(b"Cache-Control", b"public, max-age=3600" if cacheable else b"no-store")


class _NotFound(SwiftResource):
    def handle(self, request):
        raise NotFound("no such file")


class StaticFiles(File):
    """A folder's files, never a listing of it; a missing one is a refusal as any other."""

    childNotFound = _NotFound()

    def directoryListing(self):
        return _NotFound()


def htmlAnswer(body: bytes, code=HTTPStatus.OK, headers=()) -> Response:
    return Response(code, headers=list(headers), body=body,
                    contentType=b"text/html; charset=utf-8")


def redirect(location: str, headers=()) -> Response:
    return Response(HTTPStatus.SEE_OTHER, headers=[(b"Location", location.encode("utf-8")),
                                                   *headers])


def readForm(request):
    """
    The fields of a posted form (C{application/x-www-form-urlencoded}),
    each given once, as text.

    @raise BadRequest: if it is not such a form, or larger than L{MAX_FORM}.
    """
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if kind != b"application/x-www-form-urlencoded":
        raise BadRequest("send the form as application/x-www-form-urlencoded")
    body = request.body
    if isinstance(body.length, int) and body.length > MAX_FORM:  # else chunked: counted
        raise BadRequest(f"a form of at most {MAX_FORM} bytes")
    received = []

    class Collect:
        def write(self, data):
            received.append(data)
            if sum(map(len, received)) > MAX_FORM:
                body.stopProducing()

    d = body.startProducing(Collect())

    def parse(_):
        data = b"".join(received)
        if len(data) > MAX_FORM:
            raise BadRequest(f"a form of at most {MAX_FORM} bytes")
        try:
            fields = parse_qs(data.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the form is not UTF-8")
        return {name: values[0] for name, values in fields.items() if len(values) == 1}

    return d.addCallback(parse)


class Viewer(SwiftResource):
    """
    The pages: C{/login}, C{/logout}, C{/people}, C{/people/UUID},
    C{/search}, C{/recordings/ID} and C{/recordings/ID/export}.

    @param query: the L{bwscd.catalog.query.CatalogQuery}.
    @param catalog: the catalog API resource the pages' data and clips come
        from, whose export route the export form is answered by.
    @param evidence: the L{bwscd.policy.evidence.EvidenceRules}, told of views.
    @param checker: the thread pool keys are checked on (the service's auth pool).
    @param holds: the L{bwscd.config.holds.LegalHolds}: shown to all, changed by admins.
    @param capacity: the L{bwscd.policy.capacity.Capacity} shown to admins on
        the people page, or L{None}.
    """

    def __init__(self, sessions: Sessions, credentials, failures: FailedLogins, checker,
                 query, catalog, evidence, tiles: str | None = None, holds=None,
                 capacity=None):
        super().__init__()
        self._sessions = sessions
        self._credentials = credentials
        self._failures = failures
        self._checker = checker
        self._query = query
        self._catalog = catalog
        self._evidence = evidence
        self._tiles = tiles
        self._holds = holds
        self._capacity = capacity
        self.routes = [
            (re.compile(r""), {"GET": self.home}),
            (re.compile(r"login"), {"GET": self.loginForm, "POST": self.login}),
            (re.compile(r"logout"), {"POST": self.logout}),
            (re.compile(r"people"), {"GET": self.people}),
            (re.compile(r"people/(?P<uuid>[^/]+)"), {"GET": self.person}),
            (re.compile(r"search"), {"GET": self.search}),
            (re.compile(r"recordings/(?P<id>[^/]+)"), {"GET": self.recording}),
            (re.compile(r"recordings/(?P<id>[^/]+)/export"), {"POST": self.export}),
            (re.compile(r"holds"), {"GET": self.holds, "POST": self.addHold}),
            (re.compile(r"holds/(?P<id>[^/]+)/remove"), {"POST": self.removeHold}),
        ]
        """C{(pattern of the path, {method: handler(request, **groups)})}."""

    def render(self, request):
        d = maybeDeferred(self.handle, request)
        d.addErrback(self._refused, request)
        d.addCallback(lambda response: response and send(request, response))
        return NOT_DONE_YET

    def _refused(self, reason, request):
        if reason.check(Unauthorized) and request.method == b"GET":
            # Not logged in (or the session ended): to the login page, and back.
            back = request.uri.decode("latin-1")
            return redirect("/login?" + urlencode({"next": back}))
        answer = refusal(reason, request)
        if answer is None:
            return None
        message = reason.value.message if isinstance(reason.value, SwiftError) else "internal error"
        return htmlAnswer(pages.errorPage(answer.code, message, self._sessions.find(request)),
                          answer.code, answer.headers)

    def handle(self, request):
        try:
            path = "/".join(part.decode("utf-8") for part in request.postpath)
        except UnicodeDecodeError:
            raise BadRequest("the path is not UTF-8")
        path = unquote(path)
        method = request.method.decode("latin-1")
        for pattern, methods in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                break
        else:
            raise NotFound("no such page")
        if method not in methods:
            raise MethodNotAllowed(f"{method} is not answered here")
        if method == "POST" and not sameOrigin(request):
            raise Forbidden("this form did not come from this viewer's pages "
                            "(Origin or Referer missing or another site's)")
        return methods[method](request, **match.groupdict())

    def _session(self, request):
        session = self._sessions.find(request)
        if session is None:
            raise Unauthorized("log in first")
        request.user = session.account
        return session

    @inlineCallbacks
    def _postedBy(self, request):
        """The session and form of a POST, its CSRF token checked."""
        session = self._session(request)
        form = yield readForm(request)
        if not tokensMatch(session.csrf, form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
        return session, form

    def home(self, request):
        return redirect("/people")

    def loginForm(self, request, message=None, user="", code=HTTPStatus.OK):
        token, cookie = self._sessions.loginForm()
        back = _argument(request, "next") or ""
        return htmlAnswer(pages.loginPage(token, message, user, back), code,
                          [(b"Set-Cookie", cookie)])

    @inlineCallbacks
    def login(self, request):
        form = yield readForm(request)
        if not tokensMatch(self._sessions.loginFormToken(request), form.get("csrf")):
            raise Forbidden("the login form's CSRF token is missing or wrong: reload the page")
        user, key = form.get("user", ""), form.get("key", "")
        peer = request.getClientAddress().host
        if self._failures.throttled(peer):
            log.info("viewer login refused for {peer}: too many failed logins", peer=peer)
            return self.loginForm(request, f"Too many failed logins from {peer}; wait "
                                  f"{FailedLogins.WINDOW} seconds.", user, HTTPStatus.UNAUTHORIZED)
        # scrypt, off the reactor, one at a time, whatever the user name.
        rightKey = yield self._checker.run(self._credentials.accepts, user, key)
        if not rightKey:
            self._failures.add(peer)
            log.info("viewer login failed for {peer}: wrong user name or key", peer=peer)
            return self.loginForm(request, "Wrong user name or key.", user, HTTPStatus.UNAUTHORIZED)
        if self._credentials.roleOf(user) not in VIEWER_ROLES:
            log.info("viewer login refused for {peer}: {user} is not a reader or admin",
                     peer=peer, user=user)
            return self.loginForm(request, "This account may not use the viewer: log in with a "
                                  "reader or admin account.", user, HTTPStatus.FORBIDDEN)
        session, cookie = self._sessions.start(user)
        request.user = user
        log.info("viewer login: {user} from {peer}", user=user, peer=peer)
        back = request.args.get(b"next", [b"/people"])[0].decode("utf-8", "replace")
        if not back.startswith("/") or back.startswith("//"):
            back = "/people"  # only to a page of this viewer
        return redirect(back, [(b"Set-Cookie", cookie)])

    @inlineCallbacks
    def logout(self, request):
        session, _ = yield self._postedBy(request)
        log.info("viewer logout: {user}", user=session.account)
        return redirect("/login", [(b"Set-Cookie", self._sessions.end(session))])

    @inlineCallbacks
    def people(self, request):
        session = self._session(request)
        name = _argument(request, "name") or ""
        everyone = yield self._query.people()
        estimate = None
        if session.role == ADMIN and self._capacity is not None:
            try:
                estimate = yield self._capacity.estimate()
            except Exception:
                # The page is for finding people: it shows without the panel.
                log.failure("viewer: could not estimate capacity for the people page")
        return htmlAnswer(pages.peoplePage(everyone, session, name, estimate))

    @inlineCallbacks
    def person(self, request, uuid):
        session = self._session(request)
        found = yield self._query.person(uuid)
        if found is None:
            raise NotFound(f"no person {uuid!r} in the catalog")
        cursor = _argument(request, "cursor")
        filters = {"person": uuid, "limit": PAGE_SIZE}
        if cursor:
            filters["cursor"] = cursor
        result = yield self._query.recordings(**filters)
        return htmlAnswer(pages.personPage(found, result, session, cursor))

    @inlineCallbacks
    def search(self, request):
        session = self._session(request)
        arguments = {name: _argument(request, name) or "" for name in pages.SEARCH_FIELDS}
        everyone = yield self._query.people()
        given = {k: v for k, v in arguments.items() if v}
        result, message = None, None
        if given:
            try:
                filters = self._filters(given)
                cursor = _argument(request, "cursor")
                if cursor:
                    filters["cursor"] = cursor
                result = yield self._query.recordings(limit=PAGE_SIZE, **filters)
            except BadRequest as e:
                log.info("viewer search refused: {message}", message=e.message)
                message = e.message
        code = HTTPStatus.BAD_REQUEST if message else HTTPStatus.OK
        return htmlAnswer(pages.searchPage(arguments, everyone, result, session, message), code)

    @staticmethod
    def _filters(given: dict) -> dict:
        """The search form's fields as the catalog's filters (through the API's own parser)."""
        arguments = {k: v for k, v in given.items() if k not in ("lat", "lon", "metres")}
        for name in ("from", "to"):
            # datetime-local gives 2024-05-01T10:15 (the form says UTC).
            if arguments.get(name) and not re.search(r"(Z|[+-]\d\d:\d\d)$", arguments[name]):
                arguments[name] += ":00Z" if arguments[name].count(":") == 1 else "Z"
        near = [given.get(k, "") for k in ("lat", "lon", "metres")]
        if any(near):
            if not all(near):
                raise BadRequest("near a place: give the latitude, the longitude and the metres")
            arguments["near"] = ",".join(near)
        return parseFilters(arguments)

    @inlineCallbacks
    def recording(self, request, id):
        session = self._session(request)
        found = yield self._query.recording(id)
        if found is None:
            raise NotFound(f"no recording {id!r} in the catalog")
        track = yield self._query.track(id)
        self._evidence.recordingViewed(id, session.account, "viewer")
        return htmlAnswer(pages.recordingPage(found, track, session, self._tiles))

    @inlineCallbacks
    def holds(self, request, message=None, code=HTTPStatus.OK):
        session = self._session(request)
        holds = yield self._holds.list()
        return htmlAnswer(pages.holdsPage(holds, session, message), code)

    @inlineCallbacks
    def _adminPost(self, request):
        session, form = yield self._postedBy(request)
        if session.role != ADMIN:
            raise Forbidden("only an admin account changes legal holds")
        return session, form

    @inlineCallbacks
    def addHold(self, request):
        session, form = yield self._adminPost(request)
        try:
            yield self._holds.add(form.get("kind", ""), form.get("target", ""),
                                  form.get("reason", ""), session.account)
        except ValueError as e:
            return (yield self.holds(request, str(e), HTTPStatus.BAD_REQUEST))
        return redirect("/holds")

    @inlineCallbacks
    def removeHold(self, request, id):
        session, _ = yield self._adminPost(request)
        try:
            yield self._holds.remove(id, session.account)
        except ValueError as e:
            raise NotFound(str(e))
        return redirect("/holds")

    @inlineCallbacks
    def export(self, request, id):
        session, form = yield self._postedBy(request)
        reason = form.get("reason", "").strip()
        if not reason:
            raise BadRequest("give a reason for the export")
        # The catalog API's own export, as if asked with ?reason=: one
        # package format, one audit.
        path = f"recordings/{id}/export"
        for pattern, handler in self._catalog.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                request.args = {b"reason": [reason.encode("utf-8")]}
                return (yield handler(request, session.account, **match.groupdict()))
        raise NotFound(f"no recording {id!r}")


def _argument(request, name: str) -> str | None:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    if len(values) != 1:
        raise BadRequest(f"{name!r} given {len(values)} times; give it once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name!r} is not UTF-8")


class ViewerRoot(Resource):
    """
    C{/static/...} (the viewer's own files, C{/static/leaflet/...} from
    XStatic-Leaflet), C{/catalog/v1/...} (the JSON API and clips, with the
    session cookie as well as C{X-Auth-Token}) and the pages; the security
    headers on every answer.
    """

    def __init__(self, viewer: Viewer, catalog, tiles: str | None = None):
        super().__init__()
        self._viewer = viewer
        self._catalog = catalog
        self._policy = contentSecurityPolicy(tiles)
        self._static = StaticFiles(STATIC)
        self._static.putChild(b"leaflet", StaticFiles(xstatic.pkg.leaflet.BASE_DIR))

    def getChild(self, name, request):
        static = name == b"static"
        secure(request, self._policy, cacheable=static)
        if static:
            return self._static
        if name == b"catalog":
            return self._catalog
        request.postpath.insert(0, name)
        request.prepath.pop()
        return self._viewer

    def getChildWithDefault(self, name, request):
        return self.getChild(name, request)


def sessionOrToken(sessions: Sessions, tokens):
    """
    The viewer's C{accountOf} for the catalog API: an C{X-Auth-Token} as on
    the controller's port, or the session cookie (which the browser sends
    only from this viewer's own pages: C{SameSite=Strict}).
    """
    def accountOf(request):
        account = tokens(request)
        if account is not None:
            return account
        session = sessions.find(request)
        return None if session is None else (session.account, session.role)
    return accountOf
