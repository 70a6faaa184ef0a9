"""Operators and the station's access log: who may log in, what media they viewed.

Passwords are :mod:`edge.auth` scrypt hashes (the box's format; lines an
older station wrote in hex still log in, and are rewritten at the next
login). Each operator has a role, ``operator`` or ``supervisor``
(``operator_roles``; an operator without a row there is an ``operator``).
The page's login lockout is kept in ``login_lockout`` so that a restart does
not forget it. The access log records every view of a still or clip (what
operators do is the main courante's, :mod:`edge.station.courante`;
``operator_log`` is the older stations' acknowledgements, kept as they were).
The functions taking ``db`` run in the caller's transaction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from edge import auth
from edge.errors import EdgeError
from edge.station.sql import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS operator_roles (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS login_lockout (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot TEXT NOT NULL
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

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
ROLES = auth.Roles(("operator", "supervisor"))  # a supervisor may do all an operator may


@dataclass(frozen=True)
class Account:
    name: str
    hash: str
    role: str


def set_operator(db: Db, name: str, password: str, role: str | None = None) -> None:
    """Add an operator, or change their password; ``role`` None: a new operator is an
    ``operator``, an existing one keeps theirs. EdgeError on a bad name, password or role."""
    if not NAME.fullmatch(name):
        raise EdgeError(f"operator name {name!r}: 1 to 64 of A-Z a-z 0-9 . _ -")
    if role is not None:
        ROLES.parse(role)
    db.execute(
        "INSERT INTO operators (name, hash) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
        (name, auth.hash_password(password)),
    )
    if role is not None:
        db.execute(
            "INSERT INTO operator_roles (name, role) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET role = excluded.role",
            (name, role),
        )


def account(db: Db, name: str) -> Account | None:
    """The operator ``name`` with their hash and role, or None."""
    row = db.execute(
        "SELECT o.name, o.hash, r.role FROM operators o "
        "LEFT JOIN operator_roles r ON r.name = o.name WHERE o.name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return Account(str(row[0]), str(row[1]), str(row[2] or ROLES.lowest))


def operators(db: Db) -> list[dict[str, str]]:
    """Every operator's name and role, by name."""
    rows = db.execute(
        "SELECT o.name, r.role FROM operators o "
        "LEFT JOIN operator_roles r ON r.name = o.name ORDER BY o.name"
    ).fetchall()
    return [{"name": str(name), "role": str(role or ROLES.lowest)} for name, role in rows]


def rehash(db: Db, name: str, old: str, new: str) -> bool:
    """Replace ``old`` by ``new`` (the same password, today's format), unless the
    password was changed meanwhile. True when replaced."""
    cur = db.execute("UPDATE operators SET hash = ? WHERE name = ? AND hash = ?", (new, name, old))
    return cur.rowcount == 1


def read_lockout(db: Db) -> str | None:
    """The page's lockout snapshot as last written (JSON text), or None."""
    row = db.execute("SELECT snapshot FROM login_lockout WHERE id = 1").fetchone()
    return None if row is None else str(row[0])


def write_lockout(db: Db, snapshot: str) -> None:
    db.execute(
        "INSERT INTO login_lockout (id, snapshot) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot",
        (snapshot,),
    )


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
