"""
The subcommands of C{bwscd}, one module each.  A module provides
C{register(subcommands)}, which adds its parser and sets C{run} to a
function taking the parsed arguments; every parser, down to an action's,
takes C{--data} (L{bwscd.commands.cli.CommandParser}).  A function that fails
raises L{CommandError}, or an error the command's module names in
C{ERRORS}, with a message for the operator.

The top layer: may import every other; nothing imports it.
"""

from twisted.internet.defer import maybeDeferred
from twisted.python.failure import Failure

from bwscd.errors import SwiftError


class CommandError(Exception):
    """A command that can't be done; the message says why, in one line."""


def runReactorUntil(start, *args):
    """
    Run the reactor until the L{Deferred} that C{start(*args)} returns has
    fired; return its result or raise its error.  A reactor runs once per
    process, so a command calls this once.
    """
    from twisted.internet import reactor

    outcome = []

    def begin():
        d = maybeDeferred(start, *args)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(begin)
    reactor.run()
    if not outcome:
        raise CommandError("interrupted")
    if isinstance(outcome[0], Failure):
        if outcome[0].check(SwiftError):
            raise CommandError(f"storage backend: {outcome[0].value.message}")
        outcome[0].raiseException()
    return outcome[0]
