"""
The Swift backend's contract methods (L{bwscd.interfaces.IStorageBackend}),
each a few requests to the account run in the backend's pool of threads,
and L{backend}, the factory the plugin names.
"""

import json
import time

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

from bwscd import constraints
from bwscd.backends import common, storemeta
from bwscd.backends.swift import objects
from bwscd.backends.swift.transfer import (
    STORAGE, NameTaken, PlainWriter, SegmentedWriter, openReader, refusal, startPut, unreachable)
from bwscd.backends.remote import (
    Endpoint, Response, Unreachable, connectionOptions, listedTime)
from bwscd.backends.swift.upstream import Account, KeystoneAuth, TempAuth
from bwscd.errors import Conflict, NotFound
from bwscd.interfaces import IStorageBackend
from bwscd.plugins import checkOptions, parseSize
from bwscd.threads import Pool

log = Logger("bwscd.backends.swift")

THREADS = 8
"""Requests to the store at once for metadata, listings and state: the pool's size."""

LISTING_PAGE = 10_000
"""Swift's own limit on a listing's length."""


@implementer(IStorageBackend)
class SwiftBackend:
    """
    Containers and objects in a Swift account, under C{prefix}.

    @ivar own: the Swift container of bwscd's own objects (L{objects}).
    """

    lockPath = None  # several services may share a store; the store decides

    def __init__(self, account: Account, prefix: str, segmentSize: int | None,
                 description: str):
        self.account = account
        self.prefix = prefix
        self.own = prefix + objects.OWN
        self.description = description
        self.limits: dict = {}
        self.segmentSize = segmentSize
        self._pool = Pool(None, "swift", THREADS)
        self._uploads = common.UploadsUnderWay()

    # Names.

    def storeName(self, container: str) -> str:
        return self.prefix + container

    def _run(self, function, *args):
        """C{function(*args)} in the backend's pool, the store's unreadable answers a 503."""
        return self._pool.run(common.fromStore(function, STORAGE, log), *args)

    # Requests, on a thread.

    def call(self, method, container=None, name=None, headers=None, body=None, query=None,
             what="", path=None) -> Response:
        """One small request; the store's failure as the API's 503."""
        try:
            return self.account.request(method, container, name, headers, body, query,
                                        path=path)
        except Unreachable as e:
            raise unreachable(what or f"{method} {container or ''}/{name or ''}", e)

    def putOwn(self, path: str, data: bytes) -> None:
        answer = self.call("PUT", self.own, path, {}, data, what=f"writing {path}")
        if answer.status != 201:
            raise refusal(f"writing {path}", answer.status, answer.reason)

    def removeOwn(self, path: str) -> None:
        self.removeQuietly(self.own, path)

    def removeQuietly(self, stored: str, name: str) -> None:
        answer = self.call("DELETE", stored, name, what=f"removing {stored}/{name}")
        if answer.status not in (204, 404):
            raise refusal(f"removing {stored}/{name}", answer.status, answer.reason)

    def _listed(self, stored: str, prefix: str = "", marker: str = "", limit: int = LISTING_PAGE):
        what = f"listing {stored or 'the account'}"
        answer = self.call("GET", stored, query={"format": "json", "prefix": prefix,
                                                "marker": marker, "limit": str(limit)},
                           what=what)
        if answer.status == 404:
            return None
        if answer.status not in (200, 204):
            raise refusal(what, answer.status, answer.reason)
        return answer.json() if answer.body else []

    def _listedAll(self, stored: str, prefix: str = ""):
        entries, marker = [], ""
        while page := self._listed(stored, prefix, marker):
            entries.extend(page)
            marker = page[-1]["name"]
        return entries

    def removeSegments(self, upload: str) -> None:
        for entry in self._listedAll(self.own, objects.segmentsPrefix(upload)):
            self.removeOwn(entry["name"])

    def placedBy(self, container: str, name: str, upload: str):
        """
        The object under C{name} and whether it is the large upload
        C{upload}'s manifest; L{None} if there is none.
        """
        answer = self._head(container, name)
        if answer is None:
            return None
        ours = objects.metadataOf(constraints.OBJECT, answer.headers).get(objects.UPLOAD) == upload
        return self.completeInfo(container, name, answer), ours

    def blockingObjectInfo(self, container: str, name: str):
        answer = self._head(container, name)
        return None if answer is None else self.completeInfo(container, name, answer)

    def completeInfo(self, container, name, answer):
        """The object C{answer} describes, its SHA-256 measured and kept if the store had none."""
        info = objects.objectInfo(container, name, answer)
        if info.digests.sha256:
            return info
        log.warn("{container}/{name} had no SHA-256 in the store: measured and kept",
                 container=container, name=name)
        measured = common.measuredFrom(openReader(self, container, name, 0, None),
                                       info.digests.length)
        return self._redescribe(container, name, answer, info.metadata,
                                {storemeta.SHA256: measured.sha256})

    def _redescribe(self, container, name, answer, metadata, own):
        """L{describe} an object C{answer} gave, bwscd's keys there kept unless in C{own}."""
        _, kept = storemeta.ownMetadata(objects.metadataOf(constraints.OBJECT, answer.headers))
        return self.describe(container, name, metadata, answer.header("content-type"),
                             {**kept, **own})

    def describe(self, container, name, metadata, contentType, own):
        """Set an object's metadata (and bwscd's own keys beside), and say what it is now."""
        answer = self.call("POST", self.storeName(container), name, {
            **({"Content-Type": contentType} if contentType else {}),
            **objects.metadataHeaders(constraints.OBJECT, {**metadata, **own})},
            what=f"setting the metadata of {container}/{name}")
        if answer.status == 404:
            raise NotFound(f"no object {name} in {container}")
        if answer.status // 100 != 2:
            raise refusal(f"setting the metadata of {container}/{name}", answer.status,
                          answer.reason)
        return self.blockingObjectInfo(container, name)

    def _containerInfo(self, container: str):
        answer = self._containerHead(container)
        if answer is None:
            return None
        # Swift counts a large object's manifest, not its bytes, in the
        # container's totals; its listing gives each object's length.
        listed = self._listedAll(self.storeName(container)) or []
        return objects.containerInfo(container, answer, len(listed),
                                     sum(e["bytes"] for e in listed),
                                     max((listedTime(e["last_modified"]) for e in listed),
                                         default=0.0))

    # The contract.

    def open(self, recover=True):
        return self._run(self._open, recover)

    def _open(self, recover):
        info = self.call("GET", path="/info", what="reading the cluster's /info")
        self.limits = info.json().get("swift", {}) if info.status == 200 else {}
        largest = self.limits.get("max_file_size", 5 << 30)
        if self.segmentSize is None or self.segmentSize > largest:
            self.segmentSize = largest
        answer = self.call("PUT", self.own, what="creating bwscd's own container")
        if answer.status not in (201, 202):
            raise refusal("creating bwscd's own container", answer.status, answer.reason)
        if recover:
            self._sweep()

    def _sweep(self) -> None:
        """
        Remove the segments of large uploads that a crash interrupted: those
        whose record is older than this start and whose manifest is neither
        under its name nor its conflict copy's.
        """
        started = time.time()
        for entry in self._listedAll(self.own, "uploads/"):
            if listedTime(entry["last_modified"]) >= started:
                continue  # another service's, under way
            upload = entry["name"].split("/", 1)[1]
            answer = self.call("GET", self.own, entry["name"], what="reading an upload record")
            if answer.status != 200:
                continue
            record = json.loads(answer.body)
            names = [record["name"]]
            if record.get("sha256"):
                names.append(common.conflictName(record["name"], record["sha256"]))
            if not any((self.placedBy(record["container"], name, upload) or (None, False))[1]
                       for name in names):
                self.removeSegments(upload)
                log.info("removed the segments of an interrupted upload to {container}/{name}",
                         container=record["container"], name=record["name"])
            self.removeOwn(entry["name"])

    def containerInfo(self, container):
        return self._run(self._containerInfo, container)

    def putContainer(self, container, metadata):
        return self._run(self._putContainer, container, metadata)

    def _putContainer(self, container, metadata):
        answer = self.call("PUT", self.storeName(container),
                           headers=objects.metadataHeaders(constraints.CONTAINER, metadata,
                                                           merge=True),
                           what=f"creating container {container}")
        if answer.status not in (201, 202):
            raise refusal(f"creating container {container}", answer.status, answer.reason)
        return answer.status == 201

    def updateContainer(self, container, metadata):
        return self._run(self._updateContainer, container, metadata)

    def _updateContainer(self, container, metadata):
        what = f"updating container {container}"
        answer = self.call("POST", self.storeName(container),
                           headers=objects.metadataHeaders(constraints.CONTAINER, metadata,
                                                           merge=True), what=what)
        if answer.status == 404:
            raise NotFound(f"no container {container}")
        if answer.status // 100 != 2:
            raise refusal(what, answer.status, answer.reason)
        return self._containerInfo(container)

    def objectInfo(self, container, name):
        return self._run(self.blockingObjectInfo, container, name)

    def replaceObjectMetadata(self, container, name, metadata):
        objects.storable(metadata, self.limits)
        return self._run(self._replaceObjectMetadata, container, name, metadata)

    def _replaceObjectMetadata(self, container, name, metadata):
        answer = self._head(container, name)
        if answer is None:
            raise NotFound(f"no object {name} in {container}")
        return self._redescribe(container, name, answer, metadata, {})

    def openObject(self, container, name, metadata, length, writeOnce=False,
                   contentType=None):
        objects.storable(metadata, self.limits)
        own = {} if contentType else {storemeta.UNTYPED: "1"}
        return self._run(self._openObject, container, name, metadata, own, length,
                              writeOnce, constraints.contentType(name, contentType))

    def _openObject(self, container, name, metadata, own, length, writeOnce, contentType):
        what = f"writing {container}/{name}"
        replaced = None
        if not writeOnce:
            # A large object replaced leaves its segments: removed once the
            # new one is stored.
            before = self._head(container, name)
            if before is not None:
                replaced = objects.metadataOf(constraints.OBJECT, before.headers).get(
                    objects.UPLOAD)
        release = self._uploads.admit(container)
        try:
            if length is not None and length <= self.segmentSize:
                headers = {"Content-Type": contentType,
                           **objects.metadataHeaders(constraints.OBJECT, {**metadata, **own})}
                if writeOnce:
                    headers["If-None-Match"] = "*"
                try:
                    put = startPut(self, self.storeName(container), name, headers, what)
                except NameTaken:
                    pass  # evidence sent again, or other bytes: a name chosen on commit
                else:
                    return PlainWriter(self, put, container, name, metadata, own,
                                       contentType, replaced, release)
            if self._containerHead(container) is None:
                raise NotFound(f"no container {container}")
            writer = SegmentedWriter(self, container, name, metadata, own, contentType,
                                     writeOnce, self.segmentSize, replaced, release)
            writer.begin()
            return writer
        except BaseException:
            release()
            raise

    def deleteObject(self, container, name):
        return self._run(self._deleteObject, container, name)

    def _deleteObject(self, container, name):
        what = f"removing {container}/{name}"
        answer = self._head(container, name)
        if answer is None:
            return None
        info = objects.objectInfo(container, name, answer)
        large = answer.header("x-static-large-object", "").lower() == "true"
        removed = self.call("DELETE", self.storeName(container), name,
                            {"Accept": "application/json"} if large else None,
                            query={"multipart-manifest": "delete"} if large else None,
                            what=what)
        if removed.status == 404:
            return None
        if removed.status // 100 != 2:
            raise refusal(what, removed.status, removed.reason)
        if large:
            # The SLO middleware answers 200 whatever happened, and says so in the body.
            outcome = removed.json()
            status = outcome.get("Response Status", "")
            if not status.startswith(("2", "404")):
                raise common.storageError(what, f"{status}: {outcome.get('Errors')}", False,
                                          log, "Swift store")
        return info

    def deleteContainer(self, container):
        return self._run(self._deleteContainer, container)

    def _deleteContainer(self, container):
        what = f"removing container {container}"
        if self._uploads.into(container):
            raise Conflict(f"uploads into {container} are under way")
        answer = self.call("DELETE", self.storeName(container), what=what)
        if answer.status == 404:
            return False
        if answer.status == 409:
            raise Conflict(f"container {container} is not empty")
        if answer.status // 100 != 2:
            raise refusal(what, answer.status, answer.reason)
        return True

    @inlineCallbacks
    def listContainers(self, prefix, marker, limit):
        names = yield self._run(self._containerNames, prefix, marker, limit)
        found = yield gatherResults([self.containerInfo(name) for name in names],
                                    consumeErrors=True)
        return [info for info in found if info is not None]

    def _containerNames(self, prefix, marker, limit):
        names, marker = [], self.prefix + marker
        while len(names) < limit:
            page = self._listed(None, self.prefix + prefix, marker, min(limit, LISTING_PAGE))
            if not page:
                break
            names += [e["name"][len(self.prefix):] for e in page if e["name"] != self.own]
            marker = page[-1]["name"]
        return names[:limit]

    @inlineCallbacks
    def listObjects(self, container, prefix, marker, limit):
        listed = yield self._run(self._listed, self.storeName(container), prefix, marker,
                                      min(limit, LISTING_PAGE))
        if listed is None:
            raise NotFound(f"no container {container}")
        # A listing has no metadata nor SHA-256: a HEAD of each object has.
        found = yield gatherResults([self.objectInfo(container, e["name"]) for e in listed],
                                    consumeErrors=True)
        return [info for info in found if info is not None]

    def readObject(self, container, name, offset, length):
        return self._run(openReader, self, container, name, offset, length)

    def readState(self, name):
        return self._run(self._readState, name)

    def _readState(self, name):
        answer = self.call("GET", self.own, objects.statePath(name), what=f"reading {name}")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise refusal(f"reading {name}", answer.status, answer.reason)
        return answer.body

    def writeState(self, name, data):
        return self._run(self.putOwn, objects.statePath(name), data)

    # HEADs.

    def _head(self, container, name):
        what = f"reading {container}/{name}"
        answer = self.call("HEAD", self.storeName(container), name, what=what)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise refusal(what, answer.status, answer.reason)
        return answer

    def _containerHead(self, container):
        what = f"reading container {container}"
        answer = self.call("HEAD", self.storeName(container), what=what)
        if answer.status == 404:
            return None
        if answer.status // 100 != 2:
            raise refusal(what, answer.status, answer.reason)
        return answer


