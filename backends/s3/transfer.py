"""
The S3 backend's writer and reader, which upload and download threads call,
each on connections of its own.

S3 stores a body once it has all of it, so the writer holds back what it
can't yet let the store have: an object that fits in one part waits in
memory (at most one part, C{part_size} bytes) until the engine has verified
it and goes up as one C{PUT} with its C{Content-MD5}; a larger one goes up
as a multipart upload, a part whenever one is full, each with its own
C{Content-MD5}, joined on commit (the object appears then, whole), aborted
on abort so that no part lingers.  One part is sent by a thread of the
backend's while the next fills, so at most two are held per upload.
"""

import base64
import hashlib
import json
import uuid

from twisted.logger import Logger
from zope.interface import implementer

from bwscd.backends import common, storemeta
from bwscd.backends.remote import Unreachable
from bwscd.backends.s3.bucket import elements, errorCode, text
from bwscd.backends.s3.keys import META
from bwscd.errors import BadRequest, ServiceUnavailable
from bwscd.interfaces import IObjectWriter
from bwscd.threads import Pending

STORAGE = "S3 store"
"""What the log and the 503s call the store."""
log = Logger("bwscd.backends.s3")


def refusal(what: str, status: int, reason: str = "", body: bytes = b"") -> Exception:
    """The API's refusal for an answer of the store that stops C{what}."""
    code = errorCode(body)
    detail = f"{status} {reason}" + (f" ({code})" if code else "")
    return common.storeRefusal(what, status, detail, code == "EntityTooLarge", log, STORAGE)


def unreachable(what: str, error: Unreachable) -> ServiceUnavailable:
    return common.storageError(what, error, False, log, STORAGE)


def contentMD5(md5) -> str:
    return base64.b64encode(md5.digest()).decode("ascii")


def multipartETag(md5s: list[bytes]) -> str:
    """The ETag S3 gives an object joined from parts of these MD5s."""
    return f"{hashlib.md5(b''.join(md5s)).hexdigest()}-{len(md5s)}"


