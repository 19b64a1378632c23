"""
The users, devices and systems the controller has registered, and the
recording names they make valid.

The controller registers users as C{Users/<UserUUID>} objects and cameras as
C{Devices/<BWCSerialNumber>} objects, their names in metadata; a recording
container is named C{<UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>}.  A
recording that names a user or camera never registered can never be
stored: the API's answer is 400, and the controller marks it "Recording not
transferred" and keeps it for download.

Names change; the registry keeps every name with the time it took effect, so
a recording is shown with the name its user had when it was made as well as
the current one.  The registry is a document in the backend
(L{IStorageBackend.writeState}), written before the controller is answered.
With worker processes (C{--workers}) each process holds a copy: a change is
made under a lock they share, to the document as it is then, and a process
that doesn't know a user, a camera or a system reads the document again
before it refuses anything.
"""

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.internet.defer import inlineCallbacks

from bwscd.policy.capabilities import PublishedDocuments
from bwscd.constraints import DEVICES, SYSTEM, USERS
from bwscd.errors import BadRequest, Forbidden

STATE = "registry.json"

_RECORDING = re.compile(
    r"^(?P<user>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"_(?P<device>[^_]+)_(?P<time>[0-9]{8}T[0-9]{6}Z)$"
)
_REJECTED = re.compile(r"^RejectedContent_([0-9]{8}T[0-9]{6}Z|UnknownTime)_.+$")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"

# Canonical metadata keys (see bwscd.constraints.canonicalKey) of the
# registry objects, and the fields the registry keeps of each.
_FIELDS = {
    USERS: {"Name": "name", "Userid": "userId", "Active": "active"},
    DEVICES: {"Name": "name", "Model": "model", "Active": "active"},
    SYSTEM: {"Systemname": "systemName", "Connectionid": "connectionId"},
}
# What makes an entry "renamed" rather than just updated.
_NAMES = {USERS: ("name", "userId"), DEVICES: ("name",), SYSTEM: ("systemName",)}
_EVENT_PREFIX = {USERS: "user", DEVICES: "device", SYSTEM: "system"}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def isRejectedContent(container: str) -> bool:
    """C{RejectedContent_<time|UnknownTime>_<id>}: never refused."""
    return _REJECTED.match(container) is not None


def recordingNameParts(container: str) -> tuple[str, str, datetime] | None:
    """
    The user, device and trigger time a recording container's name gives
    (C{<UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>}), not checked
    against the registry; L{None} for another name.
    """
    match = _RECORDING.match(container)
    if _nameProblem(match) is not None:
        return None
    return match["user"], match["device"], _triggerOn(match)


@dataclass(frozen=True)
class Recording:
    """What a recording container's name says, checked against the registry."""

    container: str
    user: str
    device: str
    triggerOnTime: datetime


def displayName(entry: dict) -> str:
    """The API's advice for showing a user: C{Name (UserID)}."""
    name = entry.get("name", "")
    return f"{name} ({entry['userId']})" if entry.get("userId") else name


