"""
The SFTP backend: the filesystem backend's tree (docs/layout.md) on an SSH
server, for storage that lives on another machine.  See docs/sftp.md.

One SSH connection carries every request: OpenSSH's client, ssh(1), run
as sftp(1) runs it, with the server's sftp subsystem on its stdin and
stdout.  ssh does the SSH (host key, login, encryption) in a process of its
own, on another core; the reactor only sends and reads SFTP packets.
L{SFTPBackend.open} starts it, and when it ends the backend starts it
again, waiting 1, 2, 5, 10, then 30 seconds between attempts; until then
every method fails with L{ServiceUnavailable}, so the controller keeps its
recording and retries.  The server's host key must be the one
C{known_hosts} pins, and the client logs in with one private key and
nothing else.

Files are written as the filesystem backend writes them, as far as SFTP
lets a client: under a temporary name in C{.bwscd/tmp}, fsynced with
C{fsync@openssh.com}, then renamed into place with
C{posix-rename@openssh.com}, an atomic replace, or, for evidence, with
SFTP's own rename, which never replaces.  SFTP can't fsync a directory, so
after the last rename of an operation the renamed file is fsynced again,
which commits the rename too on journalling filesystems.  The MD5 and
SHA-256, kept in extended attributes by the filesystem backend, are kept in
a tree of their own, C{.bwscd/digests/<Container>/<Object>}, written before
the object appears, with the object's Content-Type.

Listings read the remote directories, as the filesystem backend reads its
own: names come back as the layout stores them (C{:} as C{_}).  A download
keeps a few reads in flight on the handle it opened, so the object it reads
stays the same even if it is replaced meanwhile.

The modules, lowest first (each imports only those before it, the shared
backend modules and bwscd's top level; all log as C{bwscd.backends.sftp}):

  - L{session<bwscd.backends.sftp.session>}: the SFTP client and its
    session, the remote file operations;
  - L{ssh<bwscd.backends.sftp.ssh>}: the ssh process, the peer and its key;
  - L{digests<bwscd.backends.sftp.digests>}: the digests records;
  - L{tree<bwscd.backends.sftp.tree>}: the shared layout read over a session;
  - L{connection<bwscd.backends.sftp.connection>}: connecting, reconnecting,
    probing, and shutting down;
  - L{placement<bwscd.backends.sftp.placement>}: an upload's commit on the
    reactor;
  - L{transfer<bwscd.backends.sftp.transfer>}: the writer and the reader;
  - L{storage<bwscd.backends.sftp.storage>}: the backend's contract methods,
    and L{backend}, the factory the plugin names.
"""

from bwscd.backends.sftp.storage import SFTPBackend, backend

__all__ = ["SFTPBackend", "backend"]
