"""
Integrators' standard Swift tools, the real ones, as a reader: the swift
CLI of python-swiftclient and Debian's rclone list, stat (with what each
container and the account hold), and copy recordings out; a write is
refused with the server's own 403.  And what they rely on underneath:
counts in HEADs and listings, dates, and each object's Content-Type.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.support.installing import Unavailable, installPrograms
from tests.support.swift import status

CLIPS = {
    "20240501_101500_1.mkv": (os.urandom(300_000), "video/x-matroska"),
    "20240501_101500_1_gpstrail.json": (b'{"points": []}', None),  # guessed from the name
    "20240501_101510_2.mkv": (os.urandom(200_001), None),  # nothing to guess from
}
TYPES = {
    "20240501_101500_1.mkv": "video/x-matroska",
    "20240501_101500_1_gpstrail.json": "application/json",
    "20240501_101510_2.mkv": "application/octet-stream",
}


def installRclone() -> str:
    """The path of rclone, installing Debian's package if it is missing."""
    installPrograms(["rclone"], ["rclone"])
    return shutil.which("rclone")


@pytest.fixture
def stored(server, swift, recording):
    """A recording as the controller leaves it, and a reader account."""
    container = recording.start(swift)
    for name, (data, contentType) in CLIPS.items():
        headers = {"X-Object-Meta-Starttime": "1"}
        if contentType:
            headers["Content-Type"] = contentType
        swift.put_object(container, name, data, headers=headers)
    swift.post_container(container, {"X-Container-Meta-Status": "Complete"})
    return server.addAccount("integrator", "reader"), container


def test_heads_and_listings_say_what_is_held(server, stored):
    reader, container = stored
    held = sum(len(data) for data, _ in CLIPS.values())
    headers = reader.head_container(container)
    assert headers["x-container-object-count"] == "3"
    assert headers["x-container-bytes-used"] == str(held)
    assert float(headers["x-timestamp"]) == float(headers["x-put-timestamp"]) > 1.7e9
    headers = reader.head_account()
    # The recording, Users and Devices (two objects), System (the two documents).
    assert headers["x-account-container-count"] == "4"
    assert headers["x-account-object-count"] == "7"
    _, containers = reader.get_account()
    listed = {c["name"]: c for c in containers}
    assert (listed[container]["count"], listed[container]["bytes"]) == (3, held)
    assert listed["Users"]["count"] == 1 and listed[container]["last_modified"] > "2024-"
    assert int(headers["x-account-bytes-used"]) == sum(c["bytes"] for c in containers)
    # A deletion shows at once.
    name = sorted(CLIPS)[0]
    server.addAccount("archive", "admin").delete_object(container, name)
    assert reader.head_container(container)["x-container-object-count"] == "2"
    headers = reader.head_account()
    assert headers["x-account-object-count"] == "6"
    assert int(headers["x-account-bytes-used"]) == int(
        reader.head_account()["x-account-bytes-used"])


def test_an_objects_content_type_is_kept(stored):
    reader, container = stored
    _, objects = reader.get_container(container)
    assert {o["name"]: o["content_type"] for o in objects} == TYPES
    for name, expected in TYPES.items():
        assert reader.head_object(container, name)["content-type"] == expected
        headers, body = reader.get_object(container, name)
        assert headers["content-type"] == expected and body == CLIPS[name][0]


def test_a_bad_content_type_is_refused(server, swift, recording):
    container = recording.start(swift)
    for bad in ("video/\x01x", "x" * 257, ""):
        assert status(swift.put_object, container, "c.mkv", b"x",
                      headers={"Content-Type": bad}) == 400, bad
    assert status(swift.head_object, container, "c.mkv") == 404
    assert "Content-Type" in server.log()


def swiftCLI(server, reader, *arguments) -> str:
    done = server.swiftCommand(reader, *arguments)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fields(output: str) -> dict[str, str]:
    """C{swift stat}'s "Name: value" lines."""
    return {name.strip(): value.strip() for name, _, value in
            (line.partition(":") for line in output.splitlines()) if value}


def test_the_swift_cli_as_a_reader(server, stored, tmp_path):
    reader, container = stored
    held = sum(len(data) for data, _ in CLIPS.values())
    account = fields(swiftCLI(server, reader, "stat"))
    assert (account["Containers"], account["Objects"]) == ("4", "7")
    recording = fields(swiftCLI(server, reader, "stat", container))
    assert (recording["Objects"], recording["Bytes"]) == ("3", str(held))
    long = swiftCLI(server, reader, "list", "--lh")
    assert "????" not in long and container in long
    [line] = [line for line in long.splitlines() if line.endswith(container)]
    assert line.split()[0] == "3"  # its object count
    long = swiftCLI(server, reader, "list", "--lh", container)
    assert "????" not in long and "video/x-matroska" in long
    swiftCLI(server, reader, "download", container, "-D", str(tmp_path / "out"))
    for name, (data, _) in CLIPS.items():
        assert (tmp_path / "out" / name).read_bytes() == data


@pytest.fixture
def rclone(server, stored, tmp_path):
    """C{rclone(*arguments)}: rclone as the reader, on the remote C{bw:}."""
    try:
        program = installRclone()
    except Unavailable as e:
        pytest.skip(str(e))
    reader, _ = stored
    environment = dict(
        os.environ, RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_BW_TYPE="swift", RCLONE_CONFIG_BW_AUTH=server.authURL,
        RCLONE_CONFIG_BW_USER=reader.user, RCLONE_CONFIG_BW_KEY=reader.key)

    def rclone(*arguments) -> subprocess.CompletedProcess:
        return subprocess.run([program, "--ca-cert", server.caFile, "--low-level-retries",
                               "1", "--retries", "1", *arguments],
                              env=environment, capture_output=True, text=True, timeout=120)

    return rclone


def test_rclone_as_a_reader(stored, rclone, tmp_path):
    _, container = stored
    listed = rclone("lsf", f"bw:{container}")
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == sorted(CLIPS)
    copied = rclone("copy", f"bw:{container}", str(tmp_path / "out"))
    assert copied.returncode == 0, copied.stderr
    for name, (data, _) in CLIPS.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    about = rclone("about", "bw:", "--json")
    assert about.returncode == 0, about.stderr
    assert json.loads(about.stdout)["objects"] == 7, about.stdout
    # A write is the server's 403 (in rclone's words), not a complaint
    # about the headers of the container it writes into.
    (tmp_path / "x").write_bytes(b"x")
    written = rclone("copyto", str(tmp_path / "x"), "bw:Users/x")
    assert written.returncode != 0
    assert "Failed to copyto: Operation forbidden" in written.stderr, written.stderr
    assert "Bad Header" not in written.stderr
