"""
C{bwscd retention show|set|plan}: the retention policy in settings.json
(L{bwscd.config.settings.Settings.retention}, the rules in
L{bwscd.policy.retention}), and what it would delete.

A running server reads the policy afresh at each expiry sweep (at start and
once a day).  C{plan --as-of} only looks ahead: the sweep has no such
option, and always uses the real clock.
"""

import os
import time
from datetime import datetime, timezone

from bwscd.catalog import schema
from bwscd.catalog.retention import planned
from bwscd.commands import CommandError
from bwscd.commands.capacity import estimateInWords
from bwscd.config import paths
from bwscd.config.holds import HoldFile
from bwscd.config.settings import Settings
from bwscd.policy.categories import CategoryFile
from bwscd.policy.events import timestamp
from bwscd.policy.retention import Policy

ERRORS = (ValueError,)
FOREVER = "forever"


def _period(text: str) -> int | None:
    """C{365} or C{forever}."""
    if text == FOREVER:
        return None
    if not text.isdigit():
        raise ValueError(f"{text!r}: a period is a number of days, or {FOREVER}")
    return int(text)


def _names(data: str) -> dict[str, str]:
    try:
        return {c["Id"]: c["Name"] for c in CategoryFile(
            os.path.join(data, paths.CATEGORIES)).read()}
    except ValueError:
        return {}


def _days(days: int | None) -> str:
    return FOREVER if days is None else f"{days} days"


def printPolicy(data: str) -> None:
    policy = Settings.load(data).retention
    if policy.keepsForever:
        print("no retention policy: every recording is kept forever")
    else:
        names = _names(data)
        print(f"default\t{_days(policy.default)}")
        print(f"rejected\t"
              f"{_days(policy.rejected if policy.rejected is not None else policy.default)}")
        for id, days in sorted(policy.categories.items()):
            print(f"category {id} ({names.get(id, 'not among the categories offered')})\t"
                  f"{_days(days)}")


def show(arguments) -> None:
    printPolicy(arguments.data)
    if os.path.exists(os.path.join(arguments.data, paths.CATALOG)):
        print(f"capacity\t{estimateInWords(arguments.data, arguments.backend)}")


def set_(arguments) -> None:
    settings = Settings.load(arguments.data)
    policy = settings.retention
    default, rejected, categories = policy.default, policy.rejected, dict(policy.categories)
    if arguments.default is not None:
        default = _period(arguments.default)
    if arguments.rejected is not None:
        rejected = _period(arguments.rejected)
    for rule in arguments.category:
        id, equals, days = rule.partition("=")
        if not equals or not id:
            raise ValueError(f"--category {rule!r}: CATEGORYID=DAYS, or CATEGORYID={FOREVER}")
        categories.pop(id, None)
        period = _period(days)
        if period is not None:
            categories[id] = period
    settings.setRetention(Policy(default, categories, rejected),
                          acknowledged=arguments.acknowledge_short_retention)
    settings.save()
    printPolicy(arguments.data)


def _asOf(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--as-of {text!r}: a date, 2027-03-01, or a time, 2027-03-01T12:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def plan(arguments) -> None:
    data = arguments.data
    policy = Settings.load(data).retention
    asOf = _asOf(arguments.as_of)
    path = os.path.join(data, paths.CATALOG)
    if not schema.exists(path):
        raise CommandError("no catalog yet: start the server once (it builds it)")
    if policy.keepsForever:
        print("no retention policy: every recording is kept forever")
        return
    holds = HoldFile(data).read()
    names = _names(data)
    db = schema.open(path, readOnly=True)
    try:
        going, held = planned(db, policy, holds, asOf)
    finally:
        db.close()
    freed = sum(facts.bytes for facts, _ in going)
    for facts, due in going:
        rule = due.rule
        if rule.startswith("category "):
            rule += f" ({names.get(rule.split(' ', 1)[1], '?')})"
        print(f"{facts.recording}\t{timestamp(due.expiresAt)}\t{rule}, {due.days} days\t"
              f"{facts.bytes} bytes")
    print(f"{len(going)} recordings expire by {timestamp(asOf)}, freeing {freed} bytes; "
          f"{held} more are kept by legal holds")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "retention", help="the retention policy, and what it deletes",
        description="How long recordings are kept (docs/retention.md).  The clock of a "
        "recording starts at the later of its StopTime and its last object's arrival; "
        "one that is not Complete, or is held, never expires.")
    actions = parser.add_subparsers(dest="action", required=True)
    showing = actions.add_parser(
        "show", help="the periods, and days until storage is full",
        description="The periods; with a catalog, also free space, intake and days "
        "until full under this policy (as bwscd capacity).")
    showing.add_argument(
        "--backend", default="filesystem",
        help="the storage backend, as given to twistd bwscd (default: filesystem)")
    showing.set_defaults(run=show)
    setting = actions.add_parser(
        "set", help="change periods (days, or 'forever')",
        description="Change the periods given; the others stay.  A period under the "
        "minimum the partner checklist asks for is refused unless acknowledged.")
    setting.add_argument("--default", help="days, or forever (the default: forever)")
    setting.add_argument("--rejected", help="days for rejected content, or forever")
    setting.add_argument("--category", action="append", default=[],
                         metavar="CATEGORYID=DAYS",
                         help="a category's period (CATEGORYID=forever: the default's)")
    setting.add_argument("--acknowledge-short-retention", action="store_true",
                         help="allow periods under the minimum")
    setting.set_defaults(run=set_)
    planning = actions.add_parser(
        "plan", help="what would expire, when and why, and what it frees",
        description="Read from the catalog; --as-of looks ahead (the server's sweep "
        "always uses the real clock).")
    planning.add_argument("--as-of", help="a date or time (default: now), UTC unless given")
    planning.set_defaults(run=plan)
    parser.set_defaults(errors=ERRORS)
