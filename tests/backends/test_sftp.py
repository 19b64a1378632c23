"""
The SFTP backend through the real thing: C{twistd bwscd --backend sftp:...}
storing on a real OpenSSH sshd on loopback (see L{tests.support.sshd}), whose remote tree
is a directory of this machine that the tests read directly.
"""

import hashlib
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from tests.support.installing import Unavailable
from tests.support.recording import Recording
from tests.support.processes import commandOf, descendantsOf, isRunning
from tests.support.sshd import SSHServer
from tests.support.storefaults import cutOffBy, storedOnceBack
from tests.support.swift import inPieces, status

CAMERA = Recording()
USER, RECORDING = CAMERA.user, CAMERA.container
MiB = 1 << 20


@pytest.fixture
def sshd(tmp_path):
    directory = tmp_path / "sshd"
    directory.mkdir()
    try:
        server = SSHServer.start(str(directory))
    except Unavailable as e:
        pytest.skip(f"no OpenSSH server for the SFTP tests: {e}")
    yield server
    server.stop()


@pytest.fixture
def running(launch, dataDirectory, sshd):
    """bwscd storing on C{sshd}, with a registered user and camera."""
    server = launch(dataDirectory, "--backend", sshd.backendSpec())
    swift = server.connection()
    register(swift)
    yield server, swift
    swift.close()


def register(swift):
    """The recording's user and camera, with names that need percent-encoding."""
    CAMERA.start(swift, user={"X-Object-Meta-Name": "Anna%20Berg"},
                 device={"X-Object-Meta-Name": "Cam%201"})


def remote(sshd, *parts) -> str:
    return os.path.join(sshd.root, *parts)


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def tree(root) -> dict[str, bytes]:
    """Every file under C{root} but bwscd's own, by relative path."""
    found = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d != ".bwscd"]
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = read(path)
    return found


def test_the_remote_tree_is_the_filesystem_layout(launch, tmp_path, running, sshd):
    """
    The same requests to the filesystem backend and to the SFTP backend
    leave the same files, byte for byte; Content-Length and chunked bodies
    alike arrive exact.
    """
    server, swift = running
    reference = launch(str(tmp_path / "reference"))
    local = reference.connection()
    register(local)
    body = os.urandom(3 * MiB + 123)
    for connection in (swift, local):
        assert connection.put_object(
            RECORDING, "20240501T101500Z_1.mkv", body,
            headers={"X-Object-Meta-Starttimeiso": "2024-05-01T10:15:00Z"},
        ) == hashlib.md5(body).hexdigest()
        connection.put_object(RECORDING, "sub:dir/track.json", inPieces(body[::-1], 100_000))
        connection.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})
    local.close()
    remoteTree, localTree = tree(sshd.root), tree(reference.storage)
    assert remoteTree.keys() == localTree.keys()
    assert remoteTree == localTree
    assert remoteTree[f"{RECORDING}/20240501T101500Z_1.mkv"] == body
    assert remoteTree[f"{RECORDING}/sub_dir/track.json"] == body[::-1]
    assert json.loads(remoteTree[f"{RECORDING}/{RECORDING}.metadata.json"]) == {
        "Status": "Complete"}
    assert remoteTree[f"{RECORDING}/complete"] == b""
    assert json.loads(remoteTree["Users/Users.%s.metadata.json" % USER]) == {
        "Name": "Anna Berg"}
    # The digests travel beside the tree, and HEAD answers from them.
    digests = json.loads(read(remote(sshd, ".bwscd", "digests", RECORDING, "sub_dir",
                                     "track.json")))
    assert digests["sha256"] == hashlib.sha256(body[::-1]).hexdigest()
    head = swift.head_object(RECORDING, "sub:dir/track.json")
    assert head["etag"] == hashlib.md5(body[::-1]).hexdigest()
    assert int(head["content-length"]) == len(body)
    assert os.listdir(remote(sshd, ".bwscd", "tmp")) == []
    assert b"Anna Berg" in read(remote(sshd, ".bwscd", "state", "registry.json"))
    # Status changes again: the marker goes.
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Transferring"})
    assert not os.path.exists(remote(sshd, RECORDING, "complete"))


def test_a_wrong_etag_stores_nothing(running, sshd):
    server, swift = running
    assert status(swift.put_object, RECORDING, "clip.mkv", b"x" * 100_000,
                  etag=hashlib.md5(b"other").hexdigest()) == 422
    assert sorted(os.listdir(remote(sshd, RECORDING))) == [f"{RECORDING}.metadata.json"]
    assert os.listdir(remote(sshd, ".bwscd", "tmp")) == []


