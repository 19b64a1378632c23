"""
How fast a background reader may go: a share of the bandwidth it measures
for itself, under an optional cap, so that re-reading what is stored (the
fixity scrub, L{bwscd.policy.scrub}) never takes the disk from uploads.

Pure arithmetic over a clock: no threads, no reactor of its own, so it is
tested with L{twisted.internet.task.Clock}.
"""

DEFAULT_SHARE = 0.2
"""At most this share of the measured read bandwidth (the issue's 20%)."""


class Pace:
    """
    The wait after each piece read, so that reading takes at most C{share}
    of the time (a duty cycle: a piece that took C{t} seconds to read is
    followed by C{t * (1 - share) / share} seconds of rest, whatever the
    disk's speed, which is thereby measured piece by piece) and brings at
    most C{cap} bytes per second (L{None}: no cap) on average.

    @param clock: C{seconds()} gives the time (the reactor, or a Clock).
    """

    def __init__(self, clock, share: float = DEFAULT_SHARE, cap: float | None = None):
        if not 0 < share <= 1:
            raise ValueError("the share of the read bandwidth must be above 0 and at most 1")
        if cap is not None and cap <= 0:
            raise ValueError("the cap must be above 0 bytes per second")
        self._clock = clock
        self.share = share
        self.cap = cap
        self._allowedAt = None  # when the cap allows the next piece

    def wait(self, length: int, seconds: float) -> float:
        """
        Seconds to rest now, after a piece of C{length} bytes that took
        C{seconds} to read.
        """
        now = self._clock.seconds()
        rest = seconds * (1 - self.share) / self.share
        if self.cap is not None:
            start = now if self._allowedAt is None else max(now, self._allowedAt)
            self._allowedAt = start + length / self.cap
            rest = max(rest, self._allowedAt - now)
        return rest

