"""
One service per data directory and storage: a second C{twistd bwscd} on
what a running one uses is refused before it reads or writes anything, with
one line naming the running one, and the first one's uploads go on.
"""

import hashlib
import os
import subprocess
import time

import pytest

from tests.support.server import HOST

PART = 1 << 20


def files(directory: str) -> dict[str, tuple[bytes, int, int]]:
    """Every file under C{directory} but the event log and the catalog: digest, inode, mtime."""
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            if name == "events.jsonl" or name.startswith("catalog.sqlite"):
                continue  # the running server's to append to, and to index into
            with open(path, "rb") as f:
                status = os.fstat(f.fileno())
                found[path] = (hashlib.sha256(f.read()).digest(), status.st_ino,
                               status.st_mtime_ns)
    return found


def waitForTemporaryFile(temporary: str) -> None:
    """Until the upload's temporary file holds what was sent, all but a piece."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sizes = [os.path.getsize(os.path.join(temporary, n)) for n in os.listdir(temporary)]
        if sizes and sizes[0] >= PART // 2:
            return
        time.sleep(0.05)
    raise AssertionError(f"no upload being written in {temporary}")


def secondServer(twistdCommand, data: str, cwd: str, *arguments: str):
    os.makedirs(cwd, exist_ok=True)
    return subprocess.run(
        [*twistdCommand, "bwscd", "--data", data, "--interface", HOST,
         "--public-address", HOST, *arguments],
        capture_output=True, text=True, timeout=60, cwd=cwd)


def refusedWithOneLine(result, holder: int, what: str) -> None:
    assert result.returncode != 0, result
    output = (result.stdout + result.stderr).splitlines()
    assert len(output) == 1, result
    assert what in output[0] and f"in use by process {holder}:" in output[0], output[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_server_leaves_an_upload_in_flight_alone(launch, dataDirectory, tmp_path,
                                                         twistdCommand, recording, workers):
    first = launch(dataDirectory, "--workers", workers)
    swift = first.connection()
    container = recording.start(swift)
    body = os.urandom(3 * PART)
    client = first.startUpload(swift, f"/{container}/clip.mkv", len(body), body[:PART])
    waitForTemporaryFile(os.path.join(first.storage, ".bwscd", "tmp"))
    before = files(dataDirectory)

    # From another working directory, so that twistd's own pid file is no
    # obstacle; on the same port, as a mistaken restart would be.
    result = secondServer(twistdCommand, dataDirectory, str(tmp_path / "elsewhere"),
                          "--port", str(first.port))
    refusedWithOneLine(result, first.process.pid, f"the data directory {dataDirectory}")
    assert files(dataDirectory) == before

    client.send(body[PART:])
    response = client.getresponse()
    assert response.status == 201, response.read()
    assert response.getheader("Etag") == hashlib.md5(body).hexdigest()
    with open(os.path.join(first.storage, container, "clip.mkv"), "rb") as f:
        assert f.read() == body
    swift.head_account()


@pytest.mark.parametrize("backend, what", [
    ("filesystem:root={shared}", "filesystem storage in {shared}"),
    ("sqlite:path={shared}.sqlite", "SQLite database {shared}.sqlite"),
])
def test_a_second_server_on_the_same_storage_is_refused(launch, tmp_path, twistdCommand,
                                                       backend, what):
    shared = str(tmp_path / "shared")
    first = launch(str(tmp_path / "one"), "--backend", backend.format(shared=shared))
    first.connection().put_container("Users")
    # On the same port too: refused before it would find that out, having
    # recovered (emptied) the storage's temporary files.
    result = secondServer(twistdCommand, str(tmp_path / "two"), str(tmp_path),
                          "--port", str(first.port), "--backend", backend.format(shared=shared))
    refusedWithOneLine(result, first.process.pid, what.format(shared=shared))
    assert not os.path.exists(tmp_path / "two" / "settings.json")
    first.connection().put_object("Users", "u", b"")
