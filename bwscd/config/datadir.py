"""
The data directory: what the destination is, kept across restarts.

    DATA/settings.json   account (user name, key hash), token secret, public
                         addresses, site name, container type, capabilities
                         (and every capability ever published); mode 0600
                         (L{bwscd.config.settings})
    DATA/categories.json the categories offered to camera users
    DATA/server.crt      the HTTPS certificate (self-signed unless imported)
    DATA/server.key      its private key; mode 0600
    DATA/config.json     the connection file for Body Worn Manager; it holds
                         the account key in clear, so mode 0600

(L{bwscd.config.paths} names every file.)  The first start creates all of
it without asking anything; later starts reuse it.  Only a hash of the
account key is kept in settings.json: the key itself exists in the
connection file, which the operator uploads to Body Worn Manager and may
then remove from this machine.
"""

import json
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from twisted.logger import Logger

from bwscd import __version__

from bwscd.security import tokens

from bwscd.security import certificate

from bwscd.config import connectionfile
from bwscd.config import paths
from bwscd.config import settings as settingsFile
from bwscd.config.settings import Settings
from bwscd.policy.capabilities import Document, capabilitiesDocument
from bwscd.policy.categories import CategoryFile
from bwscd.files import readIfExists, writeAtomically

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
        return CategoryFile(os.path.join(self.directory, paths.CATEGORIES))

    @property
    def certificatePath(self) -> str:
        return os.path.join(self.directory, paths.CERTIFICATE)

    @property
    def privateKeyPath(self) -> str:
        return os.path.join(self.directory, paths.PRIVATE_KEY)

    @property
    def connectionFilePath(self) -> str:
        return os.path.join(self.directory, paths.CONNECTION_FILE)


def tokenURI(scheme: str, host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/auth/v1.0"


def create(directory: str, settings: Settings, key: str, *, port: int, https: bool) -> None:
    """
    Make a new data directory from L{Settings.new}.

    @raise ValueError: before anything is written, for settings that can't
        make a valid connection file.
    """
    settings.setListening(port=port, https=https)
    settings.checkPublicAddresses()
    if not 0 < port < 65536:
        raise ValueError("the port must be 1 to 65535")
    try:  # everything but the certificate, which is made below
        buildConnectionFile(directory, settings.servedPlain(), key)
    except connectionfile.ConnectionFileError as e:
        raise ValueError(str(e).replace("\n", "; "))
    # Readable by others (the umask permitting): the default storage root is
    # inside, and integrators' tools read it.  The secrets in it are 0600.
    os.makedirs(directory, exist_ok=True)
    if settingsFile.exists(directory):
        raise ValueError(f"{directory} already holds a bwscd data directory")
    categories = CategoryFile(os.path.join(directory, paths.CATEGORIES))
    categories.write(categories.read())
    settings.save()
    writeConnectionFile(directory, settings, key)
    log.info("new data directory {directory}: account {user}",
             directory=directory, user=settings.userName)


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
    if not settingsFile.exists(directory):
        settings, key = Settings.new(directory, publicAddresses=publicAddresses,
                                     containerType=containerType)
        create(directory, settings, key, port=port, https=https)
    settings = Settings.load(directory)
    if publicAddresses:
        settings.setPublicAddresses(publicAddresses)
    settings.setContainerType(containerType)
    settings.setListening(port=port, https=https)
    newlyPublished = settings.publish(allowWithdrawal)
    settings.save()
    writeConnectionFile(directory, settings)
    return _destination(directory, settings, newlyPublished)


def load(directory: str) -> Destination:
    """
    The data directory as L{prepare} left it, changing nothing: for a
    worker process, whose main process prepared it.
    """
    return _destination(directory, Settings.load(directory), newlyPublished=[])


def _destination(directory: str, settings: Settings, newlyPublished: list[str]) -> Destination:
    return Destination(
        directory=directory,
        userName=settings.userName,
        keyHash=settings.keyHash,
        tokenSecret=settings.tokenSecret,
        tokenURIs=tokenURIs(settings),
        capabilities=capabilitiesDocument(settings.capabilities),
        fullStoreAndReadSupport=settings.fullStoreAndReadSupport,
        newlyPublished=newlyPublished,
        encrypted=bool(settings.encryption),
    )


def tokenURIs(settings: Settings) -> list[str]:
    scheme = "https" if settings.https else "http"
    return [tokenURI(scheme, address, settings.port) for address in settings.publicAddresses]


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
    path = os.path.join(directory, paths.CERTIFICATE)
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
    writeAtomically(os.path.join(directory, paths.PRIVATE_KEY), keyPEM)
    writeAtomically(path, certificatePEM)
    log.warn(
        "new self-signed certificate for {addresses}: upload the new connection "
        "file to Body Worn Manager",
        addresses=", ".join(addresses),
    )
    return certificatePEM


def buildConnectionFile(directory: str, settings: Settings, key: str) -> bytes:
    """The connection file that C{settings} and C{key} make."""
    certificates = []
    if settings.https:
        served = _certificateFor(directory, settings.publicAddresses)
        staged = readIfExists(os.path.join(directory, paths.STAGED_CERTIFICATE)) or b""
        certificates = [
            c.public_bytes(serialization.Encoding.PEM)
            for c in x509.load_pem_x509_certificates(served)
            + (x509.load_pem_x509_certificates(staged) if staged else [])
        ]
    encryption = settings.encryption
    return connectionfile.build(
        siteName=settings.siteName,
        applicationName=APPLICATION_NAME,
        applicationVersion=__version__,
        tokenURIs=tokenURIs(settings),
        certificatesPEM=certificates,
        userName=settings.userName,
        key=key,
        containerType=settings.containerType,
        fullStoreAndReadSupport=settings.fullStoreAndReadSupport,
        publicKeyPEM=encryption["publicKey"].encode("ascii") if encryption else None,
        publicKeyId=encryption["publicKeyId"] if encryption else None,
    )


def writeConnectionFile(directory: str, settings: Settings, key: str | None = None) -> bool:
    """
    Write DATA/config.json if what it should say changed.  Without C{key},
    the key is taken from the connection file already there (only its hash
    is kept anywhere else).

    @return: whether the file changed.
    @raise ValueError: if there is no key to write.
    """
    path = os.path.join(directory, paths.CONNECTION_FILE)
    current = readIfExists(path)
    if key is None:
        if current is None:
            raise ValueError(
                f"the connection file {path} is gone and only a hash of the account "
                "key is kept: make a new key with 'bwscd credentials rotate'"
            )
        key = json.loads(current)["BlobAPIKey"]
        if not tokens.verifyKey(key, settings.keyHash):
            raise ValueError(f"{path} holds a key that is not this account's")
    wanted = buildConnectionFile(directory, settings, key)
    if wanted == current:
        return False
    writeAtomically(path, wanted)
    if current is not None:
        log.warn("the connection file changed: upload {path} to Body Worn Manager "
                 "again", path=path)
    return True
