"""
Who may log in, and in which role.

The BWS account (the controller's) has one user name, the current key and
keys being retired: a rotated key keeps working for a grace period, so the
controller keeps offloading with the connection file it has until the
operator uploads the new one.  Integrators get accounts of their own, each
with a role: a reader may list and read what is stored, an admin may also
delete it.  Only hashes of keys are kept (L{bwscd.security.tokens.hashKey}),
in the settings, which L{bwscd.config.settings} owns and changes.
"""

import functools
import secrets
import time

from bwscd.security import tokens
from bwscd.security.roles import BWS


class Credentials:
    """
    What the running service accepts, taken from the settings (and again,
    when they change, by L{update}).

    @param settings: the accounts as the settings hold them: anything with
        C{tokenSecret} (bytes), C{userName}, C{keyHash}, C{retiring}
        (C{keyHash} and C{until}) and C{integratorAccounts} (C{user}, C{role},
        C{keyHash}), as L{bwscd.config.settings.Settings} has.
    """

    def __init__(self, settings, clock=time.time):
        self._clock = clock
        self.update(settings)

    def update(self, settings) -> None:
        self.tokenSecret: bytes = settings.tokenSecret
        self.userName: str = settings.userName
        self._current: str = settings.keyHash
        self._retiring: list[dict] = settings.retiring
        self._accounts: dict[str, dict] = {a["user"]: a for a in settings.integratorAccounts}

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


