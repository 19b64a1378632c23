"""
What the destination tells the system controller it supports:
C{System/Capabilities.json} and C{System/Categories.json}.

The controller GETs both and checks each body against its C{Etag} header
(the MD5 hex of the body); a mismatch is logged as "object corrupt".
"""

import hashlib
import json
from dataclasses import dataclass

from bwscd.interfaces import Digests

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

# The vendor example's starting set; operators edit them (docs/configuration.md).
DEFAULT_CATEGORIES = [
    {"Name": "Testimony", "Id": "1"},
    {"Name": "Disorderly Conduct", "Id": "2"},
    {"Name": "Assault", "Id": "3"},
    {"Name": "Homicide", "Id": "4"},
    {"Name": "Traffic", "Id": "5"},
]


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
