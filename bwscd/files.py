"""Small file operations that several modules share."""

import os
import secrets
from contextlib import contextmanager


def readIfExists(path: str) -> bytes | None:
    """The file's bytes, or L{None} if there is no such file."""
    # Without a Python file object: metadata files are read by the ten
    # thousand in a listing or a catalog rebuild, and open() costs four
    # system calls more than os.open (fstat, ioctl, two lseek).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        pieces = []
        while piece := os.read(fd, 1 << 16):
            pieces.append(piece)
        return b"".join(pieces)
    finally:
        os.close(fd)


def fsyncDirectory(path: str) -> None:
    """Make the names in a directory (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def writeAtomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """
    Write a file with exactly C{mode}, durably, replacing any earlier one in
    one step: a reader or a crash sees the old file or the new one.
    """
    with replacingFile(path, mode) as f:
        f.write(data)


TEMPORARY_SUFFIX = ".new"
"""How the temporary files of L{replacingFile} end: C{.NAME.RANDOM.new}."""


@contextmanager
def replacingFile(path: str, mode: int = 0o600):
    """
    A binary file to write that becomes C{path} (with exactly C{mode})
    durably and in one step once the block ends, as L{writeAtomically}
    does; for contents written piece by piece.  Nothing changes if the
    block raises.
    """
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(fd, "wb") as f:
            # Exactly the mode asked for: os.open's is narrowed by the umask.
            os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
    fsyncDirectory(directory)


def placeNew(temporary: str, path: str) -> None:
    """
    Give the file C{temporary} the name C{path}, never replacing a file
    that is there (or appeared there meanwhile).

    @raise FileExistsError: if C{path} exists; C{temporary} is left as it is.
    """
    try:
        # A link, unlike a rename, fails if the name is taken.
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        # No hard links (a FAT-formatted USB stick): check, then rename.
        if os.path.lexists(path):
            raise FileExistsError(f"{path} exists: not overwriting it")
        os.rename(temporary, path)
    else:
        os.unlink(temporary)


def fileStamp(path: str) -> tuple[int, int, int] | None:
    """
    What tells a changed file from the same one: its modification time,
    size and inode (a file replaced atomically is a new inode, whatever its
    time); L{None} if there is no such file.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class ChangedFiles:
    """
    Whether files changed since what was read of them was taken up: for
    files that operators change under a running server.  L{changes} gives
    the files' stamps if they changed; L{takenUp} records them once what
    they hold is in use, so a file that can't be used yet is looked at
    again next time.
    """

    def __init__(self, *paths: str):
        self._paths = paths
        self.taken: tuple | None = None
        """The stamps last taken up; L{None} before the first time."""

    def changes(self) -> tuple | None:
        """The files' stamps (L{fileStamp}) if they differ from those taken up; else L{None}."""
        stamps = tuple(fileStamp(path) for path in self._paths)
        return None if stamps == self.taken else stamps

    def takenUp(self, stamps: tuple) -> None:
        self.taken = stamps
