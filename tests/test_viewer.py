"""
The web viewer (docs/viewer.md) in a real headless Chromium, against a real
C{twistd bwscd} with its viewer on a port of its own: recordings of real
H.264 clips sent with python-swiftclient as the controller sends them, two
people of the same name told apart by UserID, one recording of three clips
shown as one, played from its trigger, its trail on the map, searched by
category and place; the session cookie's flags, the security headers, CSRF
refusals.  Screenshots are kept (tests/artefacts/).
"""

import hashlib
import html
import io
import json
import re
import time
import zipfile
from urllib.parse import urlencode

import pytest
import requests

from tests.support.browser import screenshot, startBrowser
from tests.support.catalog import ANNA_1, ANNA_2, CAM_1, CAM_2, meta, register
from tests.support.server import HOST, freePort, startServer
from tests.support.video import makeClip

RECORDING = f"{ANNA_1}_{CAM_1}_20240501T101500Z"
OTHER = f"{ANNA_2}_{CAM_2}_20240502T080000Z"
BROKEN = f"{ANNA_2}_{CAM_2}_20240503T090000Z"
START = 1714558497  # 10:14:57Z: three seconds of pre-buffer before the trigger
TRIGGER = START + 4  # in the second clip, a second into it
CLIP_SECONDS = 3
TRAIL = [(55.7184, 13.2212), (55.7187, 13.2218), (55.7190, 13.2224), (55.7193, 13.2230)]
PLACE = (55.7184, 13.2212)


def stamp(epoch: int, form: str) -> str:
    return time.strftime(form, time.gmtime(epoch))


def sendRecordings(swift, clips: dict) -> None:
    """Two people named Anna Berg; hers a recording of three MP4 clips, a bookmark
    and a GNSS trail; the other's one Matroska clip, elsewhere, and a clip
    that is no video."""
    register(swift)
    swift.put_container(OTHER, headers=meta("Container", {
        "Containername": OTHER, "Triggeron": "Holster", "Triggerontime": 1714636800,
        "Starttime": 1714636800, "Timezone": "Europe/Stockholm", "Status": "Transferring",
        "Triggeronlocation": "59.30,18.00,5,1714636800"}))
    swift.put_object(OTHER, "clip_0.mkv", clips["mkv"], content_type="video/x-matroska",
                     headers=meta("Object", {"Starttime": 1714636800, "Stoptime": 1714636803,
                                             "Containertype": "mkv"}))
    swift.post_container(OTHER, headers=meta("Container", {"Status": "Complete"}))
    # Bytes no browser can play, as a clip: the page must say so.
    swift.put_container(BROKEN, headers=meta("Container", {
        "Containername": BROKEN, "Triggeron": "Button", "Triggerontime": 1714726800,
        "Starttime": 1714726800, "Status": "Transferring"}))
    swift.put_object(BROKEN, "20240503_090000_3.mkv", b"not a video " * 100,
                     content_type="video/x-matroska", headers=meta("Object", {
                         "Starttime": 1714726800, "Stoptime": 1714726803,
                         "Containertype": "mkv"}))
    swift.post_container(BROKEN, headers=meta("Container", {"Status": "Complete"}))
    # Last: once it is catalogued, so are the others.
    swift.put_container(RECORDING, headers=meta("Container", {
        "Containername": RECORDING, "Triggeron": "Button", "Triggerontime": TRIGGER,
        "Starttime": START, "Timezone": "Europe/Stockholm", "Bwcmodel": "W110",
        "Firmwareversion": "11.11.1", "Scuserialnumber": "S7654321", "Status": "Transferring",
        "Triggeronlocation": f"{PLACE[0]},{PLACE[1]},5,{TRIGGER}"}))
    for n in range(3):
        begin = START + n * CLIP_SECONDS
        swift.put_object(RECORDING, f"{stamp(begin, '%Y%m%d_%H%M%S')}_1.mp4", clips["mp4"],
                         content_type="video/mp4", headers=meta("Object", {
                             "Starttime": begin, "Stoptime": begin + CLIP_SECONDS,
                             "Containertype": "mp4"}))
    swift.put_object(RECORDING, "bookmark_20240501T101502Z_1", "Suspect ran north".encode(),
                     headers=meta("Object", {"Categoryid": "7", "Categoryname": "Theft",
                                             "Tags": "TriggerOn:Button;Plate:ABC123",
                                             "Starttime": "2024-05-01T10:15:02Z"}))
    swift.put_object(RECORDING, f"20240501_101457_1_{CAM_1}_gpstrail.json", json.dumps(
        {"CoordinateEntries": [{"LocationWKT": f"POINT({lon} {lat})", "SecondsFromStart": 2.0 * i,
                                "Timestamp": stamp(START + 2 * i, "%Y-%m-%dT%H:%M:%SZ")}
                               for i, (lat, lon) in enumerate(TRAIL)]}).encode(),
                     headers=meta("Object", {"Filetype": "json"}))
    swift.post_container(RECORDING, headers=meta("Container", {
        "Status": "Complete", "Triggeroff": "Button", "Triggerofftime": START + 9,
        "Stoptime": START + 9}))


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    """One server with its viewer, the recordings, a reader's account and its key."""
    directory = tmp_path_factory.mktemp("viewer")
    clips = {kind: makeClip(str(directory / f"clip.{kind}"), CLIP_SECONDS, kind)
             for kind in ("mp4", "mkv")}
    port = freePort()
    server = startServer(str(directory / "data"), "--catalog-port", str(port))
    server.viewerPort = port
    swift = server.connection()
    sendRecordings(swift, clips)
    reader = server.addAccount("clerk", "reader")
    deadline = time.monotonic() + 30
    while True:  # until the catalog has taken in everything sent
        answer = requests.get(f"https://{HOST}:{server.port}/catalog/v1/recordings/{RECORDING}",
                              headers={"X-Auth-Token": reader.get_auth()[1]},
                              verify=server.caFile, timeout=10)
        if answer.status_code == 200 and len(answer.json()["clips"]) == 3 \
                and answer.json()["track"]["points"] == len(TRAIL) \
                and answer.json()["status"] == "Complete":
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)
    yield server, reader, swift
    server.stop()


