"""The durable outbox: sequence numbers, priority order, retries, acks, crash safety."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import codes
from edge.codes import Condition, Kind, ZoneType
from edge.errors import StorageError
from edge.model import Event, StoredEvent, ZoneRef
from edge.outbox.aio import AsyncOutbox
from edge.outbox.store import Outbox

T0 = 1_795_875_790_000
REPO = Path(__file__).resolve().parents[2]

_counter = iter(range(1, 1_000_000))


def _event(
    condition: Condition = Condition.BURGLARY,
    restore: bool = False,
    zone: str | None = "hall",
    event_id: str | None = None,
) -> Event:
    ref = None if zone is None else ZoneRef(zone, zone.title(), ZoneType.INTRUSION, 1)
    return Event(
        id=event_id or f"ev-{next(_counter):06d}",
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=T0,
        partition=1,
        armed=True,
        zone=ref,
        text="t",
        extra={"k": "v"},
    )


def alarm() -> Event:
    return _event(Condition.BURGLARY)


def trouble() -> Event:
    return _event(Condition.AC_LOSS, zone=None)


def arm() -> Event:
    return _event(Condition.OPEN_CLOSE, restore=True, zone="armed")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.db"


@pytest.fixture
def box(path: Path) -> Iterator[Outbox]:
    outbox = Outbox(path)
    outbox.open()
    yield outbox
    outbox.close()


# --- sequence numbers -----------------------------------------------------------


def test_put_assigns_increasing_seq(box: Outbox) -> None:
    stored = [box.put(_event(), T0 + n) for n in range(5)]
    assert [s.seq for s in stored] == [1, 2, 3, 4, 5]
    assert box.last_seq() == 5
    assert all(s.attempts == 0 for s in stored)
    assert all(s.first_sent_ms is None for s in stored)


def test_put_returns_the_event_and_its_priority(box: Outbox) -> None:
    event = alarm()
    stored = box.put(event, T0)
    assert stored.event == event
    assert stored.priority == 0
    assert box.depth() == 1
    assert box.oldest_ms() == T0


def test_constructor_does_no_io(path: Path) -> None:
    Outbox(path)
    assert not path.parent.exists()


def test_seq_survives_close_and_reopen(path: Path) -> None:
    first = Outbox(path)
    first.open()
    first.put(_event(), T0)
    first.put(_event(), T0)
    first.close()

    second = Outbox(path)
    second.open()
    try:
        assert second.last_seq() == 2
        assert second.put(_event(), T0).seq == 3
    finally:
        second.close()


def test_seq_never_repeats_after_the_queue_empties(path: Path) -> None:
    first = Outbox(path)
    first.open()
    ids = [first.put(_event(), T0).event.id for _ in range(3)]
    assert first.ack(ids) == 3
    first.close()

    second = Outbox(path)
    second.open()
    try:
        assert second.depth() == 0
        assert second.put(_event(), T0).seq == 4
    finally:
        second.close()


def test_events_survive_reopen_unchanged(path: Path) -> None:
    events = [alarm(), trouble(), arm()]
    first = Outbox(path)
    first.open()
    for event in events:
        first.put(event, T0)
    first.close()

    second = Outbox(path)
    second.open()
    try:
        by_id = {s.event.id: s.event for s in second.due(T0)}
        assert by_id == {e.id: e for e in events}
    finally:
        second.close()


def test_duplicate_id_is_refused_and_does_not_use_a_seq(box: Outbox) -> None:
    event = alarm()
    box.put(event, T0)
    with pytest.raises(StorageError):
        box.put(event, T0)
    assert box.depth() == 1
    assert box.put(_event(), T0).seq == 2  # the failed insert rolled back its seq


# --- order ----------------------------------------------------------------------


def test_due_orders_by_priority_then_seq(box: Outbox) -> None:
    t = box.put(trouble(), T0)
    a = box.put(arm(), T0 + 1)
    al = box.put(alarm(), T0 + 2)
    due = box.due(T0 + 10)
    assert [s.event.id for s in due] == [al.event.id, t.event.id, a.event.id]
    assert [s.event.kind for s in due] == [Kind.ALARM, Kind.TROUBLE, Kind.ARM]


def test_same_priority_keeps_insertion_order(box: Outbox) -> None:
    # An alarm before its restore, whatever the ids look like.
    raised = box.put(_event(event_id="zzz"), T0)
    restored = box.put(_event(restore=True, event_id="aaa"), T0 + 1)
    tamper = box.put(_event(Condition.SENSOR_TAMPER, event_id="mmm"), T0 + 2)
    assert [s.seq for s in box.due(T0 + 10)] == [raised.seq, restored.seq, tamper.seq]


def test_priorities_by_kind(box: Outbox) -> None:
    samples = {
        Kind.ALARM: _event(Condition.FIRE),
        Kind.RESTORE: _event(Condition.FIRE, restore=True),
        Kind.TAMPER: _event(Condition.PANEL_TAMPER),
        Kind.TAMPER_RESTORE: _event(Condition.PANEL_TAMPER, restore=True),
        Kind.TROUBLE: _event(Condition.LOW_BATTERY),
        Kind.TROUBLE_RESTORE: _event(Condition.LOW_BATTERY, restore=True),
        Kind.ARM: _event(Condition.OPEN_CLOSE, restore=True),
        Kind.DISARM: _event(Condition.OPEN_CLOSE),
        Kind.TEST: _event(Condition.PERIODIC_TEST, zone=None),
    }
    prio = {kind: box.put(event, T0).priority for kind, event in samples.items()}
    assert prio[Kind.ALARM] == prio[Kind.RESTORE] == prio[Kind.TAMPER]
    assert prio[Kind.TAMPER] == prio[Kind.TAMPER_RESTORE]
    assert prio[Kind.ALARM] < prio[Kind.TROUBLE] == prio[Kind.TROUBLE_RESTORE]
    assert prio[Kind.TROUBLE] < prio[Kind.ARM] == prio[Kind.DISARM] == prio[Kind.TEST]


def test_due_respects_limit(box: Outbox) -> None:
    for _ in range(5):
        box.put(trouble(), T0)
    urgent = box.put(alarm(), T0)
    due = box.due(T0, limit=2)
    assert len(due) == 2
    assert due[0].event.id == urgent.event.id


def test_due_on_empty_outbox(box: Outbox) -> None:
    assert box.due(T0) == []
    assert box.next_due_ms() is None
    assert box.oldest_ms() is None
    assert box.depth() == 0


# --- sending and retries --------------------------------------------------------


def test_mark_sent_hides_until_retry_time(box: Outbox) -> None:
    event = box.put(alarm(), T0).event
    other = box.put(trouble(), T0).event
    assert box.next_due_ms() == 0  # new events are due at once

    box.mark_sent(event.id, now_ms=T0 + 100, retry_at_ms=T0 + 20_100)
    assert [s.event.id for s in box.due(T0 + 20_099)] == [other.id]
    [again] = [s for s in box.due(T0 + 20_100) if s.event.id == event.id]
    assert again.attempts == 1
    assert again.first_sent_ms == T0 + 100

    box.mark_sent(other.id, now_ms=T0 + 100, retry_at_ms=T0 + 50_000)
    box.mark_sent(event.id, now_ms=T0 + 20_100, retry_at_ms=T0 + 40_100)
    assert box.due(T0 + 40_099) == []
    assert box.next_due_ms() == T0 + 40_100
    [third] = box.due(T0 + 40_100)
    assert third.event.id == event.id
    assert third.attempts == 2
    assert third.first_sent_ms == T0 + 100  # set once, on the first send


def test_mark_sent_of_unknown_id_changes_nothing(box: Outbox) -> None:
    box.put(alarm(), T0)
    box.mark_sent("nope", T0, T0 + 1_000)
    [stored] = box.due(T0)
    assert stored.attempts == 0


# --- acknowledgement ------------------------------------------------------------


def test_ack_deletes_and_counts(box: Outbox) -> None:
    events = [box.put(_event(), T0).event for _ in range(4)]
    assert box.ack([events[0].id, events[2].id]) == 2
    assert box.depth() == 2
    assert {s.event.id for s in box.due(T0)} == {events[1].id, events[3].id}


def test_ack_ignores_unknown_and_repeated_ids(box: Outbox) -> None:
    event = box.put(_event(), T0).event
    assert box.ack(["unknown-1", event.id, "unknown-2"]) == 1
    assert box.ack([event.id]) == 0
    assert box.ack(["unknown-3"]) == 0
    assert box.ack([]) == 0
    assert box.depth() == 0


def test_ack_of_a_sent_event_removes_it_for_good(path: Path) -> None:
    box = Outbox(path)
    box.open()
    event = box.put(alarm(), T0).event
    box.mark_sent(event.id, T0, T0 + 1_000)
    box.ack([event.id])
    box.close()
    box = Outbox(path)
    box.open()
    try:
        assert box.due(T0 + 10**9) == []
    finally:
        box.close()


# --- durability -----------------------------------------------------------------


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
    box.open()
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
def test_event_survives_process_death(path: Path, how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "ev-crash", how],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert done.stdout == "stored\n", done.stderr
    assert done.returncode == (0 if how == "exit" else -9), done.stderr

    box = Outbox(path)
    box.open()
    try:
        [stored] = box.due(T0)
        assert stored.event.id == "ev-crash"
        assert stored.event.condition is Condition.FIRE
        assert stored.seq == 1
        assert box.put(_event(), T0).seq == 2
    finally:
        box.close()


def test_parent_that_is_a_file_raises_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    box = Outbox(blocker / "sub" / "outbox.db")
    with pytest.raises(StorageError):
        box.open()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux procfs")
@pytest.mark.parametrize("where", ["/proc/outbox.db", "/proc/edge-outbox-test/outbox.db"])
def test_unwritable_filesystem_raises_storage_error(where: str) -> None:
    # procfs refuses new files even to root: SQLite cannot create the database.
    with pytest.raises(StorageError) as info:
        Outbox(Path(where)).open()
    assert where in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_raises_storage_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageError):
            Outbox(locked / "outbox.db").open()
    finally:
        locked.chmod(0o700)


def test_path_that_is_a_directory_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "outbox.db").mkdir()
    with pytest.raises(StorageError):
        Outbox(tmp_path / "outbox.db").open()


def test_corrupt_file_raises_storage_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(random.Random(7).randbytes(16_384))
    with pytest.raises(StorageError) as info:
        Outbox(path).open()
    assert not isinstance(info.value, sqlite3.Error)
    assert str(path) in str(info.value)


def test_corrupt_pages_behind_a_valid_header_raise_storage_error(path: Path) -> None:
    # A file that starts like SQLite but whose pages are garbage.
    first = Outbox(path)
    first.open()
    for _ in range(50):
        first.put(_event(), T0)
    first.close()
    data = bytearray(path.read_bytes())
    rng = random.Random(11)
    data[100:] = rng.randbytes(len(data) - 100)
    path.write_bytes(bytes(data))
    for leftover in path.parent.glob("outbox.db-*"):
        leftover.unlink()

    box = Outbox(path)
    try:
        with pytest.raises(StorageError):
            box.open()
            box.put(_event(), T0)
            box.due(T0)
    finally:
        box.close()


def test_use_before_open_raises_storage_error(path: Path) -> None:
    box = Outbox(path)
    with pytest.raises(StorageError):
        box.put(_event(), T0)
    with pytest.raises(StorageError):
        box.due(T0)


def test_use_after_close_raises_storage_error(path: Path) -> None:
    box = Outbox(path)
    box.open()
    box.close()
    with pytest.raises(StorageError):
        box.ack(["x"])


# --- async face -----------------------------------------------------------------


class RecordingOutbox(Outbox):
    """Records which thread each blocking call runs on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: set[str] = set()

    def put(self, event: Event, now_ms: int) -> StoredEvent:
        self.threads.add(threading.current_thread().name)
        return super().put(event, now_ms)

    def due(self, now_ms: int, limit: int = 50) -> list[StoredEvent]:
        self.threads.add(threading.current_thread().name)
        return super().due(now_ms, limit)


