"""
The S3 backend's contract methods (L{bwscd.interfaces.IStorageBackend}),
each a few requests to the bucket run in the backend's pool of threads,
and L{backend}, the factory the plugin names.
"""

import email.utils
import functools
import json
import time

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

from bwscd import constraints
from bwscd.backends import common, storemeta
from bwscd.backends.remote import (
    BodyReader, Endpoint, Unreachable, connectionOptions, listedTime, rangeHeaders, readerOf)
from bwscd.backends.s3 import keys
from bwscd.backends.s3.bucket import Bucket, elements, text
from bwscd.backends.s3.transfer import STORAGE, S3Writer, newStagingKey, refusal, unreachable
from bwscd.errors import BadRequest, Conflict, NotFound
from bwscd.interfaces import ContainerInfo, Digests, IStorageBackend, ObjectInfo
from bwscd.plugins import checkOptions, parseSize
from bwscd.threads import Pool

log = Logger("bwscd.backends.s3")

THREADS = 8
"""Requests to the store at once for metadata, listings and state: the pool's size."""
PART_THREADS = 32
"""Parts sent at once, one per upload: as many as the uploads bwscd takes at once (32)."""
LISTING_PAGE = 1000
"""S3's own limit on a listing's length."""
MIN_PART, MAX_PART = 5 << 20, 5 << 30
"""The sizes S3 allows a part (all but the last)."""


