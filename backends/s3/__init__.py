"""
The S3 backend: containers and objects as keys of a bucket of an
S3-compatible store (AWS S3, Ceph RGW, MinIO, Swift's s3api), for evidence
kept on a store a site already runs.  See docs/s3-backend.md.

Requests are signed with SigV4 by botocore's signer and sent as the Swift
backend sends its own (L{bwscd.backends.remote}): from worker threads, the
body from the upload's own thread.  An object becomes visible only once the
engine has verified it: what fits in a part waits in memory and goes up
whole with its C{Content-MD5}; a larger one goes up in parts that the store
joins on commit.  Evidence is written with C{If-None-Match: *}.

The modules, lowest first (each imports only those before it, the shared
backend modules and bwscd's top level; all log as C{bwscd.backends.s3}):

  - L{bucket<bwscd.backends.s3.bucket>}: signing, requests, S3's XML;
  - L{keys<bwscd.backends.s3.keys>}: what is kept under which key;
  - L{transfer<bwscd.backends.s3.transfer>}: the writer;
  - L{storage<bwscd.backends.s3.storage>}: the backend's contract methods,
    and L{backend}, the factory the plugin names.
"""

from bwscd.backends.s3.storage import S3Backend, backend

__all__ = ["S3Backend", "backend"]
