"""L{bwscd.protocol.ranges}: the one byte range of an object GET."""

import pytest

from bwscd.errors import RangeNotSatisfiable
from bwscd.protocol.ranges import ByteRange, byteRange


@pytest.mark.parametrize("header, expected", [
    (None, (0, 9)),
    (b"bytes=2-5", (2, 5)),
    (b" bytes=2-5 ", (2, 5)),
    (b"bytes=2-", (2, 9)),
    (b"bytes=2-100", (2, 9)),  # past the end: to the end
    (b"bytes=-3", (7, 9)),  # the last 3
    (b"bytes=-100", (0, 9)),  # more than there is: all of it
    (b"bytes=-", (0, 9)),  # no numbers: the header is ignored
    (b"bytes=1-2,4-5", (0, 9)),  # several ranges: ignored
    (b"items=1-2", (0, 9)),  # another unit: ignored
])
def test_one_range_or_the_whole_object(header, expected):
    wanted = byteRange(header, 10)
    assert (wanted.first, wanted.last) == expected
    assert wanted.length == expected[1] - expected[0] + 1
    assert wanted.partial == (expected != (0, 9))


@pytest.mark.parametrize("header", [b"bytes=10-", b"bytes=10-20", b"bytes=5-4", b"bytes=-0"])
def test_a_range_outside_the_object_is_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable) as raised:
        byteRange(header, 10)
    assert raised.value.headers == {b"Content-Range": b"bytes */10"}
    assert raised.value.message == "the object has 10 bytes"


def test_an_empty_object_is_sent_whole_and_empty():
    wanted = byteRange(None, 0)
    assert (wanted.length, wanted.partial) == (0, False)
    with pytest.raises(RangeNotSatisfiable):
        byteRange(b"bytes=0-", 0)


def test_content_range_names_the_bytes_and_the_size():
    assert ByteRange(2, 5, 10).contentRange == b"bytes 2-5/10"
