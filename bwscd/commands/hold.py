"""
C{bwscd hold add|remove|list}: legal holds (docs/retention.md), kept in
C{DATA/holds.json} (L{bwscd.config.holds}); a running server sees a change
at its next check.  Each change is a C{hold.added} or C{hold.removed} event
in the server's event log, naming the account.
"""

import os
import time

from bwscd.commands.export import AppendedEvent, defaultAccount
from bwscd.config import paths
from bwscd.config.holds import HoldFile, announce
from bwscd.config.settings import Settings
from bwscd.policy.events import Events, timestamp

ERRORS = (ValueError,)


def _show(hold) -> str:
    return f"{hold.id}\t{hold.kind}\t{hold.target}\t{hold.placed}\t{hold.account}\t{hold.reason}"


def run(arguments) -> None:
    Settings.load(arguments.data)  # a bwscd data directory
    holds = HoldFile(arguments.data)
    events = Events([AppendedEvent(os.path.join(arguments.data, paths.EVENT_LOG))])
    if arguments.action == "list":
        for hold in holds.read():
            print(_show(hold))
    elif arguments.action == "add":
        kind, target = next((kind, getattr(arguments, kind)) for kind in
                            ("recording", "person", "tag") if getattr(arguments, kind))
        hold = holds.add(kind, target, arguments.reason, arguments.account,
                         timestamp(time.time()))
        announce(events, "hold.added", hold, arguments.account)
        print(f"added {_show(hold)}")
    elif arguments.action == "remove":
        hold = holds.remove(arguments.id)
        announce(events, "hold.removed", hold, arguments.account)
        print(f"removed {_show(hold)}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "hold", help="legal holds: recordings that are never deleted",
        description="A held recording is never deleted, by retention nor by an admin's "
        "DELETE, until the hold is removed.  A hold is on one recording, on a person "
        "(every recording of theirs, also future ones) or on a bookmark tag.")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="one line per hold: id, kind, target, placed, "
                                    "account, reason")
    add = actions.add_parser("add", help="place a hold")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--recording", help="a recording's container name")
    what.add_argument("--person", help="a person's UserUUID")
    what.add_argument("--tag", help="a bookmark tag, key:value (e.g. Case:2024-117)")
    add.add_argument("--reason", required=True, help="why (a case, an order)")
    remove = actions.add_parser("remove", help="release a hold")
    remove.add_argument("id")
    for action in (add, remove):
        action.add_argument("--account", default=defaultAccount(),
                            help="who, for the audit event (default: operator:LOGIN)")
    parser.set_defaults(run=run, errors=ERRORS)
