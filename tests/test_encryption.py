"""
C{bwscd keys} and C{bwscd decrypt}, run as an operator runs them, against an
independent implementation of the controller's side: content is encrypted
and its key wrapped with the C{openssl} command, never with bwscd's code.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from bwscd.config import connectionfile

from bwscd.config import datadir, paths
from bwscd.config.settings import Settings
from tests.support.encryption import encryptAsTheController, openssl
from tests.support.server import BWSCD

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command")

CLIP = "1700000000_4f2a.mkv"
TRACK = "20231114_221320_4f2a_B8A44F000001_gpstrail.json"
MiB = 1 << 20


def bwscd(*arguments: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BWSCD, *arguments], capture_output=True, text=True, cwd=cwd)


def newDataDirectory(path: str) -> str:
    settings, key = Settings.new(path, publicAddresses=["127.0.0.1"])
    datadir.create(path, settings, key, port=8443, https=True)
    return path


def assertRefused(result: subprocess.CompletedProcess, command: str) -> str:
    """An operator's error: exit 1, one line on stderr, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"bwscd {command}: "), lines
    return lines[0]


@dataclass
class KeyPair:
    data: str
    privateKey: str
    publicKey: str
    """The public key as the controller gets it: from the connection file."""
    keyId: str
    generated: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def keyPair(tmp_path_factory) -> KeyPair:
    base = tmp_path_factory.mktemp("keys")
    data = newDataDirectory(str(base / "data"))
    privateKey = str(base / "content.private.pem")
    generated = bwscd("keys", "--data", data, "generate", "--out", privateKey)
    assert generated.returncode == 0, generated.stderr
    with open(os.path.join(data, paths.CONNECTION_FILE), "rb") as f:
        document = json.load(f)
    publicKey = str(base / "content.public.pem")
    with open(publicKey, "wb") as f:
        f.write(base64.b64decode(document["PublicKey"]))
    return KeyPair(data, privateKey, publicKey, document["PublicKeyId"], generated)


def writeRandom(path: str, size: int) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(size))


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class Recording:
    """An encrypted clip, its key object and its plaintext, in C{directory}."""

    directory: str
    content: str
    keyObject: str
    plaintext: str


@pytest.fixture
def recording(tmp_path, keyPair) -> Recording:
    storage = tmp_path / "storage"
    storage.mkdir()
    plaintext = str(tmp_path / "plain")
    writeRandom(plaintext, 3 * MiB + 5)
    content = str(storage / CLIP)
    keyObject = str(storage / (CLIP + ".key"))
    encryptAsTheController(plaintext, content, keyObject, keyPair.publicKey, keyPair.keyId)
    work = tmp_path / "work"
    work.mkdir()
    return Recording(str(work), content, keyObject, plaintext)


def decrypt(keyPair: KeyPair, recording: Recording, *arguments: str):
    return bwscd("decrypt", "--key", keyPair.privateKey, *arguments, recording.content,
                 cwd=recording.directory)


def assertNothingWritten(recording: Recording) -> None:
    """No output, not even a temporary file, is left by a failure."""
    assert os.listdir(recording.directory) == []


# keys generate and keys show


def test_generate_writes_the_connection_file(keyPair):
    with open(os.path.join(keyPair.data, paths.CONNECTION_FILE), "rb") as f:
        document = connectionfile.validate(f.read())
    assert document["WantEncryption"] is True
    fingerprint = hashlib.sha256(
        openssl("pkey", "-pubin", "-in", keyPair.publicKey, "-outform", "DER")
    ).hexdigest()
    assert document["PublicKeyId"] == "bwscd-" + fingerprint[:16]
    assert Settings.load(keyPair.data).encryption["publicKeyId"] == \
        document["PublicKeyId"]
    # The connection file's public key is the private key's other half.
    assert openssl("pkey", "-in", keyPair.privateKey, "-pubout", "-outform", "DER") == \
        openssl("pkey", "-pubin", "-in", keyPair.publicKey, "-outform", "DER")
    assert "(3072 bit" in openssl("pkey", "-in", keyPair.privateKey, "-text",
                                  "-noout").decode()


def test_private_key_is_for_its_owner_only_and_unencrypted(keyPair):
    assert os.stat(keyPair.privateKey).st_mode & 0o777 == 0o600
    with open(keyPair.privateKey) as f:
        assert f.readline() == "-----BEGIN PRIVATE KEY-----\n"


