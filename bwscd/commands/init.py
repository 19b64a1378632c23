"""C{bwscd init}: create the data directory without starting the server."""

import os
import sys

from bwscd.config import datadir, paths, settings as settingsFile
from bwscd.config.connectionfile import CONTAINER_TYPES
from bwscd.config.settings import Settings
from bwscd.policy.capabilities import CAPABILITIES

ERRORS = (ValueError,)


def _ask(question: str, default: str) -> str:
    answer = input(f"{question} [{default}]: ").strip()
    return answer or default


def run(arguments) -> None:
    if settingsFile.exists(arguments.data):
        raise ValueError(f"{arguments.data} already holds a bwscd data directory")
    addresses = arguments.public_address
    siteName = arguments.site_name
    # Questions only for a person at a terminal, and only for what was not
    # given: scripts get the defaults.
    if sys.stdin.isatty():
        if not addresses:
            found = ",".join(settingsFile.machineAddresses())
            addresses = [a.strip() for a in _ask(
                "Addresses the controller will use (comma-separated)", found
            ).split(",") if a.strip()]
        if siteName is None:
            siteName = _ask("Site name shown in Body Worn Manager",
                            settingsFile.defaultSiteName())
    capabilities = arguments.capability
    if arguments.no_capabilities:
        capabilities = []
    settings, key = Settings.new(
        arguments.data,
        publicAddresses=addresses or None,
        containerType=arguments.container_type,
        siteName=siteName,
        capabilities=capabilities,
    )
    datadir.create(arguments.data, settings, key, port=arguments.port,
                   https=not arguments.http)
    path = os.path.join(arguments.data, paths.CONNECTION_FILE)
    print(f"created {arguments.data}; upload {path} in Body Worn Manager")
    for uri in datadir.tokenURIs(settings):
        print(f"  token URI {uri}")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "init",
        help="create the data directory (account, certificate, connection file)",
        description="Create the data directory from these options, asking at a "
        "terminal only for what is not given.  twistd bwscd does the same at its "
        "first start with defaults.",
    )
    parser.add_argument("--public-address", action="append", default=[],
                        help="a name or IP the controller uses (repeatable)")
    parser.add_argument("--port", type=int, default=8443,
                        help="the port twistd bwscd will listen on (default 8443)")
    parser.add_argument("--http", action="store_true",
                        help="plain HTTP, for development only")
    parser.add_argument("--container-type", choices=CONTAINER_TYPES, default=None)
    parser.add_argument("--site-name", default=None, help="up to 64 characters")
    parser.add_argument("--capability", action="append", choices=sorted(CAPABILITIES),
                        default=None, help="publish only these (repeatable; default all)")
    parser.add_argument("--no-capabilities", action="store_true",
                        help="publish no capability")
    parser.set_defaults(run=run, errors=ERRORS)