@pytest.fixture(scope="module")
def browser(viewer, tmp_path_factory):
    driver = startBrowser(str(tmp_path_factory.mktemp("downloads")))
    yield driver
    driver.quit()


def url(server, path: str) -> str:
    return f"https://{HOST}:{server.viewerPort}{path}"


def logIn(driver, server, user: str, key: str) -> None:
    driver.get(url(server, "/login"))
    driver.find_element("id", "user").send_keys(user)
    driver.find_element("id", "key").send_keys(key)
    driver.find_element("css selector", "form.login button").click()
    waitUntil(driver, "return location.pathname !== '/login' && document.readyState === 'complete'")


@pytest.fixture(scope="module")
def loggedIn(viewer, browser, tmp_path_factory):
    server, reader, _ = viewer
    logIn(browser, server, reader.user, reader.key)
    assert browser.current_url == url(server, "/people"), browser.page_source
    return browser


def waitUntil(driver, script: str, timeout: float = 15):
    """The value of C{script} once it is true (it is run again and again)."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        assert time.monotonic() < deadline, f"never true: {script}"
        time.sleep(0.05)


def test_a_person_is_found_by_name_among_two_and_has_one_row_per_recording(
        viewer, loggedIn, tmp_path):
    server, _, _ = viewer
    driver = loggedIn
    driver.get(url(server, "/people?name=anna"))
    links = {a.text: a.get_attribute("href") for a in
             driver.find_elements("css selector", "table.people a")}
    assert sorted(links) == ["Anna Berg (A-17)", "Anna Berg (B-3)"]
    screenshot(driver, str(tmp_path), "people")
    started = time.monotonic()
    driver.get(links["Anna Berg (A-17)"])
    firstPage = time.monotonic() - started
    assert driver.find_element("tag name", "h1").text == "Anna Berg (A-17)"
    rows = driver.find_elements("css selector", "table.recordings tr.recording")
    assert len(rows) == 1  # three clips, one recording
    assert "Button" in rows[0].text and "Theft" in rows[0].text
    print(f"a person's first page: {firstPage * 1000:.0f} ms")
    screenshot(driver, str(tmp_path), "person")


def test_the_recording_plays_from_its_trigger_with_its_trail_on_the_map(
        viewer, loggedIn, tmp_path):
    server, _, _ = viewer
    driver = loggedIn
    driver.get(url(server, f"/recordings/{RECORDING}"))
    assert "Started because\nButton" in driver.find_element("css selector", "dl.facts").text
    # 10:15:01 UTC is 12:15:01 in Stockholm (CEST).
    assert "1 May 2024, 12:15:01 CEST" in driver.find_element("tag name", "h1").text
    # The trigger is 4 s in: a second into the second clip.
    waitUntil(driver, "var v = document.getElementById('player');"
                      "return v.readyState >= 1 && v.dataset.clip === '1';")
    assert driver.execute_script(
        "return document.getElementById('player').currentTime") == pytest.approx(1.0, abs=0.15)
    assert driver.find_element("id", "cannot-play").get_attribute("hidden") is not None
    # The pre-buffer is a click away.
    driver.find_element("id", "from-start").click()
    waitUntil(driver, "var v = document.getElementById('player');"
                      "return v.dataset.clip === '0' && v.readyState >= 1;")
    assert driver.execute_script("return document.getElementById('player').currentTime") < 1.0
    # Played on, clip after clip: one recording.
    waitUntil(driver, "return document.getElementById('player').dataset.clip === '1'",
              timeout=10)
    # The map: every point of the trail, and the trigger's marker.
    points = driver.find_elements("css selector", "#map path.trail-point")
    assert len(points) == len(TRAIL)
    assert len(driver.find_elements("css selector", "#map path.trail")) == 1
    assert driver.find_elements("css selector", "#map img[alt='Trigger location']")
    bookmarks = driver.find_elements("css selector", "svg.timeline circle.bookmark")
    assert len(bookmarks) == 1
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, str(tmp_path), "recording")
    driver.execute_script("document.getElementById('map-heading').scrollIntoView()")
    screenshot(driver, str(tmp_path), "map")
    viewed = [e for e in server.eventsOf("recording.viewed") if e["container"] == RECORDING]
    assert {(e["account"], e["via"]) for e in viewed} >= {("clerk", "viewer")}


def test_a_clip_the_browser_cannot_play_is_said_so_with_its_download(viewer, loggedIn, tmp_path):
    server, _, _ = viewer
    driver = loggedIn
    driver.get(url(server, f"/recordings/{BROKEN}"))
    waitUntil(driver, "return !document.getElementById('cannot-play').hidden")
    assert "cannot play video/x-matroska (20240503_090000_3.mkv)" in \
        driver.find_element("id", "cannot-play").text
    assert driver.find_element("css selector", "table.clips a[download]").get_attribute(
        "href").endswith(f"/catalog/v1/recordings/{BROKEN}/clips/20240503_090000_3.mkv")
    screenshot(driver, str(tmp_path), "unplayable")


def test_search_by_category_and_near_a_place(viewer, loggedIn, tmp_path):
    server, _, _ = viewer
    driver = loggedIn

    def found(**fields):
        driver.get(url(server, "/search"))
        for name, value in fields.items():
            driver.find_element("id", name).send_keys(value)
        driver.find_element("css selector", "form.search button").click()
        waitUntil(driver, "return location.search.length > 1 && document.readyState === "
                          "'complete' && !!document.querySelector('main [role=status], main .error')")
        return [row.find_element("tag name", "a").get_attribute("href").rsplit("/", 1)[1]
                for row in driver.find_elements("css selector", "table.recordings tr.recording")]

    assert found(category="theft") == [RECORDING]
    assert found(category="7") == [RECORDING]
    assert found(lat=str(PLACE[0]), lon=str(PLACE[1]), metres="100") == [RECORDING]
    screenshot(driver, str(tmp_path), "search")
    assert found(lat="59.30", lon="18.00", metres="100") == [OTHER]
    assert found(lat="10", lon="10", metres="100") == []
    assert found(trigger="Holster") == [OTHER]


def clientOf(server) -> requests.Session:
    """A requests session that trusts the server's certificate (the viewer's too)."""
    session = requests.Session()
    session.verify = server.caFile
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
    return session


def sessionOf(driver, server) -> requests.Session:
    """The browser's session cookie in a requests session."""
    client = clientOf(server)
    for cookie in driver.get_cookies():
        client.cookies.set(cookie["name"], cookie["value"])
    return client


