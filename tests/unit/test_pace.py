"""L{bwscd.policy.pace}: the scrub's pace, over a Clock."""

import pytest
from twisted.internet.task import Clock

from bwscd.policy.pace import Pace


def test_share_of_measured_bandwidth():
    """A fifth of the time reading: a piece that took 1s is followed by 4s of rest."""
    pace = Pace(Clock())
    assert pace.wait(1 << 20, 1.0) == pytest.approx(4.0)
    assert pace.wait(1 << 20, 0.25) == pytest.approx(1.0)


def test_cap_on_average():
    """Under a cap of 1 MB/s, pieces of 1 MB read instantly come once a second."""
    clock = Clock()
    pace = Pace(clock, cap=1_000_000)
    assert pace.wait(1_000_000, 0.0) == pytest.approx(1.0)
    clock.advance(1.0)
    assert pace.wait(500_000, 0.0) == pytest.approx(0.5)
    # A reader that rested longer than it had to builds up no credit.
    clock.advance(10.0)
    assert pace.wait(1_000_000, 0.0) == pytest.approx(1.0)


def test_the_slower_of_share_and_cap():
    clock = Clock()
    pace = Pace(clock, share=0.5, cap=1_000_000)
    # Slow disk: the share rules (2s read, 2s rest), the cap allowed 1s.
    assert pace.wait(1_000_000, 2.0) == pytest.approx(2.0)


@pytest.mark.parametrize("share, cap", [(0, None), (1.5, None), (0.2, 0)])
def test_nonsense_refused(share, cap):
    with pytest.raises(ValueError):
        Pace(Clock(), share=share, cap=cap)
