"""
L{bwscd.protocol.storageapi}: the token says the role, the path the level,
the rights table what may be done, and each level's handler has a method
for each right.  In memory (L{StubTreq}), over the filesystem backend.
"""

import pytest

from bwscd.constraints import SWIFT_METHODS
from bwscd.security.roles import ADMIN, BWS, READER, RIGHTS


def test_every_right_has_its_handler(api):
    for role, rights in RIGHTS.items():
        for method, level in rights:
            assert method in SWIFT_METHODS
            assert callable(api.storage.handlers[level].methods[method]), (role, method, level)


def test_no_token_or_a_forged_one_is_401(api):
    answer = api.request("GET", role=None)
    assert (answer.code, answer.body) == (401, b"missing, invalid or expired auth token\n")
    answer = api.request("GET", role=None, headers={"X-Auth-Token": "BWS_x.y"})
    assert answer.code == 401


def test_another_account_in_the_path_is_403(api):
    answer = api.request("GET", "/v1/AUTH_someone-else")
    assert (answer.code, answer.body) == (403, b"this token is not for that account\n")


@pytest.mark.parametrize("role, method, path, code", [
    (BWS, "GET", "", 403),  # the controller does not list
    (BWS, "DELETE", "Users/x", 403),
    (READER, "PUT", "Users", 403),
    (READER, "DELETE", "Users", 403),
    (ADMIN, "POST", "Users", 403),
    (ADMIN, "COPY", "Users/x", 403),
    (ADMIN, "PATCH", "Users/x", 405),
    (READER, "PROPFIND", "", 405),
])
def test_what_a_role_may_not_do_is_refused_before_anything_is_read(api, role, method, path,
                                                                   code):
    answer = api.request(method, path, role=role)
    assert answer.code == code, answer.body
    level = "object" if path.count("/") else "container" if path else "account"
    expected = (f"{method} on this {level} is not allowed for this account\n" if code == 403
                else f"{method} is not a Swift method\n")
    assert answer.body == expected.encode()


def test_bad_names_are_400(api):
    assert api.request("PUT", "%FF", role=BWS).code == 400
    assert api.request("GET", "/v1/" + api.account + "//x").body == b"empty container name\n"


def test_the_x_storage_token_stands_for_the_auth_token(api):
    answer = api.request("HEAD", role=None, headers={"X-Storage-Token": api.tokens[BWS]})
    assert answer.code == 204


def test_a_path_outside_the_api_is_404(api):
    answer = api.request("GET", "/auth/v2.0", role=None)
    assert (answer.code, answer.body) == (
        404, b"no such path; the API lives under /auth/v1.0 and /v1/\n")
