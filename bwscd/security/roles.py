"""
The roles an account logs in with, and what each may do under C{/v1/}.

The controller may do exactly what the API needs (no listing, no reading
evidence, no deleting); a reader may list and read; an admin may list, read
and delete (audited: every download of evidence and every deletion is an
event, see L{bwscd.policy.evidence}).
"""

BWS = "bws"
READER = "reader"
ADMIN = "admin"
ROLES = (READER, ADMIN)
"""The roles an integrator's account may have."""

_READING = frozenset({
    ("HEAD", "account"), ("GET", "account"), ("HEAD", "container"), ("GET", "container"),
    ("HEAD", "object"), ("GET", "object"),
})
RIGHTS: dict[str, frozenset[tuple[str, str]]] = {
    BWS: frozenset({
        ("HEAD", "account"), ("PUT", "container"), ("POST", "container"), ("HEAD", "container"),
        ("PUT", "object"), ("POST", "object"), ("HEAD", "object"), ("GET", "object"),
    }),
    READER: _READING,
    ADMIN: _READING | {("DELETE", "object"), ("DELETE", "container")},
}
"""Each role's (method, level) pairs; the levels are Swift's: C{account},
C{container}, C{object}."""

CATALOG_READERS = frozenset({READER, ADMIN})
"""
The roles that may read the evidence catalog (C{/catalog/v1/}, the viewer):
not the controller's, which never reads evidence.
"""


def mayReadCatalog(role: str) -> bool:
    return role in CATALOG_READERS


def allowed(role: str, method: str, level: str) -> bool:
    """Whether C{role} may send C{method} to a path of C{level}."""
    return (method, level) in RIGHTS[role]
