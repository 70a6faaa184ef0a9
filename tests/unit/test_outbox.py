"""The durable outbox: sequence numbers, send order, leases, eviction, media,
dead letters, recovery from corruption, and its async face."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from edge import codes
from edge.clock import FakeClock
from edge.codes import Condition, Kind, ZoneType
from edge.errors import StorageError
from edge.model import Event, EventsQueued, OutboxFact, StoredEvent, ZoneRef
from edge.outbox import schema
from edge.outbox.aio import AsyncOutbox
from edge.outbox.schema import MOTION
from edge.outbox.store import Limits, Outbox, PutResult

T0 = 1_795_875_790_000
LIVE = T0 + 60_000  # live_after_ms: events stored from here on are live, older ones backlog
LEASE = 20_000
REPO = Path(__file__).resolve().parents[2]

_ids = iter(range(1, 1_000_000))


def ev(
    condition: Condition = Condition.BURGLARY,
    restore: bool = False,
    zone: str | None = "hall",
    *,
    motion: bool = False,
) -> Event:
    ref = None if zone is None else ZoneRef(zone, zone.title(), ZoneType.INTRUSION, 1)
    return Event(
        id=f"ev-{next(_ids):06d}",
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=T0,
        partition=1,
        armed=True,
        zone=ref,
        text="t",
        extra={"source": "motion"} if motion else {},
    )


def trouble() -> Event:
    return ev(Condition.AC_LOSS, zone=None)


def ids(items: Sequence[StoredEvent]) -> list[str]:
    return [s.event.id for s in items]


def lease(box: Outbox, now_ms: int = LIVE, limit: int = 50) -> list[StoredEvent]:
    return box.lease(now_ms, LIVE, LEASE, limit)


def _motion_priority(event: Event) -> int:
    return MOTION if event.extra.get("source") == "motion" else schema.priority(event)


@pytest.fixture
def motion(monkeypatch: pytest.MonkeyPatch) -> None:
    """No condition maps to the motion class yet: events tagged ``source=motion`` get it."""
    monkeypatch.setattr("edge.outbox.store.priority", _motion_priority)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.sqlite"


@pytest.fixture
def open_box(path: Path) -> Iterator[Callable[..., Outbox]]:
    """Opens outboxes at ``path`` (again and again); closes them all at the end."""
    boxes: list[Outbox] = []

    def make(limits: Limits | None = None, now_ms: int = T0) -> Outbox:
        box = Outbox(path, limits)
        box.open(now_ms)
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        box.close()


@pytest.fixture
def box(open_box: Callable[..., Outbox]) -> Outbox:
    return open_box()


# --- sequence numbers -----------------------------------------------------------


def test_put_assigns_increasing_seq(box: Outbox) -> None:
    stored = [box.put(ev(), T0 + n) for n in range(5)]
    assert [s.seq for s in stored] == [1, 2, 3, 4, 5]
    assert box.last_seq() == 5
    assert all(s.attempts == 0 and s.first_sent_ms is None for s in stored)


def test_put_returns_the_event_and_its_priority(box: Outbox) -> None:
    event = ev(Condition.FIRE)
    stored = box.put(event, T0)
    assert (stored.event, stored.priority) == (event, 0)
    assert (box.depth(), box.oldest_ms()) == (1, T0)


def test_constructor_does_no_io(path: Path) -> None:
    Outbox(path, Limits())
    assert not path.parent.exists()


def test_seq_survives_close_and_reopen(open_box: Callable[..., Outbox]) -> None:
    first = open_box()
    first.put(ev(), T0)
    first.put(ev(), T0)
    first.close()
    second = open_box()
    assert second.last_seq() == 2
    assert second.put(ev(), T0).seq == 3


def test_seq_never_repeats_after_the_queue_empties(open_box: Callable[..., Outbox]) -> None:
    first = open_box()
    assert first.ack(ids([first.put(ev(), T0) for _ in range(3)])) == 3
    first.close()
    second = open_box()
    assert second.depth() == 0
    assert second.put(ev(), T0).seq == 4


def test_events_survive_reopen_unchanged(open_box: Callable[..., Outbox]) -> None:
    events = [ev(Condition.FIRE), trouble(), ev(Condition.OPEN_CLOSE, True, "armed")]
    first = open_box()
    for event in events:
        first.put(event, T0)
    first.close()
    assert [s.event for s in lease(open_box())] == events


def test_duplicate_id_is_refused_and_does_not_use_a_seq(box: Outbox) -> None:
    event = ev()
    box.put(event, T0)
    with pytest.raises(StorageError):
        box.put(event, T0)
    assert box.depth() == 1
    assert box.put(ev(), T0).seq == 2  # the failed insert rolled its seq back


def test_put_many_commits_once(box: Outbox) -> None:
    statements: list[str] = []
    assert box._db is not None
    box._db.set_trace_callback(statements.append)
    result = box.put_many([(ev(), T0 + n) for n in range(20)])
    box._db.set_trace_callback(None)
    assert result == PutResult(result.stored, evicted_events=0)
    assert [s.seq for s in result.stored] == list(range(1, 21))
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]


def test_put_many_is_all_or_nothing(box: Outbox) -> None:
    taken = ev()
    box.put(taken, T0)
    with pytest.raises(StorageError):
        box.put_many([(ev(), T0), (taken, T0), (ev(), T0)])
    assert (box.depth(), box.last_seq()) == (1, 1)


# --- priority and send order ----------------------------------------------------

C = Condition


@pytest.mark.parametrize(
    ("condition", "restore", "expected"),
    [
        (C.FIRE, False, 0),
        (C.FIRE, True, 0),
        (C.PANIC, False, 1),
        (C.HOLDUP, True, 1),
        (C.BURGLARY, False, 2),
        (C.ENTRY_EXIT, True, 2),
        (C.TECHNICAL, False, 2),
        (C.SENSOR_TAMPER, False, 3),
        (C.PANEL_TAMPER, True, 3),
        (C.ENCLOSURE_TAMPER, False, 3),
        (C.AC_LOSS, False, 10),
        (C.LOW_BATTERY, True, 10),
        (C.COMM_TROUBLE, False, 10),
        (C.COMM_FAILED_EVENT, False, 10),
        (C.SYSTEM_TROUBLE, True, 10),
        (C.OPEN_CLOSE, False, 20),
        (C.OPEN_CLOSE, True, 20),
        (C.MANUAL_TEST, False, 20),
        (C.PERIODIC_TEST, False, 20),
    ],
)
def test_priority_classes(condition: Condition, restore: bool, expected: int) -> None:
    assert schema.priority(ev(condition, restore)) == expected


def test_no_condition_falls_into_the_evictable_motion_class() -> None:
    for condition in Condition:
        if condition is Condition.VIDEO_MOTION:  # the one that belongs there
            assert schema.priority(ev(condition)) == MOTION
            continue
        assert schema.priority(ev(condition)) < MOTION, condition


def test_lease_orders_by_priority_class_then_seq(box: Outbox, motion: None) -> None:
    for event in [
        ev(motion=True, zone="cam"),
        ev(Condition.OPEN_CLOSE, True, "armed"),
        ev(Condition.PERIODIC_TEST, zone=None),
        trouble(),
        ev(Condition.PANEL_TAMPER, zone="lid"),
        ev(Condition.TECHNICAL, zone="flood"),
        ev(Condition.BURGLARY, zone="hall"),
        ev(Condition.HOLDUP, zone="holdup"),
        ev(Condition.PANIC, zone="panic"),
        ev(Condition.FIRE, zone="fire"),
    ]:
        box.put(event, LIVE)
    got = lease(box)
    assert [s.priority for s in got] == [0, 1, 1, 2, 2, 3, 10, 20, 20, 30]
    assert [s.event.condition for s in got] == [
        C.FIRE,
        C.HOLDUP,
        C.PANIC,
        C.TECHNICAL,
        C.BURGLARY,
        C.PANEL_TAMPER,
        C.AC_LOSS,
        C.OPEN_CLOSE,
        C.PERIODIC_TEST,
        C.BURGLARY,
    ]


def test_lease_sends_live_before_backlog_within_a_class(box: Outbox) -> None:
    old_fire = box.put(ev(Condition.FIRE, zone="fire"), T0)
    old_a = box.put(ev(zone="a"), T0 + 1)
    old_b = box.put(ev(zone="b"), LIVE - 1)
    new_c = box.put(ev(zone="c"), LIVE)  # created at live_after_ms: live
    new_d = box.put(ev(zone="d"), LIVE + 5)
    old_trouble = box.put(trouble(), T0)
    new_trouble = box.put(trouble(), LIVE)
    assert ids(lease(box, LIVE + 10)) == ids(
        [old_fire, new_c, new_d, old_a, old_b, new_trouble, old_trouble]
    )


def test_live_event_of_a_zone_waits_for_its_backlog(box: Outbox) -> None:
    backlog = box.put(ev(zone="hall"), T0)
    restore = box.put(ev(restore=True, zone="hall"), LIVE)
    other = box.put(ev(zone="door"), LIVE)
    assert ids(lease(box)) == ids([other, backlog])  # the hall's restore waits
    assert ids(lease(box)) == ids([restore])  # its backlog went out: now it may


def test_held_back_events_do_not_use_up_the_limit(box: Outbox) -> None:
    backlog = box.put(ev(zone="hall"), T0)
    live = [box.put(ev(zone="hall"), LIVE + n) for n in range(3)]
    assert ids(lease(box, LIVE + 5, limit=2)) == ids([backlog])
    assert ids(lease(box, LIVE + 5, limit=2)) == ids(live[:2])


def test_lease_counts_attempts_and_hides_until_it_expires(
    open_box: Callable[..., Outbox],
) -> None:
    box = open_box()
    alarm = box.put(ev(), T0)
    other = box.put(trouble(), T0)
    [first] = lease(box, T0 + 100, limit=1)
    assert (first.event.id, first.attempts, first.first_sent_ms) == (alarm.event.id, 1, T0 + 100)
    expiry = T0 + 100 + LEASE
    assert ids(lease(box, expiry - 1)) == ids([other])
    assert lease(box, expiry - 1) == []
    assert box.next_due_ms() == expiry
    box.close()

    box = open_box()  # leases, attempts and first send time are on disk
    assert lease(box, expiry - 1) == []
    [again] = lease(box, expiry, limit=1)
    assert (again.event.id, again.attempts) == (alarm.event.id, 2)
    assert again.first_sent_ms == T0 + 100  # set once, on the first send
    [third] = lease(box, expiry + LEASE, limit=1)
    assert (third.attempts, third.first_sent_ms) == (3, T0 + 100)


def test_lease_respects_limit(box: Outbox) -> None:
    for _ in range(5):
        box.put(trouble(), T0)
    urgent = box.put(ev(Condition.FIRE), T0)
    got = lease(box, limit=2)
    assert len(got) == 2
    assert got[0].event.id == urgent.event.id
    assert len(lease(box, limit=10)) == 4


def test_release_offers_events_again_at_once(box: Outbox) -> None:
    failed = box.put(ev(), T0)
    box.put(ev(zone="door"), T0)
    assert len(lease(box, T0)) == 2
    box.release([failed.event.id, "unknown"])
    assert box.next_due_ms() == 0
    [again] = lease(box, T0 + 1)
    assert (again.event.id, again.attempts) == (failed.event.id, 2)


def test_reset_leases_makes_events_and_media_due_again(box: Outbox) -> None:
    alarm = box.put(ev(), T0)
    box.media.put(alarm.event.id, "m1", "still", "image/jpeg", b"jpeg", alarm.priority, T0)
    assert len(lease(box, T0)) == 1
    assert box.media.lease(T0, LEASE) is not None
    assert lease(box, T0 + 1) == []
    assert box.media.lease(T0 + 1, LEASE) is None
    box.reset_leases()
    assert box.next_due_ms() == 0
    assert ids(lease(box, T0 + 1)) == ids([alarm])
    again = box.media.lease(T0 + 1, LEASE)
    assert again is not None and again.id == "m1"


def test_ack_deletes_and_counts(box: Outbox) -> None:
    events = [box.put(ev(zone=f"z{n}"), T0) for n in range(4)]
    assert box.ack([events[0].event.id, events[2].event.id]) == 2
    assert box.depth() == 2
    assert ids(lease(box)) == ids([events[1], events[3]])


def test_ack_ignores_unknown_and_repeated_ids(box: Outbox) -> None:
    event = box.put(ev(), T0).event
    assert box.ack(["unknown-1", event.id, "unknown-2"]) == 1
    assert box.ack((event.id,)) == 0
    assert box.ack(["unknown-3"]) == 0
    assert box.ack([]) == 0
    assert box.depth() == 0


def test_acked_event_is_gone_for_good(open_box: Callable[..., Outbox]) -> None:
    box = open_box()
    stored = box.put(ev(), T0)
    lease(box, T0)
    box.ack([stored.event.id])
    box.close()
    box = open_box()
    box.reset_leases()
    assert lease(box, T0 + 10**9) == []
    assert box.next_due_ms() is None


def test_empty_outbox(box: Outbox) -> None:
    assert lease(box) == []
    assert box.next_due_ms() is None
    assert (box.depth(), box.oldest_ms(), box.oldest_alarm_ms()) == (0, None, None)
    assert box.media.lease(T0, LEASE) is None
    assert box.media.figures() == (0, 0)
    assert box.dead_letters() == []


def test_oldest_alarm_ms_counts_alarms_restores_and_tamper_only(box: Outbox, motion: None) -> None:
    box.put(trouble(), T0)
    box.put(ev(Condition.OPEN_CLOSE, zone="armed"), T0 + 1)
    box.put(ev(motion=True, zone="cam"), T0 + 2)
    assert box.oldest_alarm_ms() is None
    assert box.oldest_ms() == T0
    tamper = box.put(ev(Condition.SENSOR_TAMPER), T0 + 3)
    box.put(ev(Condition.FIRE, restore=True), T0 + 4)
    assert box.oldest_alarm_ms() == T0 + 3
    box.ack([tamper.event.id])
    assert box.oldest_alarm_ms() == T0 + 4


# --- capacity -------------------------------------------------------------------


def test_full_outbox_evicts_the_oldest_motion_events_and_their_media(
    open_box: Callable[..., Outbox], motion: None
) -> None:
    box = open_box(Limits(max_events=5))
    cams = [box.put(ev(motion=True, zone="cam"), T0 + n) for n in range(3)]
    alarms = [box.put(ev(zone=f"z{n}"), T0 + 10) for n in range(2)]
    for n, cam in enumerate(cams):
        box.media.put(cam.event.id, f"m{n}", "still", "image/jpeg", b"jpeg", MOTION, T0)
    new = [ev(zone="z8"), ev(zone="z9")]
    result = box.put_many([(e, T0 + 20) for e in new])
    assert result.evicted_events == 2
    assert box.depth() == 5
    assert box.counter("evicted_events") == 2
    expected = {cams[2].event.id, *ids(alarms), *(e.id for e in new)}
    assert {s.event.id for s in lease(box)} == expected
    assert box.media.figures() == (1, 4)
    assert [p.name for p in box.media.folder.iterdir()] == ["m2.jpg"]


def test_alarms_restores_tamper_trouble_and_routine_are_never_evicted(
    open_box: Callable[..., Outbox], motion: None
) -> None:
    box = open_box(Limits(max_events=3))
    box.put(ev(motion=True, zone="cam"), T0)
    kept = [
        ev(Condition.BURGLARY),
        ev(Condition.BURGLARY, restore=True),
        ev(Condition.SENSOR_TAMPER),
        trouble(),
        ev(Condition.OPEN_CLOSE, True, "armed"),
    ]
    evicted = [box.put_many([(e, T0 + 1)]).evicted_events for e in kept]
    assert evicted == [0, 0, 1, 0, 0]  # only the motion event ever goes
    assert box.depth() == 5  # over capacity rather than lose one of these
    assert box.counter("evicted_events") == 1
    assert {s.event.id for s in lease(box)} == {e.id for e in kept}


# --- media ----------------------------------------------------------------------

CHUNK = 4
DATA = bytes(range(10))


@pytest.fixture
def shelf(open_box: Callable[..., Outbox]) -> Outbox:
    """An outbox with a 100-byte media quota and 4-byte chunks."""
    return open_box(Limits(media_quota_bytes=100, chunk_bytes=CHUNK))


def test_media_put_stores_the_file(shelf: Outbox) -> None:
    put = shelf.media.put("ev-1", "m1", "still", "image/jpeg", DATA, 2, T0)
    item = put.item
    assert put.evicted == 0
    assert item.file == shelf.media.folder / "m1.jpg"
    assert item.file.read_bytes() == DATA
    assert item.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (item.id, item.event_id, item.kind, item.content_type) == (
        "m1",
        "ev-1",
        "still",
        "image/jpeg",
    )
    assert (item.size, item.chunks, item.acked_chunks, item.priority) == (10, 3, 0, 2)
    clip = shelf.media.put("ev-1", "c1", "clip", "video/mp4", b"", 2, T0).item
    assert (clip.file.name, clip.chunks) == ("c1.mp4", 1)
    assert sorted(p.name for p in shelf.media.folder.iterdir()) == ["c1.mp4", "m1.jpg"]
    assert shelf.media.figures() == (2, 10)


def test_media_put_of_a_queued_id_keeps_the_queued_file(shelf: Outbox) -> None:
    item = shelf.media.put("ev-1", "m1", "still", "image/jpeg", DATA, 2, T0).item
    with pytest.raises(StorageError):
        shelf.media.put("ev-1", "m1", "still", "image/jpeg", b"other", 2, T0)
    assert item.file.read_bytes() == DATA
    assert shelf.media.figures() == (1, 10)


def test_chunk_returns_the_byte_ranges(shelf: Outbox) -> None:
    item = shelf.media.put("ev-1", "m1", "clip", "video/mp4", DATA, 2, T0).item
    assert [shelf.media.chunk(item, i) for i in range(4)] == [DATA[:4], DATA[4:8], DATA[8:], b""]
    item.file.unlink()
    with pytest.raises(StorageError):
        shelf.media.chunk(item, 0)


def test_media_waits_until_its_event_was_sent_once(shelf: Outbox) -> None:
    alarm = shelf.put(ev(), T0)
    shelf.media.put(alarm.event.id, "m1", "still", "image/jpeg", DATA, alarm.priority, T0)
    shelf.media.put("ev-acked", "m2", "still", "image/jpeg", DATA, 2, T0 + 1)  # event gone
    first = shelf.media.lease(T0, LEASE)
    assert first is not None and first.id == "m2"
    assert shelf.media.lease(T0, LEASE) is None  # m1 waits for its event
    lease(shelf, T0)
    second = shelf.media.lease(T0, LEASE)
    assert second is not None and second.id == "m1"


def test_media_lease_and_hold(shelf: Outbox) -> None:
    shelf.media.put("ev-acked", "m1", "still", "image/jpeg", DATA, 2, T0)
    assert shelf.next_due_ms() == 0
    assert shelf.media.lease(T0, 1_000) is not None
    assert shelf.media.lease(T0 + 999, 1_000) is None
    assert shelf.next_due_ms() == T0 + 1_000
    shelf.media.hold("m1", T0 + 5_000)  # all chunks out: wait for the station
    assert shelf.media.lease(T0 + 4_999, 1_000) is None
    assert shelf.next_due_ms() == T0 + 5_000
    again = shelf.media.lease(T0 + 5_000, 1_000)
    assert again is not None and again.id == "m1"


def test_media_progress_persists_and_completes(open_box: Callable[..., Outbox]) -> None:
    limits = Limits(chunk_bytes=CHUNK)
    box = open_box(limits)
    item = box.media.put("ev-acked", "m1", "clip", "video/mp4", DATA, 2, T0).item
    assert box.media.progress("m1", 2, complete=False) is True
    box.close()

    box = open_box(limits)
    again = box.media.lease(T0, LEASE)
    assert again is not None and (again.acked_chunks, again.chunks) == (2, 3)
    assert box.media.progress("m1", 3, complete=True) is True
    assert not item.file.exists()
    assert box.media.figures() == (0, 0)
    assert box.media.lease(T0 + 10**9, LEASE) is None
    assert box.media.progress("m1", 3, complete=True) is False
    assert box.media.progress("unknown", 1, complete=False) is False


def _names(box: Outbox) -> set[str]:
    return {p.stem for p in box.media.folder.iterdir()}


def test_media_quota_evicts_motion_then_clips_then_stills(shelf: Outbox) -> None:
    def put(media_id: str, kind: str, prio: int, at_ms: int, size: int = 20) -> int:
        ctype = "video/mp4" if kind == "clip" else "image/jpeg"
        return shelf.media.put("ev-x", media_id, kind, ctype, bytes(size), prio, at_ms).evicted

    assert put("still-old", "still", 2, T0) == 0
    assert put("clip-old", "clip", 2, T0 + 1) == 0
    assert put("motion-old", "still", MOTION, T0 + 2) == 0
    assert put("still-new", "still", 0, T0 + 3) == 0
    assert put("motion-new", "clip", MOTION, T0 + 4) == 0  # exactly at the quota
    gone = []
    for n in range(4):
        before = _names(shelf)
        assert put(f"x{n}", "still", 0, T0 + 10 + n) == 1
        gone += sorted(before - _names(shelf))
    assert gone == ["motion-old", "motion-new", "clip-old", "still-old"]
    assert put("big", "still", 0, T0 + 20, size=40) == 2  # the two oldest stills
    assert _names(shelf) == {"x1", "x2", "x3", "big"}
    assert shelf.media.figures() == (4, 100)
    assert shelf.counter("evicted_media") == 6
    # the alarms' media evicted leave a notice for the station; motion-only ones do not
    lost = shelf.media.lost()
    assert sorted(m for m, _e, _why in lost) == ["clip-old", "still-new", "still-old", "x0"]
    assert all("quota" in why for _m, _e, why in lost)


def test_media_larger_than_the_quota_is_refused(shelf: Outbox) -> None:
    shelf.media.put("ev-1", "kept", "still", "image/jpeg", bytes(50), 2, T0)
    with pytest.raises(StorageError):
        shelf.media.put("ev-1", "huge", "clip", "video/mp4", bytes(101), 2, T0)
    assert _names(shelf) == {"kept"}
    assert shelf.media.figures() == (1, 50)
    assert shelf.counter("evicted_media") == 0


def test_open_drops_half_written_orphaned_and_missing_media(
    open_box: Callable[..., Outbox],
) -> None:
    box = open_box()
    kept = box.media.put("ev-1", "kept", "still", "image/jpeg", DATA, 2, T0).item
    lost = box.media.put("ev-1", "lost", "still", "image/jpeg", DATA, 2, T0).item
    box.close()
    lost.file.unlink()
    folder = kept.file.parent
    (folder / "half.jpg.part").write_bytes(b"x")
    (folder / "stray.jpg").write_bytes(b"x")

    box = open_box()
    assert sorted(p.name for p in folder.iterdir()) == ["kept.jpg"]
    assert box.media.figures() == (1, len(DATA))
    item = box.media.lease(T0, LEASE)
    assert item is not None and item.id == "kept"


# --- dead letters ---------------------------------------------------------------


def test_dead_letter_moves_an_event_out_for_good(box: Outbox, path: Path) -> None:
    kept = box.put(ev(), T0)
    refused = box.put(ev(zone="door"), T0)
    assert box.dead_letter(refused.event.id, "payload too large", 0x95, T0 + 9) is True
    assert ids(lease(box)) == ids([kept])
    assert box.dead_letters() == [(refused.event.id, "event", "payload too large", 0x95)]
    assert box.counter("dead_letters") == 1
    with sqlite3.connect(path) as db:
        [(body,)] = db.execute("SELECT body FROM dead_letters").fetchall()
    assert json.loads(body)["id"] == refused.event.id
    assert box.dead_letter("unknown", "x", None, T0) is False
    assert box.dead_letter(refused.event.id, "again", None, T0) is False
    assert box.counter("dead_letters") == 1


def test_media_dead_letter_moves_media_out_for_good(box: Outbox) -> None:
    item = box.media.put("ev-1", "m1", "clip", "video/mp4", DATA, 2, T0).item
    assert box.media.dead_letter("m1", "quota exceeded", 0x97, T0 + 1) is True
    assert not item.file.exists()
    assert box.media.figures() == (0, 0)
    assert box.dead_letters() == [("m1", "media", "quota exceeded", 0x97)]
    assert box.media.dead_letter("unknown", "x", None, T0) is False
    assert box.counter("dead_letters") == 1


def test_a_refused_event_takes_its_media_to_the_dead_letters(box: Outbox) -> None:
    """The station would get stills and a clip for an event it never received."""
    refused = box.put(ev(), T0)
    kept = box.put(ev(zone="door"), T0)
    still = box.media.put(refused.event.id, "s1", "still", "image/jpeg", DATA, 2, T0).item
    clip = box.media.put(refused.event.id, "c1", "clip", "video/mp4", DATA, 2, T0).item
    other = box.media.put(kept.event.id, "c2", "clip", "video/mp4", DATA, 2, T0).item
    assert box.dead_letter(refused.event.id, "not authorised", 0x87, T0 + 1)
    assert not still.file.exists() and not clip.file.exists() and other.file.exists()
    assert box.media.figures() == (1, len(DATA))
    assert sorted(box.dead_letters()) == sorted(
        [
            (refused.event.id, "event", "not authorised", 0x87),
            ("s1", "media", "its event was refused: not authorised", 0x87),
            ("c1", "media", "its event was refused: not authorised", 0x87),
        ]
    )
    assert box.counter("dead_letters") == 3


def test_the_media_folder_keeps_what_is_not_ours(
    open_box: Callable[..., Outbox], path: Path
) -> None:
    """A folder (or link) someone made in the media folder neither stops the start nor goes."""
    box = open_box()
    box.media.put("ev-1", "m1", "clip", "video/mp4", DATA, 2, T0)
    box.close()
    folder = box.media.folder
    (folder / "kept-by-hand").mkdir()
    (folder / "x.part").mkdir()
    (folder / "stray.jpg").write_bytes(b"never indexed")
    (folder / "half.mp4.part").write_bytes(b"half written")
    again = open_box()
    assert again.media.figures() == (1, len(DATA))
    assert sorted(p.name for p in folder.iterdir()) == ["kept-by-hand", "m1.mp4", "x.part"]


def test_a_locked_outbox_is_not_taken_for_corrupt(box: Outbox, path: Path) -> None:
    """Only SQLite's own 'corrupt' or 'not a database' moves a database aside: a lock
    held by another process stops the start, and the queued events stay where they are."""
    queued = box.put(ev(), T0)
    box.close()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE meta SET value = value WHERE key = 'seq'")
    try:
        with pytest.raises(StorageError, match="cannot be checked"):
            Outbox(path, busy_s=0.05).open(T0)
    finally:
        holder.rollback()
        holder.close()
    assert not list(path.parent.glob("*.corrupt-*"))
    again = Outbox(path)
    again.open(T0)
    try:
        assert ids(lease(again)) == [queued.event.id]
    finally:
        again.close()


# --- durability and errors ------------------------------------------------------


def test_wal_and_synchronous_full(box: Outbox, path: Path) -> None:
    db = box._db  # the pragmas are per connection: check the outbox's own
    assert db is not None
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as other:  # WAL is a property of the file
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from edge import codes
    from edge.codes import Condition
    from edge.model import Event
    from edge.outbox.store import Outbox

    path, event_id, how = sys.argv[1], sys.argv[2], sys.argv[3]
    box = Outbox(Path(path))
    box.open(1795875790000)
    box.put(
        Event(
            id=event_id,
            kind=codes.kind(Condition.FIRE, False),
            condition=Condition.FIRE,
            codes=codes.codes(Condition.FIRE, False),
            occurred_at_ms=1795875790000,
            partition=1,
            armed=None,
        ),
        1795875790000,
    )
    sys.stdout.write("stored\\n")
    sys.stdout.flush()
    if how == "exit":
        os._exit(0)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_event_survives_process_death(
    path: Path, open_box: Callable[..., Outbox], how: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "ev-crash", how],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.stdout == "stored\n", done.stderr
    assert done.returncode == (0 if how == "exit" else -9), done.stderr

    box = open_box()
    assert box.moved_aside is None
    [stored] = lease(box)
    assert (stored.event.id, stored.event.condition, stored.seq) == ("ev-crash", C.FIRE, 1)
    assert box.put(ev(), T0).seq == 2


def test_parent_that_is_a_file_raises_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        Outbox(blocker / "sub" / "outbox.sqlite").open(T0)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux procfs")
@pytest.mark.parametrize("where", ["/proc/outbox.sqlite", "/proc/edge-outbox-test/outbox.sqlite"])
def test_unwritable_filesystem_raises_storage_error(where: str) -> None:
    # procfs refuses new files even to root: SQLite cannot create the database.
    with pytest.raises(StorageError) as info:
        Outbox(Path(where)).open(T0)
    assert where in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_raises_storage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageError):
            Outbox(locked / "outbox.sqlite").open(T0)
    finally:
        locked.chmod(0o700)


def test_path_that_is_a_directory_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "outbox.sqlite").mkdir()
    with pytest.raises(StorageError) as info:
        Outbox(tmp_path / "outbox.sqlite").open(T0)
    assert str(tmp_path / "outbox.sqlite") in str(info.value)
    assert (tmp_path / "outbox.sqlite").is_dir()  # not mistaken for a corrupt file


@pytest.mark.parametrize("closed", [False, True])
def test_use_before_open_or_after_close_raises_storage_error(path: Path, closed: bool) -> None:
    box = Outbox(path)
    if closed:
        box.open(T0)
        box.close()
    calls: list[Callable[[], Any]] = [
        lambda: box.put(ev(), T0),
        lambda: lease(box),
        lambda: box.ack(["x"]),
        lambda: box.next_due_ms(),
        lambda: box.depth(),
        lambda: box.media.put("e", "m", "still", "image/jpeg", b"x", 2, T0),
        lambda: box.media.lease(T0, LEASE),
    ]
    for call in calls:
        with pytest.raises(StorageError):
            call()


# --- recovery from corruption ---------------------------------------------------


def test_random_bytes_are_moved_aside_and_a_fresh_outbox_opens(
    open_box: Callable[..., Outbox], path: Path
) -> None:
    junk = _junk(path)
    Path(f"{path}-wal").write_bytes(b"wal junk")
    Path(f"{path}-shm").write_bytes(b"shm junk")

    box = open_box(now_ms=T0)
    aside = path.with_name(f"outbox.sqlite.corrupt-{T0}")
    assert box.moved_aside == aside
    assert "not a database" in box.corruption
    assert aside.read_bytes() == junk
    assert Path(f"{aside}-wal").read_bytes() == b"wal junk"
    assert Path(f"{aside}-shm").exists()  # (SQLite rebuilds its index of the WAL)
    assert box.depth() == 0
    assert box.put(ev(), T0 + 5).seq == T0 + 1  # above any seq the old file can have used


def test_garbage_pages_behind_a_valid_header_are_moved_aside(
    open_box: Callable[..., Outbox], path: Path
) -> None:
    first = open_box()
    for _ in range(50):
        first.put(ev(), T0)
    first.close()
    data = bytearray(path.read_bytes())
    assert data.startswith(b"SQLite format 3\x00")
    data[100:] = random.Random(11).randbytes(len(data) - 100)
    path.write_bytes(bytes(data))
    for leftover in path.parent.glob("outbox.sqlite-*"):
        leftover.unlink()

    box = open_box(now_ms=T0 + 7)
    assert box.moved_aside == path.with_name(f"outbox.sqlite.corrupt-{T0 + 7}")
    assert box.moved_aside.read_bytes() == bytes(data)
    assert box.corruption
    assert box.depth() == 0
    stored = box.put(ev(), T0)
    assert stored.seq == T0 + 8
    assert ids(lease(box)) == ids([stored])


def test_sound_database_is_not_moved_aside(open_box: Callable[..., Outbox], path: Path) -> None:
    first = open_box()
    first.put(ev(), T0)
    first.close()
    box = open_box(now_ms=T0 + 5)
    assert (box.moved_aside, box.corruption) == (None, "")
    assert (box.depth(), box.put(ev(), T0).seq) == (1, 2)
    assert list(path.parent.glob("*.corrupt-*")) == []


# --- async face -----------------------------------------------------------------

OUTBOX_CALLS = (
    *("open", "close", "put_many", "lease", "release", "reset_leases", "next_due_ms"),
    *("ack", "oldest_alarm_ms", "dead_letter", "depth", "oldest_ms"),
)
MEDIA_CALLS = ("put", "lease", "hold", "progress", "chunk", "dead_letter", "figures")


class Recording(Outbox):
    """Records the thread of every blocking call and the size of every commit."""

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        super().__init__(path, limits)
        self.threads: set[str] = set()
        self.batches: list[int] = []
        self.entered = threading.Event()  # a commit started
        self.gate = threading.Event()  # commits may go on
        self.gate.set()
        for owner, names in ((self, OUTBOX_CALLS), (self.media, MEDIA_CALLS)):
            for name in names:
                setattr(owner, name, self._recorded(getattr(owner, name)))

    def _recorded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.threads.add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return call

    def put_many(self, items: list[tuple[Event, int]], *args: Any, **kwargs: Any) -> PutResult:
        self.entered.set()
        assert self.gate.wait(5)
        self.batches.append(len(items))
        return super().put_many(items, *args, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 / 1000)


@pytest.fixture
async def abox(path: Path, clock: FakeClock) -> AsyncIterator[AsyncOutbox]:
    box = AsyncOutbox(Recording(path), clock)
    await box.open()
    yield box
    await box.close()


def _store(box: AsyncOutbox) -> Recording:
    assert isinstance(box.outbox, Recording)
    return box.outbox


async def until(box: AsyncOutbox, check: Callable[[], bool]) -> None:
    """Round trips through the outbox thread (callbacks run between them) until ``check()``;
    figures refreshed under a stream of commits may lag by FIGURES_PERIOD_S."""
    for _ in range(200):
        if check():
            return
        await box.next_due_ms()
        await asyncio.sleep(0.005)
    pytest.fail("the outbox never got there")


async def test_every_call_runs_on_one_outbox_thread(abox: AsyncOutbox) -> None:
    alarm = await abox.put(ev(), T0)
    other = await abox.put(trouble(), T0 + 5)
    assert ids(await abox.lease(T0 + 10, LIVE, LEASE, 10)) == ids([alarm, other])
    await abox.release([other.event.id])
    assert await abox.next_due_ms() == 0
    await abox.reset_leases()
    assert await abox.oldest_alarm_ms() == T0
    item = await abox.put_media(alarm.event, "m1", "still", "image/jpeg", b"jpeg")
    assert await abox.lease_media(T0 + 10, LEASE) == item
    assert await abox.media_chunk(item, 0) == b"jpeg"
    await abox.hold_media("m1", T0 + 99)
    assert await abox.media_progress("m1", 1, complete=True) is True
    assert await abox.ack([alarm.event.id, "unknown"]) == 1
    await abox.dead_letter(other.event.id, "refused", 0x80)
    await abox.close()

    threads = _store(abox).threads
    assert len(threads) == 1, threads
    [name] = threads
    assert name.startswith("outbox")
    assert name != threading.current_thread().name


async def test_group_commit_stores_concurrent_events_in_few_transactions(
    abox: AsyncOutbox,
) -> None:
    events = [ev(zone=f"z{n}") for n in range(50)]
    stored = await asyncio.gather(*(abox.put(e, T0 + n) for n, e in enumerate(events)))
    assert all(isinstance(s, StoredEvent) for s in stored)
    assert [s.event for s in stored] == events
    assert [s.seq for s in stored] == list(range(1, 51))  # in the order they were put
    batches = _store(abox).batches
    assert sum(batches) == 50
    assert len(batches) <= 5, batches
    await until(abox, lambda: abox.depth == 50)


async def test_a_lone_put_is_committed_at_once(abox: AsyncOutbox) -> None:
    for n in range(3):
        assert (await abox.put(ev(), T0)).seq == n + 1
    assert _store(abox).batches == [1, 1, 1]


@pytest.mark.parametrize("bad", ["duplicate", "unencodable"])
async def test_an_event_that_cannot_be_stored_fails_alone(abox: AsyncOutbox, bad: str) -> None:
    store = _store(abox)
    first = ev()
    store.gate.clear()
    put_first = asyncio.create_task(abox.put(first, T0))
    assert await asyncio.to_thread(store.entered.wait, 5)  # the worker is in that commit
    broken = first if bad == "duplicate" else dataclasses.replace(ev(), occurred_at_ms=10**17)
    good = [ev(zone="a"), ev(zone="b")]
    group = asyncio.gather(
        abox.put(broken, T0), *(abox.put(e, T0) for e in good), return_exceptions=True
    )
    await asyncio.sleep(0)  # all three are waiting for the next commit
    store.gate.set()
    assert (await put_first).seq == 1
    results = await asyncio.wait_for(group, 5)
    assert isinstance(results[0], StorageError if bad == "duplicate" else ValueError)
    assert [r.event for r in results[1:] if isinstance(r, StoredEvent)] == good
    assert store.batches[:2] == [1, 3]  # they were committed as one group first
    assert await abox.ack([first.id, *(e.id for e in good)]) == 3


async def test_observers_hear_each_fact_after_it_happened(abox: AsyncOutbox, path: Path) -> None:
    """Queued after the commit (the rows are there), sent at the lease, acknowledged at the
    ack, media queued after its file; an observer that fails is logged, not the caller's."""
    seen: list[tuple[str, int]] = []

    def rows(fact: OutboxFact) -> None:
        with sqlite3.connect(path) as db:
            seen.append(
                (type(fact).__name__, db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            )

    def broken(fact: OutboxFact) -> None:
        raise RuntimeError("an observer with a bug")

    abox.observers += [broken, rows]
    alarm = ev()
    await abox.put(alarm, T0)
    await until(abox, lambda: seen == [("EventsQueued", 1)])
    await abox.put_media(alarm, "m1", "still", "image/jpeg", b"jpeg")
    leased = await abox.lease(T0, T0, 20_000, 10)
    assert [s.event.id for s in leased] == [alarm.id]
    await abox.ack([alarm.id])
    assert [name for name, _rows in seen] == [
        "EventsQueued",
        "MediaQueued",
        "EventsSent",
        "EventsAcknowledged",
    ]
    assert seen[-1] == ("EventsAcknowledged", 0)  # told once the row is gone


async def test_figures_follow_puts_acks_and_media(abox: AsyncOutbox) -> None:
    assert (abox.depth, abox.oldest_ms, abox.media_count, abox.media_bytes) == (0, None, 0, 0)
    alarm = await abox.put(ev(), T0)
    await abox.put(ev(zone="door"), T0 + 7)
    await until(abox, lambda: abox.depth == 2)
    assert abox.oldest_ms == T0
    await abox.put_media(alarm.event, "m1", "still", "image/jpeg", b"12345")
    assert (abox.media_count, abox.media_bytes) == (1, 5)
    await abox.ack([alarm.event.id])
    await until(abox, lambda: (abox.depth, abox.oldest_ms) == (1, T0 + 7))
    await abox.media_progress("m1", 1, complete=True)
    assert (abox.media_count, abox.media_bytes) == (0, 0)


async def test_a_commit_during_a_refresh_is_not_missed(abox: AsyncOutbox) -> None:
    store = _store(abox)
    reading, go_on = threading.Event(), threading.Event()
    depth = store.depth

    def slow_depth() -> int:
        reading.set()
        assert go_on.wait(5)
        return depth()

    store.depth = slow_depth  # type: ignore[method-assign]
    await abox.put(ev(), T0)  # starts a refresh of the figures...
    assert await asyncio.to_thread(reading.wait, 5)  # ...which is now reading
    second = asyncio.create_task(abox.put(ev(zone="door"), T0))
    await asyncio.sleep(0)  # queued behind that read
    go_on.set()
    assert abox._pool is not None
    abox._pool.submit(lambda: None).result(5)  # both done before the loop hears of either
    await second
    await until(abox, lambda: abox.depth == 2)


async def test_async_outbox_opens_with_the_existing_queue(
    open_box: Callable[..., Outbox], path: Path, clock: FakeClock
) -> None:
    sync = open_box()
    sync.put(ev(), T0)
    sync.put(trouble(), T0 + 1)
    sync.media.put("ev-1", "m1", "still", "image/jpeg", DATA, 2, T0)
    sync.close()

    box = AsyncOutbox(Outbox(path), clock)
    await box.open()
    try:
        assert (box.depth, box.oldest_ms, box.media_count, box.media_bytes) == (2, T0, 1, 10)
        assert (await box.put(ev(), T0 + 2)).seq == 3  # no trouble: the database was sound
    finally:
        await box.close()


def _trouble_events(items: Sequence[StoredEvent], condition: Condition) -> list[Event]:
    return [s.event for s in items if s.event.condition is condition]


def _junk(path: Path) -> bytes:
    """Fill ``path`` with random bytes: no SQLite header at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    junk = random.Random(7).randbytes(16_384)
    path.write_bytes(junk)
    return junk


async def test_corrupt_database_is_replaced_and_reported(path: Path, clock: FakeClock) -> None:
    _junk(path)
    box = AsyncOutbox(Outbox(path), clock)
    await box.open()
    try:
        assert box.outbox.moved_aside == path.with_name(f"outbox.sqlite.corrupt-{T0}")
        assert box.depth == 1
        [stored] = await box.lease(T0, LIVE, LEASE, 10)
        event = stored.event
        assert (event.condition, event.kind, event.codes.cid) == (
            C.SYSTEM_TROUBLE,
            Kind.TROUBLE,
            "1300",
        )
        assert "corrupt" in event.text and f"corrupt-{T0}" in event.text
        assert (stored.seq, stored.priority, event.occurred_at_ms) == (T0 + 1, 10, T0)
    finally:
        await box.close()


async def test_evicting_motion_events_queues_one_354_trouble(
    path: Path, clock: FakeClock, motion: None
) -> None:
    stored = 0

    def count(fact: OutboxFact) -> None:
        nonlocal stored
        if isinstance(fact, EventsQueued):
            stored += len(fact.events)

    box = AsyncOutbox(Outbox(path, Limits(max_events=3)), clock, observers=[count])
    await box.open()
    try:
        for n in range(3):
            await box.put(ev(motion=True, zone="cam"), T0 + n)
        alarm = await box.put(ev(), T0 + 10)
        await until(box, lambda: stored >= 5)  # three motion events, the alarm, the trouble
        for _ in range(5):  # room for a trouble about the trouble, which must not come
            await box.next_due_ms()
    finally:
        await box.close()

    sync = Outbox(path)
    sync.open(T0)
    try:
        assert sync.counter("evicted_events") == 1
        got = lease(sync)
        [report] = _trouble_events(got, C.COMM_FAILED_EVENT)
        assert (report.kind, report.codes.cid) == (Kind.TROUBLE, "1354")
        assert "evicted" in report.text
        assert alarm.event.id in ids(got)
        assert sync.depth() == 4  # two motion events, the alarm and the trouble
    finally:
        sync.close()


async def test_media_eviction_queues_a_354_trouble(path: Path, clock: FakeClock) -> None:
    box = AsyncOutbox(Outbox(path, Limits(media_quota_bytes=10)), clock)
    await box.open()
    try:
        alarm = await box.put(ev(), T0)
        await box.put_media(alarm.event, "m1", "still", "image/jpeg", bytes(6))
        await box.put_media(alarm.event, "m2", "still", "image/jpeg", bytes(6))
        assert (box.media_count, box.media_bytes, box.depth) == (1, 6, 2)
        [report] = _trouble_events(await box.lease(T0, LIVE, LEASE, 10), C.COMM_FAILED_EVENT)
        assert report.codes.cid == "1354"
        assert "1 older" in report.text
    finally:
        await box.close()


async def test_dead_letters_queue_a_354_trouble(abox: AsyncOutbox) -> None:
    refused = await abox.put(ev(), T0)
    await abox.dead_letter(refused.event.id, "not authorized", 0x87)
    assert abox.depth == 1  # the trouble replaced the event
    [report] = _trouble_events(await abox.lease(T0, LIVE, LEASE, 10), C.COMM_FAILED_EVENT)
    assert report.codes.cid == "1354"
    assert refused.event.id in report.text

    await abox.dead_letter("unknown", "x", None)
    await abox.dead_letter_media("unknown", "x", None)
    assert await abox.lease(T0, LIVE, LEASE, 10) == []  # nothing to report, nothing queued

    await abox.put_media(report, "m1", "clip", "video/mp4", DATA)
    await abox.dead_letter_media("m1", "too large", 0x95)
    assert (abox.depth, abox.media_count) == (2, 0)
    [media_report] = _trouble_events(await abox.lease(T0, LIVE, LEASE, 10), C.COMM_FAILED_EVENT)
    assert "m1" in media_report.text


async def test_async_outbox_refuses_calls_when_not_open(path: Path, clock: FakeClock) -> None:
    box = AsyncOutbox(Outbox(path), clock)
    with pytest.raises(StorageError):
        await box.put(ev(), T0)
    with pytest.raises(StorageError):
        await box.lease(T0, LIVE, LEASE, 1)
    await box.open()
    await box.close()
    await box.close()  # idempotent
    with pytest.raises(StorageError):
        await box.put(ev(), T0)
    with pytest.raises(StorageError):
        await box.next_due_ms()

    await box.open()  # the refused puts left nothing behind that blocks new ones
    try:
        assert (await asyncio.wait_for(box.put(ev(), T0), 5)).seq == 1
    finally:
        await box.close()


async def test_async_outbox_open_failure_is_a_storage_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    box = AsyncOutbox(Outbox(blocker / "outbox.sqlite"), clock)
    with pytest.raises(StorageError):
        await box.open()
    await box.close()


# --- each zone's last event, for resuming after a restart ---------------------------


def test_zone_kinds_remember_the_last_event_of_each_zone_after_ack_and_reopen(
    open_box: Callable[..., Outbox],
) -> None:
    box = open_box()
    alarm = box.put(ev(Condition.FIRE, zone="fire"), T0)
    box.put(ev(Condition.BURGLARY, zone="hall"), T0)
    box.put(ev(Condition.BURGLARY, restore=True, zone="hall"), T0)
    box.put(trouble(), T0)  # no zone: not remembered
    box.ack([alarm.event.id])  # acknowledged and deleted: still remembered
    box.close()
    again = open_box()
    assert again.zone_kinds() == {"fire": Kind.ALARM, "hall": Kind.RESTORE}
