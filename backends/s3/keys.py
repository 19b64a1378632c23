"""
What the S3 backend keeps where in its bucket (docs/s3-backend.md), every
key under the backend's C{prefix}:

  - C{PREFIX}C{C}/C{NAME}: the object C{NAME} of container C{C}, as
    integrators' S3 tools list it, its metadata C{x-amz-meta-*};
  - C{PREFIX.bwscd/containers/C}: container C{C} (S3 has no containers
    within a bucket), its metadata as a JSON body;
  - C{PREFIX.bwscd/digests/C/NAME}: the digests of an object that went up
    in parts (its ETag is not its MD5, and S3 can't add metadata once the
    parts are joined), written before the parts are joined;
  - C{PREFIX.bwscd/state/NAME}: the service's own documents (the registry);
  - C{PREFIX.bwscd/staging/ID}: evidence whose name held other bytes when
    it began to arrive, until its final name is known.
"""

from bwscd import constraints
from bwscd.backends import layout, storemeta

OWN = layout.STATE_DIRECTORY
"""
Where, after the prefix, bwscd's own keys are: a name no container has (the
engine refuses container names starting with a dot).
"""
MAX_KEY_LENGTH = 1024
"""The longest key S3 takes, in UTF-8 bytes."""
META = "x-amz-meta-"
STAGING = "staging/"


class Keys:
    """The keys of one backend's objects, under its C{prefix}."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.own = f"{prefix}{OWN}/"

    def object(self, container: str, name: str) -> str:
        return f"{self.prefix}{container}/{name}"

    def objects(self, container: str) -> str:
        """What every key of C{container}'s objects starts with."""
        return f"{self.prefix}{container}/"

    def container(self, container: str) -> str:
        return f"{self.own}containers/{container}"

    @property
    def containers(self) -> str:
        return f"{self.own}containers/"

    def digests(self, container: str, name: str) -> str:
        return f"{self.own}digests/{container}/{name}"

    def state(self, name: str) -> str:
        return f"{self.own}state/{name}"

    def staging(self, upload: str) -> str:
        return f"{self.own}{STAGING}{upload}"


def storable(metadata: dict[str, str], size: int) -> None:
    """
    Refuse, as the API's 400, metadata beyond what the store keeps: C{size}
    bytes of keys and values as they are sent, percent-encoded.
    """
    storemeta.storable({k: constraints.encodedValue(v) for k, v in metadata.items()},
                       constraints.MAX_META_COUNT + len(storemeta.LARGEST_OWN), size,
                       storemeta.LARGEST_OWN)
