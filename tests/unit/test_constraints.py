"""The protocol rules for names and metadata, fuzzed with hypothesis."""

import os.path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.web.http_headers import Headers

from bwscd import constraints
from bwscd.errors import BadRequest

rawPaths = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from([b"..", b".", b"", b"%2e%2e", b"%2E.", b"%2f", b"%2F", b"a",
                         b"%00", b"%C3%A9", b"%ff", b"/", b"\\", b"%5c", b"~"]),
        max_size=12,
    ).map(b"".join),
)


def _escapes(name: str) -> bool:
    root = "/srv/storage"
    resolved = os.path.normpath(os.path.join(root, name))
    return not resolved.startswith(root + "/")


@given(rawPaths)
@settings(max_examples=500)
def test_container_names_never_leave_the_root(raw):
    try:
        name = constraints.containerName(raw)
    except BadRequest:
        return
    assert "/" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert not _escapes(name)


@given(rawPaths)
@settings(max_examples=500)
def test_object_names_never_leave_the_container(raw):
    try:
        name = constraints.objectName(raw)
    except BadRequest:
        return
    assert "\x00" not in name
    assert not _escapes(name)
    assert all(segment not in ("", ".", "..") for segment in name.split("/"))


@pytest.mark.parametrize("raw", [b"%2e%2e", b"..", b".", b"%2E", b"a%2Fb", b"%00", b"%ff"])
def test_container_rejections(raw):
    with pytest.raises(BadRequest):
        constraints.containerName(raw)


@pytest.mark.parametrize("raw", [b"a/%2e%2e/b", b"a%2F..%2Fb", b"%2e", b"a//b", b"/a", b"a/", b"a%00"])
def test_object_rejections(raw):
    with pytest.raises(BadRequest):
        constraints.objectName(raw)


@given(st.text(min_size=1, max_size=60).filter(
    lambda t: all(ord(c) >= 0x20 and not 0x7f <= ord(c) <= 0x9f for c in t)))
def test_metadata_values_round_trip(value):
    headers = Headers({b"X-Object-Meta-Name": [quote(value).encode("ascii")]})
    parsed = constraints.parseMetadata(headers, constraints.OBJECT)
    assert parsed == {"Name": value}
    ((name, encoded),) = constraints.metadataHeaders(parsed, constraints.OBJECT)
    assert name == b"X-Object-Meta-Name"
    again = constraints.parseMetadata(Headers({name: [encoded]}), constraints.OBJECT)
    assert again == parsed


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_metadata_parsing_only_ever_refuses_with_bad_request(raw):
    headers = Headers({b"X-Container-Meta-Anything": [raw]})
    try:
        constraints.parseMetadata(headers, constraints.CONTAINER)
    except BadRequest:
        pass


def test_canonical_keys():
    assert constraints.canonicalKey("triggerON") == "Triggeron"
    assert constraints.canonicalKey("start-LOCATION") == "Start-Location"


def test_remove_header_and_empty_value_both_delete():
    headers = Headers({b"X-Remove-Container-Meta-A": [b"x"], b"X-Container-Meta-B": [b""]})
    changes = constraints.parseMetadata(headers, constraints.CONTAINER)
    assert changes == {"A": "", "B": ""}
    assert constraints.mergeMetadata({"A": "1", "B": "2", "C": "3"}, changes) == {"C": "3"}


def test_conflicting_spellings_of_one_key_are_refused():
    headers = Headers()
    headers.addRawHeader(b"X-Object-Meta-Name", b"a")
    headers.addRawHeader(b"x-object-meta-NAME", b"b")
    with pytest.raises(BadRequest, match="more than once"):
        constraints.parseMetadata(headers, constraints.OBJECT)
