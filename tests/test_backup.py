"""
C{bwscd backup} and C{bwscd restore}, run as an operator runs them: a
server is given users, devices, a system and a category, its data
directory is backed up, wiped and restored, and the same controller
credentials, registry and categories work again.
"""

import base64
import json
import os
import pty
import select
import shutil
import subprocess

import pytest
import swiftclient
from swiftclient.exceptions import ClientException

from bwscd import __version__
from tests.support.recording import Recording
from tests.support.server import BWSCD

PASSPHRASE = "correct horse battery staple"
CAMERA = Recording()
SYSTEM = "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f"
USER, RECORDING = CAMERA.user, CAMERA.container


def bwscd(*arguments, passphrase=PASSPHRASE, **kwargs) -> subprocess.CompletedProcess:
    """Run the C{bwscd} command, with the passphrase in its variable unless L{None}."""
    environment = dict(os.environ)
    environment.pop("BWSCD_BACKUP_PASSPHRASE", None)
    if passphrase is not None:
        environment["BWSCD_BACKUP_PASSPHRASE"] = passphrase
    return subprocess.run([BWSCD, *arguments], env=environment, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60, **kwargs)


def failsWith(result, command: str, message: str) -> None:
    """Exit 1 and exactly one line on stderr, saying C{message}."""
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bwscd {command}: ") and message in lines[0], lines[0]


def register(swift) -> None:
    CAMERA.register(swift, user={"X-Object-Meta-Name": "Anna", "X-Object-Meta-Active": "True"},
                    device={"X-Object-Meta-Name": "Cam%201", "X-Object-Meta-Model": "W110"})
    swift.put_container("System")
    swift.put_object("System", SYSTEM, b"", headers={
        "X-Object-Meta-Connectionid": "conn-1", "X-Object-Meta-Systemname": "North"})


@pytest.fixture
def backedUp(launch, dataDirectory, tmp_path):
    """
    A data directory whose server registered a user, a device and a system
    and got a category, stopped, then backed up; returns the server (stopped),
    the backup's path and the controller's view before: its connection file
    and a copy of the certificate.
    """
    server = launch(dataDirectory)
    register(server.connection())
    added = bwscd("categories", "--data", dataDirectory, "add", "X")
    assert added.returncode == 0, added.stderr
    server.stop()
    path = str(tmp_path / "bwscd.backup")
    saved = bwscd("backup", "--data", dataDirectory, path)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.splitlines() == [
        f"saved settings.json, server.crt, server.key, config.json, categories.json and "
        f"the registry (1 user, 1 device, 1 system) to {path}"
    ]
    certificate = str(tmp_path / "old-ca.pem")
    shutil.copy(server.caFile, certificate)
    return server, path, server.connectionFile, certificate


def test_restore_into_a_wiped_data_directory(backedUp, launch, dataDirectory):
    old, path, connectionFile, certificate = backedUp
    shutil.rmtree(dataDirectory)
    restored = bwscd("restore", "--data", dataDirectory, path)
    assert restored.returncode == 0, restored.stderr
    [line] = restored.stdout.splitlines()
    assert line.startswith(
        "restored settings.json, server.crt, server.key, config.json, categories.json and "
        f"the registry (1 user, 1 device, 1 system) from {path} (made "
    ) and line.endswith(f"by bwscd {__version__} in {dataDirectory}) into {dataDirectory}")
    for name, mode in [("settings.json", 0o600), ("server.key", 0o600),
                       ("config.json", 0o600), ("server.crt", 0o600)]:
        assert os.stat(os.path.join(dataDirectory, name)).st_mode & 0o777 == mode, name

    new = launch(dataDirectory, port=old.port)
    swift = swiftclient.Connection(
        authurl=connectionFile["AuthenticationTokenURI"][0],
        user=connectionFile["BlobAPIUserName"], key=connectionFile["BlobAPIKey"],
        cacert=certificate, retries=0,
    )
    swift.put_container(RECORDING)  # the user and the device are still known
    with pytest.raises(ClientException) as refused:
        swift.put_object("System", SYSTEM, b"", headers={
            "X-Object-Meta-Connectionid": "conn-2", "X-Object-Meta-Systemname": "North"})
    assert refused.value.http_status == 403
    assert new.connectionFile == connectionFile
    listed = bwscd("categories", "--data", dataDirectory, "list").stdout
    assert "X" in [line.split("\t")[1] for line in listed.splitlines()]


