"""The station's durable store: each event id stored exactly once (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.db import Transaction, open_db
from edge.protocol import EventMessage, event_record, iso_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    account TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    cid TEXT NOT NULL,
    sia TEXT NOT NULL,
    zone_id TEXT,
    zone_name TEXT,
    partition INTEGER NOT NULL,
    armed INTEGER,
    occurred_ms INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    historical INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_device ON events (device, seq);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    state TEXT,
    state_ms INTEGER,
    heartbeat_ms INTEGER,
    heartbeat_interval_s INTEGER
) STRICT;
"""


@dataclass(frozen=True)
class StoredRow:
    id: str
    device: str
    seq: int
    kind: str
    cid: str
    sia: str
    zone: str | None
    occurred_at: str
    received_at: str
    historical: bool
    deliveries: int


class StationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self._db = open_db(self.path, SCHEMA, "station store")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def store(self, message: EventMessage, received_ms: int) -> bool:
        """Commit the event once; a retransmit only counts a delivery. True if new."""
        event = message.event
        body = {**event_record(event), "seq": message.seq, "device": message.device}
        row = (
            event.id,
            message.device,
            message.account,
            message.seq,
            event.kind.value,
            event.codes.cid,
            event.codes.sia,
            event.zone.id if event.zone else None,
            event.zone.name if event.zone else None,
            event.partition,
            None if event.armed is None else int(event.armed),
            event.occurred_at_ms,
            message.sent_at_ms,
            received_ms,
            int(message.historical),
            json.dumps(body, separators=(",", ":")),
        )
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO events (id, device, account, seq, kind, cid, sia, zone_id, "
                "zone_name, partition, armed, occurred_ms, sent_ms, received_ms, historical, "
                "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                row,
            )
            if cur.rowcount == 0:
                db.execute(
                    "UPDATE events SET deliveries = deliveries + 1 WHERE id = ?", (event.id,)
                )
                return False
        return True

    def device_state(self, device: str, state: str, at_ms: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO devices (device, state, state_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (device) DO UPDATE SET state = excluded.state, "
                "state_ms = excluded.state_ms",
                (device, state, at_ms),
            )

    def heartbeat(self, device: str, at_ms: int, interval_s: int) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO devices (device, heartbeat_ms, heartbeat_interval_s) "
                "VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                "heartbeat_ms = excluded.heartbeat_ms, "
                "heartbeat_interval_s = excluded.heartbeat_interval_s",
                (device, at_ms, interval_s),
            )

    def events(self, device: str | None = None, limit: int = 100) -> list[StoredRow]:
        query = (
            "SELECT id, device, seq, kind, cid, sia, zone_name, occurred_ms, received_ms, "
            "historical, deliveries FROM events"
        )
        args: list[Any] = []
        if device is not None:
            query += " WHERE device = ?"
            args.append(device)
        query += " ORDER BY received_ms DESC, seq DESC LIMIT ?"
        args.append(limit)
        with self._tx() as db:
            rows = db.execute(query, args).fetchall()
        return [
            StoredRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                iso_ms(r[7]),
                iso_ms(r[8]),
                bool(r[9]),
                r[10],
            )
            for r in rows
        ]

    def devices(self) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT device, state, state_ms, heartbeat_ms, heartbeat_interval_s "
                "FROM devices ORDER BY device"
            ).fetchall()
        keys = ("device", "state", "state_ms", "heartbeat_ms", "heartbeat_interval_s")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _tx(self) -> Transaction:
        return Transaction(self._db, self._lock, f"station store {self.path}")
