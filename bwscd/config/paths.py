"""
Every file bwscd keeps in the data directory, by name, in one place.  The
modules below the configuration (policy, security) are given a file's path,
never the directory, so none of them knows its layout.

A storage backend chooses the names of what it keeps there itself (the
filesystem backend's C{storage/}, the sqlite backend's C{storage.sqlite}):
it is given the data directory, as its plugin contract says.
"""

SETTINGS = "settings.json"
"""The account, token secret, public addresses and capabilities (L{bwscd.config.settings})."""
CATEGORIES = "categories.json"
"""The categories offered to camera users (L{bwscd.policy.categories})."""
CERTIFICATE = "server.crt"
"""The HTTPS certificate and its chain (self-signed unless imported)."""
PRIVATE_KEY = "server.key"
STAGED_CERTIFICATE = "server.next.crt"
"""
A certificate waiting to be served (bwscd cert renew/import): listed in
the connection file beside the served one until bwscd cert activate.
"""
STAGED_PRIVATE_KEY = "server.next.key"
CONNECTION_FILE = "config.json"
"""The connection file for Body Worn Manager (L{bwscd.config.connectionfile})."""
EVENT_LOG = "events.jsonl"
"""The event log; rotated files beside it (L{bwscd.policy.events})."""
DATA_DIRECTORY_LOCK = "bwscd.lock"
"""Held by the one service (or command) using the data directory."""
REGISTRY_LOCK = "registry.lock"
"""Taken around each registry update, by the main process and its workers."""
QUOTA_COUNTERS = "quota.counters"
"""What the account stores, shared by the main process and its workers."""

CATALOG = "catalog.sqlite"
"""
The evidence catalog (L{bwscd.catalog}): what storage holds, indexed for
finding recordings; rebuilt from storage and the event log when lost.
"""

HOLDS = "holds.json"
"""The legal holds in force (L{bwscd.config.holds}): kept, never derived."""
HOLDS_LOCK = "holds.lock"
"""Taken around each change of the holds, by the command and the server."""
EXPIRING = "expiring.json"
"""The recording the expiry sweep is deleting, so a restart finishes it (L{bwscd.service.expiry})."""
