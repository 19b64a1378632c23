"""
A 2 GiB upload through the real server: the body streams to disk with flat
memory, and what lands on disk is exactly what was sent.

Slow (about half a minute, 2 GiB of disk): left out of the default run;
select it with C{pytest -m slow tests/test_large.py}.
"""

import hashlib
import os

import pytest

from tests.support.storage import fileSHA256

SIZE = 2 << 30
BLOCK_SIZE = 1 << 20
RSS_LIMIT = 100 * 1000 * 1000
USER = "6a7c1a3e-8b1d-4c55-9a8e-3f1f2b7d9c02"
DEVICE = "B7654321"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"


class HashingSource:
    """
    A file-like object of C{size} bytes, one random 1 MiB block repeated,
    that hashes what it hands out: the client's MD5 and SHA-256 of exactly
    the bytes sent.
    """

    def __init__(self, size: int):
        self._block = memoryview(os.urandom(BLOCK_SIZE))
        self._size = size
        self.position = 0
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1):
        remaining = self._size - self.position
        if size is None or size < 0 or size > remaining:
            size = remaining
        offset = self.position % BLOCK_SIZE
        chunk = self._block[offset : offset + min(size, BLOCK_SIZE - offset)]
        self.position += len(chunk)
        self.md5.update(chunk)
        self.sha256.update(chunk)
        return chunk


@pytest.mark.slow
def test_two_gib_upload_streams_with_flat_memory(server, swift):
    """
    A 2 GiB object with Content-Length is stored whole and exact, and the
    server's resident memory stays under 100 MB throughout.
    """
    # What the controller does first: register the user and the camera.
    swift.put_container("Users")
    swift.put_object("Users", USER, b"", headers={"X-Object-Meta-Name": "Officer"})
    swift.put_container("Devices")
    swift.put_object("Devices", DEVICE, b"", headers={"X-Object-Meta-Name": "Cam"})
    swift.put_container(RECORDING)
    source = HashingSource(SIZE)

    with server.peakMemory() as memory:
        etag = swift.put_object(RECORDING, "2GiB.mkv", source, content_length=SIZE)

    path = os.path.join(server.storage, RECORDING, "2GiB.mkv")
    try:
        assert source.position == SIZE
        assert etag == source.md5.hexdigest()
        assert os.path.getsize(path) == SIZE
        assert fileSHA256(path) == source.sha256.hexdigest()
    finally:
        # pytest keeps the last few runs' tmp_path: don't leave 2 GiB there.
        if os.path.exists(path):
            os.unlink(path)
    assert memory.samples > 10
    assert memory.peak < RSS_LIMIT, (
        f"server VmRSS reached {memory.peak / 2**20:.1f} MiB "
        f"({memory.samples} samples)"
    )