@implementer(IStorageBackend)
class S3Backend:
    """Containers and objects as keys of an S3 bucket, under C{prefix}."""

    lockPath = None  # several services may share a store; the store decides

    def __init__(self, bucket: Bucket, prefix: str, partSize: int, metadataSize: int,
                 description: str):
        self.bucket = bucket
        self.keys = keys.Keys(prefix)
        self.partSize = partSize
        self.metadataSize = metadataSize
        self.description = description
        self._pool = Pool(None, "s3", THREADS)
        # Each upload has at most one part on its way: a thread for each.
        self.parts = Pool(None, "s3-parts", PART_THREADS)
        self._uploads = common.UploadsUnderWay()

    def _run(self, function, *args):
        """C{function(*args)} in the backend's pool, the store's unreadable answers a 503."""
        return self._pool.run(common.fromStore(function, STORAGE, log), *args)

    # Requests, on a thread.

    def call(self, method, key="", what="", **options):
        """One small request; the store's failure as the API's 503."""
        try:
            return self.bucket.request(method, key, **options)
        except Unreachable as e:
            raise unreachable(what or f"{method} {key}", e)

    def putOwn(self, key: str, data: bytes) -> None:
        answer = self.call("PUT", key, f"writing {key}", body=data)
        if answer.status != 200:
            raise refusal(f"writing {key}", answer.status, answer.reason, answer.body)

    def _getOwn(self, key: str) -> bytes | None:
        answer = self.call("GET", key, f"reading {key}")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise refusal(f"reading {key}", answer.status, answer.reason, answer.body)
        return answer.body

    def removeQuietly(self, key: str) -> None:
        answer = self.call("DELETE", key, f"removing {key}")
        if answer.status not in (200, 204, 404):
            raise refusal(f"removing {key}", answer.status, answer.reason, answer.body)

    def _listed(self, prefix: str, after: str = "", limit: int = LISTING_PAGE):
        """Up to C{limit} keys starting with C{prefix} after C{after}: (key, size, time)."""
        query = {"list-type": "2", "prefix": prefix, "max-keys": str(min(limit, LISTING_PAGE))}
        if after:
            query["start-after"] = after
        answer = self.call("GET", "", f"listing {prefix}", query=query)
        if answer.status != 200:
            raise refusal(f"listing {prefix}", answer.status, answer.reason, answer.body)
        return [(text(e, "Key"), int(text(e, "Size", "0")), listedTime(text(e, "LastModified")))
                for e in elements(answer.body, "Contents")]

    def _listedAll(self, prefix: str, after: str = "", limit: int | None = None):
        found = []
        while limit is None or len(found) < limit:
            page = self._listed(prefix, after, LISTING_PAGE if limit is None
                                else limit - len(found))
            found += page
            if len(page) < LISTING_PAGE:
                break
            after = page[-1][0]
        return found

    # Objects, on a thread.

    def _head(self, container, name):
        what = f"reading {container}/{name}"
        answer = self.call("HEAD", self.keys.object(container, name), what)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise refusal(what, answer.status, answer.reason)
        return answer

    def blockingObjectInfo(self, container: str, name: str):
        answer = self._head(container, name)
        return None if answer is None else self._infoOf(container, name, answer)

    def _infoOf(self, container, name, answer) -> ObjectInfo:
        """
        What a C{HEAD} (or C{GET}) says of an object: its digests from its
        metadata, or from the record written beside one that went up in
        parts, or else measured now (an object put there by other means).
        """
        metadata, own = storemeta.ownMetadata(
            storemeta.metadataOf(keys.META, answer.headers, encoded=True))
        length = int(answer.header("content-length", "0"))
        if answer.status == 206:
            length = int(answer.header("content-range").rsplit("/", 1)[1])
        etag = (answer.header("etag") or "").strip('"')
        md5, sha256 = own.get(storemeta.MD5) or etag, own.get(storemeta.SHA256, "")
        if not sha256 and "-" in etag:
            record = self._getOwn(self.keys.digests(container, name))
            if record is not None:
                record = json.loads(record)
                if record.get("etag") == etag and record.get("length") == length:
                    md5, sha256 = record["md5"], record["sha256"]
        if not sha256 or "-" in md5:
            measured = self._measure(container, name, length)
            md5, sha256 = measured.md5, measured.sha256
            # Kept beside it, as for an object that went up in parts: measured once.
            self.putOwn(self.keys.digests(container, name), json.dumps({
                "length": length, "md5": md5, "sha256": sha256, "etag": etag}).encode())
        modified = email.utils.parsedate_to_datetime(answer.header("last-modified")).timestamp()
        typed = storemeta.UNTYPED not in own
        return ObjectInfo(container, name, Digests(length, md5, sha256), modified, metadata,
                          contentType=answer.header("content-type") if typed else None)

    def _measure(self, container, name, length) -> Digests:
        log.warn("{container}/{name} has no digests of bwscd's in the store: measuring it",
                 container=container, name=name)
        what = f"reading {container}/{name}"
        try:
            connection, answer = self.bucket.openGet(self.keys.object(container, name), {})
        except Unreachable as e:
            raise unreachable(what, e)
        placeholder = ObjectInfo(container, name, Digests(length, "", ""), 0)
        return common.measuredFrom(BodyReader(placeholder, connection, answer, length,
                                              functools.partial(unreachable, what)), length)

    def _openReader(self, container, name, offset, length):
        what = f"reading {container}/{name}"
        try:
            connection, answer = self.bucket.openGet(self.keys.object(container, name),
                                                     rangeHeaders(offset, length))
        except Unreachable as e:
            raise unreachable(what, e)
        return readerOf(connection, answer, offset, length,
                        lambda head: self._infoOf(container, name, head),
                        lambda: self.blockingObjectInfo(container, name),
                        functools.partial(refusal, what), functools.partial(unreachable, what))

    # Containers, on a thread.

    def _containerRecord(self, container):
        record = self._getOwn(self.keys.container(container))
        return None if record is None else json.loads(record)

    def _containerInfo(self, container, record=None):
        record = record if record is not None else self._containerRecord(container)
        if record is None:
            return None
        listed = self._listedAll(self.keys.objects(container))
        return ContainerInfo(container, record["metadata"], len(listed),
                             sum(size for _, size, _ in listed),
                             max([record["created"], *(when for _, _, when in listed)]))

    # The contract.

    def open(self, recover=True):
        self.parts.startUntilShutdown()  # upload threads hand it parts
        return self._run(self._open, recover)

    def _open(self, recover):
        answer = self.call("HEAD", "", f"reaching bucket {self.bucket.name}")
        if answer.status == 404:
            raise refusal(f"reaching bucket {self.bucket.name} (it does not exist)", 503)
        if recover:
            self._sweep()

    def _sweep(self) -> None:
        """
        Abort the multipart uploads and remove the staged evidence that a
        crash left: those begun before this start (not another service's).
        """
        started = time.time()
        answer = self.call("GET", "", "listing multipart uploads",
                           query={"uploads": "", "prefix": self.keys.prefix})
        if answer.status == 200:
            for upload in elements(answer.body, "Upload"):
                key, upload, begun = (text(upload, "Key"), text(upload, "UploadId"),
                                      listedTime(text(upload, "Initiated")))
                if begun < started:
                    self.call("DELETE", key, "aborting an upload", query={"uploadId": upload})
                    log.info("aborted the interrupted upload of {key}", key=key)
        for key, _, when in self._listedAll(self.keys.own + keys.STAGING):
            if when < started:
                self.removeQuietly(key)

    def containerInfo(self, container):
        return self._run(self._containerInfo, container)

    def putContainer(self, container, metadata):
        return self._run(self._putContainer, container, metadata)

    def _putContainer(self, container, metadata):
        return self._merged(container, metadata, create=True)[0]

    def updateContainer(self, container, metadata):
        return self._run(self._updateContainer, container, metadata)

    def _updateContainer(self, container, metadata):
        return self._containerInfo(container, self._merged(container, metadata)[1])

    def _merged(self, container, metadata, create=False):
        """
        C{metadata} merged into the container's record, which C{create}
        makes if missing: whether it did, and the record.

        @raise NotFound: there is no such container, and not C{create}.
        """
        record = self._containerRecord(container)
        created = record is None
        if created and not create:
            raise NotFound(f"no container {container}")
        if created:
            record = {"metadata": {}, "created": time.time()}
        record["metadata"] = constraints.mergeMetadata(record["metadata"], metadata)
        self.putOwn(self.keys.container(container), json.dumps(record).encode())
        return created, record

    def objectInfo(self, container, name):
        return self._run(self.blockingObjectInfo, container, name)

    def replaceObjectMetadata(self, container, name, metadata):
        keys.storable(metadata, self.metadataSize)
        return self._run(self._replaceObjectMetadata, container, name, metadata)

    def _replaceObjectMetadata(self, container, name, metadata):
        """S3 can't change metadata in place: the object copied onto itself, in the store."""
        answer = self._head(container, name)
        if answer is None:
            raise NotFound(f"no object {name} in {container}")
        info = self._infoOf(container, name, answer)
        _, own = storemeta.ownMetadata(
            storemeta.metadataOf(keys.META, answer.headers, encoded=True))
        own.update({storemeta.SHA256: info.digests.sha256, storemeta.MD5: info.digests.md5})
        key = self.keys.object(container, name)
        what = f"setting the metadata of {container}/{name}"
        copied = self.call("PUT", key, what, headers={
            "Content-Type": answer.header("content-type"),
            **storemeta.headersFor(keys.META, {**metadata, **own}, encoded=True),
            "x-amz-copy-source": self.bucket.copySource(key),
            "x-amz-metadata-directive": "REPLACE"})
        if copied.status != 200 or elements(copied.body, "Error"):
            raise refusal(what, copied.status, copied.reason, copied.body)
        return self.blockingObjectInfo(container, name)

    def openObject(self, container, name, metadata, length, writeOnce=False,
                   contentType=None):
        keys.storable(metadata, self.metadataSize)
        if len(self.keys.object(container, name).encode("utf-8")) > keys.MAX_KEY_LENGTH:
            raise BadRequest(f"{container}/{name} is longer than this store's keys")
        own = {} if contentType else {storemeta.UNTYPED: "1"}
        return self._run(self._openObject, container, name, metadata, own, length,
                              writeOnce, constraints.contentType(name, contentType))

    def _openObject(self, container, name, metadata, own, length, writeOnce, contentType):
        # Counted first: a deletion of the container checks the count, then the store.
        release = self._uploads.admit(container)
        try:
            if self._containerRecord(container) is None:
                raise NotFound(f"no container {container}")
            key, staged = self.keys.object(container, name), False
            larger = length is None or length > self.partSize
            if writeOnce and larger and self._head(container, name) is not None:
                # Parts go to one key: where these will end, only their bytes can say.
                key, staged = newStagingKey(self), True
            return S3Writer(self, container, name, key, staged, metadata, own, contentType,
                            writeOnce, self.partSize, None if larger else length, release)
        except BaseException:
            release()
            raise

    def deleteObject(self, container, name):
        return self._run(self._deleteObject, container, name)

    def _deleteObject(self, container, name):
        answer = self._head(container, name)
        if answer is None:
            return None
        info = self._infoOf(container, name, answer)
        self.removeQuietly(self.keys.object(container, name))
        self.removeQuietly(self.keys.digests(container, name))
        return info

    def deleteContainer(self, container):
        return self._run(self._deleteContainer, container)

    def _deleteContainer(self, container):
        if self._uploads.into(container):
            raise Conflict(f"uploads into {container} are under way")
        if self._containerRecord(container) is None:
            return False
        if self._listed(self.keys.objects(container), limit=1):
            raise Conflict(f"container {container} is not empty")
        self.removeQuietly(self.keys.container(container))
        return True

    @inlineCallbacks
    def listContainers(self, prefix, marker, limit):
        base = self.keys.containers
        listed = yield self._run(self._listedAll, base + prefix,
                                      base + marker if marker else "", limit)
        names = [key[len(base):] for key, _, _ in listed]
        found = yield gatherResults([self.containerInfo(name) for name in names],
                                    consumeErrors=True)
        return [info for info in found if info is not None]

    @inlineCallbacks
    def listObjects(self, container, prefix, marker, limit):
        exists = yield self._run(self._containerRecord, container)
        if exists is None:
            raise NotFound(f"no container {container}")
        base = self.keys.objects(container)
        listed = yield self._run(self._listedAll, base + prefix,
                                      base + marker if marker else "", limit)
        # A listing has no metadata nor SHA-256: a HEAD of each object has.
        found = yield gatherResults(
            [self.objectInfo(container, key[len(base):]) for key, _, _ in listed],
            consumeErrors=True)
        return [info for info in found if info is not None]

    def readObject(self, container, name, offset, length):
        return self._run(self._openReader, container, name, offset, length)

    def readState(self, name):
        return self._run(self._getOwn, self.keys.state(name))

    def writeState(self, name, data):
        return self._run(self.putOwn, self.keys.state(name), data)


