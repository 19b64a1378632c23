"""C{bwscd decrypt}: an encrypted clip or GNSS track, back to plaintext."""

import os

from cryptography.hazmat.primitives import serialization

from bwscd.config.settings import Settings
from bwscd.commands.keys import readPassphrase
from bwscd.tools.encryption import DecryptionError, decryptFile, defaultKeyId, loadPrivateKey

ERRORS = (DecryptionError,)

DECRYPTED = ".decrypted"


def defaultOutput(contentPath: str) -> str:
    """
    C{a.mkv} becomes C{a.decrypted.mkv}, in the current directory rather
    than beside the content: the plaintext has no business in the storage
    tree that the server writes and integrators watch.
    """
    stem, extension = os.path.splitext(os.path.basename(contentPath))
    return stem + DECRYPTED + extension


def privateKeyId(directory: str, privateKey) -> str:
    """
    The id the data directory gave this key, if it is the data directory's
    key; otherwise the id C{bwscd keys generate} gives by default.  The
    private key is meant to be kept away from the server, so a missing or
    unreadable data directory is the usual case, not an error.
    """
    publicKey = privateKey.public_key()
    try:
        encryption = Settings.load(directory).encryption
        if encryption and serialization.load_pem_public_key(
            encryption["publicKey"].encode("ascii")
        ) == publicKey:
            return encryption["publicKeyId"]
    except (OSError, ValueError, LookupError):
        pass
    return defaultKeyId(publicKey)


def run(arguments) -> None:
    passphrase = None
    if arguments.passphrase_file:
        passphrase = readPassphrase(arguments.passphrase_file)
    privateKey = loadPrivateKey(arguments.key, passphrase)
    output = arguments.out or defaultOutput(arguments.content)
    keyObject = decryptFile(
        arguments.content, output, privateKey,
        keyObjectPath=arguments.key_object,
        privateKeyId=privateKeyId(arguments.data, privateKey),
    )
    print(f"decrypted {arguments.content} to {output} (key object {keyObject.path})")


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "decrypt",
        help="decrypt a clip or GNSS track with the private key",
        description="Decrypt a clip or GNSS track that the controller encrypted, "
        "using its key object (CONTENT.key, or CONTENT with .key for its "
        "extension) and the private key from 'bwscd keys generate'.  The "
        "output is written only once it is complete.",
    )
    parser.add_argument("--key", required=True, metavar="PRIVATE.pem",
                        help="the private key")
    parser.add_argument("--passphrase-file", metavar="FILE",
                        help="the private key's passphrase, in FILE's first line")
    parser.add_argument("--key-object", metavar="KEY",
                        help="the key object, if it is not beside the content")
    parser.add_argument("--out", metavar="FILE",
                        help="where to write the plaintext; it must not exist "
                        "(default: the content's file name with .decrypted "
                        "before its extension, in the current directory)")
    parser.add_argument("content", metavar="CONTENT",
                        help="the encrypted clip or GNSS track")
    parser.set_defaults(run=run, errors=ERRORS)
