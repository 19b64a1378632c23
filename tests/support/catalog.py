"""
Recordings for the catalog's tests, sent as the controller sends them
(python-swiftclient: users and devices registered, container metadata,
clips, bookmarks with categories and tags, GNSS tracks before and after the
clips, rejected content), and the catalog's API read as an integrator
reads it (requests, with a Swift auth token).
"""

import json
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

ANNA_1 = "6a7c1a3e-8b1d-4c55-9a8e-3f1f2b7d9c01"
ANNA_2 = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
CAM_1 = "B8A44F000001"
CAM_2 = "B8A44F000002"
R1 = f"{ANNA_1}_{CAM_1}_20240501T101500Z"
R2 = f"{ANNA_2}_{CAM_2}_20240502T080000Z"
R3 = f"{ANNA_1}_{CAM_2}_20240503T120000Z"
REJECTED = "RejectedContent_20240504T000000Z_7f3e"
MALMO = (55.718409, 13.221184)
"""R1's trigger location."""
STOCKHOLM_TRAIL = [(59.3300, 18.0600), (59.3305, 18.0610), (59.3310, 18.0620)]
"""R2's GNSS points, far from its trigger location (59.30, 18.00)."""


def meta(kind: str, values: dict) -> dict:
    """Metadata headers as the controller writes them: percent-encoded UTF-8."""
    return {f"X-{kind}-Meta-{k}": quote(str(v), safe="") for k, v in values.items()}


def trackDocument(points, start: str = "2024-05-02T08:00") -> bytes:
    return json.dumps({"CoordinateEntries": [
        {"LocationWKT": f"POINT({lon} {lat})", "SecondsFromStart": float(10 * n),
         "Timestamp": f"{start}:{10 * n:02d}Z"}
        for n, (lat, lon) in enumerate(points)]}).encode()


def _clip(swift, container, name, start: int, seconds: int, data: bytes, place=None):
    values = {"Starttime": start, "Stoptime": start + seconds, "Containertype": "mkv"}
    if place is not None:
        values["Startlocation"] = f"{place[0]},{place[1]},4,{start}"
    swift.put_object(container, name, data, headers=meta("Object", values))


def register(swift) -> None:
    swift.put_container("Users")
    swift.put_container("Devices")
    for uuid, userId in ((ANNA_1, "A-17"), (ANNA_2, "B-3")):
        swift.put_object("Users", uuid, b"", headers=meta("Object", {
            "Name": "Anna Berg", "Userid": userId, "Active": "True"}))
    for serial, name in ((CAM_1, "Cam 1"), (CAM_2, "Cam 2")):
        swift.put_object("Devices", serial, b"", headers=meta("Object", {
            "Name": name, "Model": "W110", "Active": "True"}))


def _container(swift, name, trigger, epoch, place=None, status="Transferring", **extra):
    values = {"Containername": name, "Triggeron": trigger, "Triggerontime": epoch,
              "Starttime": epoch - 30, "Timezone": "Europe/Stockholm", "Bwcmodel": "W110",
              "Firmwareversion": "11.11.1", "Scuserialnumber": "S7654321", "Status": status,
              **extra}
    if place is not None:
        values["Triggeronlocation"] = f"{place[0]},{place[1]},5,{epoch}"
    swift.put_container(name, headers=meta("Container", values))


