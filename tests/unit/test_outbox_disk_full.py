"""The outbox when its disk refuses an event: held in memory, numbered, sent, committed
later with the same number; and the media an event announces (media_due).

The disk is the hardware seam here: ``RefusingDisk`` makes the database's commits
fail as SQLite does on a full disk (SQLITE_FULL), switched on and off by the test.
The real full disk (a filled tmpfs) is tests/integration/test_full_disk.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.clock import FakeClock
from edge.codes import Condition, Kind
from edge.db import storage_error
from edge.errors import DiskFull
from edge.model import Event, MediaDue
from edge.outbox.aio import AsyncOutbox
from edge.outbox.store import Outbox, PutResult
from tests.unit.test_outbox import T0, ev, until


class RefusingDisk(Outbox):
    """Commits of events fail as on a full disk while ``full`` is set."""

    full = False

    def put_many(self, items: list[tuple[Event, int]], *args: Any, **kwargs: Any) -> PutResult:
        if self.full:
            err = sqlite3.OperationalError("database or disk is full")
            err.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
            raise storage_error("outbox: commit failed: database or disk is full", err)
        return super().put_many(items, *args, **kwargs)


@pytest.fixture
async def disk(tmp_path: Path) -> AsyncIterator[tuple[AsyncOutbox, RefusingDisk]]:
    store = RefusingDisk(tmp_path / "outbox.sqlite")
    box = AsyncOutbox(store, FakeClock(T0 / 1000))
    await box.open()
    yield box, store
    store.full = False
    await box.close()


def test_sqlite_s_full_disk_is_disk_full() -> None:
    err = sqlite3.OperationalError("database or disk is full")
    err.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert isinstance(storage_error("x", err), DiskFull)
    other = sqlite3.OperationalError("disk I/O error")
    other.sqlite_errorcode = sqlite3.SQLITE_IOERR  # type: ignore[attr-defined]
    assert not isinstance(storage_error("x", other), DiskFull)


async def test_an_event_the_disk_refuses_is_numbered_sent_and_committed_later(
    disk: tuple[AsyncOutbox, RefusingDisk],
) -> None:
    box, store = disk
    first = await box.put(ev(zone="a"), T0)
    assert first.seq == 1 and first.durable
    store.full = True
    fire = await box.put(ev(Condition.FIRE, zone="b"), T0)
    assert not fire.durable and fire.seq == 2  # numbered at once, never on disk yet
    # the outbox's own trouble about it is held too (the same disk refuses it)
    await until(box, lambda: len(box.held) == 2 and box.depth == 3)
    trouble = next(h.stored for h in box.held.snapshot() if h.stored.event.id != fire.event.id)
    assert trouble.event.condition is Condition.SYSTEM_TROUBLE and trouble.seq == 3
    # the held events go first (they are at risk), by class, then the stored backlog
    leased = await box.lease(T0, T0, 20_000, 10)
    assert [s.event.id for s in leased] == [fire.event.id, trouble.event.id, first.event.id]
    assert [s.seq for s in leased] == [2, 3, 1]
    # the disk takes events again: the fire is committed with the number it was sent with
    store.full = False
    await until(box, lambda: not box.held)
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT seq, id FROM events ORDER BY seq").fetchall()
    assert [r[0] for r in rows][:3] == [1, 2, 3] and rows[1][1] == fire.event.id
    later = await box.put(ev(zone="c"), T0)
    assert later.seq > 3  # no number handed out twice
    assert await box.ack([first.event.id, fire.event.id]) == 2


async def test_a_held_event_acknowledged_before_the_disk_takes_it_is_not_stored(
    disk: tuple[AsyncOutbox, RefusingDisk],
) -> None:
    box, store = disk
    store.full = True
    alarm = await box.put(ev(zone="hall"), T0)
    assert not alarm.durable
    assert alarm.event.id in [s.event.id for s in await box.lease(T0, T0, 20_000, 10)]
    assert await box.ack([alarm.event.id]) == 1  # the station has it
    assert alarm.event.id not in box.held.by_id
    store.full = False
    await until(box, lambda: not box.held.acked)
    assert await box.zone_kinds() == {"hall": Kind.ALARM}  # the zone resumes from it
    await until(box, lambda: not box.held)
    ids = [e.event.id for e in store.lease(T0 + 10**6, T0, 1, 100)]
    assert alarm.event.id not in ids  # not stored: nothing to resend


async def test_the_outbox_says_once_that_its_disk_fails_and_once_that_it_is_over(
    disk: tuple[AsyncOutbox, RefusingDisk],
) -> None:
    box, store = disk
    store.full = True
    for zone in "abc":
        await box.put(ev(zone=zone), T0)
    store.full = False
    await until(box, lambda: not box.held and box.troubled is None)
    await until(box, lambda: store.depth() == 5)
    with sqlite3.connect(store.path) as db:
        bodies = [r[0] for r in db.execute("SELECT body FROM events ORDER BY seq")]
    troubles = [b for b in bodies if '"condition":"system_trouble"' in b]
    assert len(troubles) == 2  # one trouble (300) and its restore, for the episode
    assert '"kind":"trouble"' in troubles[0] and '"kind":"trouble_restore"' in troubles[1]


async def test_media_an_event_announces_are_owed_until_queued_or_told_lost(
    disk: tuple[AsyncOutbox, RefusingDisk],
) -> None:
    box, _store = disk
    alarm = ev(Condition.FIRE, zone="fire")
    due = (
        MediaDue("clip-1", alarm.id, "clip", "cam", T0 - 3000, T0 + 5000),
        MediaDue("still-1", alarm.id, "still", "cam", T0, T0),
        MediaDue("still-2", alarm.id, "still", "cam", T0 + 500, T0 + 500),
    )
    await box.put(alarm, T0, due)
    assert [d.id for d in await box.media_due()] == ["clip-1", "still-1", "still-2"]
    await box.put_media(alarm, "still-1", "still", "image/jpeg", b"jpeg")
    assert [d.id for d in await box.media_due()] == ["clip-1", "still-2"]
    await box.lose_due(due[0], "not recorded: power cut")
    await box.put_due_media(due[2], "image/jpeg", b"cut from footage")
    assert await box.media_due() == []
    lost = box.outbox.media.lost()
    assert lost == [("clip-1", alarm.id, "not recorded: power cut")]
    # the lost notice is leased like a media (after its event), with its reason
    await box.lease(T0, T0, 20_000, 10)
    items = [await box.lease_media(T0 + 1, 20_000) for _ in range(3)]
    assert {i.id: i.lost for i in items if i is not None} == {
        "clip-1": "not recorded: power cut",
        "still-1": None,
        "still-2": None,
    }
