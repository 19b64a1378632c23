"""
The rules that keep evidence what it is, independent of HTTP.

Every container but the registry's (C{System}, C{Users}, C{Devices}) holds
evidence: the recordings and the rejected content the controller sends.
Evidence is written once and never replaced; a recording is done when the
controller sets its C{Status} to L{COMPLETE}, and only then may an admin
delete from it, unless a legal hold keeps it; what does not fit (other bytes under a name already stored,
writes after Complete, a GNSS track that is not JSON) is kept and reported
as an event, never refused.  Every change and every read of evidence is an
event (docs/events.md).
"""

import json

from twisted.internet.defer import inlineCallbacks, succeed

from bwscd.constraints import GNSS_CHECK_LIMIT
from bwscd.errors import Conflict, Forbidden, NotFound
from bwscd.policy.registry import isRejectedContent

COMPLETE = "Complete"
"""The C{Status} a recording gets when the controller has sent all of it."""
GNSS_SUFFIX = "_gpstrail.json"
"""How a recording's GNSS track is named (the API's "Location object meta-data")."""


def isTrack(name: str) -> bool:
    """Whether object C{name} is a recording's GNSS track."""
    return name.endswith(GNSS_SUFFIX)


def _jsonProblem(data: bytes) -> str | None:
    try:
        json.loads(data)
    except ValueError as e:
        return f"not valid JSON: {e}"
    except RecursionError:
        return "not checked: nested too deeply to parse"
    return None


