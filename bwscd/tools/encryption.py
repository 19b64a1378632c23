"""
End-to-end content encryption, as the system controller does it, and the
decryption of what it sends.

With C{WantEncryption} in the connection file the controller encrypts each
clip and GNSS track with a fresh AES-256 key in CBC mode with PKCS#7
padding, wraps that key with our RSA public key (OAEP with SHA-1 and
MGF1-SHA-1, what C{openssl pkeyutl -pkeyopt rsa_padding_mode:oaep} and the
vendor's C{openssl rsautl -oaep} use) and uploads it beside the content as a
key object: JSON with C{EncryptedKey} (base64 of the wrapped key),
C{ContentEncryptionIV} (base64 of the 16-byte IV) and the id of our public
key.  The service stores all of it as received; only decryption, at export
time and wherever the private key is kept, turns it back into video.

Nothing here holds a whole file in memory: content is decrypted in
L{CHUNK}-sized pieces.
"""

import base64
import binascii
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bwscd.files import placeNew

KEY_SUFFIX = ".key"
CHUNK = 1 << 20
BLOCK = 16
CONTENT_KEY_SIZE = 32
DEFAULT_ID_PREFIX = "bwscd-"
MAX_KEY_FILE = 65536

# The vendor's example reads key objects with grep, which finds an
# attribute wherever it is.  The attribute names are those of the Azure
# client-side encryption format, which keeps the wrapped key and its id
# inside "WrappedContentKey", and the key id's name is not documented; so
# each attribute is looked for at the top level, then there, under each of
# its names in turn.
_NESTED = "WrappedContentKey"
_KEY_ID_NAMES = ("PublicKeyId", "KeyId")

_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


class DecryptionError(Exception):
    """Content that can't be decrypted; the message says why, in one line."""


@dataclass(frozen=True)
class KeyObject:
    """What a key object says about the content it goes with."""

    path: str
    encryptedKey: bytes
    iv: bytes
    keyId: str | None


def fingerprint(publicKey: rsa.RSAPublicKey) -> str:
    """
    The SHA-256 of the key's DER SubjectPublicKeyInfo, in hex: what
    C{openssl pkey -pubin -outform DER | sha256sum} prints for it.
    """
    der = publicKey.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def defaultKeyId(publicKey: rsa.RSAPublicKey) -> str:
    """The id C{bwscd keys generate} gives a key unless told otherwise."""
    return DEFAULT_ID_PREFIX + fingerprint(publicKey)[:16]


def loadPrivateKey(path: str, passphrase: bytes | None = None) -> rsa.RSAPrivateKey:
    """
    Read a PEM private key, encrypted with C{passphrase} or not encrypted.

    @raise DecryptionError: if the file can't be read or is not an RSA
        private key, or the passphrase is missing, needless or wrong.
    """
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except TypeError as e:
        # cryptography's way of saying a passphrase is missing or needless.
        if passphrase is None:
            raise DecryptionError(
                f"the private key {path} is encrypted: give its passphrase "
                "with --passphrase-file") from e
        raise DecryptionError(
            f"the private key {path} is not encrypted: leave out "
            "--passphrase-file") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        if passphrase is not None and b"ENCRYPTED" in data:
            raise DecryptionError(
                f"cannot decrypt the private key {path}: wrong passphrase") from e
        raise DecryptionError(f"{path} is not a PEM private key") from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DecryptionError(f"{path} is not an RSA private key")
    return key


def keyObjectCandidates(contentPath: str) -> list[str]:
    """
    Where the key object for C{contentPath} may be, in the order tried.

    The API names the key object after the clip with C{.key} instead of the
    clip's extension; the vendor's example decrypt script looks for the
    clip's full name plus C{.key}.  Both are accepted.  The full name comes
    first because it can belong to no other object.
    """
    stem, _ = os.path.splitext(contentPath)
    candidates = [contentPath + KEY_SUFFIX]
    if stem + KEY_SUFFIX not in candidates:
        candidates.append(stem + KEY_SUFFIX)
    return candidates


