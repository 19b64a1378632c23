"""
Programs the tests run that may be missing on a fresh machine: installed
from Debian's packages (CI runs as root), or a reason to skip.
"""

import os
import shutil
import subprocess


class Unavailable(Exception):
    """A program is missing and could not be installed: its tests are skipped."""


def missing(programs: list[str]) -> list[str]:
    """Those of C{programs} (names on C{PATH}, or absolute paths) not found."""
    return [program for program in programs if not (
        os.path.exists(program) if os.path.isabs(program) else shutil.which(program))]


def installPrograms(programs: list[str], packages: list[str]) -> None:
    """
    Make sure each of C{programs} is here, installing Debian's C{packages}
    if any is missing.

    @raise Unavailable: saying why they can't be had.
    """
    absent = missing(programs)
    if not absent:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise Unavailable(f"{', '.join(absent)} missing and apt-get as root is not available")
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # A failed update may still leave usable package lists: the install says.
    subprocess.run(["apt-get", "update"], env=environment, capture_output=True)
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                          env=environment, capture_output=True, text=True)
    if missing(programs):
        raise Unavailable(
            f"{', '.join(missing(programs))} missing and installing {' and '.join(packages)} "
            f"failed ({done.returncode}): {done.stderr.strip()[-500:]}")
