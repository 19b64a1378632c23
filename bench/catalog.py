"""
The evidence catalog's figures (issue #14's targets):

  - a catalog of N recordings (default 1,000,000: 10 clips and 2
    bookmarks each, 100 GNSS points per recording on average), filled
    quickly through the catalog's own write functions
    (L{bwscd.catalog.records.record}, L{bwscd.catalog.index.writeRecord});
  - p95 of person, time-range and category queries (target <= 50 ms) and
    of `near` (<= 100 ms), through L{bwscd.catalog.query.CatalogQuery}'s
    own SQL on one reader connection;
  - a person's first page in the viewer (<= 1 s): the person, their first
    50 recordings and the page's HTML (L{bwscd.viewer.pages.personPage}),
    as the viewer makes it; the HTTPS round trip and the browser's
    rendering come on top (tests/test_viewer.py drives a real Chromium);
  - the reactor time catalog upkeep costs per stored object (<= 1 ms):
    the reactor thread's CPU time while a real filesystem backend's
    objects are announced one clip.stored at a time and indexed;
  - the rate of a full rebuild from the filesystem backend (>= 5,000
    recordings/s).

Prints the figures; asserts nothing.  A smaller run:

    .venv/bin/python bench/catalog.py --recordings 100000

Filling a million recordings takes about 36 minutes and 14 GB: with
C{--catalog FILE} the catalog is kept there and measured again by the next
run with the same C{--catalog} instead of being filled anew.
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bwscd.catalog import schema  # noqa: E402
from bwscd.catalog.index import CatalogIndex, writePeople, writeRecord  # noqa: E402
from bwscd.catalog.query import CatalogQuery  # noqa: E402
from bwscd.catalog.records import TrackPoint, record  # noqa: E402
from bwscd.interfaces import ContainerInfo, Digests, ObjectInfo  # noqa: E402
from bwscd.viewer.pages import personPage  # noqa: E402
from bwscd.viewer.session import Session  # noqa: E402
from bwscd.viewer.site import PAGE_SIZE  # noqa: E402

EPOCH = 1700000000  # late 2023
SPAN = 2 * 365 * 86400  # two years of recordings
CATEGORIES = [(str(n), name) for n, name in enumerate(
    ["Theft", "Traffic", "Assault", "Disturbance", "Drugs", "Burglary", "Fraud", "Vandalism",
     "Missing person", "Domestic", "Noise", "Fire", "Medical", "Arrest", "Search",
     "Interview", "Patrol", "Event", "Training", "Other"], start=1)]
# Places in Sweden's south and middle, where recordings are made.
SOUTH, NORTH, WEST, EAST = 55.3, 60.5, 11.5, 18.5


def _people(count, rng):
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _recordingOf(n, rng, people, devices, clips, bookmarks, points):
    """One synthetic recording: its ContainerInfo, ObjectInfos, contents, track."""
    person, device = rng.choice(people), rng.choice(devices)
    trigger = EPOCH + rng.randrange(SPAN)
    stamp = datetime.fromtimestamp(trigger, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{person}_{device}_{stamp}"
    lat, lon = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
    metadata = {"Triggeron": rng.choice(["Button", "Holster", "Sensor"]),
                "Triggerontime": str(trigger),
                "Triggeronlocation": f"{lat:.6f},{lon:.6f},5,{trigger}",
                "Starttime": str(trigger - 30), "Stoptime": str(trigger + clips * 60),
                "Timezone": "Europe/Stockholm", "Bwcmodel": "W110", "Status": "Complete"}
    objects = []
    digest = Digests(50_000_000, "0" * 32, "0" * 64)
    for c in range(clips):
        objects.append(ObjectInfo(name, f"{stamp}_{c}.mkv", digest, trigger + c * 60,
                                  {"Starttime": str(trigger + c * 60 - 30),
                                   "Stoptime": str(trigger + c * 60 + 30)}))
    contents = {}
    for b in range(bookmarks):
        category = rng.choice(CATEGORIES)
        bname = f"bookmark_{stamp}_{b}"
        objects.append(ObjectInfo(name, bname, Digests(20, "1" * 32, "1" * 64), trigger,
                                  {"Categoryid": category[0], "Categoryname": category[1],
                                   "Tags": f"Plate:ABC{n % 1000:03d};TriggerOn:Button"}))
        contents[bname] = f"note {n} {b} {rng.choice(['red car', 'blue bike', 'dog'])}".encode()
    track = {}
    if points:
        tname = f"{stamp}_{device}_gpstrail.json"
        objects.append(ObjectInfo(name, tname, Digests(9000, "2" * 32, "2" * 64), trigger, {}))
        track[tname] = [TrackPoint(lat + 0.0001 * p, lon + 0.0001 * p, float(p), None)
                        for p in range(points)]
    info = ContainerInfo(name, metadata, len(objects), clips * digest.length, trigger + 600)
    return info, objects, contents, track


def fill(path, count, peopleCount, clips, bookmarks, points, tracked, seed=14):
    rng = random.Random(seed)
    people = _people(peopleCount, rng)
    devices = [f"B8A44F{n:06d}" for n in range(max(1, peopleCount // 4))]
    db = schema.open(path)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")  # 256 MiB while filling
    db.execute("BEGIN")
    writePeople(db, {"Users": {p: {"name": f"Person {i % (peopleCount // 2 or 1)}",
                                   "userId": f"U-{i}", "history": []}
                               for i, p in enumerate(people)},
                     "Devices": {d: {"name": f"Camera {d[-4:]}"} for d in devices}})
    began = time.monotonic()
    for n in range(count):
        info, objects, contents, track = _recordingOf(
            n, rng, people, devices, clips, bookmarks,
            points if rng.random() < tracked else 0)
        writeRecord(db, record(info, objects, contents, known=track))
        if n % 10_000 == 9_999:
            db.execute("COMMIT")
            db.execute("BEGIN")
            rate = (n + 1) / (time.monotonic() - began)
            print(f"\r  filled {n + 1} recordings ({rate:.0f}/s)", end="", flush=True)
    db.execute("COMMIT")
    print()
    db.execute("ANALYZE")
    db.close()
    return people, time.monotonic() - began


def p95(times):
    return statistics.quantiles(times, n=20)[-1] * 1000 if len(times) > 1 else times[0] * 1000


def measure(path, people, samples, seed=15):
    """p95 in ms of each kind of query, on one reader connection (as a reader thread has)."""
    rng = random.Random(seed)
    query = CatalogQuery(path)
    db = query._db()
    kinds = {
        "person": lambda: {"person": rng.choice(people)},
        "time range (1 week)": lambda: (lambda t: {
            "from_": datetime.fromtimestamp(t, timezone.utc),
            "to": datetime.fromtimestamp(t, timezone.utc) + timedelta(days=7)})(
                EPOCH + rng.randrange(SPAN)),
        "category": lambda: {"category": rng.choice(CATEGORIES)[rng.choice((0, 1))]},
        "person + category": lambda: {"person": rng.choice(people),
                                      "category": rng.choice(CATEGORIES)[1]},
        "near (500 m)": lambda: {"near": (rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST),
                                          500)},
        "near (5 km)": lambda: {"near": (rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST),
                                         5000)},
        "q (a name)": lambda: {"q": f"U-{rng.randrange(len(people))}"},
    }
    defaults = dict(person=None, device=None, category=None, trigger=None, from_=None,
                    to=None, near=None, q=None, status=None, rejected=False, limit=50,
                    after=None)
    figures = {}
    for kind, make in kinds.items():
        times = []
        for _ in range(samples):
            filters = dict(defaults, **make())
            began = time.perf_counter()
            db.execute("BEGIN")
            query._recordings(db, filters)
            db.execute("COMMIT")
            times.append(time.perf_counter() - began)
        figures[kind] = (p95(times), statistics.median(times) * 1000)
    times = []
    for _ in range(max(5, samples // 10)):
        began = time.perf_counter()
        db.execute("BEGIN")
        query._people(db, None)
        db.execute("COMMIT")
        times.append(time.perf_counter() - began)
    figures["people (all)"] = (p95(times), statistics.median(times) * 1000)
    session = Session("clerk", "reader", "token", "csrf")
    times = []
    for _ in range(samples):
        person = rng.choice(people)
        began = time.perf_counter()
        db.execute("BEGIN")
        found = query._person(db, person)
        result = query._recordings(db, dict(defaults, person=person, limit=PAGE_SIZE))
        db.execute("COMMIT")
        personPage(found, result, session)
        times.append(time.perf_counter() - began)
    figures["viewer: person's page"] = (p95(times), statistics.median(times) * 1000)
    return figures


def catalogued(path):
    """The people of an existing catalog file, for measuring it again."""
    db = schema.open(path)
    try:
        return [row[0] for row in db.execute("SELECT uuid FROM people")]
    finally:
        db.close()


def _storageWith(directory, count, clips, bookmarks):
    """A filesystem backend holding C{count} recordings, written through the storage contract."""
    from twisted.internet.defer import inlineCallbacks
    from twisted.internet.threads import deferToThread

    from bwscd.plugins import loadBackend

    backend = loadBackend(f"filesystem:root={directory}/storage", directory)

    @inlineCallbacks
    def write():
        yield backend.open()
        for n in range(count):
            name = f"{uuid.UUID(int=n, version=4)}_B8A44F000001_20240501T{n % 240000:06d}Z"
            yield backend.putContainer(name, {"Triggerontime": str(EPOCH + n),
                                              "Status": "Complete"})
            for o in range(clips + bookmarks):
                objectName = f"c{o}.mkv" if o < clips else f"bookmark_{o}"
                writer = yield backend.openObject(
                    name, objectName, {"Starttime": str(EPOCH + n + o)}, 4, writeOnce=True)
                yield deferToThread(_writeSmall, writer)
    return backend, write


def _writeSmall(writer):
    import hashlib

    writer.write(b"data")
    writer.commit(Digests(4, hashlib.md5(b"data").hexdigest(),
                          hashlib.sha256(b"data").hexdigest()))


def upkeepAndRebuild(count, clips, bookmarks):
    """Reactor CPU per stored object under upkeep, and the full rebuild's rate."""
    from twisted.internet import reactor
    from twisted.internet.defer import inlineCallbacks

    from bwscd.catalog.rebuild import rebuild
    from bwscd.catalog.upkeep import CatalogUpkeep

    directory = tempfile.mkdtemp(prefix="bwscd-catalog-bench-")
    results = {}
    backend, write = _storageWith(directory, count, clips, bookmarks)

    @inlineCallbacks
    def run():
        began = time.monotonic()
        yield write()
        results["written"] = time.monotonic() - began
        names = []
        marker = ""
        while page := (yield backend.listContainers("", marker, 1000)):
            names += [info.name for info in page]
            marker = page[-1].name
        index = CatalogIndex(backend, os.path.join(directory, "live.sqlite"), reactor)
        yield index.open()
        # No settling: every object indexed on its own, the worst case.
        upkeep = CatalogUpkeep(index, reactor, settle=0)
        upkeep.start()
        stored = 0
        cpu = time.thread_time()
        wall = time.monotonic()
        for name in names:
            for o in range(clips + bookmarks):
                objectName = f"c{o}.mkv" if o < clips else f"bookmark_{o}"
                upkeep.emit({"type": "clip.stored", "time": "2024-05-01T00:00:00.000Z",
                             "container": name, "object": objectName, "account": "bench"})
                stored += 1
                yield upkeep.whenIdle()  # one upload at a time
        results["upkeep"] = ((time.thread_time() - cpu) / stored * 1000,
                             (time.monotonic() - wall) / stored * 1000, stored)
        rebuilt = CatalogIndex(backend, os.path.join(directory, "rebuilt.sqlite"), reactor)
        figures = yield rebuild(rebuilt, backend, None, full=True)
        results["rebuild"] = figures["containers"] / figures["seconds"]

    def main():
        d = run()
        d.addErrback(lambda f: (f.printTraceback(), results.setdefault("failed", f)))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(main)
    reactor.run()
    shutil.rmtree(directory, ignore_errors=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--bookmarks", type=int, default=2)
    parser.add_argument("--points", type=int, default=100,
                        help="GNSS points of a tracked recording (default 100)")
    parser.add_argument("--tracked", type=float, default=1.0,
                        help="the share of recordings with a track (default 1: the "
                             "issue's 100,000 points per 1,000 recordings)")
    parser.add_argument("--samples", type=int, default=200, help="queries of each kind")
    parser.add_argument("--storage-recordings", type=int, default=2000,
                        help="recordings in the filesystem backend for upkeep and rebuild "
                             "(0: skip those)")
    parser.add_argument("--data", default=None, help="directory for the catalog file")
    parser.add_argument("--catalog", default=None,
                        help="keep the filled catalog in this file, or measure the one "
                             "already there")
    arguments = parser.parse_args()
    if arguments.catalog:
        directory, path = None, arguments.catalog
    else:
        directory = tempfile.mkdtemp(prefix="bwscd-catalog-", dir=arguments.data)
        path = os.path.join(directory, "catalog.sqlite")
    try:
        if os.path.exists(path):
            people = catalogued(path)
            print(f"measuring the catalog in {path} ({len(people)} people)")
        else:
            print(f"filling {arguments.recordings} recordings ({arguments.clips} clips, "
                  f"{arguments.bookmarks} bookmarks, {arguments.points} points for "
                  f"{arguments.tracked:.0%} of them) ...")
            people, seconds = fill(path, arguments.recordings, arguments.people,
                                   arguments.clips, arguments.bookmarks, arguments.points,
                                   arguments.tracked)
            size = sum(os.path.getsize(path + suffix) for suffix in ("", "-wal")
                       if os.path.exists(path + suffix))
            print(f"filled in {seconds:.0f}s ({arguments.recordings / seconds:.0f} "
                  f"recordings/s), {size / 2**30:.2f} GiB")
        print(f"{'query':<22} {'p95 ms':>8} {'median ms':>10}")
        for kind, (high, median) in measure(path, people, arguments.samples).items():
            print(f"{kind:<22} {high:8.2f} {median:10.2f}")
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
    if arguments.storage_recordings:
        print(f"upkeep and rebuild over {arguments.storage_recordings} recordings in the "
              f"filesystem backend ({arguments.clips} clips, {arguments.bookmarks} "
              "bookmarks each) ...")
        results = upkeepAndRebuild(arguments.storage_recordings, arguments.clips,
                                   arguments.bookmarks)
        if "upkeep" in results:
            cpu, wall, stored = results["upkeep"]
            print(f"upkeep: {cpu:.3f} ms of reactor CPU per stored object "
                  f"({stored} objects, {wall:.2f} ms wall each, indexed one by one)")
            print(f"rebuild: {results['rebuild']:.0f} recordings/s from the filesystem backend")


if __name__ == "__main__":
    main()
