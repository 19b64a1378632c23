"""
The rules every backend shares (bwscd.backends.common): what a listing
shows and in what order, which names can be listed, the write-once rule,
the refusal for a failing storage, and when a container is complete.
"""

import hashlib

import pytest
from twisted.logger import Logger, capturedLogs, formatEvent

from bwscd.backends import common
from bwscd.errors import BadRequest, InsufficientStorage, ServiceUnavailable
from bwscd.interfaces import Digests, ObjectInfo

log = Logger()


def digestsOf(data: bytes) -> Digests:
    return Digests(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


# Listings.


def test_a_listing_is_in_the_order_of_utf8_bytes():
    names = ["é", "b", "B", "😀", "a/b", "a", "\uffff"]
    assert common.chosen(names, "", "", 100) == ["B", "a", "a/b", "b", "é", "\uffff", "😀"]


def test_a_listing_starts_after_the_marker_and_keeps_the_prefix():
    names = ["a1", "a2", "a3", "b1", "a"]
    assert common.chosen(names, "a", "a1", 100) == ["a2", "a3"]
    assert common.chosen(names, "a", "", 100) == ["a", "a1", "a2", "a3"]
    assert common.chosen(names, "", "a3", 100) == ["b1"]


def test_a_listing_shows_at_most_the_limit():
    names = [f"n{i:03}" for i in range(50)]
    assert common.chosen(names, "", "n009", 3) == ["n010", "n011", "n012"]


@pytest.mark.parametrize("prefix, end", [
    ("ab", "ac"),
    ("a\U0010ffff", "b"),
    ("a\ud7ff", "a\ue000"),  # over the surrogates, which have no UTF-8
    ("\U0010ffff", None),
    ("", None),
])
def test_the_end_of_a_prefix(prefix, end):
    assert common.prefixEnd(prefix) == end


def test_the_end_of_a_prefix_is_after_every_name_with_it_and_no_other():
    names = ["a", "ab", "ab\U0010ffff", "ab/c", "ac", "ab\x00", "b", "a\U0010ffff"]
    for prefix in ("a", "ab", "ab\U0010ffff"):
        end = common.prefixEnd(prefix).encode("utf-8")
        inRange = [n for n in names if prefix.encode() <= n.encode() < end]
        assert inRange == [n for n in names if n.startswith(prefix)]


def test_names_not_in_utf8_are_left_out_and_logged_once():
    foreign = b"\xff.mkv".decode("utf-8", "surrogateescape")
    with capturedLogs() as events:
        assert common.utf8Names(["a.mkv", foreign, "é"], "/srv/C1") == ["a.mkv", "é"]
        assert common.utf8Names([foreign], "/srv/C1") == []
    logged = [formatEvent(e) for e in events]
    assert logged == ["left out of listings: /srv/C1/\\xff.mkv, whose name is not UTF-8 "
                      "(it can't be a container's or an object's)"]


# Evidence.


class Store:
    """Objects by name, claimed as a backend claims them."""

    def __init__(self, **objects: bytes):
        self.objects = {name: self.info(name, data) for name, data in objects.items()}
        self.claimed: list[str] = []
        self.discarded = 0

    def info(self, name, data):
        return ObjectInfo("C", name, digestsOf(data), 1.0, {"Name": name})

    def claim(self, data):
        def claim(name):
            self.claimed.append(name)
            if name in self.objects:
                return self.objects[name], False
            self.objects[name] = self.info(name, data)
            return self.objects[name], True
        return claim

    def discard(self):
        self.discarded += 1


def placeOnce(store, name, data):
    return common.placeOnce(name, digestsOf(data), store.claim(data), store.discard)


def test_evidence_goes_under_its_free_name():
    store = Store()
    info = placeOnce(store, "clip.mkv", b"one")
    assert (info.name, info.existed, store.claimed, store.discarded) == (
        "clip.mkv", False, ["clip.mkv"], 0)


def test_the_same_bytes_again_existed():
    store = Store(**{"clip.mkv": b"one"})
    info = placeOnce(store, "clip.mkv", b"one")
    assert (info.name, info.existed, store.discarded) == ("clip.mkv", True, 1)
    assert store.claimed == ["clip.mkv"]
    assert info.metadata == {"Name": "clip.mkv"}  # the stored object's


def test_other_bytes_go_to_the_conflict_copy():
    store = Store(**{"clip.mkv": b"one"})
    info = placeOnce(store, "clip.mkv", b"two")
    copy = "clip.mkv.conflict-" + hashlib.sha256(b"two").hexdigest()[:16]
    assert (info.name, info.existed, store.discarded) == (copy, False, 0)
    assert store.claimed == ["clip.mkv", copy]
    assert common.conflictName("clip.mkv", hashlib.sha256(b"two").hexdigest()) == copy


def test_the_other_bytes_again_existed_in_the_conflict_copy():
    store = Store(**{"clip.mkv": b"one"})
    copy = placeOnce(store, "clip.mkv", b"two").name
    info = placeOnce(store, "clip.mkv", b"two")
    assert (info.name, info.existed, store.discarded) == (copy, True, 1)


def test_other_bytes_under_both_names_are_refused():
    copy = common.conflictName("clip.mkv", hashlib.sha256(b"two").hexdigest())
    store = Store(**{"clip.mkv": b"one", copy: b"three"})
    with pytest.raises(BadRequest, match="'clip.mkv' and its conflict copy both hold other"):
        placeOnce(store, "clip.mkv", b"two")
    assert store.discarded == 0


def test_the_same_length_and_md5_are_not_the_same_bytes():
    store = Store(**{"clip.mkv": b"one"})
    digests = digestsOf(b"one")
    other = Digests(digests.length, digests.md5, "0" * 64)
    info = common.placeOnce("clip.mkv", other, store.claim(b"x"), store.discard)
    assert info.name == "clip.mkv.conflict-0000000000000000" and not info.existed


def test_measured_digests():
    measured = common.Measured()
    for piece in (b"ab", b"", b"cde"):
        measured.update(piece)
    assert measured.digests(5) == digestsOf(b"abcde")


# The complete marker.


@pytest.mark.parametrize("metadata, complete", [
    ({"Status": "Complete"}, True),
    ({"Status": "Transferring"}, False),
    ({"Status": "complete"}, False),
    ({}, False),
    ({"Complete": "Complete"}, False),
])
def test_complete(metadata, complete):
    assert common.isComplete(metadata) is complete


# Failures.


def test_a_full_storage_is_507_and_not_logged():
    with capturedLogs() as events:
        refusal = common.storageError("writing an object", OSError(28, "No space"), True, log)
    assert isinstance(refusal, InsufficientStorage)
    assert refusal.message == "out of disk space while writing an object"
    assert events == []
    refusal = common.storageError("writing an object", "full", True, log,
                                  where=" on the SFTP server")
    assert refusal.message == "out of disk space on the SFTP server while writing an object"


def test_any_other_failure_is_503_and_logged_as_an_error():
    with capturedLogs() as events:
        refusal = common.storageError("reading object metadata", OSError(5, "I/O error"),
                                      False, log, storage="SFTP storage")
    assert isinstance(refusal, ServiceUnavailable)
    assert refusal.message == "SFTP storage failure while reading object metadata"
    assert [formatEvent(e) for e in events] == [
        "SFTP storage failure while reading object metadata: [Errno 5] I/O error"]
    assert events[0]["log_level"].name == "error"
    assert events[0]["log_namespace"] == __name__  # the backend's own logger
