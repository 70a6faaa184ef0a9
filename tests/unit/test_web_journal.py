"""The event journal: in memory, in its SQLite file across restarts, and when the file fails."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from edge.codes import Condition, ZoneType
from edge.model import StoredEvent, ZoneRef, box_event
from edge.web import journal as journal_mod
from edge.web.journal import Filter, Journal
from edge.web.journal_store import DAY_MS

T0 = 1_764_300_000_000  # 2025-11-28, the journal's "now" in these tests
DOOR = ZoneRef("front-door", "Front door", ZoneType.INTRUSION, 1)


def stored(seq: int, condition: Condition = Condition.MANUAL_TEST, at_ms: int = T0) -> StoredEvent:
    event = box_event(condition, False, f"event {seq}", at_ms + seq)
    if condition is Condition.BURGLARY:
        event = replace(event, zone=DOOR)
    return StoredEvent(event=event, seq=seq, priority=1, attempts=0, first_sent_ms=None)


def seqs(page: dict[str, object]) -> list[object]:
    return [e["seq"] for e in page["events"]]  # type: ignore[attr-defined]


async def opened(path: Path, **kw: int) -> Journal:
    journal = Journal(**kw)
    await journal.open(path, T0)
    return journal


def note_story(journal: Journal) -> tuple[StoredEvent, StoredEvent]:
    a, b = stored(1), stored(2, Condition.COMM_TROUBLE)
    journal.queued(a, T0 + 1000)
    journal.queued(b, T0 + 1001)
    journal.sent([a, b], T0 + 2000)
    journal.sent([b], T0 + 3000)  # b resent
    journal.acked([a.event.id, "unknown-id"], T0 + 4000)
    return a, b


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "file"])
async def test_journal_follows_each_event_to_its_acknowledgement(
    tmp_path: Path, durable: bool
) -> None:
    journal = await opened(tmp_path / "journal.sqlite") if durable else Journal()
    _a, b = note_story(journal)
    page = await journal.query()
    rows = page["events"]
    assert seqs(page) == [2, 1]  # newest first
    assert rows[1]["state"] == "acked" and rows[1]["acked_at"] == "2025-11-28T03:20:04.000Z"
    assert rows[0]["state"] == "sent" and rows[0]["attempts"] == 2
    assert rows[0]["sent_at"] == "2025-11-28T03:20:03.000Z"
    assert rows[0]["queued_at"] == "2025-11-28T03:20:01.001Z"
    assert page["counts"] == {"queued": 0, "sent": 1, "acked": 1}
    assert page["next_before"] is None and page["source"] == ("file" if durable else "memory")
    assert seqs(await journal.query(Filter(state="acked"))) == [1]
    assert seqs(await journal.query(Filter(kind=b.event.kind.value))) == [2]
    assert seqs(await journal.query(Filter(zone="front-door"))) == []
    assert journal.status()["durable"] is durable
    await journal.close()


async def test_the_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await opened(path)
    _a, b = note_story(journal)
    await journal.close()
    assert journal.status()["written"] == 7  # 2 queued, 3 sent, 2 acked (one unknown)

    again = await opened(path)
    page = await again.query()
    assert seqs(page) == [2, 1]
    assert page["events"][0]["attempts"] == 2 and page["events"][1]["state"] == "acked"
    # b is sent once more and acknowledged after the restart: its count goes on
    again.sent([b], T0 + 5000)
    again.acked([b.event.id], T0 + 6000)
    page = await again.query(Filter(state="acked"))
    assert seqs(page) == [2, 1] and page["events"][0]["attempts"] == 3
    assert page["counts"] == {"queued": 0, "sent": 0, "acked": 2}
    await again.close()
    with sqlite3.connect(path) as db:  # the file itself, read by plain sqlite3
        got = db.execute("SELECT seq, attempts, acked_ms FROM journal ORDER BY n").fetchall()
    assert got == [(1, 1, T0 + 4000), (2, 3, T0 + 6000)]


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "file"])
async def test_filters_by_time_and_pages_through_everything(tmp_path: Path, durable: bool) -> None:
    journal = await opened(tmp_path / "j.sqlite") if durable else Journal(size=1000)
    for seq in range(1, 26):  # one event a minute; every third a burglary at the door
        condition = Condition.BURGLARY if seq % 3 == 0 else Condition.MANUAL_TEST
        journal.queued(stored(seq, condition, T0 + seq * 60_000 - seq), T0 + seq * 60_000)
    window = Filter(since_ms=T0 + 5 * 60_000, until_ms=T0 + 10 * 60_000)
    assert seqs(await journal.query(window)) == [9, 8, 7, 6, 5]
    door = Filter(zone="front-door", since_ms=T0 + 5 * 60_000)
    assert seqs(await journal.query(door)) == [24, 21, 18, 15, 12, 9, 6]
    seen: list[object] = []
    page = await journal.query(limit=7)
    while True:
        seen += seqs(page)
        if page["next_before"] is None:
            break
        page = await journal.query(Filter(before=page["next_before"]), limit=7)
    assert seen == list(range(25, 0, -1))  # every event once, newest first
    page = await journal.query(Filter(zone="front-door"), limit=4)
    assert seqs(page) == [24, 21, 18, 15]
    page = await journal.query(Filter(zone="front-door", before=page["next_before"]), limit=4)
    assert seqs(page) == [12, 9, 6, 3] and page["next_before"] is None
    await journal.close()


async def test_old_events_and_rows_past_the_cap_are_pruned_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await opened(path, days=2, max_rows=7, size=2)
    journal.queued(stored(1, at_ms=T0 - 3 * DAY_MS), T0 - 3 * DAY_MS)  # older than 2 days
    journal.queued(stored(2), T0 + 2)
    await journal.flush()
    for seq in range(3, 11):
        journal.queued(stored(seq), T0 + seq)
    await journal.flush()
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT seq FROM journal ORDER BY n")] == [
            4,
            5,
            6,
            7,
            8,
            9,
            10,
        ]
    await journal.close()
    # two days later the file is opened again: what is now older than 2 days goes
    later = Journal(days=2, max_rows=7, size=2)
    await later.open(path, T0 + 2 * DAY_MS + 7)
    assert seqs(await later.query()) == [10, 9, 8, 7]
    await later.close()
    # a clock set years ahead: everything is "old", but the newest (size) events stay
    ahead = Journal(days=2, max_rows=7, size=2)
    await ahead.open(path, T0 + 3000 * DAY_MS)
    assert seqs(await ahead.query()) == [10, 9]
    await ahead.close()


async def test_notes_never_wait_for_the_writer(tmp_path: Path) -> None:
    journal = await opened(tmp_path / "journal.sqlite")
    gate = threading.Event()
    assert journal._pool is not None
    stuck = journal._pool.submit(gate.wait)  # the writer thread, blocked as on a slow card
    for seq in range(1, 101):
        journal.queued(stored(seq), T0 + seq)  # on the loop: returns at once
    assert journal.status()["pending"] == 100
    gate.set()
    stuck.result(timeout=5)
    await journal.flush()
    assert journal.status()["pending"] == 0 and journal.status()["written"] == 100
    assert (await journal.query(limit=1))["counts"]["queued"] == 100
    await journal.close()


async def test_a_page_does_not_wait_long_for_a_stuck_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "READ_WAIT_S", 0.2)
    journal = await opened(tmp_path / "journal.sqlite")
    gate = threading.Event()
    assert journal._pool is not None
    journal._pool.submit(gate.wait)  # the card hangs
    journal.queued(stored(1), T0 + 1)
    page = await journal.query()
    assert seqs(page) == [1] and page["source"] == "memory"
    assert journal.status()["durable"] is True  # slow is not broken
    gate.set()
    page = await journal.query()
    assert seqs(page) == [1] and page["source"] == "file"
    await journal.close()


async def test_a_writer_stalled_too_long_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(journal_mod, "MAX_PENDING", 10)
    journal = await opened(tmp_path / "journal.sqlite")
    gate = threading.Event()
    assert journal._pool is not None
    journal._pool.submit(gate.wait)
    with caplog.at_level(logging.ERROR, "edge.web.journal"):
        for seq in range(1, 21):
            journal.queued(stored(seq), T0 + seq)
    assert journal.status()["durable"] is False
    assert "stalled: 11 changes waiting" in journal.status()["problem"]
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # said once
    gate.set()
    assert seqs(await journal.query(limit=3)) == [20, 19, 18]  # from memory
    await journal.close()


# -- when the file fails, the journal goes on in memory ----------------------------------


async def assert_memory_only(journal: Journal, words: str) -> None:
    status = journal.status()
    assert status["durable"] is False and words in status["problem"], status
    note_story(journal)  # the outbox's notes still land, and the page still answers
    page = await journal.query()
    assert seqs(page) == [2, 1] and page["counts"] == {"queued": 0, "sent": 1, "acked": 1}


def kept_aside(folder: Path) -> Path:
    """The damaged journal, moved aside (its -wal and -shm beside it, if any)."""
    candidates = folder.glob("journal.sqlite.corrupt-*")
    [aside] = [p for p in candidates if p.name[-4:] not in ("-wal", "-shm")]
    return aside


async def test_a_corrupt_file_is_kept_aside_and_the_journal_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "journal.sqlite"
    garbage = b"this is not a database, it is what a dying SD card returned\n" * 200
    path.write_bytes(garbage)
    with caplog.at_level(logging.ERROR):
        journal = await opened(path)
    aside = kept_aside(tmp_path)
    assert aside.read_bytes() == garbage  # kept for whoever looks at the card
    assert [r.getMessage() for r in caplog.records] == [
        f"event journal {path} is corrupt (file is not a database): moved aside to {aside}"
    ]
    status = journal.status()
    assert status["durable"] is True and status["problem"] is None
    assert status["started_afresh"] == f"damaged file (file is not a database) kept as {aside.name}"
    journal.queued(stored(1), T0 + 1)
    await journal.close()
    again = await opened(path)  # the new file holds what came after
    assert seqs(await again.query()) == [1] and again.status()["started_afresh"] is None
    await again.close()


async def test_damage_inside_the_file_is_found_at_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = await opened(path)
    for seq in range(1, 2001):
        journal.queued(stored(seq), T0 + seq)
    await journal.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[3 * page : 6 * page] = b"\xa5" * (3 * page)  # three pages of the table, overwritten
    path.write_bytes(bytes(data))
    again = await opened(path)
    status = again.status()
    assert status["durable"] is True
    assert "btreeInitPage" in status["started_afresh"]
    assert kept_aside(tmp_path).read_bytes() == bytes(data)
    assert seqs(await again.query()) == []  # what the damaged file held stays in it
    await again.close()


def mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], check=True)


async def test_a_read_only_state_dir_means_memory_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    if os.geteuid() == 0:  # root writes through permissions: a read-only file system
        if not mount_tmpfs(state, "ro,size=1m"):
            pytest.skip("running as root without the right to mount a read-only tmpfs")
    else:
        state.mkdir()
        state.chmod(0o555)
    try:
        journal = await opened(state / "journal.sqlite")
        await assert_memory_only(journal, "unable to open database file")
        await journal.close()
    finally:
        if os.geteuid() == 0:
            umount(state)
        else:
            state.chmod(0o755)


async def test_a_full_disk_while_running_means_memory_only(tmp_path: Path) -> None:
    """SQLITE_FULL, as a full card gives it: the file may not grow past its pages."""
    journal = await opened(tmp_path / "journal.sqlite")
    assert journal._pool is not None and journal._file is not None
    db = journal._file._db
    assert db is not None
    pages = journal._pool.submit(lambda: db.execute("PRAGMA page_count").fetchone()[0]).result()
    journal._pool.submit(lambda: db.execute(f"PRAGMA max_page_count = {pages}")).result()
    for seq in range(1, 301):
        journal.queued(stored(seq, at_ms=T0 + seq), T0 + seq)
    await journal.flush()
    status = journal.status()
    assert status["durable"] is False, status
    assert status["problem"].endswith(": database or disk is full")
    assert (await journal.query(limit=2))["counts"]["queued"] == 300  # all kept in memory
    await journal.close()


async def test_a_real_full_file_system(tmp_path: Path) -> None:
    state = tmp_path / "small"
    if not mount_tmpfs(state, "size=256k"):
        pytest.skip("no right to mount a small tmpfs (needs root); see the test above")
    journal = await opened(state / "journal.sqlite")
    try:
        fill(state / "filler")  # the card is full; the journal's file is open
        long_text = "x" * 2000
        for seq in range(1, 301):
            event = replace(stored(seq).event, text=long_text)
            journal.queued(replace(stored(seq), event=event), T0 + seq)
            if seq % 50 == 0:
                await journal.flush()
        status = journal.status()
        assert status["durable"] is False, status
        assert status["problem"].endswith(": database or disk is full")
        assert (await journal.query(limit=1))["counts"]["queued"] == 300
    finally:
        await journal.close()
        umount(state)


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
