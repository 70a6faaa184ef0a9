"""The event journal's SQLite file: every event of the last days, bounded in rows.

Used from one thread only (the journal's writer). A diagnostic record, not the
store-and-forward: WAL with ``synchronous=NORMAL`` (a power cut may lose the last
batch, never corrupt the file). Every sqlite3 error becomes :class:`StorageError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.db import Transaction, open_checked
from edge.errors import StorageError

DAY_MS = 86_400_000
COLUMNS = (
    "n, id, seq, kind, cid, sia, zone, text, occurred_ms, queued_ms, sent_ms, attempts, acked_ms,"
    " media"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    cid TEXT NOT NULL,
    sia TEXT NOT NULL,
    zone TEXT,
    text TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    queued_ms INTEGER,
    sent_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    acked_ms INTEGER,
    media TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS journal_kind ON journal (kind, n);
CREATE INDEX IF NOT EXISTS journal_zone ON journal (zone, n);
CREATE INDEX IF NOT EXISTS journal_occurred ON journal (occurred_ms);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (n) WHERE acked_ms IS NULL;
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    lost TEXT,
    at_ms INTEGER NOT NULL
);
"""
_NEW = (
    "INSERT INTO journal (id, seq, kind, cid, sia, zone, text, occurred_ms, media, {col},"
    " attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET {set}"
)
QUEUED_SQL = _NEW.format(col="queued_ms", set="queued_ms = excluded.queued_ms")
SENT_SQL = _NEW.format(
    col="sent_ms", set="sent_ms = excluded.sent_ms, attempts = journal.attempts + 1"
)
ACKED_SQL = "UPDATE journal SET acked_ms = ? WHERE id = ? AND acked_ms IS NULL"
MEDIA_SQL = (
    "INSERT INTO media (id, kind, content_type, file, size, lost, at_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET content_type ="
    " excluded.content_type, file = excluded.file, size = excluded.size, lost = excluded.lost"
)
MediaRow = tuple[str, str, str, str, int, str | None, int]  # media's columns, in order
STATE_SQL = {
    "queued": "acked_ms IS NULL AND sent_ms IS NULL",
    "sent": "acked_ms IS NULL AND sent_ms IS NOT NULL",
    "acked": "acked_ms IS NOT NULL",
}

Row = tuple[object, ...]  # the journal's columns, in COLUMNS order
Op = tuple[str, tuple[object, ...]]  # one statement and its parameters


@dataclass(frozen=True)
class Filter:
    """What the technician asked for: exact kind, zone and delivery state, and an
    occurred-at window ``[since_ms, until_ms)``; ``before`` pages back (a row number)."""

    kind: str | None = None
    zone: str | None = None
    state: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: int | None = None


class JournalFile:
    """The journal table in its own file."""

    def __init__(self, path: Path, days: int, max_rows: int, keep_newest: int = 1000) -> None:
        self.path = path
        self.keep_ms = days * DAY_MS
        self.max_rows = max_rows
        self.keep_newest = keep_newest  # kept whatever their age: a clock set years ahead
        # must not empty the journal
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._label = f"event journal {path}"
        self.moved_aside: Path | None = None  # a damaged file, kept under this name
        self.damage = ""

    def open(self, now_ms: int, newest: int) -> tuple[list[Row], int]:
        """Open (creating), check and prune the file: its newest ``newest`` rows, oldest
        first, and the next row number."""
        # A damaged file is moved aside (kept, named .corrupt-<ms>) and a new one begun.
        checked = open_checked(self.path, SCHEMA, "event journal", now_ms)
        self.moved_aside, self.damage = checked.moved_aside, checked.reason
        db = checked.db
        self._db = db
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            columns = {r[1] for r in db.execute("PRAGMA table_info(journal)")}
            if "media" not in columns:  # a file of before the events' media were noted
                db.execute("ALTER TABLE journal ADD COLUMN media TEXT NOT NULL DEFAULT ''")
            self.write([], now_ms)
            rows = db.execute(
                f"SELECT {COLUMNS} FROM journal ORDER BY n DESC LIMIT ?",  # noqa: S608 (constants)
                (newest,),
            ).fetchall()
            top = db.execute("SELECT max(n) FROM journal").fetchone()[0]
        except sqlite3.Error as exc:
            self.close()
            raise StorageError(f"{self._label}: {exc}") from exc
        except StorageError:
            self.close()
            raise
        return rows[::-1], (top or 0) + 1

    def write(self, ops: Iterable[Op], now_ms: int) -> int:
        """One transaction: the ops, then the rows past the age and row limits go."""
        done = 0
        with Transaction(self._db, self._lock, self._label) as db:
            for sql, params in ops:
                db.execute(sql, params)
                done += 1
            db.execute(
                "DELETE FROM journal WHERE occurred_ms < ?"
                " AND n <= (SELECT max(n) FROM journal) - ?",
                (now_ms - self.keep_ms, self.keep_newest),
            )
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT max(n) FROM journal) - ?",
                (self.max_rows,),
            )
            db.execute("DELETE FROM media WHERE at_ms < ?", (now_ms - self.keep_ms,))
        return done

    def query(self, f: Filter, limit: int) -> tuple[list[Row], dict[str, int]]:
        """Newest first, at most ``limit`` rows; and the count of rows in each state."""
        where, params = _where(f)
        sql = f"SELECT {COLUMNS} FROM journal{where} ORDER BY n DESC LIMIT ?"  # noqa: S608
        db = self._db
        if db is None:
            raise StorageError(f"{self._label} is not open")
        try:
            rows = db.execute(sql, (*params, limit)).fetchall()
            total = db.execute("SELECT count(*) FROM journal").fetchone()[0]
            pending = dict(
                db.execute(
                    "SELECT sent_ms IS NOT NULL, count(*) FROM journal"
                    " WHERE acked_ms IS NULL GROUP BY 1"
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"{self._label}: {exc}") from exc
        queued, sent = pending.get(0, 0), pending.get(1, 0)
        return rows, {"queued": queued, "sent": sent, "acked": total - queued - sent}

    def media(self, ids: Sequence[str]) -> list[MediaRow]:
        """What the outbox said of these media (those it said anything of)."""
        db = self._db
        if db is None:
            raise StorageError(f"{self._label} is not open")
        found: list[MediaRow] = []
        try:
            for first in range(0, len(ids), 500):  # SQLite's bound on parameters
                part = ids[first : first + 500]
                marks = ", ".join("?" * len(part))
                found += db.execute(
                    "SELECT id, kind, content_type, file, size, lost, at_ms FROM media"  # noqa: S608
                    f" WHERE id IN ({marks})",
                    tuple(part),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"{self._label}: {exc}") from exc
        return found

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):  # a broken file: nothing more to lose
                db.close()


def _where(f: Filter) -> tuple[str, Sequence[object]]:
    terms: list[str] = []
    params: list[object] = []
    for column, value in (("kind", f.kind), ("zone", f.zone)):
        if value:
            terms.append(f"{column} = ?")
            params.append(value)
    if f.state:
        terms.append(STATE_SQL[f.state])
    bounds: tuple[tuple[str, int | None], ...] = (
        ("occurred_ms >= ?", f.since_ms),
        ("occurred_ms < ?", f.until_ms),
        ("n < ?", f.before),
    )
    for term, bound in bounds:
        if bound is not None:
            terms.append(term)
            params.append(bound)
    return (" WHERE " + " AND ".join(terms) if terms else ""), params
