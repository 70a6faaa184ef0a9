"""Outbox commit rate against a bare SQLite insert with the same durability."""

from __future__ import annotations

import asyncio
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
    box.open(int(time.time() * 1000))
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


def _grouped(folder: Path, n: int) -> float:
    """AsyncOutbox.put from many producers at once: group commit."""
    from edge.clock import SystemClock
    from edge.outbox.aio import AsyncOutbox

    async def go() -> float:
        box = AsyncOutbox(Outbox(folder / "grouped.sqlite"), SystemClock())
        await box.open()
        events = [_event(i) for i in range(n)]
        start = time.perf_counter()
        await asyncio.gather(*(box.put(e, e.occurred_at_ms) for e in events))
        elapsed = time.perf_counter() - start
        await box.close()
        return n / elapsed

    return asyncio.run(go())


def outbox_put() -> list[tuple[str, float, float, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        one, bare = _ours(Path(tmp)), _bare(Path(tmp))
        grouped = _grouped(Path(tmp), 10_000)
    floor = "bare SQLite WAL FULL, 1 row/commit"
    return [
        ("put, 1 event/commit", one, bare, "ev/s", floor),
        ("put x10,000 concurrent", grouped, bare, "ev/s", floor + " (bar: >= 2,000 ev/s)"),
    ]


CASES = [("outbox durable enqueue", outbox_put)]