def backend(dataDirectory: str, options: dict[str, str]) -> S3Backend:
    """
    C{s3:endpoint=URL:bucket=B:region=R:access_key=K:secret=S (or
    secret_file=PATH):prefix=P:addressing=path|virtual:cafile=PATH:
    timeout=S:part_size=SIZE:metadata_limit=SIZE}.
    """
    known = {"endpoint", "bucket", "region", "access_key", "secret", "secret_file", "prefix",
             "addressing", "cafile", "timeout", "part_size", "metadata_limit"}
    checkOptions("s3", options, known)
    missing = [o for o in ("endpoint", "bucket", "access_key") if not options.get(o)]
    if not (options.get("secret") or options.get("secret_file")):
        missing.append("secret or secret_file")
    if missing:
        raise ValueError(f"s3 backend: missing option(s) {', '.join(missing)}")
    secret, context, timeout = connectionOptions("s3", options, "secret")
    addressing = options.get("addressing", "path")
    if addressing not in ("path", "virtual"):
        raise ValueError(f"s3 backend: addressing={addressing!r} is not path or virtual")
    partSize = parseSize("s3", "part_size", options.get("part_size", "8M"))
    if not MIN_PART <= partSize <= MAX_PART:
        raise ValueError("s3 backend: part_size must be 5M to 5G")
    metadataSize = parseSize("s3", "metadata_limit", options.get("metadata_limit", "2K"))
    try:
        endpoint = Endpoint(options["endpoint"], context, timeout)
    except ValueError as e:
        raise ValueError(f"s3 backend: {e}") from None
    bucket = Bucket(endpoint, options["bucket"], options.get("region", "us-east-1"),
                    options["access_key"], secret, virtual=addressing == "virtual")
    prefix = options.get("prefix", "")
    description = (f"the S3 bucket {options['bucket']} at {options['endpoint']}"
                   + (f", keys prefixed {prefix!r}" if prefix else ""))
    return S3Backend(bucket, prefix, partSize, metadataSize, description)
