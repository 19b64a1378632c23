"""
The BWS account's credentials: one user name, the current key, and keys
being retired.

A rotated key keeps working for a grace period, so the controller keeps
offloading with the connection file it has until the operator uploads the
new one.  Only hashes of keys are kept (L{bwscd.account.hashKey}).
"""

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

    def keyHashes(self) -> list[str]:
        """Hashes of every key accepted now: the current one first."""
        now = self._clock()
        return [self._current] + [k["keyHash"] for k in self._retiring if k["until"] > now]

    def accepts(self, key: str) -> bool:
        """
        Whether C{key} is an accepted key.  Every accepted hash is checked,
        so the time taken says nothing about which one matched.
        """
        results = [account.verifyKey(key, keyHash) for keyHash in self.keyHashes()]
        return any(results)


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
