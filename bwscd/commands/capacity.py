"""
C{bwscd capacity}: free space, the intake rate over the last days and
days until full (L{bwscd.policy.capacity}), as the service's
C{capacity.low} event judges them.  It only reads, so it runs beside a
running server, opening the backend as a worker process does.
"""

import os

from twisted.internet.defer import inlineCallbacks

from bwscd.catalog.query import CatalogQuery
from bwscd.commands import CommandError, runReactorUntil
from bwscd.config import paths
from bwscd.config.settings import Settings
from bwscd.plugins import loadBackend
from bwscd.policy.capacity import Capacity


def capacityOf(data: str, backend):
    """A L{Capacity} of the data directory's storage and catalog (C{bwscd retention show} too)."""
    from twisted.internet import reactor

    path = os.path.join(data, paths.CATALOG)
    if not os.path.exists(path):
        raise CommandError(f"{path}: no catalog yet; start the server once to build it")
    return Capacity(backend, CatalogQuery(path, reactor).arrivedSince, reactor,
                    lambda: Settings.load(data).retention)


def estimateInWords(data: str, backendName: str) -> str:
    """The one line C{bwscd capacity} prints (and C{bwscd retention show} after the periods)."""
    try:
        backend = loadBackend(backendName, data)
    except ValueError as e:
        raise CommandError(str(e))
    capacity = capacityOf(data, backend)

    @inlineCallbacks
    def estimate():
        yield backend.open(recover=False)  # reads only: a server may be running
        return (yield capacity.estimate())

    return runReactorUntil(estimate).inWords()


def runCapacity(arguments) -> None:
    print(estimateInWords(arguments.data, arguments.backend))


def register(subcommands) -> None:
    capacity = subcommands.add_parser(
        "capacity", help="free space, intake rate and days until storage is full",
        description="Free space of the storage (where the backend can say), what arrived "
        "per day over the last days (from the catalog) and the days until full at that "
        "rate.  Safe while the server runs: it only reads.")
    capacity.add_argument(
        "--backend", default="filesystem",
        help="the storage backend, as given to twistd bwscd (default: filesystem)")
    capacity.set_defaults(run=runCapacity, errors=())
