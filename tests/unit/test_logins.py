"""L{bwscd.security.logins.FailedLogins}, on a L{Clock}."""

from twisted.internet.task import Clock

from bwscd.security.logins import FailedLogins


def test_an_address_is_throttled_after_the_limit_until_the_window_passes():
    clock = Clock()
    failures = FailedLogins(clock.seconds)
    for _ in range(FailedLogins.LIMIT - 1):
        failures.add("192.0.2.7")
        clock.advance(1)
    assert not failures.throttled("192.0.2.7")
    failures.add("192.0.2.7")
    assert failures.throttled("192.0.2.7")
    assert not failures.throttled("192.0.2.8")  # per address
    clock.advance(FailedLogins.WINDOW - FailedLogins.LIMIT + 1)  # the first failure ages out
    assert not failures.throttled("192.0.2.7")


def test_quiet_addresses_are_forgotten_when_there_are_many():
    clock = Clock()
    failures = FailedLogins(clock.seconds)
    for i in range(10_001):
        failures.add(f"peer {i}")
    clock.advance(FailedLogins.WINDOW)
    failures.add("192.0.2.7")
    assert list(failures._recent) == ["192.0.2.7"]
