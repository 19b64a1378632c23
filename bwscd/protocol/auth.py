"""
C{GET /auth/v1.0}: credentials in, a signed, expiring token and the storage
URL out, as the API's "API endpoints" table gives it (Swift's TempAuth).
"""

import re
from http import HTTPStatus

from twisted.internet.defer import inlineCallbacks

from bwscd.errors import MethodNotAllowed, Unauthorized
from bwscd.protocol.response import Response, SwiftResource
from bwscd.security import tokens
from bwscd.security.logins import FailedLogins

_HOST = re.compile(rb"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


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


class Authentication(SwiftResource):
    """C{GET /auth/v1.0}: credentials in, a signed, expiring token out."""

    def __init__(self, credentials, authority: tokens.TokenAuthority, reactor, checker,
                 failures: FailedLogins | None = None):
        super().__init__()
        self._credentials = credentials
        self._authority = authority
        # One key check at a time (the service's auth pool, one thread):
        # scrypt takes 16 MiB while it runs (given back after, see
        # bwscd.security.tokens), and a flood of logins must not multiply that.
        self._checker = checker
        # Shared with the web viewer's login when there is one.
        self._failures = failures or FailedLogins(reactor.seconds)

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
        rightKey = yield self._checker.run(
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
