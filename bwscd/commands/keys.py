"""
C{bwscd keys}: the RSA key pair the controller encrypts content for.

The public key goes into the connection file; the private key is written
once, to a file the operator names, and is not kept anywhere in the data
directory: the server only ever receives ciphertext, and only C{bwscd
decrypt}, wherever the operator keeps the private key, needs it.
"""

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bwscd.config import datadir, paths
from bwscd.config.settings import Settings
from bwscd.commands import CommandError
from bwscd.tools.encryption import defaultKeyId, fingerprint

MINIMUM_BITS = 3072
# The connection file holds at most 2048 characters of base64 PEM, which
# an 8192-bit key just fits.
MAXIMUM_BITS = 8192
MAXIMUM_ID_LENGTH = 128

# Settings.load and writeConnectionFile say what is wrong with the data
# directory with ValueError.
ERRORS = (ValueError,)


def readPassphrase(path: str) -> bytes:
    """
    The passphrase in the first line of C{path}, as C{openssl -pass file:}
    reads it.

    @raise CommandError: if that line is empty.
    """
    with open(path, "rb") as f:
        passphrase = f.readline().rstrip(b"\r\n")
    if not passphrase:
        raise CommandError(f"the passphrase file {path} starts with an empty line")
    return passphrase


def _writeNew(path: str, data: bytes) -> None:
    """Write a new file that only its owner can read; refuse an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise CommandError(f"{path} exists: not overwriting it") from e
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(path)
        raise


def generate(arguments) -> None:
    """
    Write a new private key to C{--out}, and put its public half in the
    settings and the connection file, replacing any key there before.
    Nothing is changed if the key can't be written.
    """
    settings = Settings.load(arguments.data)
    previous = settings.encryption
    if not MINIMUM_BITS <= arguments.bits <= MAXIMUM_BITS:
        raise CommandError(
            f"--bits {arguments.bits}: give {MINIMUM_BITS} to {MAXIMUM_BITS} "
            f"(fewer than {MINIMUM_BITS} is too weak for recordings kept for years)")
    if arguments.id is not None and not 1 <= len(arguments.id) <= MAXIMUM_ID_LENGTH:
        raise CommandError(f"--id must be 1 to {MAXIMUM_ID_LENGTH} characters long")
    # Key objects name the key they were made for by its id alone.
    if previous and arguments.id == previous["publicKeyId"]:
        raise CommandError(f"--id {arguments.id} is the current key's: give the new "
                           "key an id of its own")
    # Checked now as well as when written: generating a key takes a while.
    if os.path.lexists(arguments.out):
        raise CommandError(f"{arguments.out} exists: not overwriting it")
    encryption = serialization.NoEncryption()
    if arguments.passphrase_file:
        encryption = serialization.BestAvailableEncryption(
            readPassphrase(arguments.passphrase_file))

    privateKey = rsa.generate_private_key(public_exponent=65537, key_size=arguments.bits)
    publicKey = privateKey.public_key()
    keyId = arguments.id or defaultKeyId(publicKey)
    _writeNew(arguments.out, privateKey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    settings.setEncryptionKey(publicKey.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii"), keyId)
    settings.save()
    datadir.writeConnectionFile(arguments.data, settings)

    connectionFile = os.path.join(arguments.data, paths.CONNECTION_FILE)
    protection = "encrypted with the passphrase" if arguments.passphrase_file \
        else "not encrypted"
    print(f"private key: {os.path.abspath(arguments.out)} "
          f"(RSA {arguments.bits} bits, {protection})")
    print(f"public key id: {keyId}")
    print(f"fingerprint: {fingerprint(publicKey)}")
    print(f"connection file: {connectionFile} (WantEncryption true)")
    if previous:
        print(f"This replaces the key {previous['publicKeyId']}: keep its private key "
              "to decrypt what was recorded before.")
    print(f"""
Keep the private key OFF this server.  bwscd never needs it to receive
content; only 'bwscd decrypt' does, on the machine where recordings are
exported.  Anyone who has it can decrypt every recording, and without it
no recording can be decrypted: keep a backup somewhere safe.

A running bwscd takes this up within seconds (at once on SIGHUP); then
upload {connectionFile} in Body Worn Manager:
the controller encrypts from then on.  Once it does, encryption can never
be turned off again: Body Worn Manager refuses a connection file without it.""")


def show(arguments) -> None:
    """Say which public key the connection file asks the controller to use."""
    encryption = Settings.load(arguments.data).encryption
    if not encryption:
        print("no content encryption key")
        return
    publicKey = serialization.load_pem_public_key(encryption["publicKey"].encode("ascii"))
    print(f"public key id: {encryption['publicKeyId']}")
    print(f"fingerprint: {fingerprint(publicKey)}")
    print(f"RSA {publicKey.key_size} bits")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "keys",
        help="the key pair for end-to-end content encryption",
        description="Make the RSA key pair the controller encrypts clips and "
        "GNSS tracks for, or show the current one.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    generateParser = actions.add_parser(
        "generate",
        help="make a key pair, put the public key in the connection file",
        description="Write a new private key to OUT (mode 0600) and the public key "
        "to the connection file, which then asks the controller to encrypt.",
    )
    generateParser.add_argument(
        "--out", required=True, metavar="PRIVATE.pem",
        help="where to write the private key; it must not exist")
    generateParser.add_argument(
        "--bits", type=int, default=MINIMUM_BITS,
        help=f"RSA key size, {MINIMUM_BITS} to {MAXIMUM_BITS} (default: {MINIMUM_BITS})")
    generateParser.add_argument(
        "--id", help="the key's id in the connection file and key objects "
        "(default: bwscd- and 16 hex digits of its fingerprint)")
    generateParser.add_argument(
        "--passphrase-file", metavar="FILE",
        help="encrypt the private key with the passphrase in FILE's first line")
    generateParser.set_defaults(run=generate)
    showParser = actions.add_parser("show", help="the current public key's id and fingerprint")
    showParser.set_defaults(run=show)
    parser.set_defaults(errors=ERRORS)
