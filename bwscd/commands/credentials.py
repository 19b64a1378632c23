"""C{bwscd credentials}: the BWS account's key, and integrators' accounts."""

import time

from bwscd.security import roles

from bwscd.config import datadir
from bwscd.config.settings import Settings

ERRORS = (ValueError,)
DAY = 24 * 60 * 60
# A running server reads settings.json again when it changed, every 10 s
# (bwscd.service.assembly.RELOAD_INTERVAL) and at once on SIGHUP.
TAKEN_UP = "within 10 s (at once on SIGHUP)"


def run(arguments) -> None:
    if arguments.action == "rotate":
        if arguments.grace_days < 0:
            raise ValueError("--grace-days can't be negative")
        settings = Settings.load(arguments.data)
        key = settings.rotateKey(arguments.grace_days * DAY, time.time())
        settings.save()
        datadir.writeConnectionFile(arguments.data, settings, key)
        print(f"new account key written to the connection file in {arguments.data}; "
              f"a running server accepts it {TAKEN_UP}; then upload the file in "
              "Body Worn Manager")
        if arguments.grace_days:
            print(f"the old key keeps working for {arguments.grace_days:g} day(s)")
        else:
            print(f"every older key and every token given out stop working {TAKEN_UP}")
        return
    if arguments.action == "add":
        settings = Settings.load(arguments.data)
        key = settings.addAccount(arguments.name, arguments.role)
        settings.save()
        print(f"{arguments.role} {arguments.name} added; its key (shown only now): {key}")
        print(f"a running server accepts it {TAKEN_UP}")
        return
    if arguments.action == "remove":
        settings = Settings.load(arguments.data)
        settings.removeAccount(arguments.name)
        settings.save()
        print(f"account {arguments.name} removed; a running server refuses its key and "
              f"its tokens {TAKEN_UP}")
        return
    settings = Settings.load(arguments.data)
    print(f"user {settings.userName}")
    for account in settings.integratorAccounts:
        print(f"{account['role']} {account['user']}")
    for retiring in settings.retiring:
        if retiring["until"] > time.time():
            until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(retiring["until"]))
            print(f"an older key is accepted until {until}")


def register(subcommands) -> None:
    parser = subcommands.add_parser("credentials", help="the controller's account key, and integrators' accounts")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the accounts with their roles, and older keys "
                                    "still accepted")
    add = actions.add_parser(
        "add", help="an integrator's account: a reader may list and read what is "
                    "stored; an admin may also delete it")
    add.add_argument("name")
    add.add_argument("--role", choices=roles.ROLES, default=roles.READER,
                     help="reader (default) or admin")
    remove = actions.add_parser("remove", help="remove an integrator's account")
    remove.add_argument("name")
    rotate = actions.add_parser(
        "rotate",
        help="a new key in a new connection file; the old key keeps working a while",
    )
    rotate.add_argument("--grace-days", type=float, default=7,
                        help="how long the old key keeps working (default 7; 0 stops "
                             "every older key at once, for a key that leaked)")
    parser.set_defaults(run=run, errors=ERRORS)