@implementer(IObjectWriter)
class S3Writer(common.StoreWriter):
    """
    An object on its way into the bucket under C{key}: the final name's,
    or, for evidence whose name held other bytes when it began
    (C{staged}), a staging key, copied to the name chosen once its bytes
    are known.
    """

    storage = STORAGE
    log = log

    def __init__(self, backend, container: str, name: str, key: str, staged: bool,
                 metadata: dict[str, str], own: dict[str, str], contentType: str,
                 writeOnce: bool, partSize: int, whole: int | None, release):
        super().__init__(release)
        self._backend = backend
        self.container = container
        self.name = name
        self.key = key
        self._staged = staged
        self._metadata = metadata
        self._own = own
        self._contentType = contentType
        self._writeOnce = writeOnce
        # An object of a known length that fits in a part waits whole, in a
        # buffer of its size; any other fills parts of partSize, one while
        # the one before is on its way (a thread of the backend's sends it).
        self._whole = whole is not None
        self._buffer = bytearray(partSize if whole is None else whole)
        self._spare: bytearray | None = None
        self._filled = 0
        self._sending: Pending | None = None
        self._upload: str | None = None
        self._parts: list[tuple[int, str, bytes]] = []
        self._what = f"writing {container}/{name}"

    # The body.

    def _write(self, data):
        data = memoryview(data)
        while data:
            room = len(self._buffer) - self._filled
            if self._whole and room < len(data):
                raise BadRequest("more bytes than the object's length")
            piece = data[:room]
            self._buffer[self._filled:self._filled + len(piece)] = piece
            self._filled += len(piece)
            data = data[room:]
            if self._filled == len(self._buffer) and not self._whole:
                self._sendPart()

    def _call(self, method, key, **options):
        try:
            return self._backend.bucket.request(method, key, **options)
        except Unreachable as e:
            raise unreachable(self._what, e)

    def _sendPart(self) -> None:
        """Hand the part filled to a sending thread, once the one before is sent."""
        if self._upload is None:
            answer = self._call("POST", self.key, query={"uploads": ""},
                                headers=self._headers({}))
            if answer.status != 200:
                raise refusal(self._what, answer.status, answer.reason, answer.body)
            self._upload = text(elements(answer.body, "InitiateMultipartUploadResult")[0],
                                "UploadId")
        self._settle()
        part = memoryview(self._buffer)[:self._filled]
        self._sending = self._backend.parts.later(self._putPart, len(self._parts) + 1, part)
        self._buffer, self._spare = self._spare or bytearray(len(self._buffer)), self._buffer
        self._filled = 0

    def _settle(self) -> None:
        """Wait for the part on its way: its failure raised here."""
        sending, self._sending = self._sending, None
        if sending is not None:
            self._parts.append(sending.result())

    def _putPart(self, number: int, part) -> tuple[int, str, bytes]:
        md5 = hashlib.md5(part)
        answer = self._call("PUT", self.key, query={"partNumber": str(number),
                                                    "uploadId": self._upload},
                            headers={"Content-MD5": contentMD5(md5)}, body=part)
        self._checkDigest(answer)
        if answer.status != 200:
            raise refusal(self._what, answer.status, answer.reason, answer.body)
        if answer.etag() != md5.hexdigest():
            raise ServiceUnavailable("the store received other bytes than bwscd sent")
        return number, answer.etag(), md5.digest()

    def _checkDigest(self, answer) -> None:
        """@raise ServiceUnavailable: the store got other bytes than their Content-MD5's."""
        if answer.status == 400 and b"BadDigest" in answer.body:
            log.error("the store received other bytes of {container}/{name} than bwscd "
                      "verified (BadDigest): nothing stored, the client will send it again",
                      container=self.container, name=self.name)
            raise ServiceUnavailable("the store received other bytes than bwscd sent")

    def _headers(self, own: dict[str, str]) -> dict[str, str]:
        return {"Content-Type": self._contentType,
                **storemeta.headersFor(META, {**self._metadata, **self._own, **own},
                                       encoded=True)}

    # Commit.

    def _commit(self, digests):
        if self._upload is None:
            return self._commitWhole(digests)
        return self._commitParts(digests)

    def _commitWhole(self, digests):
        """One C{PUT} of what waited in memory, verified by the store with its MD5."""
        body = memoryview(self._buffer)[:self._filled]
        # The MD5 kept too: a store's ETag is not always one (encryption).
        headers = {**self._headers({storemeta.SHA256: digests.sha256,
                                    storemeta.MD5: digests.md5}),
                   "Content-MD5": base64.b64encode(bytes.fromhex(digests.md5)).decode()}

        def claim(candidate):
            answer = self._call("PUT", self._backend.keys.object(self.container, candidate),
                                headers={**headers, "If-None-Match": "*"}, body=body)
            return self._claimed(candidate, answer)

        if self._writeOnce:
            return common.placeOnce(self.name, digests, claim, lambda: None)
        answer = self._call("PUT", self.key, headers=headers, body=body)
        return self._claimed(self.name, answer)[0]

    def _claimed(self, candidate, answer):
        if answer.status == 412:
            found = self._backend.blockingObjectInfo(self.container, candidate)
            if found is None:  # taken, then deleted meanwhile
                raise ServiceUnavailable(f"{candidate} changed meanwhile: send it again")
            return found, False
        self._checkDigest(answer)
        # A copy may answer 200 with an error in its body.
        if answer.status != 200 or (answer.body and elements(answer.body, "Error")):
            raise refusal(self._what, answer.status, answer.reason, answer.body)
        found = self._backend.blockingObjectInfo(self.container, candidate)
        if found is None:
            raise ServiceUnavailable(f"{candidate} changed meanwhile: send it again")
        return found, True

    def _commitParts(self, digests):
        """The last part, the digests beside, then the parts joined into the object."""
        if self._filled:
            self._sendPart()
        self._settle()
        etag = multipartETag([md5 for _, _, md5 in self._parts])
        record = {"length": digests.length, "md5": digests.md5, "sha256": digests.sha256,
                  "etag": etag}
        if not self._staged:
            self._backend.putOwn(self._backend.keys.digests(self.container, self.name),
                                 json.dumps(record).encode())
        manifest = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
                           for n, e, _ in self._parts)
        headers = {"If-None-Match": "*"} if self._writeOnce and not self._staged else {}
        answer = self._call("POST", self.key, query={"uploadId": self._upload},
                            headers=headers,
                            body=f"<CompleteMultipartUpload>{manifest}</CompleteMultipartUpload>"
                            .encode())
        # S3 may answer 200 and an error in the body, once it has worked on it a while.
        if answer.status == 200 and elements(answer.body, "Error"):
            raise refusal(self._what, 503, "joining the parts failed", answer.body)
        if answer.status == 412:
            self._abort()
            raise ServiceUnavailable(
                f"{self.name} was stored by another upload meanwhile: send it again")
        if answer.status != 200:
            raise refusal(self._what, answer.status, answer.reason, answer.body)
        self._upload = None
        if not self._staged:
            return self._backend.blockingObjectInfo(self.container, self.name)
        return self._place(digests)

    def _place(self, digests):
        """Evidence that arrived under a staging key: to its name, or beside it."""
        staging = self.key

        def claim(candidate):
            found = self._backend.blockingObjectInfo(self.container, candidate)
            if found is not None:
                return found, False
            answer = self._call("PUT", self._backend.keys.object(self.container, candidate),
                                headers={
                                    **self._headers({storemeta.SHA256: digests.sha256,
                                                     storemeta.MD5: digests.md5}),
                                    "x-amz-copy-source": self._backend.bucket.copySource(
                                        staging),
                                    # Not If-None-Match: S3 applies it to
                                    # the copy's source.
                                    "x-amz-metadata-directive": "REPLACE"})
            return self._claimed(candidate, answer)

        try:
            return common.placeOnce(self.name, digests, claim, lambda: None)
        finally:
            self._backend.removeQuietly(staging)

    def _abort(self):
        try:
            try:
                self._settle()
            except Exception:
                pass  # what it failed with is what the engine aborts for
            if self._upload is not None:
                upload, self._upload = self._upload, None
                self._backend.bucket.request("DELETE", self.key, query={"uploadId": upload})
        except Exception as e:  # the sweep at the next start aborts it
            log.warn("the parts of an aborted upload to {container}/{name} stay until the "
                     "next start: {error}", container=self.container, name=self.name, error=e)


def newStagingKey(backend) -> str:
    return backend.keys.staging(uuid.uuid4().hex)
