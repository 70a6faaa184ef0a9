"""The main courante: every step of every incident, with who, when and where; append-only.

One table, ``courante``. Rows are only ever inserted: this module has no path
that updates or deletes one, and the store refuses it anyway (a trigger on
SQLite and on PostgreSQL raises on UPDATE, DELETE and, on PostgreSQL, TRUNCATE).
A mistake is corrected by a new row (action ``correction``) naming the row it
corrects. Entries the station writes itself (an incident opened, a zone back to
normal, an escalation) have the empty operator name.

:func:`page` reads it in pages by time (keyset: ``(at_ms, id)``), so an export of
any size streams in short transactions; :func:`describe` writes one entry as a
line of words in the operator's language (the CSV export and the printed page).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge import i18n
from edge.station.sql import Db

SYSTEM = ""  # the operator name of the station's own entries
ACTIONS = (
    "opened",
    "restored",
    "escalated",
    "take",
    "release",
    "transfer",
    "comment",
    "instruction",
    "call",
    "dispatch",
    "inform",
    "on_site",
    "outcome",
    "media_view",
    "request",
    "answer",
    "closed",
    "correction",
    "site",
)

_COLUMNS = "id, at_ms, operator, incident_id, site_key, device, action, detail, text, corrects"
_SQLITE = (
    """CREATE TABLE IF NOT EXISTS courante (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    operator TEXT NOT NULL,
    incident_id TEXT,
    site_key TEXT,
    device TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    text TEXT NOT NULL,
    corrects INTEGER
) STRICT""",
    "CREATE TRIGGER IF NOT EXISTS courante_no_update BEFORE UPDATE ON courante "
    "BEGIN SELECT RAISE(ABORT, 'the main courante is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS courante_no_delete BEFORE DELETE ON courante "
    "BEGIN SELECT RAISE(ABORT, 'the main courante is append-only'); END",
)
_POSTGRES = (
    """CREATE TABLE IF NOT EXISTS courante (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    operator TEXT NOT NULL,
    incident_id TEXT,
    site_key TEXT,
    device TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    text TEXT NOT NULL,
    corrects BIGINT
)""",
    "CREATE OR REPLACE FUNCTION courante_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the main courante is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER courante_no_change BEFORE UPDATE OR DELETE ON courante "
    "FOR EACH ROW EXECUTE FUNCTION courante_append_only()",
    "CREATE OR REPLACE TRIGGER courante_no_truncate BEFORE TRUNCATE ON courante "
    "FOR EACH STATEMENT EXECUTE FUNCTION courante_append_only()",
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS courante_by_time ON courante (at_ms, id)",
    "CREATE INDEX IF NOT EXISTS courante_by_incident ON courante (incident_id, id)",
    "CREATE INDEX IF NOT EXISTS courante_by_site ON courante (site_key, at_ms)",
)


def create(db: Db, dialect: str) -> None:
    """The table, its indexes and the triggers that keep it append-only."""
    db.lock("courante schema")  # two receivers starting at once on PostgreSQL
    for statement in (*(_POSTGRES if dialect == "postgresql" else _SQLITE), *_INDEXES):
        db.execute(statement)


@dataclass(frozen=True)
class Entry:
    id: int
    at_ms: int
    operator: str
    incident_id: str | None
    site_key: str | None
    device: str | None
    action: str
    detail: dict[str, Any]
    text: str
    corrects: int | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_INSERT = (
    "INSERT INTO courante (at_ms, operator, incident_id, site_key, device, action, detail, "
    "text, corrects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def row(
    at_ms: int,
    operator: str,
    action: str,
    *,
    incident_id: str | None = None,
    site_key: str | None = None,
    device: str | None = None,
    detail: dict[str, Any] | None = None,
    text: str = "",
    corrects: int | None = None,
) -> tuple[Any, ...]:
    """One line, ready for :func:`append_many`."""
    if action not in ACTIONS:
        raise ValueError(f"no courante action {action!r}")
    return (at_ms, operator, incident_id, site_key, device, action,
            json.dumps(detail or {}, separators=(",", ":")), text, corrects)  # fmt: skip


def append_many(db: Db, rows: Sequence[tuple[Any, ...]]) -> None:
    """More lines at once (the only writes there are: inserts)."""
    db.executemany(_INSERT, rows)


def append(
    db: Db,
    at_ms: int,
    operator: str,
    action: str,
    *,
    incident_id: str | None = None,
    site_key: str | None = None,
    device: str | None = None,
    detail: dict[str, Any] | None = None,
    text: str = "",
    corrects: int | None = None,
) -> None:
    """One more line; the only write there is."""
    line = row(
        at_ms,
        operator,
        action,
        incident_id=incident_id,
        site_key=site_key,
        device=device,
        detail=detail,
        text=text,
        corrects=corrects,
    )
    db.execute(_INSERT, line)


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(
        int(row[0]),
        int(row[1]),
        str(row[2]),
        row[3],
        row[4],
        row[5],
        str(row[6]),
        json.loads(row[7]),
        str(row[8]),
        row[9],
    )


def of_incident(db: Db, incident_id: str, limit: int = 500) -> list[Entry]:
    """An incident's lines, oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM courante WHERE incident_id = ? ORDER BY id LIMIT ?",  # noqa: S608
        (incident_id, limit),
    ).fetchall()
    return [_entry(r) for r in rows]


