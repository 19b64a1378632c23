"""
The data directory: what the destination is, kept across restarts.

    DATA/settings.json   account (user name, key hash), token secret, public
                         addresses, site name, container type, capabilities
                         (and every capability ever published); mode 0600
    DATA/categories.json the categories offered to camera users
    DATA/server.crt      the HTTPS certificate (self-signed unless imported)
    DATA/server.key      its private key; mode 0600
    DATA/config.json     the connection file for Body Worn Manager; it holds
                         the account key in clear, so mode 0600

The first start creates all of it without asking anything; later starts
reuse it.  Only a hash of the account key is kept in settings.json: the key
itself exists in the connection file, which the operator uploads to Body
Worn Manager and may then remove from this machine.
"""

import fcntl
import ipaddress
import json
import os
import re
import secrets
import socket
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from twisted.logger import Logger

from bwscd import __version__

from bwscd.security import tokens

from bwscd.security import certificate

from bwscd.config import connectionfile
from bwscd.policy.capabilities import CAPABILITIES, Document, capabilitiesDocument, checkKnown
from bwscd.policy.categories import CategoryFile
from bwscd.files import readIfExists, writeAtomically

SETTINGS = "settings.json"
CERTIFICATE = "server.crt"
PRIVATE_KEY = "server.key"
# A certificate waiting to be served (bwscd cert renew/import): listed in
# the connection file beside the served one until bwscd cert activate.
STAGED_CERTIFICATE = "server.next.crt"
STAGED_PRIVATE_KEY = "server.next.key"
CONNECTION_FILE = "config.json"
APPLICATION_NAME = "bwscd"

log = Logger()


