"""
L{bwscd.transfer.admission.Admission}: upload slots and the quota, over a
real L{bwscd.transfer.quota.Quota} in a temporary file.
"""

import pytest

from bwscd.errors import QuotaUsedUp, UploadSlotsBusy
from bwscd.transfer.admission import Admission
from bwscd.transfer.quota import Quota


@pytest.fixture
def quota(tmp_path):
    return Quota(100, str(tmp_path / "quota"))


def test_a_slot_is_taken_for_the_block_and_given_back(quota):
    admission = Admission(quota, maxUploads=2)
    with admission.upload(10):
        with admission.upload(10):
            assert admission.busy == 2
            with pytest.raises(UploadSlotsBusy, match="all 2 upload slots are busy"):
                with admission.upload(10):
                    pass
        assert admission.busy == 1
    assert admission.busy == 0


def test_a_full_house_takes_nothing_from_the_quota(quota):
    admission = Admission(quota, maxUploads=0)
    with pytest.raises(UploadSlotsBusy):
        with admission.upload(10):
            pass
    with Admission(quota, maxUploads=1).upload(100):
        pass  # all 100 bytes were still free


def test_an_upload_that_does_not_fit_takes_no_slot(quota):
    admission = Admission(quota, maxUploads=1)
    with pytest.raises(QuotaUsedUp):
        with admission.upload(101):
            pass
    assert admission.busy == 0


def test_what_a_failed_upload_took_is_given_back(quota):
    admission = Admission(quota, maxUploads=1)
    with pytest.raises(OSError):
        with admission.upload(60):
            with pytest.raises(QuotaUsedUp):  # the 60 bytes are taken meanwhile
                with Admission(quota, maxUploads=1).upload(60):
                    pass
            raise OSError("the backend could not open a writer")
    assert admission.busy == 0
    with admission.upload(100):
        pass  # nothing is held by the failed one
