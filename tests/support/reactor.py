"""
Calls into the reactor, which runs in a thread of its own for the session
(the C{runningReactor} fixture), from the test's thread.
"""

from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread


def call(function, *args, **kwargs):
    """Run C{function} in the reactor thread and wait for its Deferred."""
    return blockingCallFromThread(reactor, function, *args, **kwargs)
