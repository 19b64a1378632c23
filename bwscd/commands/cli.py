"""
C{bwscd}: the operator's command.  Every subcommand takes C{--data DIR}
(the same default as the service), prints one clear line on an error and
exits non-zero.
"""

import argparse
import importlib
import sys

from bwscd import __version__
from bwscd.commands import CommandError

DEFAULT_DATA = "bwscd-data"

# Each a module in bwscd.commands.
COMMANDS = ["categories", "backup", "init", "connection_file", "cert", "credentials", "keys", "decrypt",
            "export", "catalog", "retention", "hold", "verify", "capacity", "loadtest"]


class CommandParser(argparse.ArgumentParser):
    """
    A parser that takes the options common to every subcommand, and whose
    subcommands' parsers (argparse makes them of this class too) and their
    actions' parsers take them as well: C{bwscd --data D cert show},
    C{bwscd cert --data D show} and C{bwscd cert show --data D} are the same.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Suppressed: a level where the option is not given leaves the value
        # from another level alone (argparse copies every value a subparser
        # has, defaults too, over its parent's).  The default is set once, on
        # the top parser.
        self.add_argument(
            "--data", default=argparse.SUPPRESS,
            help=f"data directory, as given to twistd bwscd (default: {DEFAULT_DATA})",
        )


def parser() -> argparse.ArgumentParser:
    top = CommandParser(
        prog="bwscd",
        description="Operator commands for bwscd, the body worn content destination.",
    )
    top.set_defaults(data=DEFAULT_DATA)
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = top.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bwscd.commands.{name}").register(subcommands)
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
