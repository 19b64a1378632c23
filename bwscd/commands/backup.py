"""
C{bwscd backup} and C{bwscd restore}: the configuration a reinstall needs,
sealed with a passphrase in one file (see L{bwscd.config.backup}).
"""

import getpass
import os
import sys

from bwscd.config import backup

from bwscd.config import paths
from bwscd.files import writeAtomically
from bwscd.commands import CommandError, runReactorUntil
from bwscd.plugins import loadBackend
from bwscd.config.processlock import InUse, claimStorage

ERRORS = (backup.BackupError,)

PASSPHRASE_VARIABLE = "BWSCD_BACKUP_PASSPHRASE"


def _passphrase(arguments, confirm: bool) -> bytes:
    """
    The passphrase: the first line of C{--passphrase-file}, else the
    environment variable, else asked on the terminal (twice when
    C{confirm}, so that a typo can't make a backup nobody can open).  Its
    bytes are taken as they are, so that the same UTF-8 passphrase opens a
    backup whichever way it is given.
    """
    if arguments.passphrase_file is not None:
        with open(arguments.passphrase_file, "rb") as f:
            passphrase = f.readline().rstrip(b"\r\n")
    elif PASSPHRASE_VARIABLE in os.environ:
        passphrase = os.environb[PASSPHRASE_VARIABLE.encode()]
    elif sys.stdin.isatty():
        typed = getpass.getpass("Passphrase: ")
        if confirm and typed and getpass.getpass("Passphrase again: ") != typed:
            raise CommandError("the passphrases differ")
        passphrase = typed.encode("utf-8")
    else:
        raise CommandError(
            f"no passphrase: give --passphrase-file or set {PASSPHRASE_VARIABLE} "
            "(standard input is not a terminal to ask on)"
        )
    if not passphrase:
        raise CommandError("the passphrase is empty")
    return passphrase


def _backend(arguments):
    try:
        return loadBackend(arguments.backend, arguments.data)
    except ValueError as e:
        raise CommandError(str(e))


def runBackup(arguments) -> None:
    path = arguments.file
    if os.path.lexists(path) and not arguments.force:
        raise CommandError(f"{path} exists: give --force to replace it")
    snapshot = runReactorUntil(backup.takeSnapshot, arguments.data, _backend(arguments))
    sealed = backup.seal(snapshot, _passphrase(arguments, confirm=True))
    # Checked again after the slow key derivation; a file made in the
    # instant between this and the rename would still be replaced.
    if os.path.lexists(path) and not arguments.force:
        raise CommandError(f"{path} exists: give --force to replace it")
    writeAtomically(path, sealed, 0o600)
    missing = ""
    if paths.CONNECTION_FILE not in snapshot.files:
        missing = (f"; no {paths.CONNECTION_FILE}, so no account key: after a "
                   "restore, make one with 'bwscd credentials rotate'")
    print(f"saved {backup.describe(snapshot)} to {path}{missing}")


def runRestore(arguments) -> None:
    settings = os.path.join(arguments.data, paths.SETTINGS)
    if os.path.lexists(settings) and not arguments.force:
        raise CommandError(
            f"{arguments.data} already holds a data directory ({paths.SETTINGS}): "
            "give --force to replace its configuration and registry"
        )
    backend = _backend(arguments)
    with open(arguments.file, "rb") as f:
        sealed = f.read()
    snapshot = backup.unseal(sealed, _passphrase(arguments, confirm=False))
    try:
        # Held until the command exits: no server starts on what is restored
        # meanwhile, and none running is written under.
        claimStorage(arguments.data, backend)
    except InUse as e:
        raise CommandError(str(e))
    runReactorUntil(backup.restoreSnapshot, snapshot, arguments.data, backend)
    manifest = snapshot.manifest
    print(
        f"restored {backup.describe(snapshot)} from {arguments.file} (made "
        f"{manifest.get('created')} by bwscd {manifest.get('bwscdVersion')} "
        f"in {manifest.get('source')}) into {arguments.data}"
    )


def _addOptions(parser, forceHelp: str) -> None:
    parser.add_argument(
        "--backend", default="filesystem",
        help="the storage backend, as given to twistd bwscd (default: filesystem)",
    )
    parser.add_argument(
        "--passphrase-file", metavar="F",
        help=f"read the passphrase from the first line of F (else ${PASSPHRASE_VARIABLE}, "
        "else asked on the terminal)",
    )
    parser.add_argument("--force", action="store_true", help=forceHelp)


def register(subcommands) -> None:
    saving = subcommands.add_parser(
        "backup",
        help="save the configuration and the registry to a passphrase-sealed file",
        description="Save what a reinstall needs to keep Body Worn Manager "
        "connected: settings, certificate and key, connection file, categories "
        "and the registry of users, devices and systems.  Not the recordings.  "
        "Safe while the server runs.",
    )
    _addOptions(saving, forceHelp="replace FILE if it exists")
    saving.add_argument("file", metavar="FILE", help="the backup file to write (mode 0600)")
    saving.set_defaults(run=runBackup, errors=ERRORS)

    restoring = subcommands.add_parser(
        "restore",
        help="put a backup back into a data directory",
        description="Restore a backup made by 'bwscd backup' into the data "
        "directory and the storage backend.  Stop the server first: a running "
        "one holds them, and the restore is refused.",
    )
    _addOptions(restoring,
                forceHelp="restore even though the data directory holds settings.json")
    restoring.add_argument("file", metavar="FILE", help="the backup file to read")
    restoring.set_defaults(run=runRestore, errors=ERRORS)