def test_evidence_is_written_once(running, sshd):
    server, swift = running
    first, second = b"first take", b"other bytes"
    swift.put_object(RECORDING, "clip.mkv", first)
    swift.put_object(RECORDING, "clip.mkv", second)
    swift.put_object(RECORDING, "clip.mkv", first)
    copy = f"clip.mkv.conflict-{hashlib.sha256(second).hexdigest()[:16]}"
    assert read(remote(sshd, RECORDING, "clip.mkv")) == first
    assert read(remote(sshd, RECORDING, copy)) == second
    assert sorted(n for n in os.listdir(remote(sshd, RECORDING)) if n.startswith("clip")) == [
        "clip.mkv", copy]
    stored = [e for e in server.events() if e["type"] == "clip.stored"]
    assert [(e["storedAs"], e["alreadyStored"]) for e in stored] == [
        ("clip.mkv", False), (copy, False), ("clip.mkv", True)]


def fingerprint(publicKeyPath) -> str:
    """C{SHA256:...}, as ssh-keygen -l shows it."""
    shown = subprocess.run(["ssh-keygen", "-l", "-f", publicKeyPath],
                           check=True, capture_output=True, text=True).stdout
    return shown.split()[1]


@pytest.mark.parametrize("knownHost", ["unknown", "changed", "revoked"])
def test_an_unpinned_host_key_stops_the_start(launch, dataDirectory, sshd, knownHost):
    """bwscd refuses to start, naming the key the server offered."""
    with open(sshd.knownHostsPath) as f:
        pinned = f.read()
    with open(sshd.knownHostsPath, "w") as f:
        if knownHost == "changed":
            other = os.path.join(sshd.directory, "other")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other],
                           check=True)
            with open(other + ".pub") as g:
                f.write(f"[127.0.0.1]:{sshd.port} " + " ".join(g.read().split()[:2]) + "\n")
        elif knownHost == "revoked":
            f.write(pinned + "@revoked " + pinned)
    with pytest.raises(RuntimeError) as caught:
        launch(dataDirectory, "--backend", sshd.backendSpec())
    message = str(caught.value)
    assert message.startswith("twistd exited 1")
    assert fingerprint(sshd.hostKeyPath + ".pub") in message
    assert {"changed": f"has CHANGED: the server offers the ssh-ed25519 key "
                       f"{fingerprint(sshd.hostKeyPath + '.pub')}, but "
                       f"{sshd.knownHostsPath} line 1 pins another key",
            "unknown": "is not in",
            "revoked": "is REVOKED"}[knownHost] in message


def test_a_refused_login_stops_the_start(launch, dataDirectory, sshd):
    open(os.path.join(sshd.directory, "authorized_keys"), "w").close()
    with pytest.raises(RuntimeError) as caught:
        launch(dataDirectory, "--backend", sshd.backendSpec())
    message = str(caught.value)
    assert message.startswith("twistd exited 1")
    assert f"refused the key {fingerprint(sshd.keyPath + '.pub')}" in message


def test_the_reserve_is_kept_on_the_server(launch, dataDirectory, sshd):
    """Not even the published documents fit beside a reserve of 1000 TiB."""
    with pytest.raises(RuntimeError) as caught:
        launch(dataDirectory, "--backend", sshd.backendSpec(reserve="1000T"))
    assert "not enough free space" in str(caught.value)


def uploadCutOffBy(fault, server, sshd) -> None:
    """An upload cut off by C{fault} halfway (L{cutOffBy}) left nothing visible."""
    cutOffBy(fault, server)
    assert not os.path.exists(remote(sshd, RECORDING, "cut.mkv"))


def storeOnceBack(swift, sshd) -> None:
    """Upload, retrying while bwscd answers 503 (L{storedOnceBack}), until stored."""
    storedOnceBack(swift)
    assert read(remote(sshd, RECORDING, "late.mkv")) == b"late"


def test_losing_the_server_means_503_until_it_is_back(running, sshd):
    server, swift = running
    uploadCutOffBy(sshd.stop, server, sshd)
    # While the server is away, every request is a 503.
    assert status(swift.put_object, RECORDING, "late.mkv", b"late") == 503
    assert status(swift.head_container, RECORDING) == 503

    sshd.restart()
    storeOnceBack(swift, sshd)
    assert not os.path.exists(remote(sshd, RECORDING, "cut.mkv"))
    # The interrupted upload's temporary file went at the reconnection.
    assert os.listdir(remote(sshd, ".bwscd", "tmp")) == []
    assert "lost the connection to the SFTP server" in server.log()