def findKeyObject(contentPath: str) -> str:
    """
    @return: the path of the key object for C{contentPath}.
    @raise DecryptionError: naming every path tried, if none exists.
    """
    candidates = keyObjectCandidates(contentPath)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise DecryptionError(
        f"no key object for {contentPath} (tried {', '.join(candidates)}): "
        "is it encrypted?  Name the key object with --key-object"
    )


def _attribute(document: dict, names: tuple[str, ...]):
    for place in (document, document.get(_NESTED)):
        if isinstance(place, dict):
            for name in names:
                if name in place:
                    return place[name]
    return None


def _base64Attribute(document: dict, name: str, path: str) -> bytes:
    value = _attribute(document, (name,))
    if value is None:
        raise DecryptionError(f"the key object {path} has no {name}")
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as e:
        raise DecryptionError(f"the key object {path}: {name} is not base64") from e


def readKeyObject(path: str) -> KeyObject:
    """
    @raise DecryptionError: if the key object can't be read, or lacks what
        decryption needs.
    """
    return parseKeyObject(_read(path, "key object"), path)


def parseKeyObject(data: bytes, path: str) -> KeyObject:
    """
    The key object whose bytes are C{data}; C{path} says where it came
    from, in messages (a file, or an object of a recording).

    @raise DecryptionError: if it lacks what decryption needs.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecryptionError(f"the key object {path} is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise DecryptionError(f"the key object {path} is not a JSON object")
    encryptedKey = _base64Attribute(document, "EncryptedKey", path)
    iv = _base64Attribute(document, "ContentEncryptionIV", path)
    if len(iv) != BLOCK:
        raise DecryptionError(
            f"the key object {path}: ContentEncryptionIV is {len(iv)} bytes, "
            f"not {BLOCK}")
    keyId = _attribute(document, _KEY_ID_NAMES)
    return KeyObject(path, encryptedKey, iv, keyId if isinstance(keyId, str) else None)


def unwrapKey(
    privateKey: rsa.RSAPrivateKey, keyObject: KeyObject, privateKeyId: str | None = None
) -> bytes:
    """
    The AES-256 key that C{keyObject} holds wrapped for C{privateKey}.

    @param privateKeyId: the id the private key's public half was given,
        if known; only used to say why unwrapping failed.

    @raise DecryptionError: if the key was wrapped for another key pair, or
        is not an AES-256 key.
    """
    try:
        key = privateKey.decrypt(keyObject.encryptedKey, _OAEP)
    except ValueError as e:
        # An id label that differs is no proof on its own (an id is a free
        # string), so it only explains a failure.
        if keyObject.keyId is not None and privateKeyId is not None \
                and keyObject.keyId != privateKeyId:
            why = (f"the content was encrypted for key id {keyObject.keyId!r}, "
                   f"and this private key's id is {privateKeyId!r}")
        elif keyObject.keyId is not None:
            why = f"the content was encrypted for key id {keyObject.keyId!r}"
        else:
            why = "or the key object is corrupt"
        raise DecryptionError(
            f"the private key does not unwrap {keyObject.path}: wrong private "
            f"key? ({why})") from e
    if len(key) != CONTENT_KEY_SIZE:
        raise DecryptionError(
            f"the key object {keyObject.path} holds a {len(key)}-byte key, not "
            f"an AES-256 key")
    return key


class ContentDecryptor:
    """
    AES-256-CBC with PKCS#7 padding undone piece by piece: L{update} with
    each piece of ciphertext gives the plaintext so far, L{finalize} the
    rest, once the ciphertext has ended.

    @param name: what is decrypted, for messages.
    """

    def __init__(self, key: bytes, iv: bytes, name: str = "the content"):
        self._decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        # The unpadder holds back the last block it has seen until finalize,
        # so the padding is only ever looked for at the real end.
        self._unpadder = padding.PKCS7(BLOCK * 8).unpadder()
        self._name = name
        self._size = 0

    def update(self, ciphertext: bytes) -> bytes:
        self._size += len(ciphertext)
        return self._unpadder.update(self._decryptor.update(ciphertext))

    def finalize(self) -> bytes:
        """
        @raise DecryptionError: if the ciphertext is not a whole number of
            blocks, or its padding is wrong (corrupt, truncated, or another
            key).
        """
        if self._size == 0 or self._size % BLOCK:
            raise DecryptionError(
                f"{self._name} is {self._size} bytes, not a positive multiple of {BLOCK}: "
                "truncated, or not encrypted")
        try:
            return self._unpadder.update(self._decryptor.finalize()) + self._unpadder.finalize()
        except ValueError as e:
            raise DecryptionError(
                f"{self._name} does not end in valid padding: corrupt, or encrypted with "
                "another key") from e


def decryptStream(source: BinaryIO, sink: BinaryIO, key: bytes, iv: bytes,
                  name: str = "the content") -> None:
    """
    Decrypt from C{source} to C{sink} (L{ContentDecryptor}), one L{CHUNK}
    at a time.

    @raise DecryptionError: as L{ContentDecryptor.finalize}.
    """
    decryptor = ContentDecryptor(key, iv, name)
    while chunk := source.read(CHUNK):
        sink.write(decryptor.update(chunk))
    sink.write(decryptor.finalize())


def decryptFile(
    contentPath: str,
    outputPath: str,
    privateKey: rsa.RSAPrivateKey,
    *,
    keyObjectPath: str | None = None,
    privateKeyId: str | None = None,
) -> KeyObject:
    """
    Decrypt a clip or GNSS track to C{outputPath}, which must not exist.
    The plaintext is written to a temporary file beside C{outputPath}
    (readable by its owner only) and only given its name once complete and
    on disk, so a failure leaves nothing behind.

    @param keyObjectPath: the key object, if not found beside the content
        (L{keyObjectCandidates}).
    @param privateKeyId: as for L{unwrapKey}.

    @return: the key object used.
    @raise DecryptionError: for anything that stops the decryption.
    """
    if os.path.lexists(outputPath):
        raise DecryptionError(f"{outputPath} exists: not overwriting it")
    keyObject = readKeyObject(keyObjectPath or findKeyObject(contentPath))
    key = unwrapKey(privateKey, keyObject, privateKeyId)
    try:
        source = open(contentPath, "rb")
    except OSError as e:
        raise DecryptionError(f"cannot read {contentPath}: {e.strerror}") from e
    with source:
        directory = os.path.dirname(os.path.abspath(outputPath))
        try:
            fd, temporary = tempfile.mkstemp(
                dir=directory, prefix="." + os.path.basename(outputPath) + ".",
                suffix=".partial")
        except OSError as e:
            raise DecryptionError(f"cannot write in {directory}: {e.strerror}") from e
        try:
            with open(fd, "wb") as sink:
                decryptStream(source, sink, key, keyObject.iv, contentPath)
                sink.flush()
                os.fsync(sink.fileno())
            try:
                placeNew(temporary, outputPath)
            except FileExistsError as e:
                raise DecryptionError(f"{outputPath} exists: not overwriting it") from e
        except OSError as e:
            _removeIfThere(temporary)
            raise DecryptionError(
                f"decrypting {contentPath} to {outputPath}: {e.strerror}") from e
        except BaseException:
            _removeIfThere(temporary)
            raise
    return keyObject


def _removeIfThere(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read(path: str, what: str) -> bytes:
    """
    Read a small file: a key object or a private key.  Anything larger than
    L{MAX_KEY_FILE} is refused rather than read, as it can only be a mistake
    (a clip given as a key, say).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise DecryptionError(f"cannot read the {what} {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_FILE:
        raise DecryptionError(
            f"the {what} {path} is larger than {MAX_KEY_FILE} bytes: not a {what}")
    return data