def test_the_backup_holds_no_secret_in_clear(backedUp, dataDirectory):
    _, path, connectionFile, _ = backedUp
    with open(path, "rb") as f:
        sealed = f.read()
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(os.path.join(dataDirectory, "server.key"), "rb") as f:
        privateKey = f.read()
    with open(os.path.join(dataDirectory, "settings.json")) as f:
        tokenSecret = json.load(f)["tokenSecret"]
    for secret in [connectionFile["BlobAPIKey"].encode(), tokenSecret.encode(),
                   bytes.fromhex(tokenSecret), b"PRIVATE KEY", privateKey.strip(),
                   base64.b64encode(privateKey), b"Anna", b"conn-1"]:
        assert secret not in sealed


def test_wrong_passphrase(backedUp, tmp_path):
    _, path, _, _ = backedUp
    target = str(tmp_path / "elsewhere")
    result = bwscd("restore", "--data", target, path, passphrase="not it")
    failsWith(result, "restore", "wrong passphrase or damaged backup")
    assert not os.path.exists(target)


@pytest.mark.parametrize("damage", ["flip header", "flip payload", "truncate"])
def test_damaged_backup(backedUp, tmp_path, damage):
    _, path, _, _ = backedUp
    with open(path, "rb") as f:
        sealed = bytearray(f.read())
    if damage == "flip header":
        sealed[20] ^= 0x01  # in the salt
    elif damage == "flip payload":
        sealed[len(sealed) // 2] ^= 0x01
    else:
        del sealed[len(sealed) - 100:]
    damaged = str(tmp_path / "damaged.backup")
    with open(damaged, "wb") as f:
        f.write(sealed)
    target = str(tmp_path / "elsewhere")
    failsWith(bwscd("restore", "--data", target, damaged), "restore",
              "wrong passphrase or damaged backup")
    assert not os.path.exists(target)


def test_not_a_backup(dataDirectory, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    failsWith(bwscd("restore", "--data", dataDirectory, str(other)), "restore",
              "not a bwscd backup file")


def test_no_passphrase_and_no_terminal(backedUp, dataDirectory, tmp_path):
    _, path, _, _ = backedUp
    failsWith(bwscd("backup", "--data", dataDirectory, str(tmp_path / "new.backup"),
                    passphrase=None), "backup", "no passphrase")
    assert not os.path.exists(tmp_path / "new.backup")
    failsWith(bwscd("restore", "--data", str(tmp_path / "elsewhere"), path,
                    passphrase=None), "restore", "no passphrase")


def test_empty_passphrase(backedUp, dataDirectory, tmp_path):
    failsWith(bwscd("backup", "--data", dataDirectory, str(tmp_path / "new.backup"),
                    passphrase=""), "backup", "the passphrase is empty")
    empty = tmp_path / "empty"
    empty.write_text("\nsecond line\n")
    failsWith(bwscd("backup", "--data", dataDirectory, str(tmp_path / "new.backup"),
                    "--passphrase-file", str(empty)), "backup", "the passphrase is empty")


def test_passphrase_file(backedUp, tmp_path):
    _, path, _, _ = backedUp
    passphraseFile = tmp_path / "passphrase"
    passphraseFile.write_text(PASSPHRASE + "\nignored\n")
    target = str(tmp_path / "elsewhere")
    # The file wins over the variable.
    restored = bwscd("restore", "--data", target, "--passphrase-file",
                     str(passphraseFile), path, passphrase="not it")
    assert restored.returncode == 0, restored.stderr
    assert os.path.exists(os.path.join(target, "settings.json"))


def test_a_passphrase_opens_whichever_way_it_is_given(backedUp, dataDirectory, tmp_path):
    passphrase = "Lösenord ✓"
    passphraseFile = tmp_path / "passphrase"
    passphraseFile.write_text(passphrase + "\r\n", encoding="utf-8")
    path = str(tmp_path / "again.backup")
    saved = bwscd("backup", "--data", dataDirectory, "--passphrase-file",
                  str(passphraseFile), path, passphrase=None)
    assert saved.returncode == 0, saved.stderr
    restored = bwscd("restore", "--data", str(tmp_path / "elsewhere"), path,
                     passphrase=passphrase)
    assert restored.returncode == 0, restored.stderr


def answer(terminal: int, prompt: bytes, line: str) -> None:
    """Wait for C{prompt} on a pseudo-terminal, then type C{line}."""
    shown = b""
    while not shown.endswith(prompt):
        ready, _, _ = select.select([terminal], [], [], 30)
        assert ready, f"no {prompt!r} prompt, only {shown!r}"
        shown += os.read(terminal, 1024)
    os.write(terminal, f"{line}\n".encode())


@pytest.mark.parametrize("again", [PASSPHRASE, "a typo"])
def test_passphrase_asked_twice_on_a_terminal(server, tmp_path, again):
    server.stop()
    path = str(tmp_path / "asked.backup")
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "BWSCD_BACKUP_PASSPHRASE"}
    # In a new session there is no /dev/tty, so getpass asks on stdin and
    # prompts on stderr.
    process = subprocess.Popen([BWSCD, "backup", "--data", server.data, path],
                               stdin=terminal, stdout=subprocess.PIPE, stderr=terminal,
                               env=environment, start_new_session=True)
    os.close(terminal)
    try:
        # Typed only once asked: getpass discards what was typed before.
        answer(controller, b"Passphrase: ", PASSPHRASE)
        answer(controller, b"Passphrase again: ", again)
        stdout, _ = process.communicate(timeout=60)
        shown = os.read(controller, 1024).decode()
    finally:
        process.kill()
        os.close(controller)
    if again != PASSPHRASE:
        assert process.returncode == 1
        assert shown.strip() == "bwscd backup: the passphrases differ"
        assert not os.path.exists(path)
        return
    assert process.returncode == 0
    assert stdout.decode().startswith("saved settings.json")
    target = str(tmp_path / "elsewhere")
    assert bwscd("restore", "--data", target, path).returncode == 0


def test_restore_refuses_an_existing_data_directory(backedUp, dataDirectory):
    _, path, _, _ = backedUp
    with open(os.path.join(dataDirectory, "settings.json"), "rb") as f:
        before = f.read()
    failsWith(bwscd("restore", "--data", dataDirectory, path), "restore",
              "already holds a data directory (settings.json): give --force")
    forced = bwscd("restore", "--data", dataDirectory, "--force", path)
    assert forced.returncode == 0, forced.stderr
    with open(os.path.join(dataDirectory, "settings.json"), "rb") as f:
        assert f.read() == before


def test_restore_refuses_a_data_directory_a_server_holds(backedUp, launch, dataDirectory):
    _, path, _, _ = backedUp
    server = launch(dataDirectory)
    register(server.connection())  # a registry the backup's would replace
    settings = os.path.join(dataDirectory, "settings.json")
    before = os.stat(settings).st_mtime_ns
    failsWith(bwscd("restore", "--data", dataDirectory, "--force", path), "restore",
              f"the data directory {dataDirectory} is in use by process {server.process.pid}:")
    assert os.stat(settings).st_mtime_ns == before
    server.connection().head_object("Users", USER)


def test_backup_refuses_an_existing_file(backedUp, dataDirectory):
    _, path, _, _ = backedUp
    with open(path, "rb") as f:
        before = f.read()
    failsWith(bwscd("backup", "--data", dataDirectory, path), "backup",
              f"{path} exists: give --force to replace it")
    with open(path, "rb") as f:
        assert f.read() == before
    forced = bwscd("backup", "--data", dataDirectory, "--force", path)
    assert forced.returncode == 0, forced.stderr
    with open(path, "rb") as f:
        assert f.read() != before
    assert [name for name in os.listdir(os.path.dirname(path)) if name.endswith(".new")] == []


def test_backup_without_the_connection_file(backedUp, dataDirectory, tmp_path):
    os.unlink(os.path.join(dataDirectory, "config.json"))
    path = str(tmp_path / "keyless.backup")
    saved = bwscd("backup", "--data", dataDirectory, path)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.splitlines() == [
        f"saved settings.json, server.crt, server.key, categories.json and the registry "
        f"(1 user, 1 device, 1 system) to {path}; no config.json, so no account key: "
        "after a restore, make one with 'bwscd credentials rotate'"
    ]


def test_a_staged_certificate_comes_back(backedUp, dataDirectory, tmp_path):
    renewed = bwscd("cert", "--data", dataDirectory, "renew", "--new-key")
    assert renewed.returncode == 0, renewed.stderr
    staged = {}
    for name in ["server.next.crt", "server.next.key", "config.json"]:
        with open(os.path.join(dataDirectory, name), "rb") as f:
            staged[name] = f.read()
    path = str(tmp_path / "staged.backup")
    saved = bwscd("backup", "--data", dataDirectory, path)
    assert "categories.json, server.next.crt, server.next.key and the registry" in saved.stdout
    shutil.rmtree(dataDirectory)
    restored = bwscd("restore", "--data", dataDirectory, path)
    assert restored.returncode == 0, restored.stderr
    for name, data in staged.items():
        with open(os.path.join(dataDirectory, name), "rb") as f:
            assert f.read() == data, name
        assert os.stat(os.path.join(dataDirectory, name)).st_mode & 0o777 == 0o600, name


def test_backup_of_no_data_directory(tmp_path):
    failsWith(bwscd("backup", "--data", str(tmp_path / "nothing"), str(tmp_path / "b")),
              "backup", "is not a bwscd data directory")


def test_unknown_backend(backedUp, dataDirectory, tmp_path):
    failsWith(bwscd("backup", "--data", dataDirectory, "--backend", "nosuch",
                    str(tmp_path / "b")), "backup", "unknown backend 'nosuch'")
