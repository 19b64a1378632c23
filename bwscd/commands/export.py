"""
C{bwscd export}: one recording's evidence package (L{bwscd.catalog.export})
made on the server from the data directory's storage, optionally with the
plaintext of its encrypted clips and GNSS track beside them.

It only reads, so it runs beside a running server: it takes none of the
locks that make the data directory one process's
(L{bwscd.config.processlock.claimStorage} is for what changes storage),
and opens the backend as a worker process does, without recovery.  The
chain of custody comes from the server's catalog (arrivals with their
accounts, reads, changes), as the catalog API's export has it; without a
catalog, each object's arrival is what storage keeps of it.  The export is
appended to the event log as C{recording.exported}.
"""

import getpass
import os
import sys
import tempfile

from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from bwscd.catalog.export import Exporter, PackageAborted, checkReason, readContent
from bwscd.catalog.query import CatalogQuery
from bwscd.commands import CommandError, runReactorUntil
from bwscd.commands.decrypt import privateKeyId
from bwscd.commands.keys import readPassphrase
from bwscd.config import paths
from bwscd.errors import SwiftError
from bwscd.files import fsyncDirectory, placeNew
from bwscd.interfaces import IEventSink
from bwscd.plugins import loadBackend
from bwscd.policy.events import EventLog, Events
from bwscd.threads import Pool
from bwscd.tools.encryption import (
    KEY_SUFFIX, ContentDecryptor, DecryptionError, keyObjectCandidates, loadPrivateKey,
    parseKeyObject, unwrapKey)

ERRORS = (DecryptionError, PackageAborted)

HIGH_WATER = 8 << 20
"""Bytes waiting to be written to the file beyond which reading pauses."""
LOW_WATER = 2 << 20


@implementer(IConsumer)
class FileConsumer:
    """
    A package's bytes into an open file, written on a thread of C{pool}
    (one thread: in order), so that the reactor never waits for the disk;
    the producer is paused while more than L{HIGH_WATER} bytes wait.
    """

    def __init__(self, pool, file, path: str):
        self._pool = pool
        self._file = file
        self._path = path
        self._waiting = 0
        self._paused = False
        self._producer = None
        self.error: OSError | None = None

    def registerProducer(self, producer, streaming) -> None:
        self._producer = producer

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return
        self._waiting += len(data)
        self._pool.run(self._file.write, data).addCallbacks(
            self._written, self._failed, callbackArgs=(len(data),))
        if self._waiting > HIGH_WATER and not self._paused and self._producer is not None:
            self._paused = True
            self._producer.pauseProducing()

    def _written(self, _, length: int) -> None:
        self._waiting -= length
        if self._paused and self._waiting < LOW_WATER and self._producer is not None:
            self._paused = False
            self._producer.resumeProducing()

    def _failed(self, reason) -> None:
        if self.error is None:
            self.error = reason.value
            if self._producer is not None:
                self._producer.stopReason = f"could not write {self._path}: {reason.value}"
                self._producer.stopProducing()

    def sync(self):
        """@return: L{Deferred} firing once every write is on disk."""
        def sync():
            self._file.flush()
            os.fsync(self._file.fileno())
        return self._pool.run(sync)


@implementer(IEventSink)
class AppendedEvent:
    """
    An event appended to the server's event log, which is opened for that
    one line: a running server that rotates the log meanwhile does not
    have this line land in a file it is compressing.  (Its webhooks are
    the server's: they don't get it.)
    """

    def __init__(self, path: str):
        self._path = path

    def emit(self, event: dict) -> None:
        # Never rotated from here: the server rotates its log.
        log = EventLog(self._path, rotateLength=sys.maxsize)
        try:
            log.emit(event)
        finally:
            log.close()


def _keyObjectOf(name: str, names: set[str]) -> str | None:
    """The key object that goes with object C{name}, if there is one (not for a key object)."""
    if name.endswith(KEY_SUFFIX):
        return None
    return next((candidate for candidate in keyObjectCandidates(name) if candidate in names),
                None)


class Decryption:
    """
    What makes each encrypted object of a recording into plaintext: its
    key object, read from storage, unwrapped with the operator's private
    key (which is read from where the operator keeps it, never stored).
    """

    def __init__(self, backend, pool, recording: str, privateKey, keyId: str | None):
        self._backend = backend
        self._pool = pool
        self._recording = recording
        self._privateKey = privateKey
        self._keyId = keyId

    @inlineCallbacks
    def __call__(self, objects):
        byName = {info.name: info for info in objects}
        transforms = {}
        for info in objects:
            keyName = _keyObjectOf(info.name, set(byName))
            if keyName is None:
                continue
            data = yield readContent(self._backend, self._pool, self._recording, byName[keyName])
            keyObject = parseKeyObject(data, f"{self._recording}/{keyName}")
            # RSA: not on the reactor.
            key = yield self._pool.run(unwrapKey, self._privateKey, keyObject, self._keyId)
            transforms[info.name] = (
                lambda key=key, iv=keyObject.iv, name=info.name: ContentDecryptor(key, iv, name))
        return transforms


