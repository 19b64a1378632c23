"""
The evidence package of a recording uploaded to a real C{twistd bwscd} by
python-swiftclient as the controller does: made by C{bwscd export} beside
the running server (plain, and decrypting with the operator's key, the
content encrypted with the C{openssl} command as the controller does).
"""

import base64
import getpass
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import zipfile

import pytest

from tests.support.encryption import encryptAsTheController
from tests.support.waiting import waitFor
from tests.support.server import BWSCD

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("openssl", "unzip", "sha256sum")),
    reason="needs openssl, unzip and sha256sum")

CLIPS = ["1714558500_1.mkv", "1714558560_1.mkv"]
BOOKMARK = "bookmark_20240501T101600Z_1"
TRACK = "20240501_101500_1_B8A44F000001_gpstrail.json"
REASON = "Court case 2024/17: requested by the prosecutor"


def bwscd(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([BWSCD, *arguments], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def upload(swift, recording, objects: dict[str, bytes]) -> str:
    """The recording as the controller sends it: container, objects, then Complete."""
    container = recording.start(swift)
    for name, data in objects.items():
        headers = {}
        if name == BOOKMARK:
            headers = {"X-Object-Meta-CategoryID": "7", "X-Object-Meta-CategoryName": "Traffic",
                       "X-Object-Meta-Tags": "TriggerOn:Button"}
        elif name.endswith(".mkv"):
            headers = {"X-Object-Meta-StartTime": name.split("_")[0],
                       "X-Object-Meta-ContainerType": "mkv"}
        swift.put_object(container, name, data, etag=hashlib.md5(data).hexdigest(),
                         headers=headers)
    swift.post_container(container, headers={"X-Container-Meta-Status": "Complete"})
    return container


def catalogedArrivals(server, container) -> int:
    """How many arrivals of C{container} the server's catalog holds (its upkeep runs after the 201)."""
    try:
        db = sqlite3.connect(f"file:{server.data}/catalog.sqlite?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return 0
    try:
        return db.execute("SELECT count(*) FROM custody WHERE recording = ? AND type = "
                          "'clip.stored'", (container,)).fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0
    finally:
        db.close()


def export(server, container, out, *arguments):
    return bwscd("export", container, "--data", server.data, "--out", str(out),
                 "--reason", REASON, *arguments)


def assertRefused(result, problem: str) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("bwscd export: ") and problem in line, line
    return line


def checkPackage(path, tmp_path) -> dict[str, bytes]:
    """Every file of the package, after checking its manifest as an evidence clerk does."""
    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", str(path), "-d", str(unpacked)], check=True)
    checked = subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=unpacked,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with zipfile.ZipFile(path) as package:
        files = {name: package.read(name) for name in package.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert [f["name"] for f in manifest["files"]] == list(files)[:-2]
    for listed in manifest["files"]:
        data = files[listed["name"]]
        assert (listed["length"], listed["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    return files


def test_the_command_exports_a_recording_beside_the_running_server(
        server, swift, recording, tmp_path):
    objects = {CLIPS[0]: os.urandom(3 << 20), CLIPS[1]: os.urandom(1 << 20),
               BOOKMARK: "Stopped a car".encode(), TRACK: b'{"type": "FeatureCollection"}'}
    container = upload(swift, recording, objects)
    out = tmp_path / "package.zip"
    waitFor(lambda: catalogedArrivals(server, container) == len(objects))

    result = export(server, container, out)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"exported {container} to {out}: ")
    assert os.stat(out).st_mode & 0o777 == 0o600
    files = checkPackage(out, tmp_path)
    for name, data in objects.items():
        assert files[f"objects/{name}"] == data
    described = {o["name"]: o for o in json.loads(files["metadata/objects.json"])["objects"]}
    for name, data in objects.items():
        assert described[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert described[name]["md5"] == hashlib.md5(data).hexdigest()
    assert described[BOOKMARK]["metadata"]["Categoryname"] == "Traffic"
    assert json.loads(files["metadata/recording.json"])["metadata"]["Status"] == "Complete"
    custody = json.loads(files["custody.json"])
    assert sorted(a["storedAs"] for a in custody["arrivals"]) == sorted(objects)
    # From the server's catalog: who sent each object, not only what storage keeps.
    assert {(a["from"], a["account"]) for a in custody["arrivals"]} == {
        ("custody", swift.user)}
    assert custody["export"]["account"] == f"operator:{getpass.getuser()}"
    assert custody["export"]["reason"] == REASON
    assert custody["export"]["via"] == "command"

    [event] = server.eventsOf("recording.exported")
    assert event["container"] == container
    assert event["account"] == f"operator:{getpass.getuser()}"
    assert event["reason"] == REASON
    assert event["sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert event["files"] == len(files)
    # The server went on as before.
    swift.head_account()

    again = export(server, container, out)
    assertRefused(again, "exists: not overwriting it")
    named = export(server, container, tmp_path / "other.zip", "--account", "clerk7")
    assert named.returncode == 0, named.stderr
    assert server.eventsOf("recording.exported")[-1]["account"] == "clerk7"


def test_the_command_refuses_what_it_cannot_export(server, swift, recording, tmp_path):
    container = upload(swift, recording, {CLIPS[0]: os.urandom(100_000)})
    out = tmp_path / "package.zip"
    assertRefused(bwscd("export", container, "--data", server.data, "--out", str(out),
                        "--reason", "  "), "needs a reason")
    assertRefused(export(server, recording.container + "x", out), "no recording")
    # One byte of the clip changed in storage since it was stored.
    stored = os.path.join(server.storage, container, CLIPS[0])
    with open(stored, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    assertRefused(export(server, container, out), "SHA-256 of")
    # Neither the package nor its temporary file is left.
    assert not [name for name in os.listdir(tmp_path) if "package" in name]
    [failed] = server.eventsOf("recording.export-failed")
    assert failed["container"] == container and CLIPS[0] in failed["problem"]
    assert not server.eventsOf("recording.exported")


@pytest.fixture
def keys(server, tmp_path):
    """The operator's key pair (C{bwscd keys generate}); the public key as the controller has it."""
    privateKey = tmp_path / "content.private.pem"
    generated = bwscd("keys", "--data", server.data, "generate", "--out", str(privateKey))
    assert generated.returncode == 0, generated.stderr
    connection = server.connectionFile
    publicKey = tmp_path / "content.public.pem"
    publicKey.write_bytes(base64.b64decode(connection["PublicKey"]))
    return str(privateKey), str(publicKey), connection["PublicKeyId"]


def test_the_command_decrypts_with_the_operators_key(server, swift, recording, keys, tmp_path):
    privateKey, publicKey, keyId = keys
    plain = {CLIPS[0]: os.urandom((2 << 20) + 5), TRACK: json.dumps(
        {"type": "FeatureCollection", "features": []}).encode()}
    objects = {BOOKMARK: b"Stopped a car"}
    work = tmp_path / "controller"
    work.mkdir()
    for name, data in plain.items():
        (work / "plain").write_bytes(data)
        stem = os.path.splitext(name)[0]
        encryptAsTheController(str(work / "plain"), str(work / "content"), str(work / "key"),
                               publicKey, keyId)
        objects[name] = (work / "content").read_bytes()
        objects[stem + ".key"] = (work / "key").read_bytes()
    container = upload(swift, recording, objects)
    out = tmp_path / "package.zip"

    result = export(server, container, out, "--key", privateKey)

    assert result.returncode == 0, result.stderr
    files = checkPackage(out, tmp_path)
    for name, data in objects.items():
        assert files[f"objects/{name}"] == data  # the encrypted originals, as stored
    assert sorted(name for name in files if name.startswith("decrypted/")) == \
        sorted(f"decrypted/{name}" for name in plain)
    for name, data in plain.items():
        assert files[f"decrypted/{name}"] == data
    described = {o["name"]: o for o in json.loads(files["metadata/objects.json"])["objects"]}
    assert described[CLIPS[0]]["decrypted"] == f"decrypted/{CLIPS[0]}"
    assert "decrypted" not in described[BOOKMARK]
    custody = json.loads(files["custody.json"])
    assert custody["export"]["decrypted"] == sorted(f"decrypted/{name}" for name in plain)

    # Another key pair's private key: refused before anything is written.
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(other)], check=True, capture_output=True)
    wrong = tmp_path / "wrong.zip"
    assertRefused(export(server, container, wrong, "--key", str(other)),
                  "does not unwrap")
    assert not wrong.exists()
