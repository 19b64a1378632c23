"""
C{bwscd verify [RECORDING|--all]}: the fixity check on demand
(L{bwscd.policy.fixity}): every object of one recording, or of all of
storage, read flat out and its SHA-256 compared with the one recorded at
arrival.  Each mismatch or missing object is an C{evidence.corrupt} event
(account: the operator), appended to the event log and written to the
catalog's anomalies; the exit status is 1 if there was any.

Refused while a server holds the data directory, as C{bwscd catalog
rebuild} is: the server is the catalog's one writer, and its own scrub
(C{--scrub-period}) does the same check in the background.
"""

import getpass
import os
import time

from twisted.internet.defer import inlineCallbacks
from zope.interface import implementer

from bwscd.catalog.index import CatalogIndex
from bwscd.catalog.query import CatalogQuery
from bwscd.commands import CommandError, runReactorUntil
from bwscd.commands.export import AppendedEvent
from bwscd.config import paths
from bwscd.config.processlock import InUse, claimStorage
from bwscd.interfaces import IEventSink
from bwscd.plugins import loadBackend
from bwscd.policy.events import Events
from bwscd.policy.fixity import FixityCheck
from bwscd.policy.scrub import PAGE
from bwscd.threads import Pool


@implementer(IEventSink)
class Kept:
    """The events of this run, for the catalog at its end."""

    def __init__(self):
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)


@inlineCallbacks
def _verify(backend, check, index, kept, recording):
    yield backend.open(recover=False)  # reads only: what a crash left is the server's
    if recording is not None:
        if (yield backend.containerInfo(recording)) is None:
            raise CommandError(f"{recording}: no such recording in storage")
        yield check.container(recording)
    else:
        marker = ""
        while page := (yield backend.listContainers("", marker, PAGE)):
            marker = page[-1].name
            for info in page:
                yield check.container(info.name)
    if kept.events:
        yield index.open()
        yield index.addEvents(kept.events)


def runVerify(arguments) -> None:
    data = arguments.data
    if (arguments.recording is None) == (not arguments.all):
        raise CommandError("name one RECORDING, or --all")
    try:
        backend = loadBackend(arguments.backend, data)
    except ValueError as e:
        raise CommandError(str(e))
    try:
        # Held until the command exits: no server starts meanwhile.
        claimStorage(data, backend)
    except InUse as e:
        raise CommandError(f"{e}; a running server checks storage itself in the background "
                           f"(--scrub-period), or stop it to verify now")
    from twisted.internet import reactor

    kept = Kept()
    events = Events([AppendedEvent(os.path.join(data, paths.EVENT_LOG)), kept])
    catalogPath = os.path.join(data, paths.CATALOG)
    known = CatalogQuery(catalogPath, reactor).objectDigests \
        if os.path.exists(catalogPath) else None
    check = FixityCheck(backend, Pool(reactor, "verify", 1), events, getpass.getuser(),
                        reactor, known=known)
    began = time.monotonic()
    runReactorUntil(_verify, backend, check, CatalogIndex(backend, catalogPath, reactor),
                    kept, arguments.recording)
    seconds = time.monotonic() - began
    for finding in check.findings:
        print(f"{finding.container}/{finding.object}: {finding.problem} "
              f"(expected {finding.expected}, found {finding.found})")
    rate = check.bytes / seconds / 1e6 if seconds else 0.0
    print(f"verified {check.objects} objects, {check.bytes} bytes in {seconds:.1f}s "
          f"({rate:.1f} MB/s): {len(check.findings)} corrupt or missing")
    if check.findings:
        raise CommandError(f"{len(check.findings)} objects corrupt or missing; each is an "
                           "evidence.corrupt event, and nothing was changed")


def register(subcommands) -> None:
    verifying = subcommands.add_parser(
        "verify", help="check stored objects against the SHA-256 recorded at arrival",
        description="Read every object of RECORDING (or, with --all, of all storage) and "
        "compare its SHA-256 with the one recorded when it arrived.  A mismatch or a "
        "missing object is reported, as an evidence.corrupt event and in the catalog, "
        "never repaired or deleted; the exit status is then 1.  Stop the server first "
        "(it checks in the background itself: --scrub-period).")
    verifying.add_argument("recording", nargs="?", metavar="RECORDING",
                           help="the recording's container name")
    verifying.add_argument("--all", action="store_true", help="every container in storage")
    verifying.add_argument(
        "--backend", default="filesystem",
        help="the storage backend, as given to twistd bwscd (default: filesystem)")
    verifying.set_defaults(run=runVerify, errors=())