def test_generate_tells_where_the_key_is_and_what_to_do(keyPair):
    said = " ".join(keyPair.generated.stdout.split())
    assert os.path.abspath(keyPair.privateKey) in said
    assert "OFF this server" in said
    assert "bwscd decrypt" in said
    assert "upload" in said and paths.CONNECTION_FILE in said
    assert "takes this up within seconds" in said
    assert "never be turned off" in said


def test_show(keyPair, tmp_path):
    shown = bwscd("keys", "--data", keyPair.data, "show")
    assert shown.returncode == 0
    fingerprint = hashlib.sha256(
        openssl("pkey", "-pubin", "-in", keyPair.publicKey, "-outform", "DER")
    ).hexdigest()
    assert shown.stdout.splitlines() == [
        f"public key id: {keyPair.keyId}", f"fingerprint: {fingerprint}", "RSA 3072 bits"
    ]
    fresh = newDataDirectory(str(tmp_path / "data"))
    assert bwscd("keys", "--data", fresh, "show").stdout == "no content encryption key\n"


def test_generate_refuses_a_weak_key(tmp_path):
    data = newDataDirectory(str(tmp_path / "data"))
    out = str(tmp_path / "weak.pem")
    line = assertRefused(
        bwscd("keys", "--data", data, "generate", "--out", out, "--bits", "2048"), "keys")
    assert "3072" in line
    assert not os.path.exists(out)
    assert Settings.load(data).encryption is None


def test_generate_refuses_to_overwrite_a_private_key(tmp_path):
    data = newDataDirectory(str(tmp_path / "data"))
    out = tmp_path / "existing.pem"
    out.write_text("precious")
    line = assertRefused(bwscd("keys", "--data", data, "generate", "--out", str(out)),
                         "keys")
    assert "exists" in line
    assert out.read_text() == "precious"
    assert Settings.load(data).encryption is None


def test_generate_outside_a_data_directory(tmp_path):
    assertRefused(bwscd("keys", "--data", str(tmp_path), "generate",
                        "--out", str(tmp_path / "k.pem")), "keys")
    assert not os.path.exists(tmp_path / "k.pem")


def test_passphrase_and_replacing_a_key(tmp_path, keyPair):
    """
    A second key replaces the first in the connection file, and says so;
    a key generated with a passphrase needs it to decrypt.
    """
    data = newDataDirectory(str(tmp_path / "data"))
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    first = bwscd("keys", "--data", data, "generate", "--out", str(tmp_path / "first.pem"),
                  "--id", "site-2023")
    assert first.returncode == 0, first.stderr
    private = str(tmp_path / "second.pem")
    sameId = bwscd("keys", "--data", data, "generate", "--out", private, "--id", "site-2023")
    assert "the current key's" in assertRefused(sameId, "keys")
    assert not os.path.exists(private)
    second = bwscd("keys", "--data", data, "generate", "--out", private,
                   "--id", "site-2024", "--passphrase-file", str(passphrase))
    assert second.returncode == 0, second.stderr
    assert "replaces the key site-2023" in second.stdout
    with open(private) as f:
        assert f.readline() == "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    with open(os.path.join(data, paths.CONNECTION_FILE), "rb") as f:
        document = connectionfile.validate(f.read())
    assert document["PublicKeyId"] == "site-2024"
    public = str(tmp_path / "public.pem")
    with open(public, "wb") as f:
        f.write(base64.b64decode(document["PublicKey"]))

    storage, work = tmp_path / "storage", tmp_path / "work"
    storage.mkdir()
    work.mkdir()
    plaintext = str(tmp_path / "plain")
    writeRandom(plaintext, 100_000)
    content = str(storage / CLIP)
    encryptAsTheController(plaintext, content, content + ".key", public, "site-2024")
    withoutPassphrase = bwscd("decrypt", "--key", private, content, cwd=str(work))
    assert "--passphrase-file" in assertRefused(withoutPassphrase, "decrypt")
    wrong = tmp_path / "wrong"
    wrong.write_text("incorrect horse\n")
    withWrongPassphrase = bwscd("decrypt", "--key", private, "--passphrase-file",
                                str(wrong), content, cwd=str(work))
    assert "wrong passphrase" in assertRefused(withWrongPassphrase, "decrypt")
    decrypted = bwscd("decrypt", "--key", private, "--passphrase-file", str(passphrase),
                      content, cwd=str(work))
    assert decrypted.returncode == 0, decrypted.stderr
    assert digest(str(work / "1700000000_4f2a.decrypted.mkv")) == digest(plaintext)

    # Content for the first key: the data directory says what the second
    # key is called.
    firstPublic = str(tmp_path / "first.public.pem")
    with open(firstPublic, "wb") as f:
        f.write(openssl("pkey", "-in", str(tmp_path / "first.pem"), "-pubout"))
    older = str(storage / "1600000000_0001.mkv")
    encryptAsTheController(plaintext, older, older + ".key", firstPublic, "site-2023")
    forFirst = bwscd("decrypt", "--data", data, "--key", private, "--passphrase-file",
                     str(passphrase), older, cwd=str(work))
    line = assertRefused(forFirst, "decrypt")
    assert "'site-2023'" in line and "'site-2024'" in line


