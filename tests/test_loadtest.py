"""
C{bwscd loadtest}, the W800 simulator: run as an operator runs it, in a
subprocess, against a real C{twistd bwscd} over HTTPS (its counts must
match what the server stored) and against a small fake Swift server over
plain HTTP that records what arrives (chunked or not, Expect, ETag, a
token that expires, a refusal).
"""

import base64
import hashlib
import http.server
import json
import os
import pty
import re
import select
import subprocess
import threading

import pytest

from bwscd.config import connectionfile
from bwscd.plugins import sizeInBytes as parseSize
from bwscd.tools.loadcamera import Plan, identities
from bwscd.tools.loadclient import Payload
from bwscd.tools.loadtest import percentile, sizing
from tests.support.server import BWSCD

RECORDING = re.compile(r"^[0-9a-f-]{36}_[^_]+_[0-9]{8}T[0-9]{6}Z$")


def loadtest(*arguments, timeout=300, **kwargs):
    return subprocess.run([BWSCD, "loadtest", *arguments], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


def report(stdout: str) -> dict[str, str]:
    """The report's lines by their label (the first 18 columns)."""
    lines = {}
    for line in stdout.splitlines():
        label, text = line[:18].strip(), line[18:]
        if label:
            lines[label] = text
    return lines


def recordings(server) -> dict[str, dict[str, int]]:
    """Each recording container on disk: its clips and their sizes."""
    found = {}
    for name in os.listdir(server.storage):
        if RECORDING.match(name):
            directory = os.path.join(server.storage, name)
            found[name] = {
                entry: os.path.getsize(os.path.join(directory, entry))
                for entry in os.listdir(directory)
                if entry.endswith((".mkv", ".mp4"))
            }
    return found


# Against the real server.


def test_counts_match_what_the_server_stored(server):
    result = loadtest("--data", server.data, "--cameras", "3", "--recordings-per-camera", "2",
                      "--clips-per-recording", "3", "--clip-size", "256K", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress line
    lines = report(result.stdout)
    assert lines["server"].startswith(server.authURL + " (certificate checked")
    assert lines["load"].startswith("3 cameras x 2 recording(s) x 3 clip(s) x 256 KiB, "
                                    "Content-Length, .mkv, seed 7")
    assert lines["clips stored"] == "18 of 18"
    assert lines["recordings"] == "6 of 6 complete"
    assert lines["bytes"] == f"{18 * 262144} sent, {18 * 262144} stored"
    assert lines["errors"] == "none"
    assert re.fullmatch(r"[\d.]+ MB/s \(\d+ Mbit/s\)", lines["throughput"])
    assert re.fullmatch(r"p50 \d.*, p90 .*, p99 .*, max .* \(18 clips\)", lines["clip latency"])
    mbits = int(re.search(r"\((\d+) Mbit/s\)", lines["throughput"]).group(1))
    match = re.fullmatch(r"at (\d+) Mbit/s, 1\.0 TB per shift offloads in ([\d.]+) hours",
                         lines["sizing"])
    assert match and abs(int(match.group(1)) - mbits) <= 1

    stored = recordings(server)
    assert len(stored) == 6
    for name, clips in stored.items():
        assert sorted(clips.values()) == [262144] * 3, name
        assert os.path.exists(os.path.join(server.storage, name, "complete"))
    clipEvents = server.eventsOf("clip.stored")
    assert len(clipEvents) == 18
    assert {event["length"] for event in clipEvents} == {262144}
    assert not any(event["alreadyStored"] for event in clipEvents)
    assert len(server.eventsOf("recording.started")) == 6
    assert sorted(e["container"] for e in server.eventsOf("recording.complete")) == sorted(stored)
    assert len(server.eventsOf("user.registered")) == 3
    assert len(server.eventsOf("device.registered")) == 3
    assert not server.eventsOf("recording.anomaly")

    # What the controller sends with a recording and with each clip.
    name = sorted(stored)[0]
    with open(os.path.join(server.storage, name, f"{name}.metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["Status"] == "Complete" and metadata["Containername"] == name
    assert name.startswith(metadata["Userid"] + "_" + metadata["Bwcserialnumber"] + "_")
    clip = sorted(stored[name])[0]
    with open(os.path.join(server.storage, name, f"{name}.{clip}.metadata.json")) as f:
        clipMetadata = json.load(f)
    assert clipMetadata["Containertype"] == "mkv"
    assert clip.startswith(clipMetadata["Starttimeiso"][:10].replace("-", ""))
    with open(os.path.join(server.storage, name, clip), "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == clipEvents[0]["md5"]


def test_chunked_clip_size_and_clips_per_recording(server):
    conf = os.path.join(server.data, "config.json")
    result = loadtest("--connection-file", conf, "--cameras", "2", "--clips-per-recording", "5",
                      "--clip-size", "100001", "--chunked", "--chunk-size", "10K",
                      "--shift-tb", "2.5")
    assert result.returncode == 0, result.stderr
    lines = report(result.stdout)
    assert "x 5 clip(s) x 100001 bytes, chunked (10 KiB chunks)" in lines["load"]
    assert lines["clips stored"] == "10 of 10"
    assert "2.5 TB per shift" in lines["sizing"]
    stored = recordings(server)
    assert len(stored) == 2
    assert all(sorted(clips.values()) == [100001] * 5 for clips in stored.values())
    assert len(server.eventsOf("clip.stored")) == 10
    assert len(server.eventsOf("recording.complete")) == 2


def test_a_wrong_key_is_reported_as_401(server, tmp_path):
    conf = server.connectionFile
    conf["BlobAPIKey"] = "not-the-key-" + conf["BlobAPIKey"][:8]
    wrong = tmp_path / "config.json"
    wrong.write_text(json.dumps(conf))
    result = loadtest("--connection-file", str(wrong), "--cameras", "3", "--clip-size", "1K")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [summary] = result.stderr.strip().splitlines()
    assert summary.startswith("bwscd loadtest: 1 error: 401 x1 (login: ")
    lines = report(result.stdout)
    assert lines["clips stored"] == "0 of 12"
    assert lines["errors"].startswith("401 x1")
    # One failed login, not one per camera: the server throttles an address
    # after a few, and the real controller may share it.
    assert "0 of 3 cameras logged in" in lines["setup"]
    assert recordings(server) == {}
    assert not server.eventsOf("clip.stored")


def test_the_certificate_is_checked_against_the_connection_file(server, tmp_path):
    from bwscd.security.certificate import createSelfSigned

    other, _ = createSelfSigned(["127.0.0.1"])
    conf = server.connectionFile
    conf["HTTPSCertificate"] = [base64.b64encode(other).decode("ascii")]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(conf))
    result = loadtest("--connection-file", str(path), "--cameras", "2", "--clip-size", "1K")
    assert result.returncode == 1
    assert result.stderr.startswith("bwscd loadtest: 2 errors: SSLCertVerificationError x2 "
                                    "(login: ")
    assert recordings(server) == {}


def test_progress_on_a_terminal(server):
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [BWSCD, "loadtest", "--data", server.data, "--cameras", "2", "--clip-size", "2M"],
        stdout=subprocess.PIPE, stderr=secondary, stdin=subprocess.DEVNULL,
    ) as process:
        os.close(secondary)
        shown = b""
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            try:
                data = os.read(primary, 65536) if ready else b""
            except OSError:  # EIO: the other end is closed
                data = b""
            if not data:
                break
            shown += data
        stdout = process.stdout.read().decode()
        assert process.wait(60) == 0
    os.close(primary)
    assert b"\r" in shown and b"\n" not in shown  # one line, rewritten in place
    assert b"logging in and registering camera 2/2" in shown
    assert shown.endswith(b"\r")  # and cleared at the end
    assert report(stdout)["clips stored"] == "8 of 8"


# Against a fake server that records what arrives.


class FakeSwift(http.server.ThreadingHTTPServer):
    """A Swift subset over plain HTTP: logs in, stores nothing, remembers requests."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeSwiftHandler)
        self.port = self.server_address[1]
        self.requests = []
        self.tokens = set()
        self.logins = 0
        self.expireTokensAt = None  # the storage request that finds every token expired
        self.refuseClips = None  # a status for every clip upload
        self.lock = threading.Lock()

    def connectionFile(self, tmp_path) -> str:
        path = tmp_path / "fake.json"
        path.write_bytes(connectionfile.build(
            siteName="Fake", applicationName="fake", applicationVersion="1",
            tokenURIs=[f"http://127.0.0.1:{self.port}/auth/v1.0"], certificatesPEM=[],
            userName="user", key="secret-key", containerType="mp4",
        ))
        return str(path)


class FakeSwiftHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_expect_100(self):
        return True  # answered in do_PUT: 100 only for an upload it takes

    def answer(self, status, headers=(), body=b"", close=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        fake = self.server
        if self.headers["X-Auth-User"] != "user" or self.headers["X-Auth-Key"] != "secret-key":
            return self.answer(401, body=b"wrong user name or key\n")
        with fake.lock:
            fake.logins += 1
            token = f"token-{fake.logins}"
            fake.tokens.add(token)
        self.answer(200, [("X-Auth-Token", token),
                          ("X-Storage-Url", f"http://127.0.0.1:{fake.port}/v1/AUTH_user")])

    def do_PUT(self):
        fake = self.server
        with fake.lock:
            fake.requests.append(request := {
                "method": self.command, "path": self.path, "headers": dict(self.headers),
            })
            if len(fake.requests) == fake.expireTokensAt:
                fake.tokens.clear()
            valid = self.headers["X-Auth-Token"] in fake.tokens
        isClip = self.command == "PUT" and self.path.endswith(".mp4")
        status = 401 if not valid else (fake.refuseClips if isClip else None)
        if status is not None:
            request["status"] = status
            # Refused before the body: the rest of it can't be told from a
            # next request, so the connection closes.
            return self.answer(status, body=b"refused by the fake\n", close=True)
        if self.headers["Expect"] == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        body = self.readBody()
        request.update(status=201 if self.command == "PUT" else 204, length=len(body),
                       md5=hashlib.md5(body).hexdigest())
        self.answer(request["status"], [("Etag", request["md5"])])

    do_POST = do_PUT

    def readBody(self) -> bytes:
        if self.headers["Transfer-Encoding"] == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                assert self.rfile.readline() == b"\r\n"
            assert self.rfile.readline() == b"\r\n"
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))


@pytest.fixture
def fake():
    server = FakeSwift()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def clipRequests(fake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "PUT" and r["path"].endswith(".mp4")]


@pytest.mark.parametrize("chunked", [False, True])
def test_how_clips_are_sent(fake, tmp_path, chunked):
    result = loadtest("--connection-file", fake.connectionFile(tmp_path), "--cameras", "2",
                      "--clips-per-recording", "2", "--clip-size", "70K", "--seed", "3",
                      *(["--chunked", "--chunk-size", "16K"] if chunked else []))
    assert result.returncode == 0, result.stderr
    assert "(plain HTTP)" in report(result.stdout)["server"]
    clips = clipRequests(fake)
    assert len(clips) == 4
    for clip in clips:
        headers = clip["headers"]
        assert clip["length"] == 70 * 1024 and clip["status"] == 201
        assert headers["ETag"] == clip["md5"]  # the server can check every byte
        assert headers["Expect"] == "100-continue"
        assert headers["X-Object-Meta-Containertype"] == "mp4"
        assert re.fullmatch(r"\d{10}", headers["X-Object-Meta-Starttime"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\dZ",
                            headers["X-Object-Meta-Starttimeiso"])
        if chunked:
            assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
        else:
            assert headers["Content-Length"] == str(70 * 1024)
            assert "Transfer-Encoding" not in headers
    # The controller's order for each recording: container, clips, Complete.
    paths = [(r["method"], r["path"].count("/")) for r in fake.requests]
    assert paths.count(("POST", 3)) == 2
    for camera in identities(Plan(2, 1, 2, 70 * 1024, seed=3)):
        users = [r for r in fake.requests if r["path"].endswith(f"/Users/{camera.user}")]
        assert users and users[0]["headers"]["X-Object-Meta-Name"] == \
            f"Loadtest%20user%20{camera.number}"
    assert fake.logins == 2  # one per camera


def test_an_expired_token_means_logging_in_again(fake, tmp_path):
    fake.expireTokensAt = 8  # after the registrations, during the uploads
    result = loadtest("--connection-file", fake.connectionFile(tmp_path), "--cameras", "1",
                      "--clips-per-recording", "4", "--clip-size", "1M")
    assert result.returncode == 0, result.stderr
    lines = report(result.stdout)
    assert lines["clips stored"] == "4 of 4"
    assert lines["logins again"].startswith("1 ")
    assert fake.logins == 2
    assert [r.get("status") for r in fake.requests].count(401) == 1


def test_refusals_are_counted_by_status_before_the_body(fake, tmp_path):
    fake.refuseClips = 503
    result = loadtest("--connection-file", fake.connectionFile(tmp_path), "--cameras", "2",
                      "--clips-per-recording", "3", "--clip-size", "4M")
    assert result.returncode == 1
    assert result.stderr.strip() == ("bwscd loadtest: 6 errors: 503 x6 "
                                     "(clip: refused by the fake)")
    lines = report(result.stdout)
    assert lines["clips stored"] == "0 of 6"
    assert lines["recordings"] == "0 of 2 complete"  # never marked Complete
    assert lines["bytes"] == "0 sent, 0 stored"  # Expect: 100-continue saved them
    assert lines["sizing"] == "nothing was stored: no rate to size with"
    assert not [r for r in fake.requests if r["method"] == "POST"]


# Without a server.


@pytest.mark.parametrize("arguments, message", [
    (["--cameras", "0"], "--cameras: must be at least 1"),
    (["--clip-size", "12X"], "--clip-size: not a size: '12X'"),
    (["--clip-size", "0"], "--clip-size: must be at least 1 byte"),
    (["--shift-tb", "-1"], "--shift-tb: must be more than 0"),
])
def test_options_are_checked(arguments, message):
    result = loadtest(*arguments)
    assert result.returncode == 2 and message in result.stderr


def test_a_missing_connection_file(tmp_path):
    result = loadtest("--data", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("bwscd loadtest: can't read the connection file ")
    assert result.stdout == ""


def test_sizes_sizing_and_percentiles():
    assert parseSize("256K") == 262144 and parseSize("64M") == 64 << 20
    assert parseSize("2G") == 2 << 30 and parseSize("512MiB") == 512 << 20
    assert parseSize("100001") == 100001
    assert round(sizing(850e6, 1.0), 1) == 2.6  # the example
    assert round(sizing(500e6, 1.0), 1) == 4.4  # the guide's "five hours", roughly
    ordered = [float(n) for n in range(1, 101)]
    assert [percentile(ordered, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert percentile([3.0], 99) == 3.0


def test_the_seed_makes_the_same_cameras_and_bytes():
    import random

    plan = Plan(3, 1, 1, 1000, seed=5)
    assert identities(plan) == identities(Plan(3, 2, 2, 5, seed=5))
    assert identities(plan) != identities(Plan(3, 1, 1, 1000, seed=6))
    assert len({camera.user for camera in identities(plan)}) == 3
    # A clip larger than the buffer repeats it, in slices that never cross its end.
    one = Payload(3005, random.Random("x"), limit=1000)
    assert one.md5 == Payload(3005, random.Random("x"), limit=1000).md5
    pieces = list(one.pieces(700))
    assert [len(piece) for piece in pieces] == [700, 300] * 3 + [5]
    block = bytes(pieces[0]) + bytes(pieces[1])
    assert b"".join(pieces) == block * 3 + block[:5]
    assert hashlib.md5(block * 3 + block[:5]).hexdigest() == one.md5
    # Chunked, the framing is made once: the same chunks, cut at the same places.
    framed = Payload(3005, random.Random("x"), limit=1000, chunkSize=300)
    slices = list(framed.framed())
    assert sum(clipBytes for _, clipBytes in slices) == 3005
    wire, sizes = b"".join(bytes(data) for data, _ in slices) + b"0\r\n\r\n", []
    decoded = b""
    while True:
        line, _, wire = wire.partition(b"\r\n")
        size = int(line, 16)
        if not size:
            break
        decoded, sizes, wire = decoded + wire[:size], sizes + [size], wire[size + 2:]
    assert wire == b"\r\n"
    assert decoded == block * 3 + block[:5]
    assert sizes == [300, 300, 300, 100] * 3 + [5]
