"""
setup.cfg names its packages one by one (backends/ installs as
bwscd.backends): a package left out of it works from the checkout, where
the tests run, and is missing from C{pip install .}, the README's first
command.
"""

import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALLED_AS = {"bwscd": "bwscd", "backends": "bwscd.backends"}
"""Each top-level folder of packages, and the package it installs as."""


def packagesInTree() -> set[str]:
    found = set()
    for folder, package in INSTALLED_AS.items():
        top = os.path.join(ROOT, folder)
        for directory, subdirectories, files in os.walk(top):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
            if "__init__.py" in files and not os.path.islink(directory):
                relative = os.path.relpath(directory, top)
                found.add(package if relative == "." else
                          ".".join([package, *relative.split(os.sep)]))
    return found


def test_setup_cfg_installs_every_package_of_the_tree():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(config["options"]["packages"].split())
    assert packagesInTree() - listed == set()
    assert listed - packagesInTree() == {"twisted.plugins"}
