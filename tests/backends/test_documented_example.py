"""
The example backend in docs/backends.md, taken from the page: it has every
member of the contract (the conformance suite runs on it too, as
C{memory (from docs/backends.md)}, see conftest.py), and as a plugin it works
the way the page shows, through a real C{twistd bwscd --backend memory:...}.
"""

import hashlib
import os
import subprocess

import pytest
from swiftclient.exceptions import ClientException
from zope.interface.verify import verifyObject

from bwscd.errors import InsufficientStorage
from bwscd.interfaces import Digests, IObjectReader, IObjectWriter, IStorageBackend
from tests.support.backends import DOCS
from tests.support.reactor import call
from tests.support.swift import status

HELP = "$ PYTHONPATH=/opt/membackend twistd bwscd --help-backends"


@pytest.fixture
def withExample(documentedExample, monkeypatch) -> dict:
    """The environment for a process that finds the example, as on the page."""
    paths = [documentedExample, os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    return dict(os.environ)


def test_the_example_has_every_member_of_the_contract(runningReactor, documentedPlugin, tmp_path):
    backend = documentedPlugin.backend(str(tmp_path), {"limit": "100"})
    verifyObject(IStorageBackend, backend)
    call(backend.open)
    call(backend.putContainer, "C", {})
    with pytest.raises(InsufficientStorage):  # before the body, for a declared length
        call(backend.openObject, "C", "o", {}, 101)
    writer = call(backend.openObject, "C", "o", {}, 3, writeOnce=True)
    verifyObject(IObjectWriter, writer)
    writer.write(b"abc")
    writer.commit(Digests(3, hashlib.md5(b"abc").hexdigest(), hashlib.sha256(b"abc").hexdigest()))
    reader = call(backend.readObject, "C", "o", 1, None)
    verifyObject(IObjectReader, reader)
    assert reader.read(10) == b"bc" and reader.read(10) == b""
    reader.close()
    reader.close()
    for options in ({"limit": "ten"}, {"size": "10"}):
        with pytest.raises(ValueError):
            documentedPlugin.backend(str(tmp_path), options)


def test_help_backends_lists_it_as_the_page_shows(withExample, twistdCommand):
    listed = subprocess.run([*twistdCommand, "bwscd", "--help-backends"], env=withExample,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    with open(DOCS, encoding="utf-8") as f:
        page = f.read()
    shown = page.split(f"    {HELP}\n", 1)[1].split("    $", 1)[0]
    shown = [line.removeprefix("    ") for line in shown.splitlines()]
    assert any(line.startswith("memory: ") for line in shown)
    assert set(shown) <= set(listed.stdout.splitlines()), listed.stdout


def test_through_twistd_with_a_limit_of_2000_bytes(withExample, launch, dataDirectory,
                                                  recording):
    server = launch(dataDirectory, "--backend", "memory:limit=2000")
    assert "storage: memory storage (not durable), objects up to 2000 bytes" in server.log()
    swift = server.connection()
    container = recording.start(swift)

    # Over the limit: 507, with a Content-Length and chunked, and nothing stored.
    tooBig = os.urandom(2001)
    with pytest.raises(ClientException) as caught:
        swift.put_object(container, "big.mkv", tooBig)
    assert caught.value.http_status == 507
    assert b"objects are limited to 2000 bytes" in caught.value.http_response_content
    pieces = iter([tooBig[:1000], tooBig[1000:]])
    assert status(swift.put_object, container, "big.mkv", pieces) == 507
    assert status(swift.head_object, container, "big.mkv") == 404

    # Up to the limit it stores, write-once, and an admin lists, reads and deletes.
    data, other = os.urandom(2000), os.urandom(1500)
    md5 = hashlib.md5(data).hexdigest()
    assert swift.put_object(container, "a.mkv", data) == md5
    assert swift.put_object(container, "a.mkv", other) == hashlib.md5(other).hexdigest()
    swift.post_container(container, headers={"X-Container-Meta-Status": "Complete"})
    admin = server.addAccount("admin", "admin")
    _, objects = admin.get_container(container)
    assert [o["name"] for o in objects] == [
        "a.mkv", f"a.mkv.conflict-{hashlib.sha256(other).hexdigest()[:16]}"]
    headers, body = admin.get_object(container, "a.mkv")
    assert body == data and headers["etag"] == md5
    assert admin.get_object(container, "a.mkv", headers={"Range": "bytes=10-19"})[1] == data[10:20]
    assert status(admin.delete_container, container) == 409
    for o in objects:
        admin.delete_object(container, o["name"])
    admin.delete_container(container)
    assert container not in [c["name"] for c in admin.get_account()[1]]
    types = [e["type"] for e in server.events()]
    assert types.count("object.deleted") == 2 and "container.deleted" in types
