"""
The viewer's pages as HTML, from the catalog's JSON shapes (those of
L{bwscd.catalog.query.CatalogQuery}).  Pure functions: data in, markup out.
Everything that comes from a recording, a user or a request is escaped
with L{html.escape}; no inline script or style (the Content-Security-Policy
forbids them): behaviour comes from C{/static/viewer.js}, reading the data
block each page carries (C{<script type="application/json">}, which is not
run) and C{data-} attributes; positions on the timeline are SVG attributes.
"""

import json
from datetime import datetime, timezone
from html import escape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bwscd.policy.registry import displayName

STATUSES = ("Complete", "Transferring")
SEARCH_FIELDS = ("person", "device", "category", "trigger", "from", "to",
                 "lat", "lon", "metres", "q", "status")
"""The search form's fields, as the query string carries them."""


def e(value) -> str:
    """Text (or L{None}, shown as nothing) escaped for HTML text and attributes."""
    return "" if value is None else escape(str(value), quote=True)


def parseTime(text: str | None) -> datetime | None:
    """An RFC 3339 time of the catalog, or L{None}."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def zoneOf(name: str | None):
    """The recording's C{TimeZone} (IANA), or L{None} when unknown or absent."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _format(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y, %H:%M:%S}"


def localTime(text: str | None, zoneName: str | None) -> str:
    """C{1 May 2024, 12:15:04 CEST}: local to the recording when its zone is
    known, else UTC."""
    moment = parseTime(text)
    if moment is None:
        return "unknown"
    zone = zoneOf(zoneName)
    if zone is None:
        return _format(moment.astimezone(timezone.utc)) + " UTC"
    local = moment.astimezone(zone)
    return f"{_format(local)} {local.tzname()}"


def timeInWords(text: str | None, zoneName: str | None) -> str:
    """The local time, and UTC beside it (markup)."""
    moment = parseTime(text)
    if moment is None:
        return "unknown"
    utc = _format(moment.astimezone(timezone.utc)) + " UTC"
    if zoneOf(zoneName) is None:
        return e(utc)
    return f'{e(localTime(text, zoneName))} <span class="utc">({e(utc)})</span>'


def seconds(start: str | None, stop: str | None) -> float | None:
    begin, end = parseTime(start), parseTime(stop)
    if begin is None or end is None:
        return None
    return (end - begin).total_seconds()


def duration(total: float | None) -> str:
    """C{1 h 02 min 03 s}, C{2 min 05 s}, C{7 s}."""
    if total is None:
        return "unknown"
    total = int(round(total))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def size(count: int | None) -> str:
    if count is None:
        return ""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return ""


def mapLink(location: dict | None) -> str:
    """Coordinates, and a link that opens them in OpenStreetMap (markup)."""
    if not location or location.get("lat") is None or location.get("lon") is None:
        return "not recorded"
    lat, lon = float(location["lat"]), float(location["lon"])
    query = urlencode({"mlat": f"{lat:.6f}", "mlon": f"{lon:.6f}"})
    accuracy = location.get("accuracy")
    within = f" (within {e(accuracy)} m)" if accuracy not in (None, "") else ""
    return (f"{lat:.6f}, {lon:.6f}{within} "
            f'<a href="https://www.openstreetmap.org/?{e(query)}#map=17/{lat:.6f}/{lon:.6f}" '
            f'rel="noopener noreferrer" target="_blank">open in a map</a>')


def dataBlock(data) -> str:
    """Data for the script, in a block the browser does not run; C{<} escaped
    so no value can close it."""
    text = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="page-data">{text}</script>'


