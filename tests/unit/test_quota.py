"""
L{bwscd.transfer.quota.Quota}: uploads admitted against what is left,
chunked ones metered as their bytes arrive, what is deleted freed, and
what is stored counted from a real filesystem backend; two quotas on the
same counters file (two processes, C{--workers}) see each other's uploads.
"""

import os

import pytest

from bwscd.backends.filesystem import FilesystemBackend
from bwscd.errors import QuotaUsedUp
from bwscd.transfer.quota import Quota
from tests.support.backends import digestsOf
from tests.support.reactor import call

CONTAINER = "RejectedContent_UnknownTime_quota"


@pytest.fixture
def backend(tmp_path, runningReactor) -> FilesystemBackend:
    backend = FilesystemBackend(str(tmp_path / "storage"), reserve=0)
    call(backend.open)
    call(backend.putContainer, CONTAINER, {})
    return backend


@pytest.fixture
def counters(tmp_path) -> str:
    return str(tmp_path / "quota")


def upload(quota, backend, name, data, declared=True):
    """
    Store C{data} as the engine does, metered, aborting the write if it
    fails: the stored object's info.
    """
    allowance = quota.admit(len(data) if declared else None)
    writer = allowance.meter(
        call(backend.openObject, CONTAINER, name, {}, len(data) if declared else None))
    try:
        for offset in range(0, len(data), 100):
            writer.write(data[offset:offset + 100])
        return writer.commit(digestsOf(data))
    except BaseException:
        writer.abort()
        raise


def test_an_upload_that_would_not_fit_is_refused_before_its_body(counters):
    quota = Quota(1000, counters)
    held = quota.admit(600)
    with pytest.raises(QuotaUsedUp, match="quota of 1000 bytes is used up: 0 stored, "
                                          "600 being uploaded"):
        quota.admit(401)
    held.release()
    quota.admit(1000).release()
    assert quota.used == 0


def test_a_chunked_upload_is_refused_once_its_bytes_pass_the_quota(counters, backend):
    quota = Quota(1000, counters)
    upload(quota, backend, "first", b"x" * 700, declared=False)
    assert quota.used == 700
    with pytest.raises(QuotaUsedUp):
        upload(quota, backend, "second", b"y" * 400, declared=False)
    # What the refused upload had taken is given back when it is aborted.
    quota.admit(300).release()
    assert quota.used == 700


def test_an_aborted_upload_gives_back_what_it_took(counters, backend):
    quota = Quota(1000, counters)
    allowance = quota.admit(None)
    writer = allowance.meter(call(backend.openObject, CONTAINER, "cut", {}, None))
    writer.write(b"z" * 900)
    with pytest.raises(QuotaUsedUp):
        quota.admit(200)
    writer.abort()
    quota.admit(1000).release()
    assert quota.used == 0


def test_stored_and_deleted_bytes_are_counted(counters, backend):
    quota = Quota(1000, counters)
    upload(quota, backend, "a", b"a" * 300)
    upload(quota, backend, "b", b"b" * 200)
    assert quota.used == 500
    quota.freed(200)
    assert quota.used == 300


def test_workers_meter_against_the_same_counters(counters, backend):
    main, worker = Quota(1000, counters), Quota(1000, counters)
    held = worker.admit(800)
    with pytest.raises(QuotaUsedUp, match="800 being uploaded"):
        main.admit(300)
    held.release()
    upload(main, backend, "a", b"a" * 400)
    assert worker.used == 400


def test_the_count_is_what_the_backend_stores(counters, backend):
    quota = Quota(1000, counters)
    unmetered = Quota(None, counters)
    upload(unmetered, backend, "a", b"a" * 250)  # no quota: nothing counted
    assert quota.used == 0
    held = quota.admit(100)
    call(quota.count, backend)
    assert quota.used == 250
    with pytest.raises(QuotaUsedUp, match="250 stored, 100 being uploaded"):
        quota.admit(651)
    # At a restart nothing is under way: what was taken is forgotten.
    call(quota.count, backend, restart=True)
    quota.admit(750).release()
    held.release()


def test_without_a_quota_nothing_is_refused_or_kept(counters, backend):
    quota = Quota(None, counters)
    quota.admit(1 << 40).release()
    upload(quota, backend, "a", b"a" * 10)
    call(quota.count, backend)
    assert not os.path.exists(counters)
