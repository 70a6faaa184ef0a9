"""Operators and the station's logs: who may log in, what they did, what media they viewed.

Passwords are scrypt hashes (``scrypt$n$r$p$salt$hash``, hex); the event log
records every acknowledgement and comment with the operator's name and the
time; the access log records every view of a still or clip. The functions
taking ``db`` run in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from typing import Any

from edge.errors import EdgeError
from edge.station.sql import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS operator_log (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    comment TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS operator_log_by_event ON operator_log (event_id, at_ms);
CREATE TABLE IF NOT EXISTS access_log (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    remote TEXT NOT NULL
) STRICT;
"""

SCRYPT = (2**14, 8, 1)
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    n, r, p = SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(got.hex(), digest)


def set_operator(db: Db, name: str, password: str) -> None:
    """Add an operator, or change their password. EdgeError on a bad name or password."""
    if not NAME.fullmatch(name):
        raise EdgeError(f"operator name {name!r}: 1 to 64 of A-Z a-z 0-9 . _ -")
    if len(password) < MIN_PASSWORD:
        raise EdgeError(f"a password has at least {MIN_PASSWORD} characters")
    db.execute(
        "INSERT INTO operators (name, hash) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
        (name, hash_password(password)),
    )


def operator_hash(db: Db, name: str) -> str | None:
    row = db.execute("SELECT hash FROM operators WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def log_action(db: Db, event_id: str, operator: str, at_ms: int, action: str, comment: str) -> None:
    db.execute(
        "INSERT INTO operator_log (id, event_id, operator, at_ms, action, comment) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), event_id, operator, at_ms, action, comment),
    )


def actions(db: Db, event_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT operator, at_ms, action, comment FROM operator_log WHERE event_id = ? "
        "ORDER BY at_ms",
        (event_id,),
    ).fetchall()
    return [dict(zip(("operator", "at_ms", "action", "comment"), r, strict=True)) for r in rows]


def acknowledged(db: Db, event_ids: list[str]) -> set[str]:
    if not event_ids:
        return set()
    marks = ", ".join("?" for _ in event_ids)
    rows = db.execute(
        f"SELECT DISTINCT event_id FROM operator_log WHERE action = 'ack' "  # noqa: S608
        f"AND event_id IN ({marks})",
        event_ids,
    ).fetchall()
    return {str(r[0]) for r in rows}


def log_access(db: Db, operator: str, at_ms: int, device: str, media_id: str, remote: str) -> None:
    db.execute(
        "INSERT INTO access_log (id, operator, at_ms, device, media_id, remote) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (str(uuid.uuid4()), operator, at_ms, device, media_id, remote),
    )


def accesses(db: Db, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT operator, at_ms, device, media_id, remote FROM access_log "
        "ORDER BY at_ms DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("operator", "at_ms", "device", "media_id", "remote")
    return [dict(zip(keys, r, strict=True)) for r in rows]