def page(title: str, body: str, session=None, scripts=(), styles=(), heading=None) -> bytes:
    """A whole page: header with navigation and logout, C{main}, the scripts."""
    user = ""
    if session is not None:
        user = (f'<form class="logout" method="post" action="/logout">'
                f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
                f'<span>Signed in as {e(session.account)} ({e(session.role)})</span> '
                f'<button type="submit">Log out</button></form>')
    links = "".join(f'<link rel="stylesheet" href="{e(href)}">'
                    for href in (*styles, "/static/viewer.css"))
    scriptTags = "".join(f'<script src="{e(src)}" defer></script>'
                         for src in (*scripts, "/static/viewer.js"))
    navigation = ('<nav aria-label="Main"><a href="/people">People</a> '
                  '<a href="/search">Search</a> <a href="/holds">Legal holds</a></nav>'
                  ) if session is not None else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} · bwscd evidence</title>{links}{scriptTags}</head>'
        '<body><a class="skip" href="#main">Skip to content</a>'
        f'<header><span class="brand">bwscd evidence</span>{navigation}{user}</header>'
        f'<main id="main"><h1>{e(heading or title)}</h1>{body}</main></body></html>'
    ).encode("utf-8")


def loginPage(csrf: str, message: str | None = None, user: str = "", back: str = "") -> bytes:
    """The login form; C{back}: the viewer's page to go to after it."""
    error = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
    action = "/login?" + urlencode({"next": back}) if back else "/login"
    body = (
        f'{error}<form class="login" method="post" action="{e(action)}">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<p><label for="user">User name</label>'
        f'<input id="user" name="user" autocomplete="username" required value="{e(user)}"></p>'
        '<p><label for="key">Key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required></p>'
        '<p><button type="submit">Log in</button></p></form>'
        '<p class="hint">Use a reader or admin account of this server '
        '(<code>bwscd credentials add NAME --role reader</code>).</p>'
    )
    return page("Log in", body)


def errorPage(code: int, message: str, session=None) -> bytes:
    body = (f'<p role="alert">{e(message)}</p>'
            '<p><a href="/people">Back to the people</a></p>')
    return page(f"Error {code}", body, session)


def capacityPanel(estimate) -> str:
    """An admin's look at storage (a L{bwscd.policy.capacity.Estimate}), or nothing."""
    if estimate is None:
        return ""
    return ('<aside class="capacity" aria-labelledby="capacity-heading">'
            '<h2 id="capacity-heading">Storage capacity</h2>'
            f'<p>{e(estimate.inWords())}.</p></aside>')


def peoplePage(people: list[dict], session, name: str = "", capacity=None) -> bytes:
    """
    Everyone in the catalog, as C{Name (UserID)}; C{name} filters; for
    admins, C{capacity} (an estimate) in a small panel.
    """
    wanted = name.casefold().strip()
    shown = [p for p in people if wanted in p["display"].casefold()] if wanted else people
    rows = "".join(
        f'<tr><td><a href="/people/{e(p["uuid"])}">{e(p["display"])}</a>'
        f'{"" if p.get("active", True) else " <span class=badge>no longer active</span>"}</td>'
        f'<td>{e(p.get("userId") or "none")}</td>'
        f'<td class="number">{e(p.get("recordings", 0))}</td>'
        f'<td>{e(localTime(p.get("latest"), None)) if p.get("latest") else "none"}</td></tr>'
        for p in shown
    )
    table = (
        '<table class="people"><caption>People, by name</caption><thead><tr>'
        '<th scope="col">Name (UserID)</th><th scope="col">UserID</th>'
        '<th scope="col">Recordings</th><th scope="col">Latest recording</th></tr></thead>'
        f'<tbody>{rows}</tbody></table>'
    ) if shown else "<p>Nobody matches.</p>"
    body = (
        '<form class="filter" method="get" action="/people" role="search">'
        '<label for="name">Find a person</label> '
        f'<input id="name" name="name" value="{e(name)}" type="search"> '
        '<button type="submit">Find</button></form>'
        f'<p>{len(shown)} of {len(people)} people.</p>{table}{capacityPanel(capacity)}'
    )
    return page("People", body, session)


