"""Who may use the technician's page: password, sessions, CSRF tokens, lockout.

There is no default password. The first one is set at provisioning with
``edge set-password`` (a scrypt hash in ``<state_dir>/web/password``) or, on a
box that has none, with a one-time setup code printed on the console at start.
Sessions live in memory: a restart logs everybody out. The login lockout
does not forget: it is kept in ``<state_dir>/web/lockout.json``. Scripts on the
box use a bearer token from the config (``web.api_token``) instead of a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import EdgeError

# scrypt cost: n=2**14, r=8 is OWASP's minimum (16 MiB, ~50 ms on a Pi 4).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
MIN_PASSWORD = 10
MAX_PASSWORD = 256
PASSWORD_FILE = "password"  # noqa: S105 - a file name
LOCKOUT_FILE = "lockout.json"
LOCKOUT_VERSION = 1
MAX_LOCK_S = 3600.0  # the longest lockout (web.lockout_s is at most this, too)
MAX_CLIENTS = 1000  # clients whose failures are remembered


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
class Strikes:
    """One client's failed logins."""

    failures: int = 0  # in a row since its last lockout
    lockouts: int = 0  # since its last success: each one doubles the next
    locked_until: float = 0.0
    last_failed: float = 0.0


@dataclass
class Lockout:
    """Failed logins per client: ``max_failures`` in a row lock it out for ``lockout_s``,
    doubled at each further lockout up to an hour. Also a box-wide cap, so that many
    addresses cannot share the work of guessing.

    Times are the caller's monotonic seconds. :meth:`snapshot` and :meth:`restore`
    carry the state across a restart in wall-clock time; ``on_change`` is called
    after each change worth keeping.
    """

    max_failures: int
    lockout_s: float
    clients: dict[str, Strikes] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)  # every failure, box-wide
    box_until: float = 0.0  # every client locked out until then (a lost lockout file)
    on_change: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def retry_after_s(self, client: str, now: float) -> float:
        """Seconds ``client`` must wait before trying again; 0 when it may try."""
        strikes = self.clients.get(client)
        until = max(self.box_until, strikes.locked_until if strikes else 0.0)
        self.recent = [t for t in self.recent if now - t < self.lockout_s]
        if len(self.recent) >= self._box_cap:
            until = max(until, self.recent[0] + self.lockout_s)
        return max(0.0, until - now)

    def failed(self, client: str, now: float) -> None:
        self.recent.append(now)
        strikes = self.clients.setdefault(client, Strikes())
        strikes.failures += 1
        strikes.last_failed = now
        if strikes.failures >= self.max_failures:
            strikes.locked_until = now + self._lock_s(strikes.lockouts)
            strikes.lockouts += 1
            strikes.failures = 0
        self._forget_oldest(now)
        self._changed()

    def succeeded(self, client: str) -> None:
        if self.clients.pop(client, None) is not None:
            self._changed()

    def lock_box(self, now: float) -> None:
        """Lock every client out for ``lockout_s``: the state of the lockout is lost."""
        self.box_until = max(self.box_until, now + self.lockout_s)
        self._changed()

    @property
    def _box_cap(self) -> int:
        return self.max_failures * 10  # box-wide: 10 clients' worth

    def _lock_s(self, lockouts: int) -> float:
        return min(MAX_LOCK_S, self.lockout_s * 2.0 ** min(lockouts, 16))

    def _forget_oldest(self, now: float) -> None:
        """Past ``MAX_CLIENTS``, forget the clients quiet longest (never a locked one):
        the box-wide cap, not this list, is what holds many addresses back."""
        if len(self.clients) <= MAX_CLIENTS:
            return
        idle = sorted((s.last_failed, c) for c, s in self.clients.items() if s.locked_until <= now)
        for _, client in idle[: len(self.clients) - MAX_CLIENTS]:
            del self.clients[client]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- across restarts ----------------------------------------------------------

    def snapshot(self, now: float, wall: float) -> dict[str, Any]:
        """The state with every time in wall-clock seconds (for the lockout file)."""
        shift = wall - now
        recent = [t for t in self.recent if now - t < self.lockout_s][-self._box_cap :]
        return {
            "version": LOCKOUT_VERSION,
            "box_until": self.box_until + shift if self.box_until > now else 0.0,
            "recent": [t + shift for t in recent],
            "clients": {
                client: {
                    "failures": s.failures,
                    "lockouts": s.lockouts,
                    "locked_until": s.locked_until + shift if s.locked_until > now else 0.0,
                    "last_failed": s.last_failed + shift,
                }
                for client, s in self.clients.items()
            },
        }

    def restore(self, data: object, now: float, wall: float) -> None:
        """Take the state of a :meth:`snapshot`, all or nothing (AuthError when it is
        not one). A wall clock set back never makes a lock longer than it was."""
        try:
            box_until, recent, clients = _parse_snapshot(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthError(f"not a lockout snapshot: {exc}") from exc

        def past(t: float) -> float:
            return now + min(0.0, t - wall)

        def deadline(t: float, longest: float) -> float:
            return now + min(longest, t - wall) if t > 0 else 0.0

        self.box_until = deadline(box_until, self.lockout_s)
        self.recent = sorted(past(t) for t in recent)
        self.clients = {
            client: Strikes(
                failures,
                lockouts,
                deadline(until, self._lock_s(max(0, lockouts - 1))),
                past(last),
            )
            for client, (failures, lockouts, until, last) in clients.items()
        }


def _parse_snapshot(
    data: object,
) -> tuple[float, list[float], dict[str, tuple[int, int, float, float]]]:
    if not isinstance(data, dict) or data.get("version") != LOCKOUT_VERSION:
        raise ValueError(f"version is not {LOCKOUT_VERSION}")
    recent, clients = data["recent"], data["clients"]
    if not isinstance(recent, list) or not isinstance(clients, dict):
        raise TypeError("recent must be a list and clients an object")
    parsed = {
        str(client): (
            _count(entry["failures"]),
            _count(entry["lockouts"]),
            _time(entry["locked_until"]),
            _time(entry["last_failed"]),
        )
        for client, entry in clients.items()
    }
    return _time(data["box_until"]), [_time(t) for t in recent], parsed


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a time")
    return float(value)


def write_lockout(web_dir: Path, snapshot: dict[str, Any]) -> Path:
    """Store a lockout snapshot (mode 0600): written whole, synced, then renamed over
    the old one, so that a power cut leaves either the old state or the new."""
    path = web_dir / LOCKOUT_FILE
    tmp = web_dir / (LOCKOUT_FILE + ".tmp")
    try:
        web_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(snapshot, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        folder = os.open(web_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        raise AuthError(f"{path}: cannot write: {exc}") from exc
    return path


def read_lockout(web_dir: Path) -> object | None:
    """The stored lockout snapshot (parsed JSON), or None when none was ever written."""
    path = web_dir / LOCKOUT_FILE
    try:
        data: object = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise AuthError(f"{path}: cannot read: {exc}") from exc
    return data


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
