"""
Whether an upload may start now: a free upload slot (C{--max-uploads}) and
room in the quota (L{bwscd.transfer.quota}), checked together before the
backend is asked for a writer, so a refused upload costs nothing.
"""

from contextlib import contextmanager

from bwscd.errors import UploadSlotsBusy


class Admission:
    """
    At most C{maxUploads} uploads at once in this process, each metered
    against C{quota}.
    """

    def __init__(self, quota, maxUploads: int):
        self._quota = quota
        self.maxUploads = maxUploads
        self.busy = 0
        """Upload slots taken now."""

    @contextmanager
    def upload(self, length: int | None):
        """
        A slot and a L{bwscd.transfer.quota.Allowance} for one upload of
        C{length} bytes (L{None}: chunked), for the C{with} block's time.
        If the block fails, what the allowance holds is given back (nothing,
        once a metered writer was aborted or committed: giving back twice is
        harmless).

        @raise UploadSlotsBusy: if every slot is taken.
        @raise QuotaUsedUp: if the upload can't fit in the quota.
        """
        if self.busy >= self.maxUploads:
            raise UploadSlotsBusy(
                f"all {self.maxUploads} upload slots are busy; try again shortly")
        allowance = self._quota.admit(length)
        self.busy += 1
        try:
            yield allowance
        except BaseException:
            allowance.release()
            raise
        finally:
            self.busy -= 1