def recordingRows(items: list[dict], showPerson: bool = True) -> str:
    """One row per recording (never per clip), as the catalog lists them."""
    if not items:
        return "<p>No recordings.</p>"
    rows = []
    for item in items:
        categories = ", ".join(c.get("name") or c.get("id") or "" for c in item.get("categories") or [])
        marks = []
        if item.get("encrypted"):
            marks.append('<span class="badge encrypted">encrypted</span>')
        if item.get("rejected"):
            marks.append('<span class="badge rejected">rejected content</span>')
        person = item.get("person") or {}
        device = item.get("device") or {}
        personCell = f'<td>{e(person.get("display"))}</td>' if showPerson else ""
        rows.append(
            f'<tr class="recording"><td><a href="/recordings/{e(item["id"])}">'
            f'{e(localTime(item.get("triggerTime") or item.get("start"), item.get("timeZone")))}</a></td>'
            f'{personCell}<td>{e(device.get("name") or device.get("id"))}</td>'
            f'<td>{e(item.get("triggerOn"))}</td>'
            f'<td>{e(duration(seconds(item.get("start"), item.get("stop"))))}</td>'
            f'<td>{e(categories)}</td><td class="number">{e(item.get("clips"))}</td>'
            f'<td>{e(item.get("status"))} {"".join(marks)}</td></tr>'
        )
    personHeader = '<th scope="col">Person</th>' if showPerson else ""
    return (
        '<table class="recordings"><caption>Recordings, newest first</caption><thead><tr>'
        f'<th scope="col">Triggered (UTC)</th>{personHeader}<th scope="col">Camera</th>'
        '<th scope="col">Started by</th><th scope="col">Length</th>'
        '<th scope="col">Categories</th><th scope="col">Clips</th>'
        f'<th scope="col">Status</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def nextLink(path: str, arguments: dict, cursor: str | None) -> str:
    if not cursor:
        return ""
    query = urlencode({**{k: v for k, v in arguments.items() if v}, "cursor": cursor})
    return f'<p class="paging"><a rel="next" href="{e(path)}?{e(query)}">Older recordings</a></p>'


def personPage(person: dict, result: dict, session, cursor: str | None = None) -> bytes:
    earlier = ('<p class="paging"><a href="/people/' + e(person["uuid"]) +
               '">Newest recordings</a></p>') if cursor else ""
    history = ""
    # The registry's history ends with the current entry; earlier names are
    # those that differ from how the person is shown now.
    names = []
    for entry in (person.get("history") or [])[:-1]:
        shown = displayName(entry) if isinstance(entry, dict) else None
        if shown and shown != person["display"] and shown not in names:
            names.append(shown)
    if names:
        history = "<p>Earlier names: " + ", ".join(e(name) for name in names) + ".</p>"
    body = (
        f'<p>UserID: {e(person.get("userId") or "none")}; {e(person.get("recordings", 0))} '
        f'recordings. <a href="/search?{e(urlencode({"person": person["uuid"]}))}">Search '
        f'this person\'s recordings</a></p>{history}{earlier}'
        f'{recordingRows(result["items"], showPerson=False)}'
        f'{nextLink("/people/" + person["uuid"], {}, result.get("next"))}'
    )
    return page(person["display"], body, session)


def searchPage(arguments: dict, people: list[dict], result: dict | None, session,
               message: str | None = None) -> bytes:
    """The search form with every filter, and its results."""

    def field(name, label, kind="text", extra=""):
        return (f'<p><label for="{name}">{label}</label>'
                f'<input id="{name}" name="{name}" type="{kind}" value="{e(arguments.get(name))}"{extra}></p>')

    options = "".join(
        f'<option value="{e(p["uuid"])}"{" selected" if arguments.get("person") == p["uuid"] else ""}>'
        f'{e(p["display"])}</option>' for p in people)
    statuses = "".join(
        f'<option{" selected" if arguments.get("status") == s else ""}>{e(s)}</option>'
        for s in STATUSES)
    form = (
        '<form class="search" method="get" action="/search" role="search">'
        '<p><label for="person">Person</label><select id="person" name="person">'
        f'<option value="">anyone</option>{options}</select></p>'
        f'{field("device", "Camera (serial number)")}'
        f'{field("category", "Category (name or ID)")}'
        f'{field("trigger", "Started by (trigger)")}'
        f'{field("from", "From (UTC)", "datetime-local", " step=1")}'
        f'{field("to", "To (UTC)", "datetime-local", " step=1")}'
        '<fieldset><legend>Near a place</legend>'
        f'{field("lat", "Latitude", "text", " inputmode=decimal")}'
        f'{field("lon", "Longitude", "text", " inputmode=decimal")}'
        f'{field("metres", "Within metres", "number", " min=1")}</fieldset>'
        f'{field("q", "Text (bookmarks, tags, names)", "search")}'
        '<p><label for="status">Status</label><select id="status" name="status">'
        f'<option value="">any</option>{statuses}</select></p>'
        '<p><button type="submit">Search</button></p></form>'
    )
    results = ""
    if message:
        results = f'<p class="error" role="alert">{e(message)}</p>'
    elif result is not None:
        count = len(result["items"])
        results = (f'<h2>Results</h2><p role="status">{count} recording{"" if count == 1 else "s"}'
                   f'{" on this page" if result.get("next") else ""}.</p>'
                   f'{recordingRows(result["items"])}'
                   f'{nextLink("/search", arguments, result.get("next"))}')
    return page("Search recordings", form + results, session)


def _clipTimes(recording: dict) -> tuple[float, list[dict]]:
    """Each clip's place in the recording, in seconds from its start."""
    start = parseTime(recording.get("start"))
    clips, at = [], 0.0
    for clip in recording.get("clips") or []:
        clipStart, clipStop = parseTime(clip.get("start")), parseTime(clip.get("stop"))
        offset = (clipStart - start).total_seconds() if clipStart and start else at
        length = (clipStop - clipStart).total_seconds() if clipStart and clipStop else None
        clips.append({"url": clip["url"], "name": clip["name"], "offset": max(offset, 0.0),
                      "duration": length, "type": clip.get("contentType") or ""})
        at = offset + (length or 0)
    total = seconds(recording.get("start"), recording.get("stop"))
    return (total if total is not None else at), clips


def _timeline(recording: dict, total: float, clips: list[dict], triggerOffset: float | None) -> str:
    """Clips, the pre-buffer, the trigger and the bookmarks on one bar (SVG,
    positions in per cent of the recording's length)."""
    if not total or total <= 0:
        return ""

    def at(offset):
        return f"{max(0.0, min(100.0, 100 * offset / total)):.3f}%"

    start = parseTime(recording.get("start"))
    parts = ['<rect class="bar" x="0" y="14" width="100%" height="16"></rect>']
    if triggerOffset:
        parts.append(f'<rect class="prebuffer" x="0" y="14" width="{at(triggerOffset)}" '
                     'height="16"><title>pre-buffer</title></rect>')
    for clip in clips[1:]:
        parts.append(f'<line class="clip-edge" x1="{at(clip["offset"])}" x2="{at(clip["offset"])}" '
                     'y1="10" y2="34"></line>')
    if triggerOffset is not None:
        parts.append(f'<line class="trigger" x1="{at(triggerOffset)}" x2="{at(triggerOffset)}" '
                     'y1="4" y2="40"><title>trigger</title></line>')
    for bookmark in recording.get("bookmarks") or []:
        moment = parseTime(bookmark.get("start"))
        offset = (moment - start).total_seconds() if moment and start else 0.0
        label = bookmark.get("categoryName") or bookmark.get("text") or "bookmark"
        parts.append(f'<circle class="bookmark" cx="{at(offset)}" cy="22" r="6">'
                     f'<title>{e(label)}</title></circle>')
    return ('<svg class="timeline" role="img" aria-labelledby="timeline-title" '
            'width="100%" height="44"><title id="timeline-title">Timeline: clips, pre-buffer, '
            f'trigger and bookmarks</title>{"".join(parts)}</svg>')


def _bookmarks(recording: dict, zoneName: str | None) -> str:
    start = parseTime(recording.get("start"))
    items = []
    for bookmark in recording.get("bookmarks") or []:
        moment = parseTime(bookmark.get("start"))
        offset = max((moment - start).total_seconds(), 0.0) if moment and start else 0.0
        category = bookmark.get("categoryName") or ""
        if bookmark.get("categoryId"):
            category = f'{category} (ID {bookmark["categoryId"]})' if category else f'ID {bookmark["categoryId"]}'
        tags = "; ".join(f"{k}: {v}" for k, v in (bookmark.get("tags") or {}).items())
        end = f' to {timeInWords(bookmark["end"], zoneName)}' if bookmark.get("end") else ""
        items.append(
            f'<li class="bookmark"><p><strong>{e(category or "Bookmark")}</strong> at '
            f'{timeInWords(bookmark.get("start"), zoneName)}{end} '
            f'<button type="button" class="seek" data-seconds="{offset:.3f}">Play from here</button></p>'
            + (f'<p class="text">{e(bookmark["text"])}</p>' if bookmark.get("text") else "")
            + (f'<p class="tags">Tags: {e(tags)}</p>' if tags else "") + "</li>")
    if not items:
        return "<p>No bookmarks.</p>"
    return f'<ul class="bookmarks">{"".join(items)}</ul>'


def recordingPage(recording: dict, track: list[dict] | None, session, tiles: str | None) -> bytes:
    """One recording: what it is in words, its player, timeline, map, integrity and export."""
    zoneName = recording.get("timeZone")
    person = recording.get("person") or {}
    device = recording.get("device") or {}
    total, clips = _clipTimes(recording)
    triggerOffset = seconds(recording.get("start"), recording.get("triggerTime"))
    if triggerOffset is not None and triggerOffset < 0:
        triggerOffset = 0.0
    notes = []
    if recording.get("encrypted"):
        notes.append(
            '<p class="note encrypted" id="encrypted-note"><strong>Encrypted.</strong> The camera '
            'encrypted this recording for the system\'s public key; this server has no private '
            'key, so the browser cannot play it. Decrypt on export: export the evidence package '
            'and decrypt it with the private key (<code>bwscd export ID --key KEY</code> on a '
            'machine that holds it).</p>')
    if recording.get("rejected"):
        notes.append('<p class="note">This is rejected content: the controller could not '
                     'deliver it the normal way.</p>')
    for finding in recording.get("integrity") or []:
        # Fixity (the scrub, bwscd verify): said first, since it changes what
        # the rest of the page is worth.  Nothing was repaired or deleted.
        notes.append(
            f'<p class="note corrupt" role="alert"><strong>Integrity check failed</strong> for '
            f'<code>{e(finding.get("object"))}</code>: {e(finding.get("anomaly"))}, '
            f'{e(localTime(finding.get("time"), zoneName))}. The stored object was left as '
            'it is, for an operator to examine.</p>')
    if recording.get("status") != "Complete":
        notes.append(f'<p class="note">Status: {e(recording.get("status"))}: the camera system '
                     'has not finished sending this recording; more may arrive.</p>')
    categories = ", ".join(
        e(c.get("name") or c.get("id")) for c in recording.get("categories") or []) or "none"
    facts = [
        ("Person", e(person.get("display"))),
        ("Camera", f'{e(device.get("name") or "")} (serial number {e(device.get("id"))})'
         f'{", model " + e(recording["model"]) if recording.get("model") else ""}'
         f'{", firmware " + e(recording["firmware"]) if recording.get("firmware") else ""}'),
        ("Started because", e(recording.get("triggerOn") or "not recorded")),
        ("Triggered at", timeInWords(recording.get("triggerTime"), zoneName)),
        ("Recording began", timeInWords(recording.get("start"), zoneName)
         + (f' ({e(duration(triggerOffset))} of pre-buffer before the trigger)' if triggerOffset else "")),
        ("Stopped because", e(recording.get("triggerOff") or "not recorded")),
        ("Recording ended", timeInWords(recording.get("stop"), zoneName)),
        ("Length", e(duration(total))),
        ("Time zone", e(zoneName or "not recorded (times in UTC)")),
        ("Trigger location", mapLink(recording.get("triggerLocation"))),
        ("Stop location", mapLink(recording.get("stopLocation"))),
        ("Categories", categories),
        ("Status", e(recording.get("status"))),
        ("Docking station", e(recording.get("scu") or "not recorded")),
        ("Recording", f'<code>{e(recording["id"])}</code>'),
    ]
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    clipRows = "".join(
        f'<tr><td>{i + 1}</td><td><a href="{e(c["url"])}" download>'
        f'{e(c["name"])}</a></td><td>{e(localTime(c.get("start"), zoneName))}</td>'
        f'<td>{e(duration(seconds(c.get("start"), c.get("stop"))))}</td>'
        f'<td class="number">{e(size(c.get("length")))}</td>'
        f'<td><code class="hash">{e(c.get("sha256"))}</code></td><td><code class="hash">{e(c.get("md5"))}</code></td>'
        f'<td>{e(localTime(c.get("arrived"), zoneName))} by {e(c.get("account") or "unknown")}</td></tr>'
        for i, c in enumerate(recording.get("clips") or []))
    player = ""
    if clips and not recording.get("encrypted"):
        player = (
            '<section aria-labelledby="player-heading"><h2 id="player-heading">Video</h2>'
            f'<p>{len(clips)} clip{"" if len(clips) == 1 else "s"} played back to back as one '
            'recording, from the trigger.</p>'
            '<video id="player" controls preload="metadata" playsinline '
            'aria-describedby="player-position"></video>'
            '<p class="controls"><button type="button" id="from-trigger">Play from the trigger</button> '
            '<button type="button" id="from-start">From the start (with the pre-buffer)</button> '
            '<span id="player-position" role="status"></span></p>'
            '<p id="cannot-play" class="note" role="alert" hidden>This browser cannot play '
            '<span id="cannot-play-type">this video format</span>. Download the clips below and '
            'play them with a player such as VLC.</p>'
            '<noscript><p class="note">The player needs JavaScript; the clips can be downloaded below.</p></noscript>'
            '</section>')
    trail = ""
    points = len(track or [])
    if points or recording.get("triggerLocation"):
        trackLinks = ""
        info = recording.get("track") or {}
        if points and info.get("geojson"):
            trackLinks = (f' Download the trail as <a href="{e(info["geojson"])}">GeoJSON</a> or '
                          f'<a href="{e(info.get("gpx"))}">GPX</a>.')
        trail = (
            '<section aria-labelledby="map-heading"><h2 id="map-heading">Map</h2>'
            f'<p>{points} GNSS point{"" if points == 1 else "s"} and the trigger location.{trackLinks}</p>'
            '<div id="map" role="region" aria-label="Map of the GNSS trail and the trigger location"></div>'
            '</section>')
    objects = "".join(
        f'<tr><td>{e(o.get("name"))}</td><td><code class="hash">{e(o.get("sha256"))}</code></td>'
        f'<td>{e(localTime(o.get("arrived"), zoneName))} by {e(o.get("account") or "unknown")}</td></tr>'
        for o in recording.get("objects") or [] if o.get("name") not in {c["name"] for c in clips})
    otherObjects = (
        '<table class="objects"><caption>Other objects (track, keys, bookmarks)</caption><thead><tr>'
        '<th scope="col">Object</th><th scope="col">SHA-256</th><th scope="col">Arrived</th>'
        f'</tr></thead><tbody>{objects}</tbody></table>') if objects else ""
    exportForm = (
        '<section aria-labelledby="export-heading"><h2 id="export-heading">Export</h2>'
        '<p>An evidence package: every object byte for byte, the metadata, a manifest with the '
        'SHA-256 of each file and the chain of custody, as one ZIP file. The export is recorded '
        'with your account and the reason.</p>'
        f'<form class="export" method="post" action="/recordings/{e(recording["id"])}/export">'
        f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
        '<p><label for="reason">Reason for the export (required)</label>'
        '<textarea id="reason" name="reason" required maxlength="500" rows="2"></textarea></p>'
        '<p><button type="submit">Export evidence package</button></p></form></section>')
    data = {
        "clips": clips,
        "triggerOffset": triggerOffset or 0.0,
        "total": total,
        "track": [[p["lat"], p["lon"], p.get("time")] for p in track or []],
        "trigger": recording.get("triggerLocation"),
        "tiles": tiles,
    }
    body = (
        f'{"".join(notes)}<dl class="facts">{details}</dl>'
        f'{player}'
        '<section aria-labelledby="timeline-heading"><h2 id="timeline-heading">Timeline</h2>'
        f'{_timeline(recording, total, clips, triggerOffset)}'
        f'<h3>Bookmarks</h3>{_bookmarks(recording, zoneName)}</section>'
        f'{trail}'
        '<section aria-labelledby="integrity-heading"><h2 id="integrity-heading">Clips and integrity</h2>'
        '<table class="clips"><caption>Clips in play order</caption><thead><tr>'
        '<th scope="col">#</th><th scope="col">Clip (download)</th><th scope="col">Began</th>'
        '<th scope="col">Length</th><th scope="col">Size</th><th scope="col">SHA-256</th>'
        '<th scope="col">MD5</th><th scope="col">Arrived</th></tr></thead>'
        f'<tbody>{clipRows}</tbody></table>{otherObjects}</section>'
        f'{exportForm}{dataBlock(data)}'
    )
    title = f'Recording of {person.get("display") or "unknown"}'
    heading = f'{title}, {localTime(recording.get("triggerTime") or recording.get("start"), zoneName)}'
    scripts = ("/static/leaflet/leaflet.js",) if trail else ()
    styles = ("/static/leaflet/leaflet.css",) if trail else ()
    return page(title, body, session, scripts=scripts, styles=styles, heading=heading)


HOLD_KINDS = (("recording", "a recording (its container name)"),
              ("person", "a person (their UserUUID): also their future recordings"),
              ("tag", "a bookmark tag, key:value (e.g. Case:2024-117)"))


def holdsPage(holds: list, session, message: str | None = None) -> bytes:
    """
    The legal holds in force; for an admin, a form to place one and one
    to remove each (docs/retention.md), each carrying the session's CSRF token.
    """
    admin = session.role == "admin"
    csrf = f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
    rows = "".join(
        f'<tr><td>{e(hold.kind)}</td><td>{e(hold.target)}</td><td>{e(hold.reason)}</td>'
        f'<td>{e(hold.account)}</td><td>{e(hold.placed)}</td>'
        + (f'<td><form method="post" action="/holds/{e(hold.id)}/remove">{csrf}'
           f'<button type="submit">Remove</button></form></td>' if admin else "")
        + '</tr>' for hold in holds)
    table = ('<table class="holds"><thead><tr><th scope="col">On</th><th scope="col">What</th>'
             '<th scope="col">Reason</th><th scope="col">Placed by</th><th scope="col">Placed</th>'
             + ('<th scope="col"></th>' if admin else "") + f'</tr></thead><tbody>{rows}</tbody>'
             '</table>') if holds else '<p>No legal holds: retention applies to every recording.</p>'
    error = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
    options = "".join(f'<option value="{e(kind)}">{e(label)}</option>' for kind, label in HOLD_KINDS)
    form = (
        '<section aria-labelledby="hold-heading"><h2 id="hold-heading">Place a hold</h2>'
        '<p>A held recording is never deleted, by retention nor by an admin, until the hold is '
        'removed. The hold is recorded with your account and the reason.</p>'
        f'{error}<form class="hold" method="post" action="/holds">{csrf}'
        f'<p><label for="kind">On</label><select id="kind" name="kind">{options}</select></p>'
        '<p><label for="target">What</label><input id="target" name="target" required '
        'maxlength="500"></p>'
        '<p><label for="reason">Reason (required)</label>'
        '<textarea id="reason" name="reason" required maxlength="500" rows="2"></textarea></p>'
        '<p><button type="submit">Place the hold</button></p></form></section>') if admin else ""
    return page("Legal holds", table + form, session)