# decrypt: the round trip


@pytest.mark.parametrize("naming", ["full name + .key", ".key for the extension"])
@pytest.mark.parametrize("name, size", [(CLIP, 3 * MiB + 5), (TRACK, 2000)])
def test_round_trip(tmp_path, keyPair, naming, name, size):
    storage, work = tmp_path / "storage", tmp_path / "work"
    storage.mkdir()
    work.mkdir()
    plaintext = str(tmp_path / "plain")
    if name == TRACK:
        track = [{"lat": 55.7 + i / 1e4, "long": 13.2, "time": 1700000000 + i}
                 for i in range(size // 50)]
        with open(plaintext, "w") as f:
            json.dump(track, f)
    else:
        writeRandom(plaintext, size)
    content = str(storage / name)
    stem, extension = os.path.splitext(name)
    keyObject = content + ".key" if naming.startswith("full") else str(storage / stem) + ".key"
    encryptAsTheController(plaintext, content, keyObject, keyPair.publicKey, keyPair.keyId)

    result = bwscd("decrypt", "--key", keyPair.privateKey, content, cwd=str(work))
    assert result.returncode == 0, result.stderr
    output = work / (stem + ".decrypted" + extension)
    assert os.listdir(work) == [output.name]
    assert digest(str(output)) == digest(plaintext)
    assert os.stat(output).st_mode & 0o777 == 0o600
    # The encrypted bytes are left as they were received.
    assert sorted(os.listdir(storage)) == sorted([name, os.path.basename(keyObject)])


def test_out_and_key_object_options(tmp_path, keyPair, recording):
    elsewhere = str(tmp_path / "keys-kept-apart.json")
    os.rename(recording.keyObject, elsewhere)
    out = os.path.join(recording.directory, "evidence.mkv")
    result = decrypt(keyPair, recording, "--key-object", elsewhere, "--out", out)
    assert result.returncode == 0, result.stderr
    assert digest(out) == digest(recording.plaintext)


def test_nested_key_object(tmp_path, keyPair, recording):
    """The Azure-style key object, with the wrapped key under WrappedContentKey."""
    encryptAsTheController(recording.plaintext, recording.content, recording.keyObject,
                           keyPair.publicKey, keyPair.keyId, nested=True)
    result = decrypt(keyPair, recording)
    assert result.returncode == 0, result.stderr
    assert digest(os.path.join(recording.directory, "1700000000_4f2a.decrypted.mkv")) == \
        digest(recording.plaintext)


def test_key_object_without_an_id(tmp_path, keyPair, recording):
    encryptAsTheController(recording.plaintext, recording.content, recording.keyObject,
                           keyPair.publicKey, keyId=None)
    assert decrypt(keyPair, recording).returncode == 0


# decrypt: what it refuses


def test_wrong_private_key(tmp_path, keyPair, recording):
    other = str(tmp_path / "other.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", other)
    result = bwscd("decrypt", "--key", other, recording.content, cwd=recording.directory)
    line = assertRefused(result, "decrypt")
    assert "wrong private key" in line
    # Which key the content is for, and what this one is.
    assert keyPair.keyId in line
    otherId = "bwscd-" + hashlib.sha256(
        openssl("pkey", "-in", other, "-pubout", "-outform", "DER")).hexdigest()[:16]
    assert otherId in line
    assertNothingWritten(recording)


def test_missing_key_object(keyPair, recording):
    os.unlink(recording.keyObject)
    line = assertRefused(decrypt(keyPair, recording), "decrypt")
    stem = recording.content[:-len(".mkv")]
    assert f"{recording.content}.key" in line and f"{stem}.key" in line
    assertNothingWritten(recording)


@pytest.mark.parametrize("body, complaint", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"ContentEncryptionIV": "AAAAAAAAAAAAAAAAAAAAAA=="}', "no EncryptedKey"),
    (b'{"EncryptedKey": "!!", "ContentEncryptionIV": "AAAAAAAAAAAAAAAAAAAAAA=="}',
     "EncryptedKey is not base64"),
    (b'{"EncryptedKey": "AAAA", "ContentEncryptionIV": "AAAA"}', "3 bytes, not 16"),
])
def test_malformed_key_object(keyPair, recording, body, complaint):
    with open(recording.keyObject, "wb") as f:
        f.write(body)
    assert complaint in assertRefused(decrypt(keyPair, recording), "decrypt")
    assertNothingWritten(recording)


