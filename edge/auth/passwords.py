"""Password hashes: scrypt, written in ONE format, read in every format ever stored.

The format written is the box's: ``scrypt$n$r$p$salt$digest`` with salt and
digest in base64 (a 32-byte digest). The station used to store the same
prefix with hex salt and digest (64-byte digest): :func:`verify_password`
reads both, told apart by the digest (base64 of 32 bytes always ends with
``=``; hex is ``[0-9a-f]`` only), and :func:`needs_rehash` says when a stored
line should be rewritten in today's format and cost at the next successful login.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from edge.auth.errors import AuthError

# scrypt cost: n=2**14, r=8 is OWASP's minimum (16 MiB, ~50 ms on a Pi 4).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # for a new password; a longer one already stored still logs in
MAX_CHECKED = 4096  # a password longer than this is refused without hashing
MAX_MEMORY = 64 * 1024**2
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Stored:
    """One stored hash line, parsed."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes
    hex: bool  # the station's old spelling


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash``, both base64: the line to store."""
    check_password_rules(password)
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def parse(stored: str) -> Stored | None:
    """The parts of a stored line (either spelling), or None when it is not one."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return None
        old = bool(_HEX.fullmatch(digest) and _HEX.fullmatch(salt))
        decode = bytes.fromhex if old else _b64
        parsed = Stored(int(n), int(r), int(p), decode(salt), decode(digest), old)
    except (ValueError, binascii.Error):
        return None
    if not (parsed.salt and 16 <= len(parsed.digest) <= 64 and parsed.p >= 1):
        return None
    return parsed


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches the stored line (constant-time compare).

    ``stored=None`` (no such account) costs one scrypt all the same, so that the
    answer's time does not tell which names exist.
    """
    parsed = parse(stored) if stored is not None else None
    if parsed is None or len(password) > MAX_CHECKED:
        _scrypt("", _dummy_salt(), SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN)
        return False
    try:
        got = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    except ValueError:  # n not a power of 2, too much memory asked
        return False
    return hmac.compare_digest(parsed.digest, got)


def needs_rehash(stored: str) -> bool:
    """True when a line that verified should be written again in today's format and cost."""
    parsed = parse(stored)
    if parsed is None:
        return True
    return parsed.hex or (parsed.n, parsed.r, parsed.p, len(parsed.digest)) != (
        SCRYPT_N,
        SCRYPT_R,
        SCRYPT_P,
        SCRYPT_LEN,
    )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=MAX_MEMORY,
        dklen=length,
    )


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@functools.cache
def _dummy_salt() -> bytes:
    return secrets.token_bytes(16)