def sendRecordings(swift) -> None:
    """The three recordings and the rejected content every catalog test looks for."""
    register(swift)
    # R1: a track before its three clips (sent out of play order), a bookmark.
    _container(swift, R1, "Button", 1714558500, MALMO)
    swift.put_object(R1, f"20240501_101430_1_{CAM_1}_gpstrail.json",
                     trackDocument([(55.7190, 13.2220), (55.7195, 13.2230)], "2024-05-01T10:15"),
                     headers=meta("Object", {"Filetype": "json"}))
    _clip(swift, R1, "20240501_101530_1.mkv", 1714558530, 30, b"clip two" * 100)
    _clip(swift, R1, "20240501_101430_1.mkv", 1714558470, 30, b"clip one" * 100, MALMO)
    _clip(swift, R1, "20240501_101600_1.mkv", 1714558560, 30, b"clip three" * 100)
    swift.put_object(R1, "bookmark_20240501T101540Z_1", "Suspect ran north".encode(),
                     headers=meta("Object", {"Categoryid": "7", "Categoryname": "Theft",
                                             "Tags": "TriggerOn:Button;Plate:ABC123",
                                             "Starttime": "2024-05-01T10:15:40Z",
                                             "Endtime": "2024-05-01T10:15:50Z"}))
    swift.post_container(R1, headers=meta("Container", {
        "Status": "Complete", "Triggeroff": "Button", "Triggerofftime": 1714558590,
        "Stoptime": 1714558590}))
    # R2: its track after the clip, a bookmark in another category.
    _container(swift, R2, "Holster", 1714636800, (59.30, 18.00))
    _clip(swift, R2, "20240502_075930_2.mkv", 1714636770, 60, b"second" * 100)
    swift.put_object(R2, "bookmark_20240502T080010Z_2", "Speeding, två bilar".encode(),
                     headers=meta("Object", {"Categoryid": "9", "Categoryname": "Traffic",
                                             "Tags": "Road:E4"}))
    swift.put_object(R2, f"20240502_075930_2_{CAM_2}_gpstrail.json",
                     trackDocument(STOCKHOLM_TRAIL))
    swift.post_container(R2, headers=meta("Container", {"Status": "Complete"}))
    # R3: still transferring, no place, no bookmark.
    _container(swift, R3, "Button", 1714737600)
    _clip(swift, R3, "20240503_115930_3.mkv", 1714737570, 30, b"third" * 100)
    _clip(swift, R3, "20240503_120000_3.mkv", 1714737600, 30, b"fourth" * 100)
    swift.put_container(REJECTED, headers=meta("Container", {
        "Containername": REJECTED, "Rejectedcontentoriginalcontainer": R1,
        "Rejectedcontenttime": "2024-05-04T00:00:00Z", "Rejectedcontentreason": "corrupt"}))
    swift.put_object(REJECTED, "20240501_101630_1.mkv", b"broken",
                     headers=meta("Object", {"Rejectedcontentoriginalcontainer": R1}))


EXPECTED = {R1: (3, 2), R2: (1, 3), R3: (2, 0)}
"""Each recording's clips and GNSS points once everything is catalogued."""


@dataclass
class CatalogClient:
    """The catalog's API of a running server, as an account with C{token}."""

    server: object
    token: str | None
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def of(cls, server, account) -> "CatalogClient":
        return cls(server, account.get_auth()[1])

    def get(self, path: str, params=None, headers=None) -> requests.Response:
        return self.request("GET", path, params, headers)

    def request(self, method: str, path: str, params=None, headers=None) -> requests.Response:
        allHeaders = {"X-Auth-Token": self.token} if self.token else {}
        allHeaders.update(headers or {})
        scheme = "https" if self.server.https else "http"
        return self.session.request(
            method, f"{scheme}://127.0.0.1:{self.server.port}/catalog/v1/{path}",
            params=params, headers=allHeaders,
            verify=self.server.caFile if self.server.https else False, timeout=30)

    def json(self, path: str, params=None):
        answer = self.get(path, params)
        assert answer.status_code == 200, (path, params, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith(("application/json", "application/geo+json"))
        return answer.json()

    def ids(self, **params) -> list[str]:
        return [item["id"] for item in self.json("recordings", params)["items"]]

    def waitFor(self, expected=EXPECTED, rejected: int = 1, timeout: float = 30) -> None:
        """Until the catalog holds C{expected} (id: (clips, points)) and the rejected content."""
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for id in expected:
                answer = self.get(f"recordings/{id}")
                if answer.status_code == 200:
                    detail = answer.json()
                    found[id] = (len(detail["clips"]), detail["track"]["points"])
            complete = found == expected and len(self.ids(rejected="true")) == rejected
            if complete:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the catalog holds {found}, not {expected}")
            time.sleep(0.1)

    def snapshot(self) -> dict:
        """Every answer of the API, for comparing two catalogs of the same storage."""
        answers = {"people": self.json("people")}
        for params in ({}, {"rejected": "true"}, {"category": "theft"}, {"q": "anna"},
                       {"near": "59.33,18.06,500"}, {"person": ANNA_1}, {"limit": "1"}):
            answers[json.dumps(params)] = self.json("recordings", params)
        for id in (R1, R2, R3, REJECTED):
            answers[id] = self.json(f"recordings/{id}")
            answers[id + "/track"] = self.json(f"recordings/{id}/track.geojson")
        return answers
