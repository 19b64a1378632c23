"""
Everything under C{/v1/}: the token says who is asking and so in which
role (L{bwscd.security.roles}), the path what is asked of (account,
container or object), and the level's handler answers, through an explicit
table of its methods.
"""

from dataclasses import dataclass

from twisted.internet.defer import maybeDeferred

from bwscd import constraints
from bwscd.constraints import SWIFT_METHODS
from bwscd.errors import BadRequest, Forbidden, MethodNotAllowed, Unauthorized
from bwscd.policy.evidence import EvidenceRules
from bwscd.policy.usage import AccountUsage
from bwscd.protocol.account import AccountHandler
from bwscd.protocol.auth import accountName
from bwscd.protocol.container import ContainerHandler
from bwscd.protocol.object import ObjectHandler
from bwscd.protocol.response import SwiftResource
from bwscd.security import roles
from bwscd.transfer.admission import Admission


@dataclass(frozen=True)
class Target:
    """What a storage path names."""

    container: str | None
    object: str | None

    @property
    def level(self) -> str:
        """Swift's name for what the path names: account, container or object."""
        return "object" if self.object else "container" if self.container else "account"


def parseTarget(path: bytes, account: str) -> Target:
    """Split C{/v1/<account>[/<container>[/<object>]]} and check the names."""
    rest = path[len(b"/v1/") :]
    rawAccount, _, rest = rest.partition(b"/")
    if rawAccount != account.encode("utf-8"):
        raise Forbidden("this token is not for that account")
    rawContainer, slash, rawObject = rest.partition(b"/")
    if not rawContainer and slash:
        raise BadRequest("empty container name")
    container = constraints.containerName(rawContainer) if rawContainer else None
    name = constraints.objectName(rawObject) if rawObject else None
    return Target(container, name)


class StorageAPI(SwiftResource):
    """
    Everything under C{/v1/}: the one account, its containers and objects,
    with the rights of the role that logged in.
    """

    def __init__(self, authority, credentials, backend, registry, events, reactor,
                 pools, documents, quota, refusals, encrypted=False, maxUploads=32,
                 minimumRate=(0, 60)):
        super().__init__()
        self._authority = authority
        self._credentials = credentials
        self._refusals = refusals
        """The L{bwscd.policy.refusals.RefusalEpisodes} told of every refusal."""
        self._evidence = EvidenceRules(registry, backend, events, pools.checks,
                                       encrypted)
        usage = AccountUsage(backend, reactor.seconds)
        self.admission = Admission(quota, maxUploads)
        """This process's upload slots (the scrub yields while any is taken)."""
        self.handlers = {
            "account": AccountHandler(backend, usage, quota),
            "container": ContainerHandler(backend, self._evidence, usage),
            "object": ObjectHandler(backend, registry, self._evidence, documents, usage, quota,
                                    self.admission, reactor, pools,
                                    minimumRate),
        }
        """Each level's handler, by level."""

    @property
    def evidence(self) -> EvidenceRules:
        """The evidence rules the handlers follow (the catalog's API audits through them too)."""
        return self._evidence

    @property
    def encrypted(self) -> bool:
        """Whether the controller encrypts content (its GNSS tracks are not JSON)."""
        return self._evidence.encrypted

    @encrypted.setter
    def encrypted(self, encrypted: bool) -> None:
        self._evidence.encrypted = encrypted

    def handle(self, request):
        token = request.getHeader(b"x-auth-token") or request.getHeader(b"x-storage-token")
        user = self._authority.verify(token.decode("latin-1")) if token else None
        role = None if user is None else self._credentials.roleOf(user)
        if role is None:
            raise Unauthorized("missing, invalid or expired auth token")
        target = parseTarget(request.path, accountName(self._credentials.userName))
        level = target.level
        method = request.method.decode("latin-1")
        request.role, request.user = role, user
        if not roles.allowed(role, method, level):
            if method in SWIFT_METHODS:
                raise Forbidden(f"{method} on this {level} is not allowed for this account")
            raise MethodNotAllowed(f"{method} is not a Swift method")
        return maybeDeferred(self.handlers[level].methods[method], request, target).addErrback(
            self._refusals.note)
