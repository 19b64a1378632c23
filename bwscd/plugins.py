"""
Storage backends found by name among Twisted plugins, their options, and
sizes as operators write them (C{--quota 500G}, C{reserve=256M}).

A backend is any object in the C{twisted.plugins} package that provides
L{IPlugin} and L{IBackendPlugin}; a third party adds one by installing a
module there (see docs/backends.md).
"""

import re

from twisted.plugin import IPlugin, getPlugins
from twisted.python.reflect import namedAny
from zope.interface import implementer

from bwscd.interfaces import IBackendPlugin, IStorageBackend


@implementer(IPlugin, IBackendPlugin)
class BackendPlugin:
    """
    A backend plugin that imports its code only when chosen, so that finding
    plugins stays cheap.

    @param factory: dotted name of a callable C{(dataDirectory, options)}
        returning an L{IStorageBackend}.
    """

    def __init__(self, name: str, description: str, factory: str):
        self.name = name
        self.description = description
        self.factory = factory

    def backend(self, dataDirectory, options):
        return IStorageBackend(namedAny(self.factory)(dataDirectory, options))


def installedBackends() -> dict[str, IBackendPlugin]:
    import twisted.plugins

    return {plugin.name: plugin for plugin in getPlugins(IBackendPlugin, twisted.plugins)}


def parseBackendSpec(spec: str) -> tuple[str, dict[str, str]]:
    """
    Split C{NAME:key=value:key=value}.  A backslash makes the next character
    literal, so C{root=C\\:\\data} keeps its colon.

    @raise ValueError: for an option that is not C{key=value}.
    """
    fields, current, escaped = [], [], False
    for character in spec:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(character)
    fields.append("".join(current))
    name, options = fields[0], {}
    for field in fields[1:]:
        key, equals, value = field.partition("=")
        if not equals or not key:
            raise ValueError(f"backend option {field!r} is not key=value")
        if key in options:
            raise ValueError(f"backend option {key!r} given twice")
        options[key] = value
    return name, options


def loadBackend(spec: str, dataDirectory: str) -> IStorageBackend:
    """
    The backend that C{--backend SPEC} names.

    @raise ValueError: with a message for the operator: an unknown name
        lists the installed backends.
    """
    name, options = parseBackendSpec(spec)
    installed = installedBackends()
    if name not in installed:
        raise ValueError(
            f"unknown backend {name!r}; installed backends: "
            + ", ".join(sorted(installed))
        )
    return installed[name].backend(dataDirectory, options)


def checkOptions(backend: str, options: dict[str, str], known: set[str]) -> None:
    """@raise ValueError: naming the options C{backend} does not know."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"{backend} backend: unknown option(s) {', '.join(unknown)}"
                         f" (known: {', '.join(sorted(known))})")


_SIZE = re.compile(r"\s*([0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*")


def sizeInBytes(text: str) -> int:
    """
    The one way bwscd reads a size: C{12345}, C{64K}, C{256M}, C{2G}, C{1T},
    C{512MiB}, C{64 kB}: binary multiples (powers of 1024), whatever the
    case of the letters.

    @raise ValueError: saying it is not a size.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (try 256K, 64M, 2G)")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number << (10 * " KMGT".index(unit or " "))


def humanSize(size: int) -> str:
    """Binary units when exact (C{64 MiB}), else bytes."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def parseSize(backend: str, option: str, text: str) -> int:
    """
    A backend option's size (L{sizeInBytes}).

    @raise ValueError: naming the backend and option.
    """
    try:
        return sizeInBytes(text)
    except ValueError:
        raise ValueError(f"{backend} backend: {option}={text!r} is not a size like 256M")
