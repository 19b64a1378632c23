"""
Retention and legal holds, as pure rules: how long a recording is kept,
and what keeps it whatever the period says (docs/retention.md).

A L{Policy} gives periods in days: a default, one per category (by the
CategoryID of the API's "Categories" document), one for rejected content.
A recording's clock starts at the later of its StopTime and the arrival of
its last object, so a camera docked weeks late never loses footage early.
A recording with several categories keeps the longest of their periods; a
category the policy does not name has the default.  No period at all
means keep forever, and a recording that is not Complete never expires.
A L{Hold} on the recording, its person or one of its bookmarks' tags keeps
it, from retention and from an admin's DELETE alike; and the rejected
content that came from it, which belongs to that recording.

Nothing here reads a file or a clock: the caller gives the facts and the
time.  May import only the standard library and L{bwscd.errors}.
"""

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

DAY = 24 * 60 * 60

MINIMUM_DAYS = 90
"""
The shortest period allowed without an explicit acknowledgement: the
partner checklist's default minimum retention ("to avoid the situation
when recordings are removed right after they are uploaded").
"""

HOLD_KINDS = ("recording", "person", "tag")
"""What a hold names: a recording's container, a person's UserUUID, a tag C{key:value}."""


def _days(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: a period is a whole number of days, at least 1")
    return value


@dataclass(frozen=True)
class Policy:
    """Periods in days; L{None} keeps forever."""

    default: int | None = None
    categories: dict[str, int] = field(default_factory=dict)
    """CategoryID → days."""
    rejected: int | None = None
    """For rejected content; without one, rejected content has the default."""

    @classmethod
    def fromDocument(cls, document: dict | None) -> "Policy":
        """
        The policy a settings document's C{retention} holds.

        @raise ValueError: for a period that is not a positive number of days.
        """
        document = document or {}
        categories = document.get("categories", {})
        if not isinstance(categories, dict):
            raise ValueError("retention categories: an object of CategoryID to days")
        return cls(
            default=_days(document.get("default"), "default"),
            categories={str(key): _days(days, f"category {key}")
                        for key, days in categories.items()},
            rejected=_days(document.get("rejected"), "rejected"),
        )

    def toDocument(self) -> dict:
        return asdict(self)

    @property
    def keepsForever(self) -> bool:
        """Whether nothing ever expires (no period at all: bwscd's first behaviour)."""
        return self.default is None and self.rejected is None and not self.categories

    @property
    def longestDays(self) -> int | None:
        """
        The longest any recording is kept, in days; L{None}: some are kept
        forever (there is no default period, or no period at all).
        """
        return None if self.default is None else max(self.periods().values())

    def clockStartedBy(self, moment: float) -> float | None:
        """
        The latest clock start of a recording that may have expired by
        C{moment} (its shortest period before it); L{None} if none can.
        """
        periods = self.periods().values()
        return None if not periods else moment - min(periods) * DAY

    def periods(self) -> dict[str, int]:
        """Every period this policy names, by what it applies to."""
        named = {f"category {key}": days for key, days in self.categories.items()}
        if self.default is not None:
            named["default"] = self.default
        if self.rejected is not None:
            named["rejected"] = self.rejected
        return named


def checkPeriods(policy: Policy, acknowledged: bool) -> None:
    """
    @raise ValueError: for a period under L{MINIMUM_DAYS} days without
        C{acknowledged}, saying why.
    """
    short = {name: days for name, days in policy.periods().items() if days < MINIMUM_DAYS}
    if short and not acknowledged:
        listed = ", ".join(f"{name} {days} days" for name, days in sorted(short.items()))
        raise ValueError(
            f"{listed}: under the {MINIMUM_DAYS}-day minimum the partner checklist asks "
            "for, so that a camera docked weeks late does not lose its recordings soon "
            "after they arrive; pass --acknowledge-short-retention to set it anyway")


class Facts(NamedTuple):
    """
    What retention needs to know of one recording (or rejected content).
    A named tuple, not a dataclass: a plan makes a million of them, and a
    tuple is made several times faster.
    """

    recording: str
    complete: bool
    rejected: bool
    stop: float | None
    """Its StopTime, seconds since the epoch; L{None} if it has none."""
    lastArrival: float
    """When its last object arrived (or the container changed, if it has none)."""
    categories: tuple[str, ...] = ()
    """The CategoryIDs of its bookmarks."""
    person: str | None = None
    """The UserUUID its name gives."""
    tags: tuple[str, ...] = ()
    """Its bookmarks' tags, each C{key:value}."""
    bytes: int = 0
    original: str | None = None
    """
    For rejected content, the recording it came from (its
    Rejectedcontentoriginalcontainer), whose holds keep it; C{person} and
    C{tags} are then that recording's.
    """


@dataclass(frozen=True)
class Expiry:
    """When a recording expires, and by which rule."""

    rule: str
    """C{default}, C{rejected} or C{category ID}."""
    days: int
    clockStart: float
    """The later of its StopTime and its last object's arrival."""

    @property
    def expiresAt(self) -> float:
        return self.clockStart + self.days * DAY

    def age(self, now: float) -> float:
        """Days since its clock started."""
        return (now - self.clockStart) / DAY


def lastArrival(containerModified: float | None, objects) -> float:
    """
    When the last of a container's C{objects} (L{bwscd.interfaces.ObjectInfo})
    arrived: with its StopTime, where a recording's clock starts; the
    container's own time when it holds none.
    """
    return max((o.modified for o in objects), default=containerModified or 0.0)


def expiry(policy: Policy, facts: Facts) -> Expiry | None:
    """When C{facts}' recording expires under C{policy}; L{None}: kept forever."""
    return expiries(policy)(facts)


def expiries(policy: Policy):
    """
    L{expiry} under C{policy} for many recordings: C{facts -> Expiry | None},
    the rule of each kind of recording (rejected or not, Complete or not,
    its category ids) worked out once, as a plan of a million needs.
    """
    rules: dict = {}

    def expiryOf(facts: Facts) -> Expiry | None:
        kind = (facts.rejected, facts.complete, facts.categories)
        if kind not in rules:
            rules[kind] = _rule(policy, *kind)
        rule = rules[kind]
        return None if rule is None else Expiry(*rule, max(facts.stop or 0.0,
                                                           facts.lastArrival))
    return expiryOf


def _rule(policy: Policy, rejected: bool, complete: bool, categories) -> tuple | None:
    """The rule and the days of a recording of that kind; L{None}: kept forever."""
    if rejected:
        # Rejected content has no Status: the controller never completes it.
        days = policy.default if policy.rejected is None else policy.rejected
        rule = "default" if policy.rejected is None else "rejected"
        return None if days is None else (rule, days)
    if not complete:
        return None  # the controller is still sending it, or will send it again
    # Each category its own period, the default for one the policy does not
    # name; the longest keeps, and one kept forever keeps the recording.
    rules = [(f"category {c}", policy.categories[c]) if c in policy.categories
             else ("default", policy.default) for c in categories] \
        or [("default", policy.default)]
    if any(days is None for _, days in rules):
        return None
    return max(rules, key=lambda r: r[1])


@dataclass(frozen=True)
class Hold:
    """A legal hold: keeps every recording it covers until it is removed."""

    id: str
    kind: str
    """One of L{HOLD_KINDS}."""
    target: str
    reason: str
    account: str
    """Who placed it."""
    placed: str
    """When, RFC 3339."""

    def describe(self) -> str:
        return f"legal hold {self.id} on {self.kind} {self.target} ({self.reason}, by {self.account})"


def _foldedTag(tag: str) -> str:
    key, _, value = tag.partition(":")
    return f"{key.strip().casefold()}:{value.strip()}"


def checkHold(kind: str, target: str, reason: str) -> None:
    """@raise ValueError: for a hold that names nothing, or gives no reason."""
    if kind not in HOLD_KINDS:
        raise ValueError(f"a hold is on one of: {', '.join(HOLD_KINDS)}")
    if not target.strip():
        raise ValueError("a hold names what it holds")
    if kind == "tag" and ":" not in target:
        raise ValueError("a tag hold names a bookmark tag as key:value, e.g. Case:2024-117")
    if not reason.strip():
        raise ValueError("a hold gives its reason")


def holdOn(holds, facts: Facts) -> Hold | None:
    """The first of C{holds} that covers C{facts}' recording, or L{None}."""
    return holdFinder(holds)(facts)


def holdFinder(holds):
    """
    L{holdOn} under C{holds} for many recordings: C{facts -> Hold | None},
    each hold found by its target.  A hold on a recording covers it and
    the rejected content that came from it; on a person, their recordings;
    on a tag, the recordings one of whose bookmarks has it (the key's case
    and the spaces around key and value do not matter).
    """
    targets: dict = {}
    for order, hold in enumerate(holds):
        target = _foldedTag(hold.target) if hold.kind == "tag" else hold.target
        targets.setdefault((hold.kind, target), (order, hold))

    def holdOf(facts: Facts) -> Hold | None:
        keys = [("recording", facts.recording), ("recording", facts.original),
                ("person", facts.person), *(("tag", _foldedTag(tag)) for tag in facts.tags)]
        found = [targets[key] for key in keys if key in targets]
        return min(found, key=lambda f: f[0])[1] if found else None
    return holdOf
