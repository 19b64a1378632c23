"""The storage backends that ship with bwscd, as Twisted plugins."""

from bwscd.plugins import BackendPlugin

filesystem = BackendPlugin(
    "filesystem",
    "files in the vendor example's layout; options: root=DIR (default DATA/storage), "
    "reserve=SIZE free space kept (default 256M)",
    "bwscd.backends.filesystem.backend",
)

sqlite = BackendPlugin(
    "sqlite",
    "one SQLite database holding metadata and content; options: path=FILE "
    "(default DATA/storage.sqlite), reserve=SIZE free space kept (default 256M)",
    "bwscd.backends.sqlite.backend",
)

sftp = BackendPlugin(
    "sftp",
    "files in the filesystem layout on an SSH server; options: host=H, port=P "
    "(default 22), user=U, key=PATH, known_hosts=PATH, root=DIR, reserve=SIZE "
    "(default 256M, when the server reports free space)",
    "bwscd.backends.sftp.backend",
)

swift = BackendPlugin(
    "swift",
    "an OpenStack Swift (or Ceph RGW) account; options: auth=URL (tempauth v1), user=U, "
    "key=K or key_file=PATH, prefix=P for container names, storage_url=URL, cafile=PATH, "
    "timeout=SECONDS (default 30), segment_size=SIZE (default: the cluster's largest object)",
    "bwscd.backends.swift.backend",
)

s3 = BackendPlugin(
    "s3",
    "keys of an S3-compatible bucket (AWS, Ceph RGW, MinIO, Swift's s3api); options: "
    "endpoint=URL, bucket=B, region=R (default us-east-1), access_key=K, secret=S or "
    "secret_file=PATH, prefix=P for keys, addressing=path|virtual (default path), "
    "cafile=PATH, timeout=SECONDS (default 30), part_size=SIZE (default 8M), "
    "metadata_limit=SIZE (default 2K, AWS's)",
    "bwscd.backends.s3.backend",
)