class Registry:
    """Users, devices and systems, with the history of their names."""

    def __init__(self, backend, events, lock, clock=time.time):
        """
        @param lock: a L{bwscd.config.processlock.ProcessLock} that every process
            serving the same storage shares.
        """
        self._backend = backend
        self._events = events
        self._lock = lock
        self._clock = clock
        self._entries = {USERS: {}, DEVICES: {}, SYSTEM: {}}

    @inlineCallbacks
    def load(self):
        """
        Read the registry; if it is missing (a new store, or a lost
        document), rebuild it from the registry objects stored, so that a
        lost document can't turn every recording into a 400.  Name history
        from before is lost then; what is stored now is the first entry.
        The published documents mirrored into C{System} are not systems.
        """
        if (yield self._refresh()):
            return
        for container in self._entries:
            if (yield self._backend.containerInfo(container)) is None:
                continue
            marker = ""
            while objects := (yield self._backend.listObjects(container, "", marker, 1000)):
                for info in objects:
                    if container == SYSTEM and info.name in PublishedDocuments.NAMES:
                        continue
                    yield self.record(container, info.name, info.metadata)
                marker = objects[-1].name

    @inlineCallbacks
    def _refresh(self):
        """Read the stored registry (what another process changed): whether there is one."""
        stored = yield self._backend.readState(STATE)
        if stored is not None:
            self._entries.update(json.loads(stored))
        return stored is not None

    def handles(self, container: str) -> bool:
        return container in self._entries

    @inlineCallbacks
    def check(self, container: str, name: str, metadata: dict[str, str]):
        """
        Refuse a change the API forbids: a system's ConnectionId is set when
        it is first stored and never changes.

        @return: L{Deferred} failing with L{Forbidden}, with the reason, after
            emitting an event.
        """
        if container != SYSTEM:
            return
        if not (self._entries[SYSTEM].get(name) or {}).get("connectionId"):
            yield self._refresh()  # another process may have set it
        known = self._entries[SYSTEM].get(name) or {}
        wanted = metadata.get("Connectionid")
        if known.get("connectionId") and wanted is not None and wanted != known["connectionId"]:
            self._events.emit(
                "system.connection-id-refused",
                system=name,
                connectionId=known.get("connectionId"),
                attempted=wanted,
            )
            raise Forbidden(f"system {name}: ConnectionId is set once and never changes")

    @inlineCallbacks
    def record(self, container: str, name: str, metadata: dict[str, str]):
        """
        Take a stored registry object into the registry, keep it, then emit
        what changed.

        @return: L{Deferred} firing once the registry is durable.
        """
        change = yield self._lock.run(self._record, container, name, metadata)
        if change is not None:
            type, fields = change
            self._events.emit(type, **fields)

    @inlineCallbacks
    def _record(self, container: str, name: str, metadata: dict[str, str]):
        """The change made, as an event's type and fields; L{None} for none."""
        yield self._refresh()
        fields = {
            field: metadata[key]
            for key, field in _FIELDS[container].items()
            if key in metadata
        }
        entries = self._entries[container]
        previous = entries.get(name)
        now = _iso(self._clock())
        kind = _EVENT_PREFIX[container]
        if previous is None:
            entries[name] = dict(fields, history=[dict(fields, since=now)])
            yield self._persist()
            return f"{kind}.registered", dict(id=name, **fields)
        current = {k: v for k, v in previous.items() if k != "history"}
        if container == SYSTEM and current.get("connectionId"):
            # Only what may change changes: a ConnectionId once set stays.
            fields.pop("connectionId", None)
        merged = dict(current, **fields) if container == SYSTEM else fields
        if merged == current:
            return None
        renamed = any(merged.get(f) != current.get(f) for f in _NAMES[container])
        entries[name] = dict(merged, history=previous["history"] + [dict(merged, since=now)])
        yield self._persist()
        return (f"{kind}.renamed" if renamed else f"{kind}.updated",
                dict(id=name, previous=current, **merged))

    def _persist(self):
        return self._backend.writeState(
            STATE, json.dumps(self._entries, ensure_ascii=False, indent=1).encode("utf-8"))

    @inlineCallbacks
    def recording(self, container: str):
        """
        Check a recording container's name against the registry.

        @return: L{Deferred} firing with the L{Recording}, or failing with
            L{BadRequest} saying what is wrong, after emitting an event.
        """
        match = _RECORDING.match(container)
        problem = _nameProblem(match)
        if problem is None and self._registrationProblem(match) is not None:
            yield self._refresh()  # registered through another process?
            problem = self._registrationProblem(match)
        if problem is not None:
            self._events.emit("recording.refused", container=container, status=400,
                              reason=problem)
            raise BadRequest(problem)
        return Recording(container, match["user"], match["device"], _triggerOn(match))

    def _registrationProblem(self, match) -> str | None:
        if match["user"] not in self._entries[USERS]:
            return f"user {match['user']} is not registered (no Users/{match['user']})"
        if match["device"] not in self._entries[DEVICES]:
            return f"device {match['device']} is not registered (no Devices/{match['device']})"
        return None

    def describe(self, recording: Recording) -> dict:
        """
        Who and what made a recording: the user's name when it was made and
        now, the camera's name.
        """
        user = self._entries[USERS][recording.user]
        device = self._entries[DEVICES][recording.device]
        when = recording.triggerOnTime.strftime("%Y-%m-%dT%H:%M:%SZ")
        then = user["history"][0]
        for state in user["history"]:
            if state["since"] <= when:
                then = state
        return {
            "user": recording.user,
            "userName": displayName(then),
            "userNameNow": displayName(user),
            "device": recording.device,
            "deviceName": device.get("name", ""),
            "triggerOnTime": when,
        }


def _triggerOn(match) -> datetime:
    return datetime.strptime(match["time"], _TIME_FORMAT).replace(tzinfo=timezone.utc)


def _nameProblem(match) -> str | None:
    """What is wrong with a recording container's name itself, if anything."""
    if match is None:
        return ("not a recording container name: expected "
                "<UserUUID>_<BWCSerialNumber>_<YYYYMMDDTHHMMSSZ>")
    try:
        _triggerOn(match)
    except ValueError:
        return f"{match['time']} is not a valid UTC time"
    return None
