"""
The categories the controller offers camera users for their bookmarks
(C{ReadCategories}), kept in C{DATA/categories.json}.

The operator edits them with C{bwscd categories}; the running server
notices the change the next time the controller asks (once a day, and when
the connection file is uploaded again), publishes the new list with its new
Etag, and emits a C{category.changed} event.  Bookmarks that name a
category since removed are still accepted and kept: the API says so.
"""

import json

from twisted.logger import Logger

from bwscd.policy.capabilities import Document, categoriesDocument
from bwscd.files import ChangedFiles, writeAtomically

log = Logger()


def categoryKey(text: str) -> str:
    """The one spelling a category filter is compared in (by id or name)."""
    return text.strip().casefold()

# The vendor example's starting set.
DEFAULT_CATEGORIES = [
    {"Name": "Testimony", "Id": "1"},
    {"Name": "Disorderly Conduct", "Id": "2"},
    {"Name": "Assault", "Id": "3"},
    {"Name": "Homicide", "Id": "4"},
    {"Name": "Traffic", "Id": "5"},
]


class CategoryError(ValueError):
    """A change to the categories that can't be made; the message says why."""


def _check(categories) -> list[dict[str, str]]:
    if not isinstance(categories, list):
        raise CategoryError("categories must be a JSON list")
    ids = set()
    for category in categories:
        if not (
            isinstance(category, dict)
            and set(category) == {"Name", "Id"}
            and all(isinstance(v, str) and v for v in category.values())
        ):
            raise CategoryError(f"not a category: {category!r} (needs Name and Id)")
        if category["Id"] in ids:
            raise CategoryError(f"category id {category['Id']} is used twice")
        ids.add(category["Id"])
    return categories


class CategoryFile:
    """C{DATA/categories.json} at C{path}: read, changed and written atomically."""

    def __init__(self, path: str):
        self.path = path

    def read(self) -> list[dict[str, str]]:
        try:
            with open(self.path, "rb") as f:
                return _check(json.loads(f.read()))
        except FileNotFoundError:
            return list(DEFAULT_CATEGORIES)
        except ValueError as e:
            raise CategoryError(f"{self.path}: {e}")

    def write(self, categories: list[dict[str, str]]) -> None:
        data = json.dumps(_check(categories), indent=2, ensure_ascii=False).encode("utf-8")
        writeAtomically(self.path, data, 0o644)

    def add(self, name: str, categoryId: str | None = None) -> dict[str, str]:
        categories = self.read()
        if categoryId is None:
            numeric = [int(c["Id"]) for c in categories if c["Id"].isdigit()]
            categoryId = str(max(numeric, default=0) + 1)
        category = {"Name": name, "Id": categoryId}
        self.write(categories + [category])
        return category

    def remove(self, idOrName: str) -> dict[str, str]:
        """
        Remove the category with this id or, if no category has it as its
        id, the one with this name: ids are unique, names need not be.
        """
        categories = self.read()
        found = [c for c in categories if c["Id"] == idOrName] or \
            [c for c in categories if c["Name"] == idOrName]
        if not found:
            raise CategoryError(f"no category with id or name {idOrName}")
        if len(found) > 1:
            raise CategoryError(f"{len(found)} categories are named {idOrName}: "
                                "remove one by its id")
        self.write([c for c in categories if c is not found[0]])
        return found[0]

class PublishedCategories:
    """
    The categories as the server publishes them, read again from the file
    whenever it has changed since the last look.
    """

    def __init__(self, categoryFile: CategoryFile, events):
        self._file = categoryFile
        self._events = events
        self._changes = ChangedFiles(categoryFile.path)
        self._changes.takenUp(self._changes.changes())
        self._categories = categoryFile.read()
        self.document: Document = categoriesDocument(self._categories)

    def refresh(self) -> bool:
        """
        Re-read the file if it changed; emit C{category.changed}.

        @return: whether the published list changed.
        """
        stamps = self._changes.changes()
        if stamps is None:
            return False
        self._changes.takenUp(stamps)
        try:
            categories = self._file.read()
        except CategoryError as e:
            log.error("kept the published categories: {error}", error=e)
            return False
        if categories == self._categories:
            return False
        before = {c["Id"]: c for c in self._categories}
        after = {c["Id"]: c for c in categories}
        self._events.emit(
            "category.changed",
            added=[c for i, c in after.items() if before.get(i) != c],
            removed=[c for i, c in before.items() if after.get(i) != c],
        )
        self._categories = categories
        self.document = categoriesDocument(categories)
        return True