def backend(dataDirectory: str, options: dict[str, str]) -> SwiftBackend:
    """
    C{swift:auth=URL:user=U:key=K (or key_file=PATH):prefix=P:storage_url=URL:
    cafile=PATH:timeout=S:segment_size=SIZE}, and for Keystone (an C{auth}
    URL ending C{/v3}) C{project=P:domain=D:project_domain=D:region=R:
    interface=I}: containers named C{P}+name in the Swift account that the
    auth service gives C{user}.
    """
    keystone = {"project", "domain", "project_domain", "region", "interface"}
    known = {"auth", "user", "key", "key_file", "prefix", "storage_url", "cafile", "timeout",
             "segment_size", *keystone}
    checkOptions("swift", options, known)
    isKeystone = options.get("auth", "").rstrip("/").endswith("/v3")
    missing = [o for o in ("auth", "user") if not options.get(o)]
    if not (options.get("key") or options.get("key_file")):
        missing.append("key or key_file")
    if isKeystone and not options.get("project"):
        missing.append("project (for Keystone)")
    if missing:
        raise ValueError(f"swift backend: missing option(s) {', '.join(missing)}")
    given = sorted(o for o in keystone if o in options)
    if given and not isKeystone:
        raise ValueError(f"swift backend: {', '.join(given)} only go with Keystone: an auth "
                         "URL ending /v3")
    key, context, timeout = connectionOptions("swift", options, "key")
    try:
        endpoint = Endpoint(options["auth"], context, timeout)
        if isKeystone:
            domain = options.get("domain", "Default")
            auth = KeystoneAuth(endpoint, options["user"], key, options["project"], domain,
                                options.get("project_domain", domain), options.get("region"),
                                options.get("interface", "public"))
        else:
            auth = TempAuth(endpoint, options["user"], key)
        account = Account(auth, options.get("storage_url"), context, timeout)
        if options.get("storage_url"):
            Endpoint(options["storage_url"], context, timeout)
    except ValueError as e:
        raise ValueError(f"swift backend: {e}") from None
    segmentSize = (parseSize("swift", "segment_size", options["segment_size"])
                   if "segment_size" in options else None)
    prefix = options.get("prefix", "")
    description = (f"the Swift account of {options['user']}"
                   + (f" in project {options['project']}" if isKeystone else "")
                   + f" at {options['auth']}"
                   + (f", containers prefixed {prefix!r}" if prefix else ""))
    return SwiftBackend(account, prefix, segmentSize, description)