def defaultAccount() -> str:
    """Who a command-line export is by, in the custody record: the operator's login."""
    return f"operator:{getpass.getuser()}"


@inlineCallbacks
def _export(arguments, backend, privateKey, temporary, output):
    pool = Pool(None, "export", 1)
    writes = Pool(None, "export-file", 1)
    yield backend.open(recover=False)
    events = Events([AppendedEvent(os.path.join(arguments.data, paths.EVENT_LOG))])
    catalog = os.path.join(arguments.data, paths.CATALOG)
    custody = CatalogQuery(catalog, threads=1).custody if os.path.exists(catalog) else None
    exporter = Exporter(backend, pool, events, custody=custody)
    decryption = None
    if privateKey is not None:
        decryption = Decryption(backend, pool, arguments.recording, privateKey,
                                privateKeyId(arguments.data, privateKey))
    try:
        package = yield exporter.prepare(arguments.recording, arguments.account,
                                         arguments.reason, "command", decryption)
    except SwiftError as e:
        # No such recording, or not a recording: not storage's failure.
        raise CommandError(e.message)
    consumer = FileConsumer(writes, temporary, output)
    try:
        exported = yield package.stream(consumer)
    finally:
        # Whatever happened, nothing more is written once this is done.
        yield consumer.sync()
    if consumer.error is not None:
        raise consumer.error
    return exported


def run(arguments) -> None:
    if arguments.account is None:
        arguments.account = defaultAccount()
    try:
        arguments.reason = checkReason(arguments.reason)
    except SwiftError as e:
        raise CommandError(e.message)
    output = arguments.out
    if os.path.lexists(output):
        raise CommandError(f"{output} exists: not overwriting it")
    privateKey = None
    if arguments.key is not None:
        passphrase = None
        if arguments.passphrase_file:
            passphrase = readPassphrase(arguments.passphrase_file)
        privateKey = loadPrivateKey(arguments.key, passphrase)
    try:
        backend = loadBackend(arguments.backend, arguments.data)
    except ValueError as e:
        raise CommandError(str(e))
    directory = os.path.dirname(os.path.abspath(output))
    # Readable by its owner only: it is evidence.  Named only once whole.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(output)}.",
                                     suffix=".partial")
    try:
        with open(fd, "wb") as file:
            exported = runReactorUntil(_export, arguments, backend, privateKey, file, output)
        placeNew(temporary, output)
    except FileExistsError:
        raise CommandError(f"{output} exists: not overwriting it")
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
    fsyncDirectory(directory)
    manifest = exported.files[-2]
    print(f"exported {arguments.recording} to {output}: {len(exported.files)} files, "
          f"{exported.length} bytes; manifest.json SHA-256 {manifest['sha256']}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "export",
        help="write a recording's evidence package (a ZIP with a manifest and custody record)",
        description="Write the evidence package of recording ID to a ZIP file: every "
        "object as stored, its metadata, the chain of custody and a manifest of "
        "SHA-256 hashes (check it with 'sha256sum -c manifest.sha256' after unzip).  "
        "Each object's SHA-256 is checked against the one stored with it; a "
        "difference makes no package.  It only reads, so it works while the server runs.",
    )
    parser.add_argument("recording", metavar="ID", help="the recording (its container's name)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the ZIP file to write; it must not exist")
    parser.add_argument("--reason", required=True, metavar="TEXT",
                        help="why the export is made, kept in the custody record and the event")
    parser.add_argument("--account", metavar="NAME",
                        help="who the export is by, in the custody record "
                        "(default: operator:<your user name>)")
    parser.add_argument("--key", metavar="PRIVATE.pem",
                        help="also decrypt the encrypted clips and GNSS track into "
                        "decrypted/NAME, with this private key (from 'bwscd keys generate')")
    parser.add_argument("--passphrase-file", metavar="FILE",
                        help="the private key's passphrase, in FILE's first line")
    parser.add_argument("--backend", default="filesystem",
                        help="the storage backend, as given to twistd bwscd (default: filesystem)")
    parser.set_defaults(run=run, errors=ERRORS)
