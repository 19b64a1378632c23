"""
The top of the resource tree: C{/auth/v1.0} (also C{/auth/v1}),
C{/v1/...} and the catalog's C{/catalog/v1/...}; a 404 anywhere else.
"""

from twisted.web.resource import Resource

from bwscd.errors import NotFound
from bwscd.protocol.response import SwiftResource


class NotFoundResource(SwiftResource):
    def handle(self, request):
        raise NotFound("no such path; the API lives under /auth/v1.0 and /v1/")


class Root(Resource):
    """C{/auth/v1.0} (also C{/auth/v1}), C{/v1/...}, C{/catalog/v1/...}; a 404 anywhere else."""

    def __init__(self, authentication, storage, catalog=None):
        super().__init__()
        self._auth = authentication
        self._storage = storage
        self._catalog = catalog

    def getChild(self, name, request):
        if name == b"auth" and request.postpath in ([b"v1.0"], [b"v1"]):
            return self._auth
        if name == b"v1":
            return self._storage
        if name == b"catalog" and request.postpath[:1] == [b"v1"] and self._catalog is not None:
            return self._catalog
        return NotFoundResource()
