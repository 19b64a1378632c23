"""
Who is logged in to the viewer, and whether a form came from the viewer's
own pages.

A session is a token of L{bwscd.security.tokens.TokenAuthority} (signed,
expiring, naming the account) in an C{HttpOnly; Secure; SameSite=Strict}
cookie.  It is signed with a key derived from the token secret in the
settings, so it is never an C{X-Auth-Token} (nor one of those a session),
and changing the token secret (C{bwscd credentials}) ends every session
with every token.  Each session has its own CSRF token, derived from it;
a login form has one too, bound to a random cookie set with the form.
Every comparison is in constant time, and no token is ever logged.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from bwscd.security.roles import ADMIN, READER
from bwscd.security.tokens import TokenAuthority

SESSION_COOKIE = b"__Host-bwscd-viewer"
"""The session's cookie; C{__Host-}: the browser keeps it only if it is
C{Secure}, for C{Path=/} and without a C{Domain}, so no sibling host can set it."""
LOGIN_COOKIE = b"__Host-bwscd-login"
"""The random value a login form's CSRF token is bound to."""
SESSION_LIFETIME = 8 * 60 * 60
"""Seconds a session lasts after login: a working day, then log in again."""
LOGIN_FORM_LIFETIME = 60 * 60
VIEWER_ROLES = (READER, ADMIN)
"""The roles that may log in to the viewer; the controller's account may not."""

_SESSION_KEY_LABEL = b"bwscd viewer session"


@dataclass(frozen=True)
class Session:
    account: str
    role: str
    token: str
    """The cookie's value: never logged, never shown."""
    csrf: str
    """The token every form of this session carries."""


def _cookie(name: bytes, value: bytes, maxAge: int) -> bytes:
    return (b"%s=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Strict"
            % (name, value, maxAge))


class Sessions:
    """
    Issues, finds and ends viewer sessions.

    @param credentials: the L{bwscd.security.accounts.Credentials}, updated
        when the settings change: the account's role is looked up on every
        request, so a removed account's session ends at once.
    """

    def __init__(self, credentials, clock, lifetime: int = SESSION_LIFETIME):
        self._credentials = credentials
        self._clock = clock
        self._authority = TokenAuthority(b"", lifetime, clock)
        self.lifetime = lifetime
        self._ended: dict[str, float] = {}
        """Sessions logged out before their expiry: token, expiry."""

    def _key(self) -> bytes:
        # Taken from the credentials each time: a reload may have changed it.
        return hmac.new(self._credentials.tokenSecret, _SESSION_KEY_LABEL,
                        hashlib.sha256).digest()

    def _derived(self, purpose: bytes, value: str) -> str:
        return hmac.new(self._key(), purpose + b"\0" + value.encode("ascii"),
                        hashlib.sha256).hexdigest()

    def start(self, account: str) -> tuple[Session, bytes]:
        """A new session for C{account}, and its C{Set-Cookie} header's value."""
        self._authority.secret = self._key()
        token, _ = self._authority.issue(account)
        session = Session(account, self._credentials.roleOf(account), token,
                          self._derived(b"csrf", token))
        return session, _cookie(SESSION_COOKIE, token.encode("ascii"), self.lifetime)

    def find(self, request) -> Session | None:
        """The request's session: L{None} without a valid, unexpired one of
        an account that may still use the viewer."""
        cookie = request.getCookie(SESSION_COOKIE)
        if not cookie:
            return None
        token = cookie.decode("latin-1")
        self._authority.secret = self._key()
        account = self._authority.verify(token)
        if account is None or token in self._ended:
            return None
        role = self._credentials.roleOf(account)
        if role not in VIEWER_ROLES:
            return None
        return Session(account, role, token, self._derived(b"csrf", token))

    def end(self, session: Session) -> bytes:
        """Log C{session} out; the C{Set-Cookie} header's value that drops it."""
        now = self._clock()
        self._ended = {token: expiry for token, expiry in self._ended.items() if expiry > now}
        self._ended[session.token] = now + self.lifetime
        return _cookie(SESSION_COOKIE, b"", 0)

    def loginForm(self) -> tuple[str, bytes]:
        """A login form's CSRF token, and the C{Set-Cookie} value it is bound to."""
        nonce = secrets.token_urlsafe(32)
        return (self._derived(b"login", nonce),
                _cookie(LOGIN_COOKIE, nonce.encode("ascii"), LOGIN_FORM_LIFETIME))

    def loginFormToken(self, request) -> str | None:
        """The CSRF token the login form posted in C{request} must carry."""
        nonce = request.getCookie(LOGIN_COOKIE)
        if not nonce:
            return None
        return self._derived(b"login", nonce.decode("latin-1"))


def tokensMatch(expected: str | None, given: str | None) -> bool:
    """Whether a form's CSRF token is the expected one, in constant time."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def sameOrigin(request) -> bool:
    """
    Whether a state-changing request says it comes from a page of this
    viewer: its C{Origin} (browsers send it on every POST), or failing that
    its C{Referer}, names the host it was sent to, with the scheme it came by.  Neither is
    trusted alone: the CSRF token is checked too.
    """
    host = request.getHeader(b"host")
    if not host:
        return False
    expected = ("https" if request.isSecure() else "http", host.decode("latin-1").lower())
    for header in (b"origin", b"referer"):
        value = request.getHeader(header)
        if value is None:
            continue
        try:
            parts = urlsplit(value.decode("latin-1"))
        except ValueError:
            return False
        return (parts.scheme, parts.netloc.lower()) == expected
    return False