class EvidenceRules:
    """
    What may be done to evidence, and the events that say what was done.

    @ivar encrypted: whether the controller encrypts content (its GNSS
        tracks are then not JSON, and not checked).
    @ivar holds: what says whether a legal hold keeps a recording: its
        C{holdOn(container, metadata)} fires with the
        L{bwscd.policy.retention.Hold} or L{None}; L{None} for no holds
        at all (a service without a catalog).
    """

    def __init__(self, registry, backend, events, checks, encrypted=False, holds=None):
        self._registry = registry
        self._backend = backend
        self._events = events
        self._checks = checks
        """The L{bwscd.threads.Pool} that checks GNSS tracks."""
        self.encrypted = encrypted
        self.holds = holds

    def isEvidence(self, container: str) -> bool:
        """Recordings and rejected content: written once, never replaced."""
        return not self._registry.handles(container)

    @inlineCallbacks
    def statusOf(self, container):
        """A recording's Status; L{None} for anything else, or a new container."""
        if not self.isEvidence(container):
            return None
        info = yield self._backend.containerInfo(container)
        return None if info is None else info.metadata.get("Status")

    @inlineCallbacks
    def isComplete(self, container):
        """Whether C{container} is a recording whose Status is Complete."""
        return (yield self.statusOf(container)) == COMPLETE

    def recording(self, container):
        """
        The L{bwscd.policy.registry.Recording} a new container's name
        describes (checked against the registry: fails with C{BadRequest}
        for a user or device it does not know); L{None} for a container that
        is not a recording.
        """
        if self.isEvidence(container) and not isRejectedContent(container):
            return self._registry.recording(container)
        return succeed(None)

    def containerCreated(self, container: str, changes: dict[str, str], recording) -> None:
        """C{container} was created with metadata C{changes}."""
        if recording is not None:
            self._events.emit("recording.started", container=container,
                              **self._registry.describe(recording))
        elif isRejectedContent(container):
            self._events.emit(
                "rejected.received",
                container=container,
                originalContainer=changes.get("Rejectedcontentoriginalcontainer", ""),
                reason=changes.get("Rejectedcontentreason", ""),
            )

    def noteCompletion(self, container: str, before, changes: dict[str, str]) -> None:
        """
        C{container}'s metadata got C{changes}; its Status was C{before}.
        A recording becomes Complete once: setting it again says nothing.
        """
        if (self.isEvidence(container) and before != COMPLETE
                and changes.get("Status") == COMPLETE):
            self._events.emit("recording.complete", container=container)

    @inlineCallbacks
    def checkDeletable(self, container: str):
        """
        An admin deletes only from recordings the controller is done with
        (and rejected content), never the registry's records, and nothing
        a legal hold keeps.

        @raise Forbidden: for a registry container.
        @raise NotFound: for a container that does not exist.
        @raise Conflict: for a recording that is not Complete, or held
            (saying by which hold, and why).
        """
        if self._registry.handles(container):
            raise Forbidden(f"the {container} records are kept: they hold the "
                            "registry's history")
        info = yield self._backend.containerInfo(container)
        if info is None:
            raise NotFound(f"no container {container!r}")
        if not isRejectedContent(container) and info.metadata.get("Status") != COMPLETE:
            # The controller is still sending it, or will send it again.
            raise Conflict(f"recording {container!r} is not Complete yet")
        if self.holds is not None:
            hold = yield self.holds.holdOn(container, info.metadata)
            if hold is not None:
                raise Conflict(f"{container!r} is kept by {hold.describe()}")

    def metadataChanged(self, container: str, name: str | None, account: str) -> None:
        """
        C{account} changed the metadata of recording (or rejected content)
        C{container}, or of its object C{name}.
        """
        if not self.isEvidence(container):
            return
        fields = {"object": name} if name is not None else {}
        self._events.emit("recording.updated", container=container, account=account, **fields)

    def recordingViewed(self, container: str, account: str, via: str) -> None:
        """C{account} looked at a recording's catalog entry, C{via} the API or the viewer."""
        self._events.emit("recording.viewed", container=container, account=account, via=via)

    def containerDeleted(self, container: str, account: str) -> None:
        self._events.emit("container.deleted", container=container, account=account)

    def objectDeleted(self, container: str, name: str, account: str, deleted) -> None:
        """C{account} deleted C{name}, whose L{bwscd.interfaces.ObjectInfo} was C{deleted}."""
        self._events.emit(
            "object.deleted",
            container=container,
            object=name,
            account=account,
            length=deleted.digests.length,
            md5=deleted.digests.md5,
            sha256=deleted.digests.sha256,
        )

    def objectRead(self, container: str, name: str, account: str, info,
                   first: int, last: int, sent: int, complete: bool) -> None:
        """
        Evidence was read: by whom, which bytes, and whether they all went
        out.  (The registry's records are not evidence: the controller
        reads its own System records back.)
        """
        self._events.emit(
            "object.read",
            container=container,
            object=name,
            account=account,
            first=first,
            last=last,
            sent=sent,
            complete=complete,
            length=info.digests.length,
            sha256=info.digests.sha256,
        )

    @inlineCallbacks
    def objectStored(self, container: str, name: str, stored, afterComplete: bool,
                     kept: bytes | None, account: str | None = None):
        """
        Evidence C{name} was sent and is stored (as C{stored}, an
        L{bwscd.interfaces.ObjectInfo}): say so, and what did not fit.

        @param afterComplete: whether the recording was Complete before.
        @param kept: a GNSS track's bytes, or L{None} if it was too large
            to keep for checking.
        @param account: the account that sent it.
        """
        self._events.emit(
            "clip.stored",
            container=container,
            object=name,
            account=account,
            storedAs=stored.name,
            length=stored.digests.length,
            md5=stored.digests.md5,
            sha256=stored.digests.sha256,
            alreadyStored=stored.existed,
        )
        if stored.name != name:
            self._anomaly(container, name, f"different bytes for an existing object, "
                                           f"kept as {stored.name!r}")
        if afterComplete:
            self._anomaly(container, name, "written after the recording was Complete")
        if isTrack(name) and not stored.existed and not self.encrypted:
            yield self._checkTrack(container, stored.name, kept)

    def _anomaly(self, container, name, what):
        self._events.emit("recording.anomaly", container=container, object=name, anomaly=what)

    @inlineCallbacks
    def _checkTrack(self, container, name, kept):
        """
        A GNSS track is kept whatever it holds; one that is not JSON is
        flagged, one too large to hold in memory is reported unchecked.
        (Encrypted tracks are not JSON: they are not checked.)
        """
        if kept is None:
            self._events.emit("gnss.unchecked", container=container, object=name,
                              reason=f"larger than {GNSS_CHECK_LIMIT} bytes")
            return
        problem = yield self._checks.run(_jsonProblem, kept)
        if problem is not None:
            self._events.emit("gnss.invalid", container=container, object=name,
                              problem=problem)
