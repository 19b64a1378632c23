"""
C{bwscd}: the operator's command.  Every subcommand takes C{--data DIR}
(the same default as the service), prints one clear line on an error and
exits non-zero.
"""

import argparse
import importlib
import sys

from bwscd.commands import CommandError

DEFAULT_DATA = "bwscd-data"

# Each a module in bwscd.commands.
COMMANDS = ["categories", "backup", "init", "connection_file", "cert", "credentials", "keys", "decrypt", "loadtest"]


def addDataOption(parser) -> None:
    parser.add_argument(
        "--data", default=DEFAULT_DATA,
        help=f"data directory, as given to twistd bwscd (default: {DEFAULT_DATA})",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bwscd",
        description="Operator commands for bwscd, the body worn content destination.",
    )
    subcommands = top.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bwscd.commands.{name}").register(subcommands, addDataOption)
    return top


def main(argv=None) -> int:
    arguments = parser().parse_args(argv)
    try:
        arguments.run(arguments)
    except (CommandError, OSError, *arguments.errors) as e:
        print(f"bwscd {arguments.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
