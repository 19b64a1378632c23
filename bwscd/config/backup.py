"""
Configuration backups: what a reinstall needs so that the system controller
stays connected (the account and its key, the token secret, the
certificates and their keys, the categories, and the registry of users,
devices and systems), sealed with a passphrase in one file.  Recordings are not in it:
they are the storage's to back up.

A backup file is a clear header, then the payload encrypted with AES-256-GCM
under a key that scrypt derives from the passphrase.  The header is the
associated data, so changing any byte of the file makes it fail to open::

    magic     8 bytes   "BWSCDBAK"
    format    1 byte    1
    log2(n)   1 byte    scrypt cost, n = 2 ** log2(n)
    r, p      1 byte each
    salt     16 bytes
    nonce    12 bytes
    sealed payload, then the 16-byte GCM tag

The payload is a JSON document: C{manifest} (format, created, bwscdVersion,
source), C{files} (name to mode and base64 bytes), and C{registry} (the
registry state document in base64, or null if it was never written).
"""

import base64
import json
import os
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from twisted.internet.defer import inlineCallbacks

from bwscd import __version__

from bwscd.config import paths
from bwscd.config.settings import Settings

from bwscd.policy import registry
from bwscd.files import writeAtomically

FORMAT = 1
MAGIC = b"BWSCDBAK"
_HEADER = struct.Struct(">8sBBBB16s12s")

# scrypt as OWASP recommends it (128 MiB, about half a second).  A header
# may ask for more, up to what a restore is willing to spend, never less.
LOG2_N, R, P = 17, 8, 1
_MAX_MEMORY = 1 << 30

# The data directory's files in a backup, and whether each holds a secret
# (restored 0600 whatever the backup says).
FILES = {
    paths.SETTINGS: True,
    paths.CERTIFICATE: True,
    paths.PRIVATE_KEY: True,
    paths.CONNECTION_FILE: True,
    paths.CATEGORIES: False,
    # A renewed certificate waiting to be served: the connection file the
    # controller holds may already list it.
    paths.STAGED_CERTIFICATE: True,
    paths.STAGED_PRIVATE_KEY: True,
}


class BackupError(Exception):
    """A backup that can't be made or restored; the message says why."""


class DamagedBackup(BackupError):
    """The passphrase is wrong, or the file was changed or cut short."""

    def __init__(self):
        super().__init__("wrong passphrase or damaged backup")


@dataclass(frozen=True)
class Snapshot:
    """What a backup holds, in clear."""

    manifest: dict
    files: dict[str, tuple[int, bytes]]
    """File name to mode and contents."""
    registry: bytes | None

    def counts(self) -> dict[str, int]:
        """How many users, devices and systems the registry holds."""
        entries = json.loads(self.registry) if self.registry is not None else {}
        return {kind: len(entries.get(kind, {}))
                for kind in (registry.USERS, registry.DEVICES, registry.SYSTEM)}


@inlineCallbacks
def takeSnapshot(directory: str, backend):
    """
    Read the data directory's files and the backend's registry.  The
    backend is not opened: the server may be running beside us, and only
    L{IStorageBackend.readState} is used, which changes nothing.

    @return: L{Deferred} firing with a L{Snapshot}.
    @raise BackupError: if C{directory} is not a data directory.
    """
    try:
        Settings.load(directory)
    except ValueError as e:
        raise BackupError(str(e))
    files = {}
    for name in FILES:
        try:
            with open(os.path.join(directory, name), "rb") as f:
                files[name] = (os.fstat(f.fileno()).st_mode & 0o777, f.read())
        except FileNotFoundError:
            # Each file but settings.json may be missing: categories.json
            # then means the defaults, config.json was taken off this machine
            # after upload, plain HTTP needs no certificate, and most of the
            # time no renewed one waits.
            continue
    state = yield backend.readState(registry.STATE)
    manifest = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bwscdVersion": __version__,
        "source": os.path.abspath(directory),
    }
    return Snapshot(manifest, files, state)