@dataclass(frozen=True)
class Destination:
    """Everything the service needs to know about itself."""

    directory: str
    userName: str
    keyHash: str
    tokenSecret: bytes
    tokenURIs: list[str]
    capabilities: Document
    fullStoreAndReadSupport: bool
    newlyPublished: list[str]
    """Capabilities published for the first time by this start."""
    encrypted: bool
    """Whether the controller is asked to encrypt content (bwscd keys)."""

    @property
    def categoryFile(self) -> CategoryFile:
        return CategoryFile(self.directory)

    @property
    def certificatePath(self) -> str:
        return os.path.join(self.directory, CERTIFICATE)

    @property
    def privateKeyPath(self) -> str:
        return os.path.join(self.directory, PRIVATE_KEY)

    @property
    def connectionFilePath(self) -> str:
        return os.path.join(self.directory, CONNECTION_FILE)


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


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _isHost(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return _HOST_NAME.match(address) is not None


def tokenURI(scheme: str, host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/auth/v1.0"


def loadSettings(directory: str) -> dict:
    """
    @raise ValueError: if C{directory} holds no settings (never started).
    """
    stored = readIfExists(os.path.join(directory, SETTINGS))
    if stored is None:
        raise ValueError(f"{directory} is not a bwscd data directory (no {SETTINGS})")
    settings = json.loads(stored)
    # Before roles (until 2026-11-22) integrators' accounts were all
    # readers, kept under "readers"; saved again, they stay "accounts".
    for reader in settings.pop("readers", []):
        settings.setdefault("accounts", []).append(dict(reader, role="reader"))
    return settings


def saveSettings(directory: str, settings: dict) -> None:
    writeAtomically(os.path.join(directory, SETTINGS),
                  json.dumps(settings, indent=2).encode("utf-8"))


def newSettings(
    *,
    publicAddresses: list[str] | None = None,
    containerType: str | None = None,
    siteName: str | None = None,
    capabilities: list[str] | None = None,
) -> tuple[dict, str]:
    """
    A new account and settings; returns them with the account's key.

    @raise ValueError: for an unknown capability.
    """
    checkKnown(capabilities or ())
    userName, key = tokens.newUserName(), tokens.newKey()
    settings = {
        "account": {"user": userName, "keyHash": tokens.hashKey(key)},
        "tokenSecret": secrets.token_hex(32),
        "siteName": siteName or f"bwscd ({socket.gethostname()})"[:64],
        "publicAddresses": publicAddresses or machineAddresses(),
        "containerType": containerType or "mkv",
        "capabilities": sorted(CAPABILITIES if capabilities is None else capabilities),
        "fullStoreAndReadSupport": False,
        "published": [],
    }
    return settings, key


def create(directory: str, settings: dict, key: str, *, port: int, https: bool) -> None:
    """
    Make a new data directory from L{newSettings}.

    @raise ValueError: before anything is written, for settings that can't
        make a valid connection file.
    """
    settings.update(port=port, https=https)
    for address in settings["publicAddresses"]:
        if not _isHost(address):
            raise ValueError(f"{address!r} is neither an IP address nor a host name")
    if not 0 < port < 65536:
        raise ValueError("the port must be 1 to 65535")
    try:  # everything but the certificate, which is made below
        buildConnectionFile(directory, dict(settings, https=False), key)
    except connectionfile.ConnectionFileError as e:
        raise ValueError(str(e).replace("\n", "; "))
    # Readable by others (the umask permitting): the default storage root is
    # inside, and integrators' tools read it.  The secrets in it are 0600.
    os.makedirs(directory, exist_ok=True)
    if readIfExists(os.path.join(directory, SETTINGS)) is not None:
        raise ValueError(f"{directory} already holds a bwscd data directory")
    CategoryFile(directory).write(CategoryFile(directory).read())
    saveSettings(directory, settings)
    writeConnectionFile(directory, settings, key)
    log.info("new data directory {directory}: account {user}",
             directory=directory, user=settings["account"]["user"])


def prepare(
    directory: str,
    *,
    port: int,
    https: bool,
    publicAddresses: list[str] | None = None,
    containerType: str | None = None,
    allowWithdrawal: bool = False,
) -> Destination:
    """
    Create or load the data directory for the service.  C{publicAddresses}
    and C{containerType}, when given, replace what is stored; a changed
    address list gets a new self-signed certificate.  The connection file
    is written again whenever what it says changes.

    @param allowWithdrawal: let a capability that was published before be
        switched off, which the API forbids (the controller relies on it).

    @raise ValueError: for a setting that can't be used.
    """
    if readIfExists(os.path.join(directory, SETTINGS)) is None:
        settings, key = newSettings(publicAddresses=publicAddresses,
                                    containerType=containerType)
        create(directory, settings, key, port=port, https=https)
    settings = loadSettings(directory)
    if publicAddresses:
        for address in publicAddresses:
            if not _isHost(address):
                raise ValueError(f"{address!r} is neither an IP address nor a host name")
        settings["publicAddresses"] = publicAddresses
    if containerType:
        settings["containerType"] = containerType
    if settings["containerType"] not in ("mkv", "mp4"):
        raise ValueError("container type must be mkv or mp4")
    settings.update(port=port, https=https)
    newlyPublished = _publish(settings, allowWithdrawal)
    saveSettings(directory, settings)
    writeConnectionFile(directory, settings)
    return _destination(directory, settings, newlyPublished)


def load(directory: str) -> Destination:
    """
    The data directory as L{prepare} left it, changing nothing: for a
    worker process, whose main process prepared it.
    """
    return _destination(directory, loadSettings(directory), newlyPublished=[])


def _destination(directory: str, settings: dict, newlyPublished: list[str]) -> Destination:
    return Destination(
        directory=directory,
        userName=settings["account"]["user"],
        keyHash=settings["account"]["keyHash"],
        tokenSecret=bytes.fromhex(settings["tokenSecret"]),
        tokenURIs=tokenURIs(settings),
        capabilities=capabilitiesDocument(settings["capabilities"]),
        fullStoreAndReadSupport=settings["fullStoreAndReadSupport"],
        newlyPublished=newlyPublished,
        encrypted=bool(settings.get("encryption")),
    )


def tokenURIs(settings: dict) -> list[str]:
    scheme = "https" if settings["https"] else "http"
    return [tokenURI(scheme, address, settings["port"])
            for address in settings["publicAddresses"]]


FULL_SUPPORT = "FullStoreAndReadSupport"


def _publish(settings: dict, allowWithdrawal: bool) -> list[str]:
    """
    Check the configured capabilities against every one published before
    (the API: support, once published, is never withdrawn), and record
    what is published now.

    @return: what is published for the first time.
    @raise ValueError: naming what would be withdrawn, or an unknown capability.
    """
    checkKnown(settings["capabilities"], " in settings.json")
    enabled = set(settings["capabilities"])
    if settings["fullStoreAndReadSupport"]:
        enabled.add(FULL_SUPPORT)
    withdrawn = set(settings["published"]) - enabled
    if withdrawn and not allowWithdrawal:
        raise ValueError(
            "settings.json withdraws published support for "
            + ", ".join(sorted(withdrawn))
            + ": the controller relies on it once published; enable it again, or "
            "start once with --allow-capability-withdrawal"
        )
    newlyPublished = sorted(enabled - set(settings["published"]))
    settings["published"] = sorted(enabled)
    return newlyPublished


def _selfSigned(certificatePEM: bytes) -> bool:
    """Whether this is a certificate bwscd made (an imported one is never replaced)."""
    leaf = x509.load_pem_x509_certificate(certificatePEM)
    return leaf.issuer == leaf.subject and leaf.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME
    ) == [x509.NameAttribute(NameOID.ORGANIZATION_NAME, APPLICATION_NAME)]


def _certificateFor(directory: str, addresses: list[str]) -> bytes:
    """
    The served certificate (and its chain), made anew if bwscd made it and
    it does not name every public address.
    """
    path = os.path.join(directory, CERTIFICATE)
    current = readIfExists(path)
    if current is not None:
        if set(addresses) <= set(certificate.subjectAltNames(current)):
            return current
        if not _selfSigned(current):
            log.warn("the certificate in {path} does not name every public address "
                     "({addresses}); it was imported, so it is kept",
                     path=path, addresses=", ".join(addresses))
            return current
    certificatePEM, keyPEM = certificate.createSelfSigned(addresses)
    writeAtomically(os.path.join(directory, PRIVATE_KEY), keyPEM)
    writeAtomically(path, certificatePEM)
    log.warn(
        "new self-signed certificate for {addresses}: upload the new connection "
        "file to Body Worn Manager",
        addresses=", ".join(addresses),
    )
    return certificatePEM


def buildConnectionFile(directory: str, settings: dict, key: str) -> bytes:
    """The connection file that C{settings} and C{key} make."""
    certificates = []
    if settings["https"]:
        served = _certificateFor(directory, settings["publicAddresses"])
        staged = readIfExists(os.path.join(directory, STAGED_CERTIFICATE)) or b""
        certificates = [
            c.public_bytes(serialization.Encoding.PEM)
            for c in x509.load_pem_x509_certificates(served)
            + (x509.load_pem_x509_certificates(staged) if staged else [])
        ]
    encryption = settings.get("encryption")
    return connectionfile.build(
        siteName=settings["siteName"],
        applicationName=APPLICATION_NAME,
        applicationVersion=__version__,
        tokenURIs=tokenURIs(settings),
        certificatesPEM=certificates,
        userName=settings["account"]["user"],
        key=key,
        containerType=settings["containerType"],
        fullStoreAndReadSupport=settings["fullStoreAndReadSupport"],
        publicKeyPEM=encryption["publicKey"].encode("ascii") if encryption else None,
        publicKeyId=encryption["publicKeyId"] if encryption else None,
    )


def writeConnectionFile(directory: str, settings: dict, key: str | None = None) -> bool:
    """
    Write DATA/config.json if what it should say changed.  Without C{key},
    the key is taken from the connection file already there (only its hash
    is kept anywhere else).

    @return: whether the file changed.
    @raise ValueError: if there is no key to write.
    """
    path = os.path.join(directory, CONNECTION_FILE)
    current = readIfExists(path)
    if key is None:
        if current is None:
            raise ValueError(
                f"the connection file {path} is gone and only a hash of the account "
                "key is kept: make a new key with 'bwscd credentials rotate'"
            )
        key = json.loads(current)["BlobAPIKey"]
        if not tokens.verifyKey(key, settings["account"]["keyHash"]):
            raise ValueError(f"{path} holds a key that is not this account's")
    wanted = buildConnectionFile(directory, settings, key)
    if wanted == current:
        return False
    writeAtomically(path, wanted)
    if current is not None:
        log.warn("the connection file changed: upload {path} to Body Worn Manager "
                 "again", path=path)
    return True
