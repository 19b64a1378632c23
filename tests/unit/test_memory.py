"""
The server's memory: what stays allocated after the work that needed it.
"""

import platform
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="about glibc's malloc",
)


def runPython(code: str) -> str:
    """Run C{code} in a fresh interpreter (its memory is what is measured)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return result.stdout


@glibc
def test_key_checks_give_scrypts_memory_back():
    """
    Each check needs 16 MiB (scrypt, n=2**14, r=8), in whichever thread runs
    it; afterwards the process is no bigger than before, however many
    threads have checked a key.  (Without the trim glibc keeps 16 MiB in
    each such thread's arena: 48 MiB here.)
    """
    grown = runPython("""
        import threading
        from bwscd.security import tokens

        def rss():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024

        encoded = tokens.hashKey("key")
        assert tokens.verifyKey("key", encoded)
        before = rss()
        for _ in range(3):
            thread = threading.Thread(target=tokens.verifyKey, args=("key", encoded))
            thread.start()
            thread.join()
        tokens.verifyKey("nope", encoded)
        print(rss() - before)
    """)
    assert int(grown) < 4 << 20, f"{int(grown) / (1 << 20):.1f} MiB kept"
