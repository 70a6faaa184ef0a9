"""Who may use the technician's page: password, sessions, CSRF tokens, lockout.

There is no default password. The first one is set at provisioning with
``edge set-password`` (a scrypt hash in ``<state_dir>/web/password``) or, on a
box that has none, with a one-time setup code printed on the console at start.
Sessions live in memory: a restart logs everybody out. Scripts on the box use
a bearer token from the config (``web.api_token``) instead of a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import EdgeError

# scrypt cost: n=2**14, r=8 is OWASP's minimum (16 MiB, ~50 ms on a Pi 4).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD = 10
MAX_PASSWORD = 256
PASSWORD_FILE = "password"  # noqa: S105 - a file name


class AuthError(EdgeError):
    """A password that cannot be set or a password file that cannot be read."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$hash``, both base64: the line stored on disk."""
    check_password_rules(password)
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored line (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest, validate=True)
        got = _scrypt(password[:MAX_PASSWORD], base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(want, got)


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AuthError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024**2, dklen=SCRYPT_LEN
    )


def write_password(web_dir: Path, password: str) -> Path:
    """Store the hash of ``password`` (mode 0600, replaced atomically)."""
    line = hash_password(password)
    web_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = web_dir / PASSWORD_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return path


def read_password(web_dir: Path) -> str | None:
    """The stored hash line, or None when no password was ever set."""
    try:
        return (web_dir / PASSWORD_FILE).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthError(f"{web_dir / PASSWORD_FILE}: cannot read: {exc}") from exc


# -- lockout -------------------------------------------------------------------


@dataclass
class Lockout:
    """Failed logins per client: ``max_failures`` in a row lock it out for ``lockout_s``,
    doubled at each further lockout up to an hour. Also a box-wide cap, so that many
    addresses cannot share the work of guessing."""

    max_failures: int
    lockout_s: float
    failures: dict[str, int] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)
    lockouts: dict[str, int] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)  # every failure, box-wide

    def retry_after_s(self, client: str, now: float) -> float:
        """Seconds ``client`` must wait before trying again; 0 when it may try."""
        until = self.locked_until.get(client, 0.0)
        self.recent = [t for t in self.recent if now - t < self.lockout_s]
        if len(self.recent) >= self.max_failures * 10:  # box-wide: 10 clients' worth
            until = max(until, self.recent[0] + self.lockout_s)
        return max(0.0, until - now)

    def failed(self, client: str, now: float) -> None:
        self.recent.append(now)
        count = self.failures.get(client, 0) + 1
        self.failures[client] = count
        if count >= self.max_failures:
            times = self.lockouts.get(client, 0)
            self.lockouts[client] = times + 1
            self.locked_until[client] = now + min(3600.0, self.lockout_s * 2**times)
            self.failures[client] = 0

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)
        self.lockouts.pop(client, None)
        self.locked_until.pop(client, None)


# -- sessions --------------------------------------------------------------------


@dataclass
class Session:
    csrf: str
    last_seen_s: float


@dataclass
class Sessions:
    """Opaque random session ids -> CSRF token and last use; idle ones expire."""

    idle_s: float
    by_id: dict[str, Session] = field(default_factory=dict)

    def create(self, now: float) -> tuple[str, Session]:
        self._expire(now)
        sid = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), last_seen_s=now)
        self.by_id[sid] = session
        return sid, session

    def get(self, sid: str | None, now: float) -> Session | None:
        if not sid:
            return None
        session = self.by_id.get(sid)
        if session is None:
            return None
        if now - session.last_seen_s > self.idle_s:
            del self.by_id[sid]
            return None
        session.last_seen_s = now
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self.by_id.pop(sid, None)

    def drop_all(self) -> None:
        self.by_id.clear()

    def _expire(self, now: float) -> None:
        for sid in [k for k, s in self.by_id.items() if now - s.last_seen_s > self.idle_s]:
            del self.by_id[sid]


def same_secret(given: str | None, wanted: str | None) -> bool:
    """Constant-time equality of two tokens; False when either is missing."""
    if not given or not wanted:
        return False
    return hmac.compare_digest(given.encode(), wanted.encode())


def setup_code() -> str:
    """A one-time code for the first password: 12 characters, easy to type."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
