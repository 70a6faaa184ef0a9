"""The durable outbox: every event committed with fsync before its first send,
deleted only when the station acknowledged it.

SQLite in WAL mode with ``synchronous=FULL``. The per-device sequence number
lives in the same database and is taken in the same transaction as the
insert, so it survives restarts and never repeats. Blocking: the app calls it
from one dedicated thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from edge.codes import Kind
from edge.db import Transaction, open_db
from edge.model import Event, StoredEvent
from edge.protocol import event_from_record, event_record

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    zone TEXT,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent_ms INTEGER,
    next_send_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS events_due ON events (next_send_ms, priority, seq);
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0);
"""

# Lower sends first: alarms and tamper, then trouble, then the rest.
_PRIORITY = {
    Kind.ALARM: 0,
    Kind.RESTORE: 0,
    Kind.TAMPER: 0,
    Kind.TAMPER_RESTORE: 0,
    Kind.TROUBLE: 1,
    Kind.TROUBLE_RESTORE: 1,
    Kind.ARM: 2,
    Kind.DISARM: 2,
    Kind.TEST: 2,
}


def priority(event: Event) -> int:
    return _PRIORITY[event.kind]


class Outbox:
    """Store-and-forward queue of events. Construct, then :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self._db = open_db(self.path, SCHEMA, "outbox")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def put(self, event: Event, now_ms: int) -> StoredEvent:
        """Commit ``event`` durably with the next sequence number."""
        body = json.dumps(event_record(event), separators=(",", ":"))
        zone = event.zone.id if event.zone else None
        with self._tx() as db:
            row = db.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"
            ).fetchone()
            seq = int(row[0])
            db.execute(
                "INSERT INTO events (id, seq, priority, zone, body, created_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.id, seq, priority(event), zone, body, now_ms),
            )
        return StoredEvent(event, seq, priority(event), attempts=0, first_sent_ms=None)

    def due(self, now_ms: int, limit: int = 50) -> list[StoredEvent]:
        """Events to send now: highest priority first, oldest first within a priority."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT body, seq, priority, attempts, first_sent_ms FROM events "
                "WHERE next_send_ms <= ? ORDER BY priority, seq LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        return [
            StoredEvent(event_from_record(json.loads(body)), seq, prio, attempts, first)
            for body, seq, prio, attempts, first in rows
        ]

    def next_due_ms(self) -> int | None:
        with self._tx() as db:
            row = db.execute("SELECT MIN(next_send_ms) FROM events").fetchone()
        return None if row[0] is None else int(row[0])

    def mark_sent(self, event_id: str, now_ms: int, retry_at_ms: int) -> None:
        """Record a send; the event is offered again at ``retry_at_ms`` unless acknowledged."""
        with self._tx() as db:
            db.execute(
                "UPDATE events SET attempts = attempts + 1, "
                "first_sent_ms = COALESCE(first_sent_ms, ?), next_send_ms = ? WHERE id = ?",
                (now_ms, retry_at_ms, event_id),
            )

    def ack(self, ids: list[str]) -> int:
        """Delete acknowledged events; returns how many were still here."""
        if not ids:
            return 0
        with self._tx() as db:
            cur = db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def depth(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def oldest_ms(self) -> int | None:
        with self._tx() as db:
            row = db.execute("SELECT MIN(created_ms) FROM events").fetchone()
        return None if row[0] is None else int(row[0])

    def last_seq(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])

    def _tx(self) -> Transaction:
        return Transaction(self._db, self._lock, f"outbox {self.path}")
