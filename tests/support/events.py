"""Events as the service emits them, kept for a test to look at."""


class EventRecorder:
    """An event sink (for L{bwscd.policy.events.Events}) that keeps what it gets."""

    def __init__(self):
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)