def test_corrupt_padding(keyPair, recording):
    # In CBC a bit flipped in one ciphertext block flips the same bit of the
    # next plaintext block: flipping the last byte of the next-to-last block
    # turns the padding length (1 to 16) into 0xEx or 0xFx, never valid.
    with open(recording.content, "r+b") as f:
        f.seek(-17, os.SEEK_END)
        byte = f.read(1)
        f.seek(-17, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xF0]))
    line = assertRefused(decrypt(keyPair, recording), "decrypt")
    assert "padding" in line
    assertNothingWritten(recording)


def test_truncated(keyPair, recording):
    os.truncate(recording.content, os.path.getsize(recording.content) - 5)
    line = assertRefused(decrypt(keyPair, recording), "decrypt")
    assert "not a positive multiple of 16" in line
    assertNothingWritten(recording)


def test_existing_output(keyPair, recording):
    existing = os.path.join(recording.directory, "1700000000_4f2a.decrypted.mkv")
    with open(existing, "w") as f:
        f.write("precious")
    assert "exists" in assertRefused(decrypt(keyPair, recording), "decrypt")
    with open(existing) as f:
        assert f.read() == "precious"
    assert os.listdir(recording.directory) == [os.path.basename(existing)]


def test_unreadable_content(keyPair, recording):
    os.unlink(recording.content)
    line = assertRefused(decrypt(keyPair, recording), "decrypt")
    assert "cannot read" in line
    assertNothingWritten(recording)


def test_not_a_private_key(keyPair, recording):
    result = bwscd("decrypt", "--key", keyPair.publicKey, recording.content,
                   cwd=recording.directory)
    assert "not a PEM private key" in assertRefused(result, "decrypt")


# decrypt: memory


def test_memory_does_not_grow_with_the_content(tmp_path, keyPair):
    """A 200 MB clip decrypts in well under 100 MB of memory."""
    storage, work = tmp_path / "storage", tmp_path / "work"
    storage.mkdir()
    work.mkdir()
    plaintext = str(tmp_path / "plain")
    plainDigest = hashlib.sha256()
    with open(plaintext, "wb") as f:
        for _ in range(200):
            chunk = os.urandom(MiB)
            plainDigest.update(chunk)
            f.write(chunk)
    content = str(storage / CLIP)
    encryptAsTheController(plaintext, content, content + ".key", keyPair.publicKey,
                           keyPair.keyId)
    os.unlink(plaintext)
    # A fresh parent, whose only child is the decryption, so that the
    # children's maximum RSS is the decryption's own.
    measure = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", measure, BWSCD, "decrypt", "--key", keyPair.privateKey,
         content], capture_output=True, text=True, cwd=str(work))
    assert result.returncode == 0, result.stderr
    maxRSS = int(result.stdout) * 1024  # Linux reports kilobytes.
    assert maxRSS < 100 * MiB, f"{maxRSS / MiB:.0f} MiB"
    assert digest(str(work / "1700000000_4f2a.decrypted.mkv")) == plainDigest.hexdigest()
