"""
C{bwscd connection-file}: write the connection file, or check one.
"""

import json
import os

from bwscd.config import connectionfile

from bwscd.config import datadir, paths
from bwscd.config.settings import Settings
from bwscd.commands import CommandError

ERRORS = (ValueError,)

# The API: these may only ever go from false to true.
ONE_WAY = ("WantEncryption", "FullStoreAndReadSupport")


def check(path: str, issuedPath: str) -> list[str]:
    """
    Everything wrong with the connection file at C{path}: its format, and
    changes the API forbids against the one this destination issued last.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        candidate = connectionfile.validate(data)
    except connectionfile.ConnectionFileError as e:
        return str(e).splitlines()
    if not os.path.exists(issuedPath) or os.path.samefile(path, issuedPath):
        return []
    with open(issuedPath, "rb") as f:
        issued = json.loads(f.read())
    return [
        f"{name}: may only change from false to true, and the last connection "
        f"file issued here says true"
        for name in ONE_WAY
        if issued.get(name) is True and candidate.get(name) is not True
    ]


def run(arguments) -> None:
    issued = os.path.join(arguments.data, paths.CONNECTION_FILE)
    if arguments.check:
        problems = check(arguments.check, issued)
        if problems:
            raise CommandError(f"{arguments.check}: " + "; ".join(problems))
        print(f"{arguments.check} is a valid connection file")
        return
    datadir.writeConnectionFile(arguments.data, Settings.load(arguments.data))
    if arguments.out:
        with open(issued, "rb") as source, open(arguments.out, "wb") as out:
            os.chmod(arguments.out, 0o600)
            out.write(source.read())
    print(f"connection file: {arguments.out or issued}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "connection-file",
        help="write the connection file for Body Worn Manager, or check one",
    )
    parser.add_argument("--out", help="also write it here (it holds the account key)")
    parser.add_argument("--check", metavar="FILE",
                        help="check FILE against the API and the last file issued here")
    parser.set_defaults(run=run, errors=ERRORS)
