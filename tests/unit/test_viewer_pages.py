"""
The viewer's pages (L{bwscd.viewer.pages}) and headers (L{bwscd.viewer.site}):
what comes from a recording is escaped, times are in the recording's zone
with UTC beside, the Content-Security-Policy names only this server and the
tile host.
"""

from bwscd.viewer import pages
from bwscd.viewer.session import Session
from bwscd.viewer.site import contentSecurityPolicy

SESSION = Session("clerk", "reader", "token", "csrf-token")
HOSTILE = '<script>alert(1)</script>"'


def recording(**changes) -> dict:
    value = {
        "id": "u_d_20240501T101500Z", "person": {"uuid": "u", "display": HOSTILE},
        "device": {"id": "d", "name": HOSTILE}, "start": "2024-05-01T10:14:57Z",
        "stop": "2024-05-01T10:15:06Z", "triggerTime": "2024-05-01T10:15:01Z",
        "triggerOn": HOSTILE, "triggerOff": "Button", "timeZone": "Europe/Stockholm",
        "triggerLocation": {"lat": 55.7184, "lon": 13.2212}, "categories": [{"id": "7", "name": HOSTILE}],
        "status": "Complete", "encrypted": False, "rejected": False,
        "clips": [{"name": "a.mp4", "url": "/catalog/v1/recordings/x/clips/a.mp4",
                   "start": "2024-05-01T10:14:57Z", "stop": "2024-05-01T10:15:06Z"}],
        "bookmarks": [{"text": HOSTILE, "categoryName": HOSTILE, "tags": {HOSTILE: HOSTILE},
                       "start": "2024-05-01T10:15:02Z"}],
        "track": {"points": 1, "geojson": "/g", "gpx": "/x"},
    }
    value.update(changes)
    return value


def test_what_comes_from_a_recording_is_escaped():
    html = pages.recordingPage(recording(), [{"lat": 1, "lon": 2, "time": HOSTILE}],
                               SESSION, None).decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in html
    # The data block for the script cannot be closed by a value.
    assert html.count("</script>") == html.count("<script")
    people = pages.peoplePage([{"uuid": '"x', "display": HOSTILE, "userId": HOSTILE}],
                              SESSION).decode()
    assert "<script>alert" not in people and 'href="/people/&quot;x"' in people


def test_times_are_local_to_the_recording_with_utc_beside():
    assert pages.timeInWords("2024-05-01T10:15:01Z", "Europe/Stockholm") == \
        '1 May 2024, 12:15:01 CEST <span class="utc">(1 May 2024, 10:15:01 UTC)</span>'
    assert pages.timeInWords("2024-12-01T10:15:01Z", "Europe/Stockholm").startswith(
        "1 Dec 2024, 11:15:01 CET")
    assert pages.timeInWords("2024-05-01T10:15:01Z", "Not/AZone") == "1 May 2024, 10:15:01 UTC"
    assert pages.timeInWords(None, "Europe/Stockholm") == "unknown"


def test_the_pre_buffer_and_the_map_link_are_in_words():
    html = pages.recordingPage(recording(), [], SESSION, None).decode()
    assert "(4 s of pre-buffer before the trigger)" in html
    assert "https://www.openstreetmap.org/?mlat=55.718400&amp;mlon=13.221200" in html


def test_an_encrypted_recording_is_explained_and_not_played():
    html = pages.recordingPage(recording(encrypted=True), [], SESSION, None).decode()
    assert "Decrypt on export" in html and 'id="player"' not in html


def test_a_failed_integrity_check_is_said_first_and_escaped():
    finding = {"object": HOSTILE, "time": "2024-06-01T00:00:00.000Z",
               "anomaly": "integrity: SHA-256 differs from the one recorded at arrival"}
    html = pages.recordingPage(recording(integrity=[finding]), [], SESSION, None).decode()
    assert "Integrity check failed" in html and "SHA-256 differs" in html
    assert HOSTILE not in html
    intact = pages.recordingPage(recording(integrity=[]), [], SESSION, None).decode()
    assert "Integrity check failed" not in intact


def test_the_content_security_policy_names_only_this_server_and_the_tile_host():
    plain = contentSecurityPolicy(None).decode()
    assert "img-src 'self';" in plain and "script-src 'self';" in plain
    assert "unsafe" not in plain and "frame-ancestors 'none'" in plain
    tiles = contentSecurityPolicy("https://tile.example.org/{z}/{x}/{y}.png").decode()
    assert "img-src 'self' https://tile.example.org;" in tiles


def test_the_capacity_panel_is_shown_only_when_given():
    from bwscd.policy.capacity import Estimate

    estimate = Estimate(freeBytes=140 * 10**9, intakePerDay=10 * 10**9, keepDays=None, days=14.0)
    html = pages.peoplePage([], SESSION, "", estimate).decode()
    assert "Storage capacity" in html and "14.0 days until full" in html
    assert "Storage capacity" not in pages.peoplePage([], SESSION).decode()
