"""
The C{Range} header of an object GET: one range of bytes, as RFC 9110
says and Swift serves it.
"""

import re
from dataclasses import dataclass

from bwscd.errors import RangeNotSatisfiable

_BYTES = re.compile(rb"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class ByteRange:
    """The bytes C{first} to C{last} (inclusive) of an object of C{size} bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        """Bytes sent: none of an empty object."""
        return self.last - self.first + 1 if self.size else 0

    @property
    def partial(self) -> bool:
        """Whether this is less than the whole object (206, not 200)."""
        return (self.first, self.last) != (0, self.size - 1)

    @property
    def contentRange(self) -> bytes:
        return b"bytes %d-%d/%d" % (self.first, self.last, self.size)


def byteRange(header: bytes | None, size: int) -> ByteRange:
    """
    The bytes a C{Range} header asks for (one range; any other form of the
    header is ignored, as RFC 9110 allows).

    @raise RangeNotSatisfiable: for a range outside the object.
    """
    whole = ByteRange(0, size - 1, size)
    match = _BYTES.fullmatch(header.strip()) if header else None
    if match is None or match.groups() == (b"", b""):
        return whole
    first, last = match.groups()
    if first == b"":  # the last N bytes
        if not int(last):
            _unsatisfiable(size)
        return ByteRange(max(size - int(last), 0), size - 1, size)
    first = int(first)
    last = min(int(last), size - 1) if last else size - 1
    if first >= size or first > last:
        _unsatisfiable(size)
    return ByteRange(first, last, size)


def _unsatisfiable(size: int):
    error = RangeNotSatisfiable(f"the object has {size} bytes")
    error.headers = {b"Content-Range": b"bytes */%d" % size}
    raise error
