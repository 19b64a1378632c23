"""
Who may log in, and in which role.

The BWS account (the controller's) has one user name, the current key and
keys being retired: a rotated key keeps working for a grace period, so the
controller keeps offloading with the connection file it has until the
operator uploads the new one.  Reader accounts (integrators) may list and
read what is stored, and nothing else.  Only hashes of keys are kept
(L{bwscd.account.hashKey}).
"""

import functools
import re
import secrets
import time

from bwscd import account, datadir


class Credentials:
    """What the running service accepts, read again from settings on L{reload}."""

    def __init__(self, directory: str, clock=time.time):
        self._directory = directory
        self._clock = clock
        self.reload()

    def reload(self) -> None:
        settings = datadir.loadSettings(self._directory)
        self.tokenSecret = bytes.fromhex(settings["tokenSecret"])
        self.userName: str = settings["account"]["user"]
        self._current: str = settings["account"]["keyHash"]
        self._retiring: list[dict] = settings["account"].get("retiring", [])
        self._readers: dict[str, str] = {
            r["user"]: r["keyHash"] for r in settings.get("readers", [])
        }

    def keyHashes(self) -> list[str]:
        """Hashes of every key accepted now: the current one first."""
        now = self._clock()
        return [self._current] + [k["keyHash"] for k in self._retiring if k["until"] > now]

    def roleOf(self, user: str) -> str | None:
        """C{BWS}, C{READER}, or L{None} for a user that does not exist (any more)."""
        if user == self.userName:
            return BWS
        return READER if user in self._readers else None

    def accepts(self, user: str, key: str) -> bool:
        """
        Whether C{key} is an accepted key of C{user}.  Every hash that could
        match is checked, and one for an unknown user too, so the time taken
        says nothing about which one matched or whether the user exists.
        """
        if user == self.userName:
            hashes = self.keyHashes()
        else:
            hashes = [self._readers.get(user) or _unknownUsersHash()]
        results = [account.verifyKey(key, keyHash) for keyHash in hashes]
        return any(results) and user in (self.userName, *self._readers)


@functools.cache
def _unknownUsersHash() -> str:
    """A hash no key matches, checked for unknown users so they take as long."""
    return account.hashKey(secrets.token_urlsafe(32))


BWS = "bws"
READER = "reader"
_READER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def addReader(directory: str, user: str) -> str:
    """
    A new reader account.

    @return: its key, which is kept nowhere but in what this returns.
    @raise ValueError: for a name that is taken or not allowed.
    """
    settings = datadir.loadSettings(directory)
    readers = settings.setdefault("readers", [])
    if not _READER_NAME.match(user):
        raise ValueError("a reader's name is 1 to 64 letters, digits, '.', '_' or '-'")
    if user == settings["account"]["user"] or any(r["user"] == user for r in readers):
        raise ValueError(f"there is already an account named {user}")
    key = account.newKey()
    readers.append({"user": user, "keyHash": account.hashKey(key)})
    datadir.saveSettings(directory, settings)
    return key


def removeReader(directory: str, user: str) -> None:
    settings = datadir.loadSettings(directory)
    readers = settings.get("readers", [])
    if not any(r["user"] == user for r in readers):
        raise ValueError(f"no reader named {user}")
    settings["readers"] = [r for r in readers if r["user"] != user]
    datadir.saveSettings(directory, settings)


def readers(directory: str) -> list[str]:
    return [r["user"] for r in datadir.loadSettings(directory).get("readers", [])]


def rotate(directory: str, grace: float, clock=time.time) -> str:
    """
    Give the account a new key, keep the current one working for C{grace}
    seconds, and write the connection file with the new key.  A grace of 0
    (a key that leaked) stops every older key at once, and every token
    already given out (a new token secret).

    @return: the new key.
    """
    settings = datadir.loadSettings(directory)
    now = clock()
    key = account.newKey()
    retiring = []
    if grace <= 0:
        settings["tokenSecret"] = secrets.token_hex(32)
    else:
        retiring = [k for k in settings["account"].get("retiring", []) if k["until"] > now]
        retiring.append({"keyHash": settings["account"]["keyHash"], "until": now + grace})
    settings["account"] = dict(
        settings["account"], keyHash=account.hashKey(key), retiring=retiring
    )
    datadir.saveSettings(directory, settings)
    datadir.writeConnectionFile(directory, settings, key)
    return key
