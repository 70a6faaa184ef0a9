"""Who may use the technician's page: the box's side of :mod:`edge.auth`.

There is no default password. The first one is set at provisioning with
``edge set-password`` (a scrypt hash in ``<state_dir>/web/password``) or, on a
box that has none, with a one-time setup code printed on the console at start.
Sessions live in memory: a restart logs everybody out. The login lockout
does not forget: it is kept in ``<state_dir>/web/lockout.json``. Scripts on the
box use a bearer token from the config (``web.api_token``) instead of a session.
Hashes, sessions, CSRF tokens and the lockout itself are :mod:`edge.auth`'s,
shared with the station's operator page.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from edge.auth import (
    MAX_CLIENTS,
    MAX_LOCK_S,
    MAX_PASSWORD,
    MIN_PASSWORD,
    AuthError,
    Lockout,
    LockoutFile,
    Session,
    Sessions,
    Strikes,
    check_password_rules,
    hash_password,
    needs_rehash,
    same_secret,
    verify_password,
)

__all__ = [
    "LOCKOUT_FILE",
    "MAX_CLIENTS",
    "MAX_LOCK_S",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PASSWORD_FILE",
    "AuthError",
    "Lockout",
    "Session",
    "Sessions",
    "Strikes",
    "check_password_rules",
    "hash_password",
    "lockout_file",
    "needs_rehash",
    "read_lockout",
    "read_password",
    "same_secret",
    "setup_code",
    "verify_password",
    "write_lockout",
    "write_password",
]

PASSWORD_FILE = "password"  # noqa: S105 - a file name
LOCKOUT_FILE = "lockout.json"


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


def lockout_file(web_dir: Path) -> LockoutFile:
    """Where the page's login lockout is kept across restarts."""
    return LockoutFile(web_dir / LOCKOUT_FILE)


def write_lockout(web_dir: Path, snapshot: dict[str, Any]) -> Path:
    """Store a lockout snapshot (mode 0600, replaced atomically: see :class:`LockoutFile`)."""
    kept = lockout_file(web_dir)
    kept.write(snapshot)
    return kept.path


def read_lockout(web_dir: Path) -> object | None:
    """The stored lockout snapshot (parsed JSON), or None when none was ever written."""
    return lockout_file(web_dir).read()


def setup_code() -> str:
    """A one-time code for the first password: 12 characters, easy to type."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
