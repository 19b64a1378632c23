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
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from bwscd.constraints import SYSTEM
from bwscd.interfaces import Digests

log = Logger()

# Each capability in the group the controller reads it from.  The vendor's
# example server, which real controllers work with, publishes the Store
# capabilities under "StoreAndRead"; the newer ReadCategories is in "Read".
CAPABILITY_GROUPS = {
    "StoreReadSystemID": "StoreAndRead",
    "StoreUserIDKey": "StoreAndRead",
    "StoreBookmarks": "StoreAndRead",
    "StoreSignedVideo": "StoreAndRead",
    "StoreGNSSTrackRecording": "StoreAndRead",
    "StoreRejectedContent": "StoreAndRead",
    "ReadCategories": "Read",
}

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
    C{Capabilities.json} with every known capability, true when in
    C{enabled}.

    @raise ValueError: for a name that is not a known capability.
    """
    unknown = set(enabled) - set(CAPABILITY_GROUPS)
    if unknown:
        raise ValueError(f"unknown capabilities: {', '.join(sorted(unknown))}")
    groups: dict[str, dict[str, bool]] = {}
    for name, group in CAPABILITY_GROUPS.items():
        groups.setdefault(group, {})[name] = name in enabled
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

    def __init__(self, backend, capabilities: Document, categories):
        self._backend = backend
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
        yield self._mirror(self.CAPABILITIES, self._capabilities)
        yield self._mirror(self.CATEGORIES, self._categories.document)

    @inlineCallbacks
    def _mirror(self, name: str, document: Document):
        writer = yield self._backend.openObject(SYSTEM, name, {}, len(document.body),
                                                contentType="application/json")
        yield deferToThread(_writeWhole, writer, document)