def sshProcesses(server) -> list[int]:
    """The ssh clients bwscd runs, by their process ids."""
    return [pid for pid in descendantsOf(server.process.pid)
            if [os.path.basename(part) for part in commandOf(pid)[:1]] == ["ssh"]]


def test_ssh_ending_means_503_until_it_is_back(running, sshd):
    """
    ssh carries the connection: when it dies, an upload under way fails and
    leaves nothing visible, and bwscd starts another one.
    """
    server, swift = running
    [ssh] = sshProcesses(server)
    uploadCutOffBy(lambda: os.kill(ssh, signal.SIGKILL), server, sshd)

    storeOnceBack(swift, sshd)
    assert not os.path.exists(remote(sshd, RECORDING, "cut.mkv"))
    assert os.listdir(remote(sshd, ".bwscd", "tmp")) == []
    assert "lost the connection to the SFTP server" in server.log()
    [again] = [pid for pid in sshProcesses(server) if isRunning(pid)]
    assert again != ssh


def test_no_ssh_outlives_bwscd(running, sshd):
    """
    bwscd ends its ssh as it stops, even one that would not end by itself:
    here the server's side of the session is frozen, so ssh would wait for
    it to close the channel.
    """
    server, swift = running
    started = sshProcesses(server)
    assert len(started) == 1
    sessions = descendantsOf(sshd.pid)
    for pid in sessions:
        os.kill(pid, signal.SIGSTOP)
    server.stop()
    deadline = time.monotonic() + 10
    while any(isRunning(pid) for pid in started):
        assert time.monotonic() < deadline, "ssh still runs after bwscd stopped"
        time.sleep(0.05)


class Repeated:
    """C{size} bytes, one random block repeated, as a file-like body."""

    def __init__(self, size: int):
        self.block = os.urandom(MiB)
        self.size = size
        self.position = 0
        self.sha256 = hashlib.sha256()

    def read(self, size=-1):
        size = min(MiB, self.size - self.position) if size < 0 else min(
            size, MiB, self.size - self.position)
        offset = self.position % MiB
        chunk = self.block[offset : offset + size] if offset + size <= MiB else (
            self.block[offset:] + self.block[: offset + size - MiB])
        self.position += len(chunk)
        self.sha256.update(chunk)
        return chunk


def test_a_large_upload_streams_with_flat_memory(running, sshd):
    server, swift = running
    size = 256 * MiB
    body = Repeated(size)
    with server.peakMemory() as memory:
        swift.put_object(RECORDING, "large.mkv", body, content_length=size)
    path = remote(sshd, RECORDING, "large.mkv")
    assert os.path.getsize(path) == size
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            sha256.update(chunk)
    os.unlink(path)
    assert sha256.hexdigest() == body.sha256.hexdigest()
    assert 0 < memory.peak < 100 * 1000 * 1000


def test_options_are_checked(sshd, tmp_path, monkeypatch):
    from bwscd.backends.sftp import backend

    options = {"host": "127.0.0.1", "user": "u", "key": sshd.keyPath,
               "known_hosts": sshd.knownHostsPath, "root": "r"}
    backend(str(tmp_path), options)
    with pytest.raises(ValueError, match="missing option.*known_hosts, root"):
        backend(str(tmp_path), {"host": "h", "user": "u", "key": sshd.keyPath})
    with pytest.raises(ValueError, match="is a public key"):
        backend(str(tmp_path), {"host": "h", "user": "u", "key": sshd.keyPath + ".pub",
                                "known_hosts": sshd.knownHostsPath, "root": "r"})
    with pytest.raises(ValueError, match="unknown option"):
        backend(str(tmp_path), {"host": "h", "password": "p"})
    with pytest.raises(ValueError, match="is not a host name"):
        backend(str(tmp_path), dict(options, host="-oProxyCommand=true"))
    # ssh would ignore a key that other users can read.
    os.chmod(sshd.keyPath, 0o644)
    with pytest.raises(ValueError, match="open to other users.*chmod 600"):
        backend(str(tmp_path), options)
    os.chmod(sshd.keyPath, stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match="ssh, is not installed"):
        backend(str(tmp_path), options)
