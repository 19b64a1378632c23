"""
Who may log in, and in which role.

The BWS account (the controller's) has one user name, the current key and
keys being retired: a rotated key keeps working for a grace period, so the
controller keeps offloading with the connection file it has until the
operator uploads the new one.  Integrators get accounts of their own, each
with a role: a reader may list and read what is stored, an admin may also
delete it.  Only hashes of keys are kept (L{bwscd.security.tokens.hashKey}).
"""

import functools
import re
import secrets
import time

from bwscd.security import tokens
from bwscd.security.roles import BWS, ROLES

from bwscd.config import datadir


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
        self._accounts: dict[str, dict] = {
            a["user"]: a for a in settings.get("accounts", [])
        }

    def keyHashes(self) -> list[str]:
        """Hashes of every key accepted now: the current one first."""
        now = self._clock()
        return [self._current] + [k["keyHash"] for k in self._retiring if k["until"] > now]

    def roleOf(self, user: str) -> str | None:
        """C{BWS}, C{READER}, C{ADMIN}, or L{None} for a user that does not exist
        (any more)."""
        if user == self.userName:
            return BWS
        return self._accounts[user]["role"] if user in self._accounts else None

    def accepts(self, user: str, key: str) -> bool:
        """
        Whether C{key} is an accepted key of C{user}.  Every hash that could
        match is checked, and one for an unknown user too, so the time taken
        says nothing about which one matched or whether the user exists.
        """
        if user == self.userName:
            hashes = self.keyHashes()
        else:
            known = self._accounts.get(user)
            hashes = [known["keyHash"] if known else _unknownUsersHash()]
        results = [tokens.verifyKey(key, keyHash) for keyHash in hashes]
        return any(results) and (user == self.userName or user in self._accounts)


@functools.cache
def _unknownUsersHash() -> str:
    """A hash no key matches, checked for unknown users so they take as long."""
    return tokens.hashKey(secrets.token_urlsafe(32))


_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def addAccount(directory: str, user: str, role: str) -> str:
    """
    A new integrator account with C{role} (one of L{ROLES}).

    @return: its key, which is kept nowhere but in what this returns.
    @raise ValueError: for a name that is taken or not allowed.
    """
    settings = datadir.loadSettings(directory)
    accounts = settings.setdefault("accounts", [])
    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}")
    if not _ACCOUNT_NAME.match(user):
        raise ValueError("an account's name is 1 to 64 letters, digits, '.', '_' or '-'")
    if user == settings["account"]["user"] or any(a["user"] == user for a in accounts):
        raise ValueError(f"there is already an account named {user}")
    key = tokens.newKey()
    accounts.append({"user": user, "role": role, "keyHash": tokens.hashKey(key)})
    datadir.saveSettings(directory, settings)
    return key


def removeAccount(directory: str, user: str) -> None:
    settings = datadir.loadSettings(directory)
    accounts = settings.get("accounts", [])
    if not any(a["user"] == user for a in accounts):
        raise ValueError(f"no integrator account named {user}")
    settings["accounts"] = [a for a in accounts if a["user"] != user]
    datadir.saveSettings(directory, settings)


def accounts(directory: str) -> list[tuple[str, str]]:
    """The integrators' accounts, as (user name, role)."""
    return [(a["user"], a["role"]) for a in datadir.loadSettings(directory).get("accounts", [])]


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
    key = tokens.newKey()
    retiring = []
    if grace <= 0:
        settings["tokenSecret"] = secrets.token_hex(32)
    else:
        retiring = [k for k in settings["account"].get("retiring", []) if k["until"] > now]
        retiring.append({"keyHash": settings["account"]["keyHash"], "until": now + grace})
    settings["account"] = dict(
        settings["account"], keyHash=tokens.hashKey(key), retiring=retiring
    )
    datadir.saveSettings(directory, settings)
    datadir.writeConnectionFile(directory, settings, key)
    return key
