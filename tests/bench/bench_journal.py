"""The technician page's event journal: what it costs the event loop, and its reads.

Notes: the outbox's three calls per event (queued, sent, acked) on the event
loop, with the journal in its file (the writer thread committing meanwhile).
Floor: the same calls on a journal in memory only (what the box did before the
file existed). The ratio is what durability adds to the alarm path.

Writer: events/s through the writer thread (3 statements each, one transaction
per batch). Floor: plain sqlite3 inserting the same rows with executemany in
one transaction (WAL, synchronous=NORMAL).

Reads at 100,000 events (the cap): the newest page of 200, a rare zone, and a
one-hour window, median of 20 each. Floor: the newest 200 of the 1,000 events
kept in memory (the old journal's one page).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from edge.codes import Condition, ZoneType
from edge.model import StoredEvent, ZoneRef, box_event
from edge.web.journal import Filter, Journal

Row = tuple[str, float, float, str, str]
T0 = 1_764_300_000_000
EVENTS = 20_000
FULL = 100_000
DOOR = ZoneRef("front-door", "Front door", ZoneType.INTRUSION, 1)


def _events(count: int) -> list[StoredEvent]:
    found = []
    for seq in range(1, count + 1):
        event = box_event(Condition.MANUAL_TEST, False, f"event {seq}", T0 + seq * 1000)
        if seq % 997 == 0:  # a rare zone
            event = box_event(Condition.BURGLARY, False, f"door {seq}", T0 + seq * 1000)
            event = type(event)(**{**event.__dict__, "zone": DOOR})
        found.append(StoredEvent(event=event, seq=seq, priority=1, attempts=0, first_sent_ms=None))
    return found


def _note_all(journal: Journal, events: list[StoredEvent]) -> float:
    """Seconds on the loop for the outbox's three notes per event."""
    started = time.perf_counter()
    for stored in events:
        at = stored.event.occurred_at_ms
        journal.queued(stored, at)
        journal.sent([stored], at + 10)
        journal.acked([stored.event.id], at + 50)
    return time.perf_counter() - started


async def _notes(folder: Path) -> list[Row]:
    events = _events(EVENTS)
    memory = Journal()
    floor_s = _note_all(memory, events)
    durable = Journal()
    await durable.open(folder / "notes.sqlite", T0)
    ours_s = written_s = 0.0
    for start in range(0, EVENTS, 2000):  # bursts of 2,000 alarms, then the loop idles
        noted_s = _note_all(durable, events[start : start + 2000])
        started = time.perf_counter()
        await durable.flush()
        ours_s += noted_s
        written_s += noted_s + time.perf_counter() - started
    assert durable.durable, durable.problem
    await durable.close()
    plain_s = _plain_sqlite(folder / "plain.sqlite", events)
    return [
        ("loop us/event (3 notes)", ours_s / EVENTS * 1e6, floor_s / EVENTS * 1e6, "us", "memory"),
        ("writer events/s", EVENTS / written_s, EVENTS / plain_s, "ev/s", "executemany"),
    ]


def _plain_sqlite(path: Path, events: list[StoredEvent]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE j (id TEXT PRIMARY KEY, seq INT, kind TEXT, text TEXT, occurred_ms INT,"
        " queued_ms INT, sent_ms INT, acked_ms INT)"
    )
    rows = [
        (s.event.id, s.seq, s.event.kind.value, s.event.text, s.event.occurred_at_ms)
        for s in events
    ]
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO j VALUES (?, ?, ?, ?, ?, ?+0, ?+10, ?+50)",
        [(*r, r[4], r[4], r[4]) for r in rows],
    )
    db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


async def _median_ms(read: Callable[[], Awaitable[object]], times: int = 20) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        await read()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


async def _reads(folder: Path) -> list[Row]:
    journal = Journal()
    await journal.open(folder / "full.sqlite", T0)
    events = _events(FULL)
    for start in range(0, FULL, 10_000):
        _note_all(journal, events[start : start + 10_000])
        await journal.flush()
    assert journal.durable, journal.problem
    memory = Journal()
    _note_all(memory, events[-1000:])
    floor = await _median_ms(lambda: memory.query(limit=200))
    hour = Filter(since_ms=T0 + 50_000_000, until_ms=T0 + 50_000_000 + 3_600_000)
    rows: list[Row] = []
    for metric, f in (
        ("newest 200 of 100k (ms)", Filter()),
        ("rare zone in 100k (ms)", Filter(zone="front-door")),
        ("one hour in 100k (ms)", hour),
    ):
        ours = await _median_ms(lambda f=f: journal.query(f, 200))  # type: ignore[misc]
        rows.append((metric, ours, floor, "ms", "200 of 1k in memory"))
    await journal.close()
    return rows


def run_notes() -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_notes(Path(folder)))


def run_reads() -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_reads(Path(folder)))


CASES = [("web.journal notes", run_notes), ("web.journal reads", run_reads)]
