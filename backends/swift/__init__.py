"""
The Swift backend: containers and objects in an OpenStack Swift account (or
Ceph RGW's Swift API), for evidence kept on a store a site already runs,
replicated as that store replicates.  See docs/swift-backend.md.

Every request is plain HTTP(S) to the account's storage URL, made from a
worker thread with Python's http.client: small ones from the backend's
pool, an upload's body from the upload's own thread as it arrives, so that
the bytes never pass through the reactor.  Write-once evidence uses Swift's
C{If-None-Match: *}; an object becomes visible only once the engine has
verified it (the end of its chunked body, or its manifest, is sent on
commit), and the store's ETag is compared with bwscd's MD5 before that
counts.

The modules, lowest first (each imports only those before it, the shared
backend modules and bwscd's top level; all log as C{bwscd.backends.swift}):

  - L{upstream<bwscd.backends.swift.upstream>}: the token and the requests;
  - L{objects<bwscd.backends.swift.objects>}: what is kept where, and how
    metadata and digests travel as headers;
  - L{transfer<bwscd.backends.swift.transfer>}: the writers and the reader;
  - L{storage<bwscd.backends.swift.storage>}: the backend's contract
    methods, and L{backend}, the factory the plugin names.
"""

from bwscd.backends.swift.storage import SwiftBackend, backend

__all__ = ["SwiftBackend", "backend"]