def test_the_session_cookie_and_the_security_headers(viewer, loggedIn):
    server, _, _ = viewer
    cookie = loggedIn.get_cookie("__Host-bwscd-viewer")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == \
        (True, True, "Strict", "/")
    client = sessionOf(loggedIn, server)
    page = client.get(url(server, "/people"))
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text
    script = client.get(url(server, "/static/leaflet/leaflet.js"))
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    for path in ("/static/", "/static/leaflet/", "/static/nosuch.js", "/nosuch"):
        answer = client.get(url(server, path))
        assert answer.status_code == 404, path  # no listing of a folder, no 5xx
        assert "Content-Security-Policy" in answer.headers


@pytest.mark.parametrize("csrf, origin", [(None, "same"), ("wrong", "same"),
                                          ("right", None), ("right", "https://evil.example")])
def test_a_post_without_its_csrf_token_or_from_elsewhere_is_refused(viewer, loggedIn, csrf, origin):
    server, _, _ = viewer
    client = sessionOf(loggedIn, server)
    page = client.get(url(server, f"/recordings/{RECORDING}")).text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"reason": "court order 17"}
    if csrf is not None:
        form["csrf"] = token if csrf == "right" else "0" * len(token)
    headers = {} if origin is None else {
        "Origin": f"https://{HOST}:{server.viewerPort}" if origin == "same" else origin}
    for path in (f"/recordings/{RECORDING}/export", "/logout"):
        answer = client.post(url(server, path), data=form, headers=headers,
                             allow_redirects=False)
        assert answer.status_code == 403, (path, answer.text)
    # Still logged in: the refused logout did nothing.
    assert client.get(url(server, "/people"), allow_redirects=False).status_code == 200