@inlineCallbacks
def restoreSnapshot(snapshot: Snapshot, directory: str, backend):
    """
    Put a snapshot's registry into the backend, then its files into
    C{directory}, each atomically and with its mode.  The backend is opened
    first, as its contract requires: the server must not be running.

    @return: L{Deferred} firing with L{None}.
    """
    if snapshot.registry is not None:
        yield backend.open()
        yield backend.writeState(registry.STATE, snapshot.registry)
    os.makedirs(directory, exist_ok=True)
    # settings.json last: it marks a data directory as made, so a restore
    # cut short leaves none, and can simply be run again.
    for name in sorted(FILES, key=lambda name: name == paths.SETTINGS):
        if name in snapshot.files:
            mode, data = snapshot.files[name]
            writeAtomically(os.path.join(directory, name), data,
                            0o600 if FILES[name] else mode)


def _key(passphrase: bytes, salt: bytes, log2n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2n, r=r, p=p).derive(passphrase)


def seal(snapshot: Snapshot, passphrase: bytes) -> bytes:
    """The backup file's bytes."""
    payload = json.dumps({
        "manifest": snapshot.manifest,
        "files": {
            name: {"mode": mode, "data": base64.b64encode(data).decode("ascii")}
            for name, (mode, data) in snapshot.files.items()
        },
        "registry": None if snapshot.registry is None
        else base64.b64encode(snapshot.registry).decode("ascii"),
    }).encode("utf-8")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = _HEADER.pack(MAGIC, FORMAT, LOG2_N, R, P, salt, nonce)
    key = _key(passphrase, salt, LOG2_N, R, P)
    return header + AESGCM(key).encrypt(nonce, payload, header)


def unseal(data: bytes, passphrase: bytes) -> Snapshot:
    """
    Open a backup file's bytes.

    @raise DamagedBackup: if the passphrase is wrong or any byte changed.
    @raise BackupError: if the file is not a backup, or of a newer format.
    """
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BackupError("not a bwscd backup file")
    if len(data) < _HEADER.size:
        raise DamagedBackup()
    header = data[: _HEADER.size]
    _, version, log2n, r, p, salt, nonce = _HEADER.unpack(header)
    if version != FORMAT:
        raise BackupError(f"backup format {version} is not known to bwscd {__version__}")
    # The header is only authenticated once the key is derived; refuse to
    # derive one weaker than we make, or dearer than we are willing to pay.
    if not (log2n >= LOG2_N and r >= R and P <= p <= 16) or (128 << log2n) * r > _MAX_MEMORY:
        raise DamagedBackup()
    try:
        payload = AESGCM(_key(passphrase, salt, log2n, r, p)).decrypt(
            nonce, data[_HEADER.size:], header)
    except InvalidTag:
        raise DamagedBackup()
    return _parse(payload)


def _parse(payload: bytes) -> Snapshot:
    """
    The snapshot in an authentic payload.  Only the data directory's own
    file names are taken, so a backup can write nowhere else.
    """
    try:
        document = json.loads(payload)
        files = {
            name: (int(entry["mode"]) & 0o777, base64.b64decode(entry["data"], validate=True))
            for name, entry in document["files"].items()
        }
        state = document["registry"]
        snapshot = Snapshot(
            manifest=dict(document["manifest"]),
            files=files,
            registry=None if state is None else base64.b64decode(state, validate=True),
        )
        snapshot.counts()  # the registry is JSON of the expected shape
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BackupError(f"the backup's contents are not understood ({e})")
    unknown = sorted(set(files) - set(FILES))
    if unknown:
        raise BackupError(f"the backup holds files bwscd does not know: {', '.join(unknown)}")
    if paths.SETTINGS not in files:
        raise BackupError(f"the backup holds no {paths.SETTINGS}")
    return snapshot


def describe(snapshot: Snapshot) -> str:
    """
    What a snapshot holds, for a summary line: C{settings.json, ... and the
    registry (2 users, 3 devices, 1 system)}.
    """
    counts = snapshot.counts()
    registryCounts = ", ".join(
        f"{counts[kind]} {noun}{'' if counts[kind] == 1 else 's'}"
        for kind, noun in ((registry.USERS, "user"), (registry.DEVICES, "device"),
                           (registry.SYSTEM, "system"))
    )
    names = [name for name in FILES if name in snapshot.files]
    return f"{', '.join(names)} and the registry ({registryCounts})"
