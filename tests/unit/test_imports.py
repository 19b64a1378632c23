"""
A server imports the code of the backend it uses, not of the others: with
the filesystem backend, not the sqlite backend's modules, no twisted.conch
(SSH), and no treq without a webhook.  Each would cost memory for nothing.
(sqlite3 itself is the evidence catalog's, in every server.)
"""

import subprocess
import sys
import textwrap

UNUSED = ["twisted.conch", "treq", "bwscd.backends.sqlite", "bwscd.backends.sftp"]

SERVER = """
    import sys
    from bwscd.service import assembly

    options = assembly.Options()
    options.parseOptions(["--data", sys.argv[1], "--public-address", "127.0.0.1"])
    assembly.makeService(options)
    print(" ".join(sorted(sys.modules)))
"""


def test_filesystem_server_imports_no_other_backend(tmp_path):
    # Not from the checkout's top directory: "python -c" puts the current
    # directory first on sys.path, and the checkout's bwscd/ is not the
    # installed package (bwscd.backends is mapped from backends/).
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    modules = set(result.stdout.split())
    assert "bwscd.backends.filesystem" in modules
    imported = [m for m in modules for unused in UNUSED
                if m == unused or m.startswith(unused + ".")]
    assert imported == []
