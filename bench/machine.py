"""
The facts about the machine and the software that figures depend on,
recorded with every run of bench/run.py so that figures are never read
without them.
"""

import datetime
import os
import platform
import ssl
import subprocess
from importlib.metadata import version

from upload import REPOSITORY

# The CPU features that decide how fast TLS and hashing go.
CPU_FEATURES = ("aes", "vaes", "avx2", "avx512f", "sha_ni")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of C{/proc/cpuinfo}."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


def _memoryGiB() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _run(*command: str) -> str:
    """What C{command} prints, run in the repository; it must succeed."""
    return subprocess.run(
        command, capture_output=True, text=True, cwd=REPOSITORY, check=True
    ).stdout.rstrip("\n")


def _openSSH() -> str:
    # ssh -V writes its version to standard error.
    return subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()


def _filesystem(directory: str) -> str:
    return _run("findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", directory)


def machineFacts(directory: str) -> dict:
    """
    CPU, memory, kernel, the software versions, the filesystem of the
    scratch C{directory}, and which commit of bwscd ran, with whether its
    server code had uncommitted changes.
    """
    from OpenSSL import SSL

    cpu = _cpuinfo()
    flags = cpu.get("flags", "").split()
    changed = _run("git", "status", "--porcelain", "--", "bwscd", "backends", "twisted")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu.get("model name", platform.processor()),
        "cpu MHz": cpu.get("cpu MHz"),
        "cpu features": [feature for feature in CPU_FEATURES if feature in flags],
        "cores": os.cpu_count(),
        "memory GiB": round(_memoryGiB(), 1),
        "kernel": platform.release(),
        "scratch filesystem": f"{directory}: {_filesystem(directory)}",
        "python": platform.python_version(),
        "openssl (server: pyOpenSSL)": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "openssl (client, discard receiver: ssl)": ssl.OPENSSL_VERSION,
        "openssh": _openSSH(),
        "twisted": version("twisted"),
        "pyopenssl": version("pyopenssl"),
        "python-swiftclient": version("python-swiftclient"),
        "bwscd commit": _run("git", "rev-parse", "--short", "HEAD"),
        "bwscd uncommitted changes": changed.splitlines(),
    }
