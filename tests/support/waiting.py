"""Waiting for what a server does in its own time."""

import time


def waitFor(predicate, timeout: float = 15.0, interval: float = 0.05):
    """
    C{predicate()}'s first true result, polled every C{interval} seconds; its
    last, false, result once C{timeout} seconds have passed (assert on it).
    """
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result
