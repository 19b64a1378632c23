"""
The operator's pages say what bwscd really does.

docs/body-worn-manager.md quotes, in fenced blocks with the info string
C{log}, the lines an operator finds in bwscd's log when Body Worn Manager
connects and when it fails.  Here a real server is made to go through each
of those cases, and every quoted line must be one the server printed, and
each case must have a quoted line.  docs/compatibility.md must name every
capability the server publishes; README.md must carry the notices the
partner checklist requires.
"""

import http.client
import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import swiftclient

from bwscd.security.certificate import createSelfSigned

REPOSITORY = Path(__file__).resolve().parent.parent
BWM_PAGE = REPOSITORY / "docs" / "body-worn-manager.md"
COMPATIBILITY_PAGE = REPOSITORY / "docs" / "compatibility.md"
README = REPOSITORY / "README.md"

SYSTEM_ID = "6f2d1c3a-8b4e-4f5a-9c6d-7e8f9a0b1c2d"
STRANGER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"

# What differs from one server, client or request to the next in a quoted
# line, and what matches it; every other character must be as quoted.
_VARYING = [
    (r"\d{1,3}(?:\.\d{1,3}){3}", r"\d{1,3}(?:\.\d{1,3}){3}"),  # an IPv4 address
    (r"bws-[0-9a-f]{12}", r"bws-[0-9a-f]{12}"),  # the account
    (r"(?<=in=)\d+|(?<=out=)\d+", r"\d+"),  # bytes of a request and its answer
    (r"\d+\.\d{3}s$", r"\d+\.\d{3}s"),  # how long a request took
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z",
     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"),  # an event's time
    (r"(?<=:)\d+(?=/auth/)", r"\d+"),  # the port of a token URI
    (r"(?<=: )/\S+(?=/config\.json$)", r"/\S+"),  # the data directory
]
_FINDER = re.compile("|".join(f"(?P<v{index}>{finder})"
                              for index, (finder, _) in enumerate(_VARYING)))


def quotedLines(page: Path) -> list[str]:
    """The lines of the page's fenced C{log} blocks."""
    return [line for block in re.findall(r"^```log\n(.*?)^```$", page.read_text(),
                                          re.MULTILINE | re.DOTALL)
            for line in block.splitlines() if line.strip()]


def pattern(quoted: str) -> re.Pattern:
    """A quoted line as a pattern for a log line without its timestamp."""
    parts, end = [], 0
    for varying in _FINDER.finditer(quoted):
        parts.append(re.escape(quoted[end:varying.start()]))
        parts.append(_VARYING[int(varying.lastgroup[1:])][1])
        end = varying.end()
    parts.append(re.escape(quoted[end:]))
    return re.compile("".join(parts))


def withoutTimestamps(log: str) -> list[str]:
    return [line.partition(" ")[2] for line in log.splitlines() if line[:1].isdigit()]


def _tlsHandshake(server, context: ssl.SSLContext, hostName: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname=hostName).close()


def _request(server, path: str, method="GET", headers=None) -> int:
    context = ssl.create_default_context(cafile=server.caFile)
    request = urllib.request.Request(f"https://127.0.0.1:{server.port}{path}",
                                     method=method, headers=headers or {},
                                     data=b"" if method == "PUT" else None)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _expect(status: int, got: int) -> None:
    assert got == status


def _refused(call, status: int) -> None:
    with pytest.raises(swiftclient.ClientException) as refusal:
        call()
    assert refusal.value.http_status == status


