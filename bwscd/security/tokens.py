"""
The BWS account: its user name, its secret key, and the bearer tokens that
stand in for the key after login.

The system controller logs in with C{X-Auth-User} and C{X-Auth-Key}, taken
from the connection file, and then sends the token it got back with every
request.  The server keeps only an scrypt hash of the key, so the state
directory leaking does not leak the credential; tokens are signed instead of
stored, so any number can be verified without remembering them.
"""

import base64
import binascii
import ctypes
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Callable

from bwscd.constraints import MAX_TOKEN_LENGTH

_TOKEN_PREFIX = "BWS_"

# scrypt's cost for new hashes: 16 MiB and tens of milliseconds per login,
# inside hashlib's default 32 MiB memory limit.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_LENGTH = 32
_SALT_LENGTH = 16

_ENCODED_HASH = re.compile(
    r"scrypt\$([0-9]{1,10})\$([0-9]{1,10})\$([0-9]{1,10})"
    r"\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})"
)
_TOKEN = re.compile(_TOKEN_PREFIX + r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


def newUserName() -> str:
    """
    A fresh random C{BlobAPIUserName}: C{"bws-"} and 12 hex digits, safe in
    a header, a URL and a file name.
    """
    return "bws-" + secrets.token_hex(6)


def newKey() -> str:
    """
    A fresh random C{BlobAPIKey}: 256 bits as 43 URL-safe base64 characters.
    """
    return secrets.token_urlsafe(32)


def _trimFunction():
    """glibc's C{malloc_trim}, or L{None} with another C library."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_mallocTrim = _trimFunction()


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    try:
        return hashlib.scrypt(
            key.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length
        )
    finally:
        # OpenSSL's scrypt mallocs its 16 MiB in one block and frees it.
        # glibc serves a block that big with mmap, and unmaps it on free,
        # only until the first such free: that raises its mmap threshold to
        # the block's size, and from then on the 16 MiB comes from the
        # calling thread's malloc arena and stays there (an arena is only
        # shrunk when more than twice that is free at its top).  So every
        # thread that ever checked a key held 16 MiB for good: the
        # server's key-check thread, and its main thread after the check
        # at start.  malloc_trim(0) gives the free memory of every arena
        # back to the kernel.  It takes under a millisecond itself; the
        # price is that the next check faults its 16 MiB in again, about
        # 20 ms more CPU on a login of about 55 ms.
        if _mallocTrim is not None:
            _mallocTrim(0)


def hashKey(key: str) -> str:
    """
    Hash C{key} with scrypt and a fresh salt, for storing.

    @return: C{"scrypt$N$r$p$<salt>$<hash>"}, salt and hash in standard
        base64, which L{verifyKey} reads back.
    """
    salt = secrets.token_bytes(_SALT_LENGTH)
    digest = _scrypt(key, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LENGTH)
    return "$".join(
        [
            "scrypt",
            str(_SCRYPT_N),
            str(_SCRYPT_R),
            str(_SCRYPT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        ]
    )


def verifyKey(key: str, encoded: str) -> bool:
    """
    Whether C{key} is the key that L{hashKey} turned into C{encoded}.

    The parameters stored in C{encoded} are used, so hashes written with an
    older cost still verify.  Never raises: a malformed C{encoded} (or a key
    that cannot be encoded) is simply not a match.
    """
    match = _ENCODED_HASH.fullmatch(encoded)
    if match is None:
        return False
    n, r, p, salt, expected = match.groups()
    try:
        salt = base64.b64decode(salt, validate=True)
        expected = base64.b64decode(expected, validate=True)
        # hashlib rejects impossible parameters (n not a power of two, more
        # memory than its limit) with ValueError.
        actual = _scrypt(key, salt, int(n), int(r), int(p), len(expected))
    except (ValueError, OverflowError):
        return False
    return hmac.compare_digest(actual, expected)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    """
    Decode unpadded URL-safe base64, or C{None} unless C{text} is exactly
    what L{_encode} writes for the result.  Accepting other spellings (unused
    trailing bits set) would give one token several valid forms.
    """
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None
    if _encode(data) != text:
        return None
    return data


class TokenAuthority:
    """
    Issues and verifies the bearer tokens given out at login.

    A token is C{"BWS_" + b64(payload) + "." + b64(HMAC-SHA256(secret,
    payload))}, the payload a compact JSON object C{{"a": account, "e":
    expiry, "n": nonce}}.  Tokens cannot be revoked one by one: changing
    C{secret} revokes them all.

    @param secret: the signing key; anyone holding it can mint tokens.
    @param lifetime: seconds a token stays valid after it is issued.
    @param clock: returns the current time in epoch seconds.
    """

    def __init__(
        self, secret: bytes, lifetime: int, clock: Callable[[], float] = time.time
    ):
        self.secret = secret
        self.lifetime = lifetime
        self._clock = clock

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()

    def issue(self, account: str) -> tuple[str, int]:
        """
        A new token for C{account}.

        @return: the token and its expiry in epoch seconds.
        @raise ValueError: if C{account} is so long that the token would
            exceed L{MAX_TOKEN_LENGTH}, which L{verify} refuses.
        """
        expiry = int(self._clock()) + self.lifetime
        # The nonce makes two logins within a second get different tokens.
        payload = json.dumps(
            {"a": account, "e": expiry, "n": secrets.token_hex(8)},
            separators=(",", ":"),
        ).encode("ascii")
        token = _TOKEN_PREFIX + _encode(payload) + "." + _encode(self._sign(payload))
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"account name too long for a token: {len(account)}")
        return token, expiry

    def verify(self, token: str) -> str | None:
        """
        The account C{token} was issued for, or C{None} if it was not issued
        with this secret, was altered, or has expired (at its expiry second
        it is already expired).

        Never raises, whatever the string; nothing is parsed before the
        signature is checked.
        """
        # Bound the work an unauthenticated client can cause.
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        payload = _decode(match.group(1))
        signature = _decode(match.group(2))
        if payload is None or signature is None:
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        # The signature proves issue() wrote this payload, so it parses.
        claims = json.loads(payload)
        if self._clock() >= claims["e"]:
            return None
        return claims["a"]