def one(db: Db, entry_id: int) -> Entry | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM courante WHERE id = ?", (entry_id,)).fetchone()  # noqa: S608
    return None if row is None else _entry(row)


@dataclass(frozen=True)
class Filter:
    """Which lines: a period (UTC ms, ``until`` excluded), a site, an operator."""

    since_ms: int = 0
    until_ms: int = 2**62
    site_key: str | None = None
    operator: str | None = None


def page(db: Db, where: Filter, after: tuple[int, int] | None, limit: int) -> list[Entry]:
    """Lines of ``where`` after ``after`` (``(at_ms, id)`` of the last line read), by time."""
    sql = f"SELECT {_COLUMNS} FROM courante WHERE at_ms >= ? AND at_ms < ?"  # noqa: S608
    args: list[Any] = [where.since_ms, where.until_ms]
    if after is not None:
        sql += " AND (at_ms, id) > (?, ?)"
        args += list(after)
    for clause, value in (("site_key = ?", where.site_key), ("operator = ?", where.operator)):
        if value is not None:
            sql += " AND " + clause
            args.append(value)
    rows = db.execute(sql + " ORDER BY at_ms, id LIMIT ?", [*args, limit]).fetchall()
    return [_entry(r) for r in rows]


# -- in words ---------------------------------------------------------------------

_WORDS = {  # detail keys whose values are words of the vocabulary, and their key prefix
    "category": "station.category.",
    "result": "station.call.",
    "to": "station.dispatch.",
    "who": "station.dispatch.",
    "code": "station.outcome.",
    "type": "station.request.type.",
    "status": "station.request.status.",
    "change": "station.site_change.",
    "kind": "station.media.kind.",
}


def describe(lang: str, entry: Entry) -> str:
    """The line in words: ``Appel Paul Martin (+33 6 ...) : joint``."""
    values = {k: str(v) for k, v in entry.detail.items()}
    for key, prefix in _WORDS.items():
        if key in values and not (entry.action == "transfer" and key == "to"):
            values[key] = i18n.t(lang, prefix + values[key])
    action = entry.action
    if action == "closed" and not entry.detail.get("restored", True):
        action = "closed_unrestored"
    try:
        return i18n.t(lang, f"station.courante.{action}", **values)
    except (KeyError, IndexError):  # an older line without one of today's values
        return i18n.t(lang, f"station.courante.{entry.action}")


def operator_name(lang: str, operator: str) -> str:
    return operator or i18n.t(lang, "station.courante.system")
