"""
Storage backends called as the upload engine calls them (the digests it
measures), and the example backend that docs/backends.md gives in full,
taken from the page itself.
"""

import hashlib
import os
import re

from bwscd.interfaces import Digests

DOCS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "backends.md")
DOCUMENTED = "memory (from docs/backends.md)"
# The example's files, as the page names them in the line before each block.
EXAMPLE_FILES = ["memorybackend.py", "twisted/plugins/memorybackend_plugin.py"]

STORAGE = {"filesystem": "storage", "sqlite": "storage.sqlite", "sftp": "sftp"}
"""
Where each installed backend keeps what it stores in a test's directory
(tests/backends/conftest.py): its root (filesystem and SFTP, the example
server's layout) or its database.
"""


def digestsOf(data: bytes) -> Digests:
    """What the engine measures of C{data} as it streams in."""
    return Digests(len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def writeDocumentedExample(directory: str) -> str:
    """
    Write the example backend's C{```python} blocks from docs/backends.md
    into C{directory}, each under the path the page gives it; return
    C{directory}, for C{sys.path} or C{PYTHONPATH}.
    """
    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"^`([\w./]+\.py)`[^\n]*:\n\n```python\n(.*?)^```$", text, re.M | re.S)
    assert [path for path, _ in blocks] == EXAMPLE_FILES, (
        f"docs/backends.md should give {EXAMPLE_FILES} as ```python blocks, each after "
        f"a line naming it; found {[path for path, _ in blocks]}")
    assert text.count("```python") == len(blocks), "a ```python block not part of the example"
    for path, code in blocks:
        os.makedirs(os.path.join(directory, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(directory, path), "w", encoding="utf-8") as f:
            f.write(code)
    return directory
