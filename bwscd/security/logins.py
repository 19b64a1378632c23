"""
Failed logins per client address, so that guessing keys is slow.
"""


class FailedLogins:
    """
    Failed logins per client address: past L{LIMIT} in L{WINDOW} seconds,
    an address is refused without its key being checked, so guessing is
    slow and can't keep the key checker busy.
    """

    LIMIT = 10
    WINDOW = 60

    def __init__(self, clock):
        self._clock = clock
        self._recent: dict[str, list[float]] = {}

    def _current(self, peer: str) -> list[float]:
        cutoff = self._clock() - self.WINDOW
        recent = [t for t in self._recent.get(peer, ()) if t > cutoff]
        if recent:
            self._recent[peer] = recent
        else:
            self._recent.pop(peer, None)
        return recent

    def throttled(self, peer: str) -> bool:
        return len(self._current(peer)) >= self.LIMIT

    def add(self, peer: str) -> None:
        self._recent[peer] = self._current(peer) + [self._clock()]
        if len(self._recent) > 10_000:  # many addresses: forget the quiet ones
            for address in list(self._recent):
                self._current(address)
