"""
The viewer's sessions (L{bwscd.viewer.session}): signed, expiring, ended by
logout, only for readers and admins, never a Swift token; CSRF tokens per
session; the Origin/Referer check.
"""

import pytest
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from bwscd.config import datadir
from bwscd.config.settings import Settings
from bwscd.security.accounts import Credentials
from bwscd.security.roles import ADMIN, READER
from bwscd.security.tokens import TokenAuthority
from bwscd.viewer.session import (LOGIN_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, Sessions,
                                  sameOrigin, tokensMatch)


@pytest.fixture
def settings(tmp_path):
    directory = str(tmp_path / "data")
    datadir.prepare(directory, port=8080, https=False)
    settings = Settings.load(directory)
    settings.addAccount("clerk", READER)
    settings.addAccount("boss", ADMIN)
    return settings


def requestWith(cookies=None, headers=None, secure=True) -> DummyRequest:
    request = DummyRequest([b""])
    received = dict(cookies or {})
    request.getCookie = received.get
    for name, value in (headers or {}).items():
        request.requestHeaders.setRawHeaders(name, [value])
    request.isSecure = lambda: secure
    return request


def cookieValue(header: bytes) -> bytes:
    return header.split(b";")[0].split(b"=", 1)[1]


def test_a_session_is_found_until_it_expires(settings):
    clock = Clock()
    sessions = Sessions(Credentials(settings), clock.seconds)
    session, header = sessions.start("clerk")
    assert b"; Secure; HttpOnly; SameSite=Strict" in header and b"Path=/" in header
    request = requestWith({SESSION_COOKIE: cookieValue(header)})
    found = sessions.find(request)
    assert (found.account, found.role, found.csrf) == ("clerk", READER, session.csrf)
    clock.advance(SESSION_LIFETIME)
    assert sessions.find(request) is None


def test_logout_ends_the_session_and_only_it(settings):
    sessions = Sessions(Credentials(settings), Clock().seconds)
    one, oneHeader = sessions.start("clerk")
    _, twoHeader = sessions.start("clerk")
    assert b"Max-Age=0" in sessions.end(one)
    assert sessions.find(requestWith({SESSION_COOKIE: cookieValue(oneHeader)})) is None
    assert sessions.find(requestWith({SESSION_COOKIE: cookieValue(twoHeader)})) is not None


def test_the_controllers_account_and_removed_accounts_have_no_session(settings):
    credentials = Credentials(settings)
    sessions = Sessions(credentials, Clock().seconds)
    _, header = sessions.start(credentials.userName)
    assert sessions.find(requestWith({SESSION_COOKIE: cookieValue(header)})) is None
    _, header = sessions.start("boss")
    settings.removeAccount("boss")
    credentials.update(settings)
    assert sessions.find(requestWith({SESSION_COOKIE: cookieValue(header)})) is None


def test_a_swift_token_is_no_session_and_a_session_no_swift_token(settings):
    credentials = Credentials(settings)
    authority = TokenAuthority(credentials.tokenSecret, 3600)
    sessions = Sessions(credentials, Clock().seconds)
    token, _ = authority.issue("clerk")
    assert sessions.find(requestWith({SESSION_COOKIE: token.encode()})) is None
    session, _ = sessions.start("clerk")
    assert authority.verify(session.token) is None


def test_each_session_has_its_own_csrf_token_and_the_login_form_one_bound_to_its_cookie(settings):
    sessions = Sessions(Credentials(settings), Clock().seconds)
    one, _ = sessions.start("clerk")
    two, _ = sessions.start("clerk")
    assert one.csrf != two.csrf
    assert one.token not in one.csrf  # pages carry it; the session's cookie stays unseen
    token, header = sessions.loginForm()
    assert sessions.loginFormToken(requestWith({LOGIN_COOKIE: cookieValue(header)})) == token
    other, otherHeader = sessions.loginForm()
    assert sessions.loginFormToken(requestWith({LOGIN_COOKIE: cookieValue(otherHeader)})) != token
    assert sessions.loginFormToken(requestWith()) is None
    assert tokensMatch(token, token) and not tokensMatch(token, other)
    assert not tokensMatch(token, None) and not tokensMatch(None, None)


@pytest.mark.parametrize("headers, secure, same", [
    ({b"origin": b"https://viewer:8444"}, True, True),
    ({b"referer": b"https://viewer:8444/recordings/x"}, True, True),
    ({b"origin": b"https://evil.example"}, True, False),
    ({b"origin": b"null", b"referer": b"https://viewer:8444/"}, True, False),
    ({b"origin": b"http://viewer:8444"}, True, False),
    ({}, True, False),
    ({b"origin": b"http://viewer:8444"}, False, True),
])
def test_a_form_comes_from_the_viewer_by_its_origin_or_referer(headers, secure, same):
    request = requestWith(headers={b"host": b"viewer:8444", **headers}, secure=secure)
    assert sameOrigin(request) is same
