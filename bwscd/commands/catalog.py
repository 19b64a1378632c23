"""
C{bwscd catalog rebuild}: the evidence catalog made again from storage and
the event log (L{bwscd.catalog.rebuild}).

It is built into a file of its own beside the catalog, then put in its
place: an interrupted rebuild leaves the catalog as it was.  Refused while
a server holds the data directory: the server is the catalog's one writer,
and it keeps the catalog up to date itself (a server started without a
catalog rebuilds it in the background).
"""

import os

from bwscd.catalog.index import CatalogIndex
from bwscd.catalog.rebuild import rebuild
from bwscd.commands import CommandError, runReactorUntil
from bwscd.config import paths
from bwscd.config.processlock import InUse, claimStorage
from bwscd.config.settings import Settings
from bwscd.plugins import loadBackend

SIGNED = "StoreSignedVideo"


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def runRebuild(arguments) -> None:
    data = arguments.data
    try:
        backend = loadBackend(arguments.backend, data)
    except ValueError as e:
        raise CommandError(str(e))
    settings = Settings.load(data)
    try:
        # Held until the command exits: no server starts meanwhile.
        claimStorage(data, backend)
    except InUse as e:
        raise CommandError(f"{e}; a running server keeps the catalog up to date "
                           f"itself (to have it rebuild, stop it, remove "
                           f"{paths.CATALOG}, and start it again)")
    path = os.path.join(data, paths.CATALOG)
    building = path + ".rebuild"
    for suffix in ("", "-wal", "-shm"):
        _remove(building + suffix)
    index = CatalogIndex(backend, building, signed=SIGNED in (settings.capabilities or ()))

    def start():
        d = backend.open(recover=False)  # reads only: what a crash left is the server's
        d.addCallback(lambda _: rebuild(index, backend, os.path.join(data, paths.EVENT_LOG),
                                        full=True))
        return d

    # The reactor's shutdown closes the catalog (its writer's last call).
    figures = runReactorUntil(start)
    for suffix in ("-wal", "-shm"):
        _remove(path + suffix)  # never applied to the new file
    os.replace(building, path)
    rate = figures["containers"] / figures["seconds"] if figures["seconds"] else 0
    print(f"catalog rebuilt: {figures['containers']} recordings, {figures['events']} "
          f"events replayed, in {figures['seconds']:.1f}s ({rate:.0f} recordings/s)")


def register(subcommands) -> None:
    catalog = subcommands.add_parser(
        "catalog", help="the evidence catalog",
        description="The evidence catalog of recordings (docs/catalog.md).")
    actions = catalog.add_subparsers(dest="action", required=True)
    rebuilding = actions.add_parser(
        "rebuild", help="make the catalog again from storage and the event log",
        description="Make the evidence catalog again from every container in storage "
        "and the custody events of the event log, then put it in place of the old "
        "one.  Stop the server first: a running one holds the data directory, and "
        "keeps the catalog up to date itself.")
    rebuilding.add_argument(
        "--backend", default="filesystem",
        help="the storage backend, as given to twistd bwscd (default: filesystem)")
    rebuilding.set_defaults(run=runRebuild, errors=())
