"""Outbox commit rate against a bare SQLite insert with the same durability."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from edge.codes import Condition, Kind, codes
from edge.model import Event, new_event_id
from edge.outbox.store import Outbox

N = 500


def _event(i: int) -> Event:
    now = 1_800_000_000_000 + i
    return Event(
        id=new_event_id(now),
        kind=Kind.ALARM,
        condition=Condition.BURGLARY,
        codes=codes(Condition.BURGLARY, restore=False),
        occurred_at_ms=now,
        partition=1,
        armed=True,
    )


def _ours(folder: Path) -> float:
    box = Outbox(folder / "outbox.sqlite")
    box.open()
    events = [_event(i) for i in range(N)]
    start = time.perf_counter()
    for event in events:
        box.put(event, event.occurred_at_ms)
    elapsed = time.perf_counter() - start
    box.close()
    return N / elapsed


def _bare(folder: Path) -> float:
    db = sqlite3.connect(folder / "bare.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)")
    start = time.perf_counter()
    for i in range(N):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (str(i), "x" * 300))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return N / elapsed


def outbox_put() -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        return _ours(Path(tmp)), _bare(Path(tmp)), "ev/s"


CASES = [
    ("outbox.put (durable, 1 event/commit)", "bare SQLite WAL FULL 1 row/commit", outbox_put),
]
