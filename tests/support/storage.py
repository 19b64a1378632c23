"""What a server leaves in its storage directory (the filesystem backend)."""

import hashlib
import os


def temporaryDirectory(storage: str) -> str:
    """Where the server writes uploads under way, in C{storage}."""
    return os.path.join(storage, ".bwscd", "tmp")


def temporaryFiles(storage: str) -> list[str]:
    """The uploads under way (or left behind) in C{storage}'s temporary directory."""
    try:
        return os.listdir(temporaryDirectory(storage))
    except FileNotFoundError:
        return []


def fileSHA256(path: str) -> str:
    """The SHA-256 of the file at C{path}, read a block at a time."""
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha256.update(block)
    return sha256.hexdigest()
