"""L{bwscd.protocol.listing}: Swift's listing arguments and formats."""

import json
from types import SimpleNamespace

import pytest

from bwscd.constraints import LISTING_LIMIT
from bwscd.errors import BadRequest
from bwscd.protocol.listing import (
    ListingArguments, describeContainer, listingArguments, listingResponse, listingTime,
)


def test_arguments_default_to_everything_as_plain_text():
    assert listingArguments({}) == ListingArguments("", "", LISTING_LIMIT, json=False)


def test_arguments_are_read_and_the_limit_bounded():
    arguments = listingArguments({b"prefix": ["rapport/".encode()], b"marker": [b"a"],
                                  b"limit": [b"99999"], b"format": [b"json"]})
    assert arguments == ListingArguments("rapport/", "a", LISTING_LIMIT, json=True)
    assert listingArguments({b"limit": [b"-5"]}).limit == 0
    assert listingArguments({b"prefix": ["Å".encode()]}).prefix == "Å"


def test_a_limit_that_is_no_number_is_refused():
    with pytest.raises(BadRequest, match="limit must be a number"):
        listingArguments({b"limit": [b"ten"]})


def container(name):
    return SimpleNamespace(name=name, objectCount=2, bytesUsed=30, modified=0.5)


def test_plain_is_one_name_a_line_and_nothing_is_204():
    plain = listingArguments({})
    response = listingResponse([container("a"), container("Å")], plain, describeContainer)
    assert (response.code, response.body) == (200, "a\nÅ\n".encode())
    assert listingResponse([], plain, describeContainer).code == 204


def test_json_describes_each_and_nothing_is_an_empty_list():
    arguments = listingArguments({b"format": [b"json"]})
    response = listingResponse([container("Å")], arguments, describeContainer)
    assert response.contentType == b"application/json; charset=utf-8"
    assert json.loads(response.body) == [{"name": "Å", "count": 2, "bytes": 30,
                                          "last_modified": "1970-01-01T00:00:00.500000"}]
    assert "Å".encode() in response.body  # not \u-escaped
    empty = listingResponse([], arguments, describeContainer)
    assert (empty.code, empty.body) == (200, b"[]")


def test_times_are_utc_without_a_zone_as_swift_writes_them():
    assert listingTime(1714558500.25) == "2024-05-01T10:15:00.250000"