def test_the_controllers_account_cannot_log_in(viewer):
    server, _, swift = viewer
    client = clientOf(server)
    form = client.get(url(server, "/login"))
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post(url(server, "/login"), data={
        "csrf": token, "user": swift.user, "key": swift.key},
        headers={"Origin": f"https://{HOST}:{server.viewerPort}"}, allow_redirects=False)
    assert answer.status_code == 403 and "reader or admin" in answer.text
    assert "__Host-bwscd-viewer" not in client.cookies


def test_an_export_is_the_zip_with_the_manifests_hashes(viewer, loggedIn):
    server, _, _ = viewer
    client = sessionOf(loggedIn, server)
    page = client.get(url(server, f"/recordings/{RECORDING}")).text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = client.post(url(server, f"/recordings/{RECORDING}/export"),
                         data={"csrf": token, "reason": "court order 17"},
                         headers={"Origin": f"https://{HOST}:{server.viewerPort}"})
    assert answer.status_code == 200, answer.text
    package = zipfile.ZipFile(io.BytesIO(answer.content))
    names = package.namelist()
    manifest = json.loads(package.read(next(n for n in names if n.endswith("manifest.json"))))
    files = manifest["files"] if isinstance(manifest, dict) and "files" in manifest else manifest
    checked = 0
    for entry in files:
        name, digest = entry["name"] if "name" in entry else entry["path"], entry["sha256"]
        assert hashlib.sha256(package.read(name)).hexdigest() == digest, name
        checked += 1
    assert checked >= 5  # three clips, the track, the bookmark at least
    exported = server.eventsOf("recording.exported")
    assert exported[-1]["account"] == "clerk" and exported[-1]["reason"] == "court order 17"


@pytest.mark.parametrize("back, landing", [
    (f"/recordings/{RECORDING}", f"/recordings/{RECORDING}"),
    ("//evil.example/", "/people"), ("https://evil.example/", "/people")])
def test_a_page_asked_for_before_login_is_shown_after_it_and_only_the_viewers(
        viewer, back, landing):
    server, reader, _ = viewer
    client = clientOf(server)
    if back.startswith("/recordings"):
        asked = client.get(url(server, back), allow_redirects=False)
        assert asked.status_code == 303
        assert asked.headers["Location"] == "/login?" + urlencode({"next": back})
    form = client.get(url(server, "/login?" + urlencode({"next": back}))).text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    action = html.unescape(re.search(r'form class="login" method="post" action="([^"]+)"',
                                     form).group(1))
    answer = client.post(url(server, action), data={
        "csrf": token, "user": reader.user, "key": reader.key},
        headers={"Origin": f"https://{HOST}:{server.viewerPort}"}, allow_redirects=False)
    assert (answer.status_code, answer.headers["Location"]) == (303, landing)


def test_admins_see_the_storage_capacity_on_the_people_page(viewer):
    server, reader, _ = viewer
    admin = server.addAccount("boss", "admin")
    page = _loggedInClient(server, admin.user, admin.key).get(url(server, "/people")).text
    assert "Storage capacity" in page and "a day over the last 7 days" in page
    assert "days until full" in page
    page = _loggedInClient(server, reader.user, reader.key).get(url(server, "/people")).text
    assert "Storage capacity" not in page


def test_failed_logins_are_throttled_together_with_the_swift_apis(viewer):
    """Last in the module: it leaves loopback throttled for a minute."""
    server, reader, _ = viewer
    client = clientOf(server)

    def logIn(key):
        token = re.search(r'name="csrf" value="([^"]+)"',
                          client.get(url(server, "/login")).text).group(1)
        return client.post(url(server, "/login"), data={
            "csrf": token, "user": reader.user, "key": key},
            headers={"Origin": f"https://{HOST}:{server.viewerPort}"}, allow_redirects=False)

    for _ in range(10):
        answer = logIn("wrong")
        assert answer.status_code == 401 and "Wrong user name or key" in answer.text
    answer = logIn(reader.key)
    assert answer.status_code == 401 and "Too many failed logins" in answer.text
    swift = requests.get(server.authURL, headers={"X-Auth-User": reader.user,
                                                  "X-Auth-Key": reader.key},
                         verify=server.caFile, timeout=10)
    assert swift.status_code == 401 and "too many failed logins" in swift.text


def _loggedInClient(server, user: str, key: str) -> requests.Session:
    """A requests session logged in to the viewer by its form."""
    client = clientOf(server)
    form = client.get(url(server, "/login"))
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post(url(server, "/login"), data={"csrf": token, "user": user, "key": key},
                         headers={"Origin": f"https://{HOST}:{server.viewerPort}"},
                         allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text
    return client
