"""
The subcommands of C{bwscd}, one module each.  A module provides
C{register(subcommands)}, which adds its parser and sets C{run} to a
function taking the parsed arguments; every parser, down to an action's,
takes C{--data} (L{bwscd.commands.cli.CommandParser}).  A function that fails
raises L{CommandError}, or an error the command's module names in
C{ERRORS}, with a message for the operator.

The top layer: may import every other; nothing imports it.
"""


class CommandError(Exception):
    """A command that can't be done; the message says why, in one line."""
