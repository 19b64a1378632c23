"""
C{DATA/settings.json}, and the one place that reads, checks and writes it:
the BWS account (user name, key hash, keys being retired), integrators'
accounts, the token secret, the public addresses and port, the site name,
the container type, the capabilities (and every one ever published), and
the public key the controller encrypts for, the retention policy.  Mode 0600.

Every change goes through a method of L{Settings} that checks it, and
L{Settings.save} writes the whole document atomically: a running server
(which reads it again when it changes) sees the old settings or the new.
"""

import fcntl
import ipaddress
import json
import os
import re
import secrets
import socket
import struct

from bwscd.files import readIfExists, writeAtomically
from bwscd.security import roles, tokens
from bwscd.policy.capabilities import CAPABILITIES, checkKnown
from bwscd.policy.retention import Policy, checkPeriods
from bwscd.config.connectionfile import CONTAINER_TYPES, DEFAULT_CONTAINER_TYPE
from bwscd.config.paths import SETTINGS

FULL_SUPPORT = "FullStoreAndReadSupport"

# What every settings document holds, from its first save on.
_REQUIRED = ("account", "tokenSecret", "siteName", "publicAddresses", "containerType",
             "capabilities", "fullStoreAndReadSupport", "published")

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def machineAddresses() -> list[str]:
    """
    This machine's IPv4 addresses other than loopback, then 127.0.0.1: the
    default public addresses.
    """
    found = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with probe:
        for _, name in socket.if_nameindex():
            try:
                # SIOCGIFADDR: the interface's IPv4 address (Linux).
                raw = fcntl.ioctl(
                    probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
            address = socket.inet_ntoa(raw[20:24])
            if not address.startswith("127.") and address not in found:
                found.append(address)
    return found + ["127.0.0.1"]


def defaultSiteName() -> str:
    return f"bwscd ({socket.gethostname()})"[:64]


def _checkHosts(addresses: list[str]) -> None:
    """@raise ValueError: naming an address that is neither an IP address nor a host name."""
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            if _HOST_NAME.match(address) is None:
                raise ValueError(f"{address!r} is neither an IP address nor a host name")


def exists(directory: str) -> bool:
    """Whether C{directory} holds settings (a data directory once made)."""
    return os.path.lexists(os.path.join(directory, SETTINGS))


class Settings:
    """The settings of one data directory: L{load} or L{new}, change, L{save}."""

    def __init__(self, path: str, document: dict):
        self.path = path
        self._document = document

    @classmethod
    def load(cls, directory: str) -> "Settings":
        """
        @raise ValueError: if C{directory} holds no settings (never started),
            or settings that are not bwscd's.
        """
        path = os.path.join(directory, SETTINGS)
        stored = readIfExists(path)
        if stored is None:
            raise ValueError(f"{directory} is not a bwscd data directory (no {SETTINGS})")
        document = json.loads(stored)
        if not isinstance(document, dict):
            raise ValueError(f"{path} is not a JSON object")
        missing = [key for key in _REQUIRED if key not in document]
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}")
        # Before roles (until 2026-11-22) integrators' accounts were all
        # readers, kept under "readers"; saved again, they stay "accounts".
        for reader in document.pop("readers", []):
            document.setdefault("accounts", []).append(dict(reader, role="reader"))
        return cls(path, document)

    @classmethod
    def new(
        cls,
        directory: str,
        *,
        publicAddresses: list[str] | None = None,
        containerType: str | None = None,
        siteName: str | None = None,
        capabilities: list[str] | None = None,
    ) -> tuple["Settings", str]:
        """
        A new account and settings, not yet saved; returns them with the
        account's key.

        @raise ValueError: for an unknown capability.
        """
        checkKnown(capabilities or ())
        userName, key = tokens.newUserName(), tokens.newKey()
        return cls(os.path.join(directory, SETTINGS), {
            "account": {"user": userName, "keyHash": tokens.hashKey(key)},
            "tokenSecret": secrets.token_hex(32),
            "siteName": siteName or defaultSiteName(),
            "publicAddresses": publicAddresses or machineAddresses(),
            "containerType": containerType or DEFAULT_CONTAINER_TYPE,
            "capabilities": sorted(CAPABILITIES if capabilities is None else capabilities),
            "fullStoreAndReadSupport": False,
            "published": [],
        }), key

    def save(self) -> None:
        writeAtomically(self.path, json.dumps(self._document, indent=2).encode("utf-8"))

    def servedPlain(self) -> "Settings":
        """A copy that serves plain HTTP: to check a connection file before
        there is a certificate."""
        return Settings(self.path, dict(self._document, https=False))

    # What the settings say.

    @property
    def userName(self) -> str:
        """The BWS account's (the controller's) user name."""
        return self._document["account"]["user"]

    @property
    def keyHash(self) -> str:
        """The hash of the BWS account's current key."""
        return self._document["account"]["keyHash"]

    @property
    def retiring(self) -> list[dict]:
        """The BWS account's older keys: C{keyHash}, and C{until} (epoch seconds)."""
        return self._document["account"].get("retiring", [])

    @property
    def integratorAccounts(self) -> list[dict]:
        """Integrators' accounts: C{user}, C{role}, C{keyHash}."""
        return self._document.get("accounts", [])

    @property
    def tokenSecret(self) -> bytes:
        return bytes.fromhex(self._document["tokenSecret"])

    @property
    def siteName(self) -> str:
        return self._document["siteName"]

    @property
    def publicAddresses(self) -> list[str]:
        return self._document["publicAddresses"]

    @property
    def port(self) -> int:
        return self._document["port"]

    @property
    def https(self) -> bool:
        return self._document["https"]

    @property
    def containerType(self) -> str:
        return self._document["containerType"]

    @property
    def capabilities(self) -> list[str]:
        return self._document["capabilities"]

    @property
    def fullStoreAndReadSupport(self) -> bool:
        return self._document["fullStoreAndReadSupport"]

    @property
    def encryption(self) -> dict | None:
        """C{publicKey} (PEM) and C{publicKeyId} of the key content is encrypted
        for, or L{None} (bwscd keys)."""
        return self._document.get("encryption")

    @property
    def retention(self) -> Policy:
        """The retention policy (docs/retention.md); without one, everything is kept forever."""
        return Policy.fromDocument(self._document.get("retention"))

    # Changes, each checked; none is written before L{save}.

    def setRetention(self, policy: Policy, acknowledged: bool = False) -> None:
        """
        @raise ValueError: for a period under the minimum without
            C{acknowledged}, saying why (L{checkPeriods}).
        """
        checkPeriods(policy, acknowledged)
        self._document["retention"] = policy.toDocument()

    def setListening(self, *, port: int, https: bool) -> None:
        self._document.update(port=port, https=https)

    def setPublicAddresses(self, addresses: list[str]) -> None:
        """@raise ValueError: for an address that is neither an IP address nor a host name."""
        _checkHosts(addresses)
        self._document["publicAddresses"] = addresses

    def setContainerType(self, containerType: str | None) -> None:
        """
        Replace the container type, if one is given, and check it.

        @raise ValueError: if it is not one the connection file may name.
        """
        if containerType:
            self._document["containerType"] = containerType
        if self.containerType not in CONTAINER_TYPES:
            raise ValueError(f"container type must be {' or '.join(CONTAINER_TYPES)}")

    def checkPublicAddresses(self) -> None:
        """@raise ValueError: for an address that is neither an IP address nor a host name."""
        _checkHosts(self.publicAddresses)

    def publish(self, allowWithdrawal: bool) -> list[str]:
        """
        Check the configured capabilities against every one published
        before (the API: support, once published, is never withdrawn), and
        record what is published now.

        @return: what is published for the first time.
        @raise ValueError: naming what would be withdrawn, or an unknown capability.
        """
        document = self._document
        checkKnown(document["capabilities"], f" in {SETTINGS}")
        enabled = set(document["capabilities"])
        if document["fullStoreAndReadSupport"]:
            enabled.add(FULL_SUPPORT)
        withdrawn = set(document["published"]) - enabled
        if withdrawn and not allowWithdrawal:
            raise ValueError(
                f"{SETTINGS} withdraws published support for "
                + ", ".join(sorted(withdrawn))
                + ": the controller relies on it once published; enable it again, or "
                "start once with --allow-capability-withdrawal"
            )
        newlyPublished = sorted(enabled - set(document["published"]))
        document["published"] = sorted(enabled)
        return newlyPublished

    def addAccount(self, user: str, role: str) -> str:
        """
        A new integrator account with C{role} (one of
        L{bwscd.security.roles.ROLES}).

        @return: its key, which is kept nowhere but in what this returns.
        @raise ValueError: for a name that is taken or not allowed.
        """
        if role not in roles.ROLES:
            raise ValueError(f"a role is one of {', '.join(roles.ROLES)}")
        if not _ACCOUNT_NAME.match(user):
            raise ValueError("an account's name is 1 to 64 letters, digits, '.', '_' or '-'")
        existing = self._document.setdefault("accounts", [])
        if user == self.userName or any(a["user"] == user for a in existing):
            raise ValueError(f"there is already an account named {user}")
        key = tokens.newKey()
        existing.append({"user": user, "role": role, "keyHash": tokens.hashKey(key)})
        return key

    def removeAccount(self, user: str) -> None:
        """@raise ValueError: if there is no integrator account named C{user}."""
        existing = self.integratorAccounts
        if not any(a["user"] == user for a in existing):
            raise ValueError(f"no integrator account named {user}")
        self._document["accounts"] = [a for a in existing if a["user"] != user]

    def rotateKey(self, grace: float, now: float) -> str:
        """
        Give the BWS account a new key, and keep the current one working for
        C{grace} seconds.  A grace of 0 (a key that leaked) stops every
        older key at once, and every token already given out (a new token
        secret).

        @return: the new key.
        """
        key = tokens.newKey()
        retiring = []
        if grace <= 0:
            self._document["tokenSecret"] = secrets.token_hex(32)
        else:
            retiring = [k for k in self.retiring if k["until"] > now]
            retiring.append({"keyHash": self.keyHash, "until": now + grace})
        self._document["account"] = dict(
            self._document["account"], keyHash=tokens.hashKey(key), retiring=retiring
        )
        return key

    def setEncryptionKey(self, publicKeyPEM: str, publicKeyId: str) -> None:
        """Ask the controller to encrypt content for this public key from now on."""
        self._document["encryption"] = {"publicKey": publicKeyPEM, "publicKeyId": publicKeyId}
