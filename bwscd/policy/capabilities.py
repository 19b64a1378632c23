"""
What the destination tells the system controller it supports:
C{System/Capabilities.json} and C{System/Categories.json}.

The controller GETs both and checks each body against its C{Etag} header
(the MD5 hex of the body); a mismatch is logged as "object corrupt".
"""

import hashlib
import json
from dataclasses import dataclass

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from bwscd.constraints import SYSTEM
from bwscd.interfaces import Digests

log = Logger()

# The capabilities bwscd supports: the API's "Current capabilities" and
# ReadCategories from its newer revision.
CAPABILITIES = (
    "StoreReadSystemID",
    "StoreUserIDKey",
    "StoreBookmarks",
    "StoreSignedVideo",
    "StoreGNSSTrackRecording",
    "StoreRejectedContent",
    "ReadCategories",
)
# The groups of Capabilities.json (the API's "File format"): all of them are
# published, even an empty one.
GROUPS = ("Read", "Store", "StoreAndRead")


def groupOf(capability: str) -> str:
    """
    The group a capability is published in, from its name (the API's
    "Capability naming"): C{Store} for PUT or POST, C{Read} for GET or HEAD,
    both prefixes (C{StoreRead}) for both.  A controller reads each
    capability from its own group only.

    @raise ValueError: for a name without one of these prefixes.
    """
    if capability.startswith(("StoreRead", "StoreAndRead")):
        return "StoreAndRead"
    for group in ("Store", "Read"):
        if capability.startswith(group):
            return group
    raise ValueError(f"{capability}: a capability's name starts with Store, Read or StoreRead")


def checkKnown(names, where: str = "") -> None:
    """
    @param where: where the names come from, for the message.
    @raise ValueError: naming each of C{names} that is not in L{CAPABILITIES}.
    """
    unknown = set(names) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities{where}: {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(CAPABILITIES))})")


@dataclass(frozen=True)
class Document:
    """A small JSON object the server publishes, with its Etag."""

    body: bytes

    @property
    def etag(self) -> str:
        return hashlib.md5(self.body).hexdigest()

    @property
    def digests(self) -> Digests:
        return Digests(len(self.body), self.etag, hashlib.sha256(self.body).hexdigest())


def capabilitiesDocument(enabled) -> Document:
    """
    C{Capabilities.json}: every known capability in its group, true when
    in C{enabled}.

    @raise ValueError: for a name that is not a known capability.
    """
    checkKnown(enabled)
    groups: dict[str, dict[str, bool]] = {group: {} for group in GROUPS}
    for name in CAPABILITIES:
        groups[groupOf(name)][name] = name in enabled
    return Document(json.dumps(groups, indent=2).encode("utf-8"))


def categoriesDocument(categories: list[dict[str, str]]) -> Document:
    """C{Categories.json}: a list of C{{"Name": ..., "Id": ...}}."""
    return Document(
        json.dumps(categories, indent=2, ensure_ascii=False).encode("utf-8")
    )


def _writeWhole(writer, document: Document):
    try:
        writer.write(document.body)
        return writer.commit(document.digests)
    except BaseException:
        writer.abort()
        raise


class PublishedDocuments:
    """
    C{System/Capabilities.json} and C{System/Categories.json}: served from
    memory, and mirrored into the backend so that its layout holds them as
    the example server's does.
    """

    CAPABILITIES = "Capabilities.json"
    CATEGORIES = "Categories.json"
    NAMES = (CAPABILITIES, CATEGORIES)
    """The objects in C{System} that are these documents, not systems."""

    def __init__(self, backend, capabilities: Document, categories, writers):
        self._backend = backend
        self._writers = writers
        """The L{bwscd.threads.Pool} whose threads write objects (the uploads')."""
        self._capabilities = capabilities
        self._categories = categories

    def get(self, name: str) -> Document | None:
        if name == self.CAPABILITIES:
            return self._capabilities
        if name == self.CATEGORIES:
            if self._categories.refresh():
                self._mirror(name, self._categories.document).addErrback(
                    lambda reason: log.failure("mirroring {name}", reason, name=name)
                )
            return self._categories.document
        return None

    @inlineCallbacks
    def mirrorAll(self):
        yield self._backend.putContainer(SYSTEM, {})
        before = yield self._backend.objectInfo(SYSTEM, self.CAPABILITIES)
        yield self._mirror(self.CAPABILITIES, self._capabilities)
        if before is not None and before.digests.md5 != self._capabilities.etag:
            # A data directory of an earlier version (its groups were wrong),
            # or capabilities changed in settings.json.
            log.info("System/Capabilities.json published anew with Etag {etag} (was "
                     "{previous}): groups {groups}, each capability in the one its "
                     "name gives, enabled as settings.json says",
                     etag=self._capabilities.etag, previous=before.digests.md5,
                     groups=", ".join(GROUPS))
        yield self._mirror(self.CATEGORIES, self._categories.document)

    @inlineCallbacks
    def _mirror(self, name: str, document: Document):
        writer = yield self._backend.openObject(SYSTEM, name, {}, len(document.body),
                                                contentType="application/json")
        yield self._writers.run(_writeWhole, writer, document)
