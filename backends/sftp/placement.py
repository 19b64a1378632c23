"""
What an SFTP upload's writer asks of the reactor once its body is sent:
its temporary file synced, closed, and renamed into place, its metadata and
digests record written first so that they are there when the object
appears; for evidence, never over another object (the write-once rule of
L{bwscd.backends.common.placeOnce}, whose steps the writer takes); or its
file abandoned; and what to answer for a write that failed.
"""

from twisted.conch.ssh import filetransfer
from twisted.internet.defer import DeferredLock, inlineCallbacks
from twisted.python.failure import Failure

from bwscd.backends import common, layout
from bwscd.backends.sftp.digests import digestsPath, record
from bwscd.backends.sftp.session import REMOTE_FAILURES, Session, log
from bwscd.backends.sftp.tree import objectInfo
from bwscd.errors import ServiceUnavailable
from bwscd.interfaces import Digests, ObjectInfo

COMMITTING = "committing an object"

# Less than this free after a failed write: the remote disk filled up.
_FULL = 1 << 20


class Placement:
    """
    Puts the objects of the L{Connection<bwscd.backends.sftp.connection.Connection>}'s
    writers in place, one commit to a name at a time.

    @ivar lock: held while a commit checks that a name is free and takes it,
        and while it writes the metadata and the digests, then the object,
        which must not interleave with another commit's to the same name;
        and by a deletion.
    """

    def __init__(self, connection):
        self._connection = connection
        self.lock = DeferredLock()

    def finish(self, writer, digests: Digests):
        """
        Sync and close the writer's file, once it holds C{digests.length}
        bytes: fires with the record of its digests and its modification
        time, for L{replace} or L{claim}.
        """
        return self._connection.guarded(COMMITTING, self._finish, writer, digests,
                                        session=writer.session)

    @inlineCallbacks
    def _finish(self, session, writer, digests):
        attributes = yield writer.file.getAttrs()
        if attributes["size"] != digests.length:
            raise ServiceUnavailable(
                f"the SFTP server holds {attributes['size']} bytes of the "
                f"{digests.length} sent"
            )
        yield session.fsync(writer.file)
        yield writer.closeFile()
        return (record(digests, writer.contentType, attributes["mtime"]),
                float(attributes["mtime"]))

    def replace(self, writer, digests: Digests, record: bytes, modified: float):
        """Place the writer's object under its name, replacing any there."""
        return self._connection.guarded(
            COMMITTING, lambda session: self.lock.run(
                self._place, session, writer, writer.name, digests, record, modified,
                replace=True),
            session=writer.session)

    def claim(self, writer, name: str, digests: Digests, record: bytes, modified: float):
        """
        Place the writer's object under C{name} if no object has that name:
        fires with C{(the placed object, True)}, or C{(the object there,
        False)} (L{common.placeOnce}).
        """
        return self._connection.guarded(COMMITTING, self._claim, writer, name, digests,
                                        record, modified, session=writer.session)

    @inlineCallbacks
    def _claim(self, session, writer, name, digests, record, modified):
        yield self.lock.acquire()
        try:
            existing = yield objectInfo(session, writer.container, name)
            if existing is None:
                placed = yield self._place(session, writer, name, digests, record,
                                           modified, replace=False)
                if placed is not None:
                    return placed, True
                # Taken since the check, by something other than bwscd.
                existing = yield objectInfo(session, writer.container, name)
        finally:
            self.lock.release()
        return existing, False

    @inlineCallbacks
    def _place(self, session, writer, name, digests, record, modified, replace):
        """
        Write the metadata and the digests, then rename the synced data to
        C{name}: when the object appears, they are already there.  L{None}
        if C{name} was taken (with C{replace} false).
        """
        yield session.write(layout.objectMetadata(writer.container, name),
                            layout.encodeMetadata(writer.metadata))
        yield session.write(digestsPath(writer.container, name), record)
        final = layout.object(writer.container, name)
        if replace:
            yield session.replace(writer.temporary, final)
        elif not (yield session.place(writer.temporary, final)):
            return None
        yield session.settle(final)
        return ObjectInfo(writer.container, name, digests, modified, writer.metadata,
                          contentType=writer.contentType)

    @inlineCallbacks
    def writeRefusal(self, session: Session, reason: Failure):
        """What to answer for a failed write: 507 if the remote disk is full."""
        full = False
        if reason.check(filetransfer.SFTPError):
            try:
                free = yield session.freeSpace()
            except REMOTE_FAILURES:
                free = None
            full = free is not None and free < _FULL
        return common.storageError("writing an object", reason.getErrorMessage(), full, log,
                                   storage="SFTP storage", where=" on the SFTP server")

    @inlineCallbacks
    def abandon(self, writer):
        try:
            yield writer.closeFile()
        except REMOTE_FAILURES:
            pass
        yield writer.session.removeQuietly(writer.temporary)