def _cases(server, swift, recording, tmp_path):
    """
    What the page describes, in turn: a name, and what makes the server log it.
    """
    def offload():
        # As an older firmware might: registrations and a recording with no
        # metadata at all.
        swift.put_container("Users")
        swift.put_object("Users", recording.user, b"")
        swift.put_container("Devices")
        swift.put_object("Devices", recording.device, b"")
        swift.put_container(recording.container)
        swift.put_object(recording.container, "20240501_101500_1.mkv", b"clip")
        swift.post_container(recording.container,
                             headers={"X-Container-Meta-Status": "Complete"})

    def untrusted():
        # The certificate an earlier connection file held.
        certificate, _ = createSelfSigned(["127.0.0.1"])
        other = tmp_path / "earlier.crt"
        other.write_bytes(certificate)
        _tlsHandshake(server, ssl.create_default_context(cafile=str(other)), "127.0.0.1")

    def wrongKey():
        wrong = swiftclient.Connection(authurl=server.authURL, user=swift.user,
                                       key="not-the-key", cacert=server.caFile, retries=0)
        _refused(wrong.get_auth, 401)

    def tooManyFailures():
        for _ in range(11):
            wrongKey()

    def removeUser():
        admin = server.addAccount("admin-docs", "admin")
        _refused(lambda: admin.delete_object("Users", recording.user), 403)
        _refused(lambda: swift.delete_object("Devices", recording.device), 403)

    def plainHTTP():
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/auth/v1.0", timeout=10)

    return [
        ("start", None),  # what the server printed as it started
        ("login", swift.get_auth),
        ("capabilities", lambda: swift.get_object("System", "Capabilities.json")),
        ("system registered", lambda: swift.put_object(
            "System", SYSTEM_ID, b"", headers={"X-Object-Meta-ConnectionId": "c-1",
                                               "X-Object-Meta-SystemName": "Depot 3"})),
        ("offload", offload),
        ("untrusted certificate", untrusted),
        ("address not in the certificate", lambda: _tlsHandshake(
            server, ssl.create_default_context(cafile=server.caFile), "localhost")),
        ("plain HTTP to the HTTPS port", plainHTTP),
        ("wrong path", lambda: _expect(404, _request(server, "/auth/v2.0"))),
        ("expired token", lambda: _expect(401, _request(
            server, f"/v1/AUTH_{swift.user}/{recording.container}/20240501_101500_2.mkv",
            "PUT", {"X-Auth-Token": "expired"}))),
        ("unknown user", lambda: _refused(lambda: swift.put_container(
            f"{STRANGER}_{recording.device}_{recording.time}"), 400)),
        ("another ConnectionId", lambda: _refused(lambda: swift.put_object(
            "System", SYSTEM_ID, b"", headers={"X-Object-Meta-ConnectionId": "c-2"}), 403)),
        ("removing a user or camera", removeUser),
        # Last: past this, logins from this address wait a minute.
        ("wrong key", wrongKey),
        ("too many failed logins", tooManyFailures),
    ]


def _newLines(server, seen: int) -> list[str]:
    return withoutTimestamps(server.log())[seen:]


def test_body_worn_manager_page_quotes_real_log_lines(server, swift, recording, tmp_path):
    """
    Each case the page describes makes the server print a line the page
    quotes that no earlier case printed, and every line the page quotes is
    one the server printed.
    """
    quoted = {pattern(line): line for line in quotedLines(BWM_PAGE)}
    patterns = list(quoted)
    assert patterns, f"{BWM_PAGE.name} quotes no log lines"
    used = set()
    unquoted = []
    for name, provoke in _cases(server, swift, recording, tmp_path):
        seen = 0 if provoke is None else len(withoutTimestamps(server.log()))
        if provoke is not None:
            provoke()
        deadline = time.monotonic() + 10
        while not any(p.fullmatch(line) for line in _newLines(server, seen)
                      for p in patterns if p not in used):
            if time.monotonic() > deadline:
                unquoted.append((name, _newLines(server, seen)))
                break
            time.sleep(0.05)
        time.sleep(0.3)  # the case's last lines (an access line follows a refusal)
        used.update(p for p in patterns for line in _newLines(server, seen)
                    if p.fullmatch(line))
    unprinted = [quoted[p] for p in patterns if p not in used]
    assert unquoted == [], "cases whose log lines the page does not quote:\n" + "\n".join(
        f"{name}: {lines}" for name, lines in unquoted)
    assert unprinted == [], "quoted lines the server never printed"


def test_compatibility_page_names_what_is_published(swift):
    """
    The supported-versions page has a row for every capability the server
    publishes, whatever its group, and names the API revision.
    """
    _, body = swift.get_object("System", "Capabilities.json")
    published = {name for group in json.loads(body).values() for name in group}
    page = COMPATIBILITY_PAGE.read_text()
    assert published
    missing = [name for name in sorted(published)
               if not re.search(rf"^\| `{name}` \|", page, re.MULTILINE)]
    assert missing == []
    assert "v1.6.10" in page


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r}"
    return match.group(1)


NOTICES = {
    "the SystemID lock": re.compile(r"SystemID.*?system reset", re.DOTALL),
    "administration in Body Worn Manager": re.compile(
        r"administration[^.]*?(done|made) in Body Worn Manager", re.DOTALL),
    "no removal of users and cameras": re.compile(
        r"never (lets anyone )?removes? a user or (a )?camera", re.DOTALL),
}


def test_readme_carries_the_notices_and_links():
    """
    README's section on Body Worn Manager gives the checklist's notices and
    links the page with the steps; its documentation list links both pages.
    """
    readme = README.read_text()
    section = _section(readme, "Point Body Worn Manager at it")
    absent = [name for name, notice in NOTICES.items()
              if not notice.search(" ".join(section.split()))]
    assert absent == []
    assert "docs/body-worn-manager.md" in section
    documentation = _section(readme, "Documentation")
    for page in (BWM_PAGE, COMPATIBILITY_PAGE):
        assert f"docs/{page.name}" in documentation
        assert page.exists()


def test_body_worn_manager_page_carries_the_notices():
    page = " ".join(BWM_PAGE.read_text().split())
    absent = [name for name, notice in NOTICES.items() if not notice.search(page)]
    assert absent == []
