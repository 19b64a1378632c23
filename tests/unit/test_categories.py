"""
L{bwscd.policy.categories}: the categories file refuses what is not a list
of categories with unique ids; the published list follows the file when
it changes, and keeps the last good one when it is broken.
"""

import json
import os

import pytest
from twisted.logger import formatEvent

from bwscd.policy.categories import (
    DEFAULT_CATEGORIES, CategoryError, CategoryFile, PublishedCategories,
)
from bwscd.config import paths
from bwscd.policy.events import Events
from tests.support.events import EventRecorder


@pytest.fixture
def categoryFile(tmp_path) -> CategoryFile:
    return CategoryFile(str(tmp_path / paths.CATEGORIES))


def writeRaw(categoryFile, text: str) -> None:
    """Write the file as an operator's editor would, a new inode each time."""
    temporary = categoryFile.path + ".new"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, categoryFile.path)


def test_without_a_file_the_defaults_are_offered(categoryFile):
    assert categoryFile.read() == DEFAULT_CATEGORIES
    assert not os.path.exists(categoryFile.path)


@pytest.mark.parametrize("text, message", [
    ('{"Name": "Traffic", "Id": "5"}', "must be a JSON list"),
    ('[{"Name": "Traffic"}]', "needs Name and Id"),
    ('[{"Name": "Traffic", "Id": "5", "Colour": "red"}]', "needs Name and Id"),
    ('[{"Name": "", "Id": "5"}]', "needs Name and Id"),
    ('[{"Name": "Traffic", "Id": 5}]', "needs Name and Id"),
    ('[{"Name": "A", "Id": "5"}, {"Name": "B", "Id": "5"}]', "category id 5 is used twice"),
    ("[{", "categories.json: "),
])
def test_a_file_that_is_not_a_list_of_categories_is_refused(categoryFile, text, message):
    writeRaw(categoryFile, text)
    with pytest.raises(CategoryError, match=message):
        categoryFile.read()


def test_a_change_that_would_break_the_rules_is_not_written(categoryFile):
    categoryFile.write([{"Name": "Traffic", "Id": "5"}])
    with pytest.raises(CategoryError, match="used twice"):
        categoryFile.add("Parking", "5")
    assert categoryFile.read() == [{"Name": "Traffic", "Id": "5"}]


def test_added_categories_get_the_next_number_and_go_by_id_or_name(categoryFile):
    categoryFile.write([{"Name": "Traffic", "Id": "7"}, {"Name": "Other", "Id": "x"}])
    assert categoryFile.add("Parking") == {"Name": "Parking", "Id": "8"}
    assert categoryFile.remove("x") == {"Name": "Other", "Id": "x"}
    assert categoryFile.remove("Parking") == {"Name": "Parking", "Id": "8"}
    categoryFile.add("Traffic", "9")
    with pytest.raises(CategoryError, match="2 categories are named Traffic"):
        categoryFile.remove("Traffic")
    with pytest.raises(CategoryError, match="no category with id or name 42"):
        categoryFile.remove("42")


def test_the_published_list_follows_the_file(categoryFile):
    recorder = EventRecorder()
    published = PublishedCategories(categoryFile, Events([recorder]))
    assert json.loads(published.document.body) == DEFAULT_CATEGORIES
    assert published.refresh() is False and recorder.events == []
    before = published.document.etag
    categoryFile.write(DEFAULT_CATEGORIES[1:] + [{"Name": "Testimony", "Id": "6"}])
    assert published.refresh() is True
    assert published.document.etag != before
    [changed] = recorder.events
    assert (changed["type"], changed["added"], changed["removed"]) == (
        "category.changed", [{"Name": "Testimony", "Id": "6"}], [DEFAULT_CATEGORIES[0]])
    # The file written again with the same list: nothing to publish.
    categoryFile.write(categoryFile.read())
    assert published.refresh() is False and len(recorder.events) == 1


def test_a_broken_file_keeps_the_last_good_list(categoryFile, logged):
    recorder = EventRecorder()
    categoryFile.write([{"Name": "Traffic", "Id": "5"}])
    published = PublishedCategories(categoryFile, Events([recorder]))
    document = published.document
    writeRaw(categoryFile, "[{")
    assert published.refresh() is False
    assert published.document == document and recorder.events == []
    # Said once, not at every look: the file is read again only once it changes.
    assert published.refresh() is False
    [kept] = [text for text in map(formatEvent, logged) if "kept the published categories" in text]
    assert kept.startswith(f"kept the published categories: {categoryFile.path}: ")
    # Mended: published again.
    writeRaw(categoryFile, '[{"Name": "Parking", "Id": "6"}]')
    assert published.refresh() is True
    assert json.loads(published.document.body) == [{"Name": "Parking", "Id": "6"}]