async def test_async_outbox_round_trip(path: Path) -> None:
    store = RecordingOutbox(path)
    box = AsyncOutbox(store)
    await box.open()
    try:
        assert (box.depth, box.oldest_ms) == (0, None)
        t = await box.put(trouble(), T0)
        a = await box.put(alarm(), T0 + 5)
        assert (t.seq, a.seq) == (1, 2)
        assert (box.depth, box.oldest_ms) == (2, T0)

        due = await box.due(T0 + 10, limit=10)
        assert [s.event.id for s in due] == [a.event.id, t.event.id]

        await box.mark_sent(a.event.id, T0 + 10, T0 + 1_000)
        assert await box.next_due_ms() == 0  # the trouble is still due now
        assert [s.event.id for s in await box.due(T0 + 999, limit=10)] == [t.event.id]

        assert await box.ack([a.event.id, "unknown"]) == 1
        assert (box.depth, box.oldest_ms) == (1, T0)
        assert await box.ack([t.event.id]) == 1
        assert (box.depth, box.oldest_ms) == (0, None)
    finally:
        await box.close()

    assert len(store.threads) == 1
    assert store.threads != {threading.current_thread().name}
    assert next(iter(store.threads)).startswith("outbox")


async def test_async_outbox_reopens_with_existing_depth(path: Path) -> None:
    sync = Outbox(path)
    sync.open()
    sync.put(alarm(), T0)
    sync.put(trouble(), T0 + 1)
    sync.close()

    box = AsyncOutbox(Outbox(path))
    await box.open()
    try:
        assert (box.depth, box.oldest_ms) == (2, T0)
        assert (await box.put(arm(), T0 + 2)).seq == 3
    finally:
        await box.close()


async def test_async_outbox_refuses_calls_when_closed(path: Path) -> None:
    box = AsyncOutbox(Outbox(path))
    with pytest.raises(RuntimeError):
        await box.put(alarm(), T0)
    await box.open()
    await box.close()
    await box.close()  # idempotent
    with pytest.raises(RuntimeError):
        await box.due(T0, limit=1)


async def test_async_outbox_open_failure_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    box = AsyncOutbox(Outbox(blocker / "outbox.db"))
    with pytest.raises(StorageError):
        await box.open()
    await box.close()
