"""The station: store (events once, media chunks, whole files), parser, receiver on a fake link."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from edge import codes, protocol
from edge.clock import FakeClock
from edge.codes import Condition, ZoneType
from edge.errors import ProtocolError, StorageError, UplinkError
from edge.model import Event, ZoneRef
from edge.mqttio import Message
from edge.protocol import (
    Chunk,
    EventMessage,
    MediaProgress,
    Topics,
    chunk_count,
    chunk_properties,
    decode_ack,
    encode_event,
)
from edge.station import assembly, inbound, media
from edge.station.inbound import (
    ChunkReceived,
    EventReceived,
    HeartbeatReceived,
    MediaLostReceived,
    StateReceived,
)
from edge.station.media import Header, MediaKey
from edge.station.receiver import Receiver, StationSettings
from edge.station.sql import PgBackend
from edge.station.store import StationStore
from tests.postgres import Postgres, postgres  # noqa: F401 (fixture)
from tests.stores import MakeStore

T0 = 1_795_875_790_000
DEVICE = "gw-1"
EVENT = "ev-1"


def event_message(event_id: str = EVENT, device: str = DEVICE, seq: int = 1) -> EventMessage:
    event = Event(
        id=event_id,
        kind=codes.kind(Condition.BURGLARY, False),
        condition=Condition.BURGLARY,
        codes=codes.codes(Condition.BURGLARY, False),
        occurred_at_ms=T0,
        partition=1,
        armed=True,
        zone=ZoneRef("hall", "Hall PIR", ZoneType.INTRUSION, 3),
        text="Hall PIR: alarm",
    )
    return EventMessage(event, seq, device, "1234", T0 + 100, False)


def headers(
    data: bytes, chunk_bytes: int, *, kind: str = "still", sha256: str | None = None
) -> list[tuple[Chunk, bytes]]:
    """The chunks of ``data`` as the box sends them: header and payload."""
    count = chunk_count(len(data), chunk_bytes)
    digest = sha256 or hashlib.sha256(data).hexdigest()
    content_type = "image/jpeg" if kind == "still" else "video/mp4"
    return [
        (
            Chunk(i, count, len(data), digest, content_type, kind),
            data[i * chunk_bytes : (i + 1) * chunk_bytes],
        )
        for i in range(count)
    ]


def chunks(
    data: bytes,
    chunk_bytes: int = 100,
    *,
    media_id: str = "still-1",
    event_id: str = EVENT,
    device: str = DEVICE,
    kind: str = "still",
    sha256: str | None = None,
) -> list[ChunkReceived]:
    return [
        ChunkReceived(device, event_id, media_id, header, payload)
        for header, payload in headers(data, chunk_bytes, kind=kind, sha256=sha256)
    ]


def unstorable(event_id: str, seq: int = 2) -> EventMessage:
    """Parses, but SQLite cannot bind it: the zone name is a lone surrogate."""
    event = event_message(event_id).event
    zone = ZoneRef("hall", "\udc80", ZoneType.INTRUSION, 3)
    return EventMessage(Event(**{**vars(event), "zone": zone}), seq, DEVICE, "1234", T0, False)


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def store(make_store: MakeStore) -> Iterator[StationStore]:
    s = make_store()
    s.open()
    yield s
    s.close()


def count(store: StationStore, table: str) -> int:
    """Rows of ``table``, as committed (a new connection sees only commits)."""
    query = f"SELECT COUNT(*) FROM {table}"
    if isinstance(store.backend, PgBackend):
        with psycopg.connect(store.backend.url) as pg:
            return int(pg.execute(query).fetchone()[0])  # type: ignore[index]
    con = sqlite3.connect(store.path)
    try:
        return int(con.execute(query).fetchone()[0])
    finally:
        con.close()


def progress(store: StationStore, items: list[ChunkReceived], at: int = T0) -> MediaProgress:
    """Commit ``items`` as one batch; the progress acknowledged for their media."""
    receipt = store.commit(items, at)
    (device,) = receipt.media
    (result,) = receipt.media[device].values()
    return result


# --- pure pieces --------------------------------------------------------------


@pytest.mark.parametrize(
    ("indices", "have"),
    [([], 0), ([0], 1), ([1, 2], 0), ([0, 1, 3], 2), ([0, 1, 2, 3], 4), ([0, 2], 1)],
)
def test_contiguous_counts_from_zero_to_the_first_gap(indices: list[int], have: int) -> None:
    assert media.contiguous(indices) == have


def test_mismatch_names_the_field() -> None:
    h = Header(EVENT, 3, 250, "a" * 64, "image/jpeg", "still")
    assert media.mismatch(h, h) is None
    other = Header(EVENT, 4, 250, "a" * 64, "image/jpeg", "still")
    assert media.mismatch(h, other) == "count 4 differs from 3 of earlier chunks"


def test_relative_path_uses_device_event_and_extension() -> None:
    key = MediaKey("gw-1", "clip-1")
    header = Header("ev-9", 1, 0, "a" * 64, "video/mp4", "clip")
    assert media.relative_path(key, header) == Path("gw-1/ev-9/clip-1.mp4")


# --- media assembly -----------------------------------------------------------


def test_chunks_in_order_make_the_verified_file(store: StationStore) -> None:
    data = blob(950)
    items = chunks(data)
    for i, item in enumerate(items[:-1]):
        assert progress(store, [item]) == MediaProgress("still-1", i + 1, complete=False)
    assert progress(store, items[-1:]) == MediaProgress("still-1", 10, complete=True)
    path = store.media_root / DEVICE / EVENT / "still-1.jpg"
    assert path.read_bytes() == data
    assert list(path.parent.iterdir()) == [path]  # no part file left behind
    (row,) = store.media(EVENT)
    assert (row.media_id, row.kind, row.content_type) == ("still-1", "still", "image/jpeg")
    assert (row.size, row.sha256, row.path) == (950, hashlib.sha256(data).hexdigest(), path)
    assert count(store, "media_chunks") == count(store, "media_pending") == 0


@pytest.mark.parametrize("order", ["reversed", "shuffled", "one batch"])
def test_chunks_out_of_order_make_the_same_file(store: StationStore, order: str) -> None:
    data = blob(2_000, seed=7)
    items = chunks(data, 128, kind="clip", media_id="clip-1")
    if order == "one batch":
        random.Random(3).shuffle(items)
        assert progress(store, items) == MediaProgress("clip-1", 16, complete=True)
    else:
        if order == "reversed":
            items.reverse()
        else:
            random.Random(5).shuffle(items)
        stored: set[int] = set()
        for item in items:
            result = progress(store, [item])
            stored.add(item.chunk.index)
            if len(stored) < len(items):
                assert result == MediaProgress("clip-1", media.contiguous(sorted(stored)))
        assert result == MediaProgress("clip-1", 16, complete=True)
    assert (store.media_root / DEVICE / EVENT / "clip-1.mp4").read_bytes() == data


def test_a_gap_holds_have_until_it_is_filled(store: StationStore) -> None:
    items = chunks(blob(400))
    assert progress(store, [items[0], items[1], items[3]]) == MediaProgress("still-1", 2)
    assert progress(store, [items[2]]) == MediaProgress("still-1", 4, complete=True)


def test_empty_file_is_one_empty_chunk(store: StationStore) -> None:
    assert progress(store, chunks(b"")) == MediaProgress("still-1", 1, complete=True)
    assert (store.media_root / DEVICE / EVENT / "still-1.jpg").read_bytes() == b""


def test_duplicate_chunks_are_stored_once_and_acked_again(store: StationStore) -> None:
    data = blob(300)
    items = chunks(data)
    receipt = store.commit([items[0], items[0], items[1]], T0)
    assert (receipt.chunks, receipt.duplicate_chunks) == (2, 1)
    receipt = store.commit([items[1]], T0)
    assert (receipt.chunks, receipt.duplicate_chunks) == (0, 1)
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 2)
    assert progress(store, [items[2]]) == MediaProgress("still-1", 3, complete=True)
    # A chunk of a media already complete (the ack was lost): complete again.
    receipt = store.commit([items[1]], T0 + 5)
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 3, complete=True)
    assert receipt.duplicate_chunks == 1 and receipt.complete == 0
    assert count(store, "media_chunks") == 0
    assert len(store.media(EVENT)) == 1


def test_bad_checksum_discards_the_chunks_and_acks_have_zero(store: StationStore) -> None:
    data = blob(500)
    good = chunks(data)
    bad = [
        ChunkReceived(c.device, c.event_id, c.media_id, c.chunk, b"x" * len(c.data))
        if c.chunk.index == 2
        else c
        for c in good
    ]
    receipt = store.commit(bad, T0)
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 0, complete=False)
    assert receipt.corrupt == 1 and receipt.complete == 0
    assert count(store, "media_chunks") == count(store, "media_pending") == 0
    folder = store.media_root / DEVICE / EVENT
    assert list(folder.iterdir()) == []  # neither the file nor its part file
    assert store.media(EVENT) == []
    # The box sends the file again from the start.
    assert progress(store, good) == MediaProgress("still-1", 5, complete=True)
    assert (folder / "still-1.jpg").read_bytes() == data


def test_chunks_summing_to_another_size_are_corrupt(store: StationStore) -> None:
    data = blob(250)
    items = chunks(data)
    short = ChunkReceived(DEVICE, EVENT, "still-1", items[2].chunk, items[2].data[:-1])
    assert progress(store, [*items[:2], short]) == MediaProgress("still-1", 0)


@pytest.mark.parametrize("field", ["count", "size", "sha256", "event", "kind"])
def test_chunk_contradicting_earlier_chunks_is_rejected(store: StationStore, field: str) -> None:
    items = chunks(blob(300))
    store.commit(items[:1], T0)
    c = items[1].chunk
    changed = {
        "count": Chunk(c.index, 4, c.size, c.sha256, c.content_type, c.kind),
        "size": Chunk(c.index, c.count, 301, c.sha256, c.content_type, c.kind),
        "sha256": Chunk(c.index, c.count, c.size, "b" * 64, c.content_type, c.kind),
        "event": c,
        "kind": Chunk(c.index, c.count, c.size, c.sha256, "video/mp4", "clip"),
    }[field]
    event_id = "ev-other" if field == "event" else EVENT
    liar = ChunkReceived(DEVICE, event_id, "still-1", changed, items[1].data)
    receipt = store.commit([liar, items[2]], T0)
    assert len(receipt.rejected) == 1 and "differs from" in receipt.rejected[0]
    assert receipt.chunks == 1  # the rest of the batch is stored
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 1)
    assert progress(store, [items[1]]) == MediaProgress("still-1", 3, complete=True)
    # Once complete, a contradicting chunk is still rejected, not acked complete.
    assert store.commit([liar], T0).rejected


def test_restart_mid_file_keeps_the_stored_chunks(make_store: MakeStore) -> None:
    data = blob(1_000, seed=11)
    items = chunks(data, 200, kind="clip", media_id="clip-1")
    first = make_store()
    first.open()
    first.commit([items[0], items[1], items[3]], T0)
    first.close()
    second = make_store()
    second.open()
    try:
        assert progress(second, [items[1]]) == MediaProgress("clip-1", 2)  # the box resumes
        assert progress(second, [items[2], items[4]]) == MediaProgress("clip-1", 5, True)
        assert (second.media_root / DEVICE / EVENT / "clip-1.mp4").read_bytes() == data
    finally:
        second.close()


def test_file_not_written_keeps_chunks_and_is_finished_after_restart(make_store: MakeStore) -> None:
    data = blob(300)
    store = make_store()
    store.open()
    blocked = store.media_root / DEVICE  # where the device's files go: the disk refuses
    blocked.parent.mkdir()
    blocked.write_text("not a directory")
    receipt = store.commit(chunks(data), T0)
    assert receipt.unwritten == 1 and receipt.complete == 0
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 3, complete=False)
    assert count(store, "media_chunks") == 3
    store.close()
    blocked.unlink()  # repaired
    store = make_store()
    store.open()
    try:
        assert store.finish_waiting(T0 + 1).complete == 1
        assert (store.media_root / DEVICE / EVENT / "still-1.jpg").read_bytes() == data
        assert progress(store, chunks(data)[:1]) == MediaProgress("still-1", 3, True)
    finally:
        store.close()


def test_media_ids_are_per_device(store: StationStore) -> None:
    one, two = blob(150, 1), blob(150, 2)
    receipt = store.commit([*chunks(one), *chunks(two, device="gw-2")], T0)
    assert receipt.acks() == {
        DEVICE: ([], (MediaProgress("still-1", 2, True),)),
        "gw-2": ([], (MediaProgress("still-1", 2, True),)),
    }
    assert (store.media_root / "gw-2" / EVENT / "still-1.jpg").read_bytes() == two
    assert [m.device for m in store.media(EVENT)] == [DEVICE, "gw-2"]
    assert [m.device for m in store.media(EVENT, "gw-2")] == ["gw-2"]


# --- part files ---------------------------------------------------------------


def part(store: StationStore, media_id: str = "still-1", device: str = DEVICE) -> Path:
    return store.media_root / ".partial" / device / f"{media_id}.part"


@pytest.mark.parametrize(
    ("index", "count", "size", "length", "step"),
    [
        (0, 3, 250, 100, 100),
        (2, 3, 250, 50, 100),  # the last chunk alone fixes the others' length
        (2, 3, 250, 49, None),  # 201 bytes do not split into two equal chunks
        (0, 3, 250, 200, None),  # a third chunk would have -150 bytes
        (0, 1, 0, 0, 0),
        (0, 1, 5, 4, None),
    ],
)
def test_chunk_bytes_is_what_one_chunk_implies(
    index: int, count: int, size: int, length: int, step: int | None
) -> None:
    chunk = Chunk(index, count, size, "a" * 64, "image/jpeg", "still")
    assert media.chunk_bytes(chunk, length) == step


def test_chunk_bytes_are_in_place_and_fsynced_before_their_rows_commit(
    store: StationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = blob(950)
    items = chunks(data)
    seen: list[tuple[int, bytes]] = []
    sync = media.PartWriter.sync

    def checked(writer: media.PartWriter) -> None:
        sync(writer)
        seen.append((count(store, "media_chunks"), part(store).read_bytes()))

    monkeypatch.setattr(media.PartWriter, "sync", checked)
    assert progress(store, [items[0], items[3]]) == MediaProgress("still-1", 1)
    assert seen == [(0, data[:100] + bytes(200) + data[300:400])]  # rows not yet committed
    assert count(store, "media_chunks") == 2
    with store.backend.transaction() as db:
        row = db.execute("SELECT * FROM media_chunks").fetchone()
    assert not any(isinstance(v, bytes) for v in row)  # no bytes in the database
    assert progress(store, items) == MediaProgress("still-1", 10, complete=True)
    assert (store.media_root / DEVICE / EVENT / "still-1.jpg").read_bytes() == data
    assert list(part(store).parent.iterdir()) == []


def test_chunk_length_contradicting_the_others_discards_the_media(store: StationStore) -> None:
    data = blob(250)
    items = chunks(data)
    assert progress(store, items[:1]) == MediaProgress("still-1", 1)
    c = items[1]
    longer = ChunkReceived(DEVICE, EVENT, "still-1", c.chunk, c.data + b"x")
    receipt = store.commit([longer, items[2]], T0)  # the rest of the batch is ignored
    assert receipt.media[DEVICE]["still-1"] == MediaProgress("still-1", 0)
    assert (receipt.corrupt, receipt.chunks, receipt.rejected) == (1, 0, [])
    assert count(store, "media_chunks") == count(store, "media_pending") == 0
    assert not part(store).exists()
    assert progress(store, items[::-1]) == MediaProgress("still-1", 3, complete=True)
    # A lone last chunk that leaves the others no equal length: nothing stored.
    odd = chunks(blob(250, seed=2), media_id="still-2")[2]
    short = ChunkReceived(DEVICE, EVENT, "still-2", odd.chunk, odd.data[:-1])
    assert progress(store, [short]) == MediaProgress("still-2", 0)


def test_media_completed_by_one_batch_are_recorded_in_one_transaction(
    store: StationStore,
) -> None:
    files = {f"clip-{i}": blob(1_000, seed=i) for i in range(4)}
    items = [c for m, d in files.items() for c in chunks(d, 300, media_id=m, kind="clip")]
    receipt = store.commit(items, T0)
    assert receipt.complete == 4 and store.commits == 2
    for media_id, data in files.items():
        assert (store.media_root / DEVICE / EVENT / f"{media_id}.mp4").read_bytes() == data


def test_media_disk_refusing_part_files_fails_only_the_chunks(store: StationStore) -> None:
    data = blob(300)
    store.media_root.write_text("not a directory")
    receipt = store.commit([*chunks(data), EventReceived(DEVICE, event_message())], T0)
    assert receipt.ids == {DEVICE: [EVENT]} and receipt.media == {}  # chunks not acked
    assert (receipt.unwritten, receipt.chunks) == (3, 0)
    assert count(store, "media_chunks") == count(store, "media_pending") == 0
    store.media_root.unlink()  # repaired: the box resends
    assert progress(store, chunks(data)) == MediaProgress("still-1", 3, complete=True)


def test_a_failed_batch_leaves_a_part_file_the_next_first_chunk_truncates(
    store: StationStore,
) -> None:
    data = blob(250)
    other = chunks(blob(2_000, seed=9))[4:6]  # same media id, another (longer) file
    poison = EventReceived(DEVICE, event_message("ev-poison", seq=2**70))
    with pytest.raises(StorageError):
        store.commit([*other, poison], T0)
    assert part(store).stat().st_size == 600 and count(store, "media_pending") == 0
    assert progress(store, chunks(data)) == MediaProgress("still-1", 3, complete=True)
    assert (store.media_root / DEVICE / EVENT / "still-1.jpg").read_bytes() == data


def test_restart_matches_part_files_and_chunk_rows(make_store: MakeStore) -> None:
    one, two = blob(1_000, 1), blob(300, 2)
    first = make_store()
    first.open()
    a = chunks(one, 200, media_id="clip-a", kind="clip")
    b = chunks(two, media_id="still-b")
    assert first.commit([*a[:2], a[3], *b[:2]], T0).chunks == 5
    first.close()
    with part(first, "clip-a").open("r+b") as f:
        f.truncate(300)  # chunk 0 whole, chunk 1 cut short, chunk 3 gone
    part(first, "still-b").unlink()
    orphan = part(first, "ghost")
    orphan.write_bytes(b"left by a batch that never committed")
    long_ago = time.time() - 2 * assembly.ORPHAN_AGE_S
    os.utime(orphan, (long_ago, long_ago))
    young = part(first, "in-flight")  # another receiver of a shared store is writing it
    young.write_bytes(b"first chunk, not yet committed")
    second = make_store()
    second.open()
    try:
        second.finish_waiting(T0 + 1)
        assert not orphan.exists()
        assert young.exists() == second.backend.shared
        assert progress(second, a[:1]) == MediaProgress("clip-a", 1)  # have fell from 2
        assert progress(second, b[:1]) == MediaProgress("still-b", 1)
        assert count(second, "media_chunks") == 2
        assert progress(second, a[1:]) == MediaProgress("clip-a", 5, complete=True)
        assert progress(second, b[1:]) == MediaProgress("still-b", 3, complete=True)
        assert (second.media_root / DEVICE / EVENT / "clip-a.mp4").read_bytes() == one
    finally:
        second.close()


def test_file_renamed_but_not_recorded_is_recorded_after_restart(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = blob(300)
    store = make_store()
    store.open()

    def crash(*_args: object) -> None:
        raise StorageError("disk I/O error")

    with monkeypatch.context() as m:
        m.setattr(media, "record", crash)  # the crash falls between rename and commit
        receipt = store.commit(chunks(data), T0)
    assert receipt.complete == 0 and receipt.media == {}  # nothing acked complete
    path = store.media_root / DEVICE / EVENT / "still-1.jpg"
    assert path.read_bytes() == data and not part(store).exists()
    assert count(store, "media_chunks") == 3
    store.close()
    store = make_store()
    store.open()
    try:
        assert store.finish_waiting(T0 + 1).complete == 1  # verified where it is
        assert progress(store, chunks(data)[:1]) == MediaProgress("still-1", 3, True)
        assert path.read_bytes() == data
    finally:
        store.close()


def test_chunks_stored_as_blobs_by_an_older_station_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "station.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE media_pending (device TEXT NOT NULL, media_id TEXT NOT NULL, "
        "event_id TEXT NOT NULL, count INTEGER NOT NULL, size INTEGER NOT NULL, "
        "sha256 TEXT NOT NULL, content_type TEXT NOT NULL, kind TEXT NOT NULL, "
        "first_ms INTEGER NOT NULL, PRIMARY KEY (device, media_id)) STRICT;"
        "CREATE TABLE media_chunks (device TEXT NOT NULL, media_id TEXT NOT NULL, "
        "idx INTEGER NOT NULL, data BLOB NOT NULL, received_ms INTEGER NOT NULL, "
        "PRIMARY KEY (device, media_id, idx)) STRICT;"
        f"INSERT INTO media_pending VALUES ('{DEVICE}', 'still-1', '{EVENT}', 3, 300, "
        f"'{'a' * 64}', 'image/jpeg', 'still', {T0});"
        f"INSERT INTO media_chunks VALUES ('{DEVICE}', 'still-1', 0, x'00', {T0});"
    )
    con.close()
    store = StationStore(db)
    store.open()
    try:
        assert count(store, "media_chunks") == count(store, "media_pending") == 0
        data = blob(300)
        assert progress(store, chunks(data)) == MediaProgress("still-1", 3, complete=True)
    finally:
        store.close()


# --- events and group commit --------------------------------------------------


def test_event_stored_once_and_every_delivery_counted(store: StationStore) -> None:
    message = event_message()
    receipt = store.commit([EventReceived(DEVICE, message), EventReceived(DEVICE, message)], T0)
    assert receipt.ids == {DEVICE: [EVENT]}  # acked once per batch
    assert [new for _, new in receipt.events] == [True, False]
    receipt = store.commit([EventReceived(DEVICE, message)], T0 + 1_000)
    assert receipt.ids == {DEVICE: [EVENT]} and receipt.events == [(message, False)]
    (row,) = store.events()
    assert (row.id, row.deliveries, row.seq, row.cid, row.zone) == (EVENT, 3, 1, "1130", "Hall PIR")
    assert row.received_at == "2026-11-28T14:23:10.000Z"  # the first delivery's time


def test_event_id_of_another_device_is_rejected(store: StationStore) -> None:
    store.commit([EventReceived(DEVICE, event_message())], T0)
    receipt = store.commit([EventReceived("gw-2", event_message(device="gw-2"))], T0)
    assert receipt.ids == {} and "another device" in receipt.rejected[0]
    assert [r.deliveries for r in store.events()] == [1]


def test_a_batch_is_one_transaction(store: StationStore) -> None:
    items = [EventReceived(DEVICE, event_message(f"ev-{i}", seq=i)) for i in range(100)]
    items += [StateReceived(DEVICE, "online"), HeartbeatReceived(DEVICE, 60)]
    items += chunks(blob(1_000), media_id="still-9")[:9]  # not complete yet
    receipt = store.commit(items, T0)
    assert store.commits == 1
    assert receipt.ids[DEVICE] == [f"ev-{i}" for i in range(100)]
    assert receipt.media[DEVICE] == {"still-9": MediaProgress("still-9", 9)}
    assert len(store.events(limit=1_000)) == 100
    (device,) = store.devices()
    assert (device["state"], device["heartbeat_interval_s"]) == ("online", 60)


def test_a_failing_batch_stores_nothing(store: StationStore) -> None:
    poison = event_message("ev-poison", seq=2**70)  # no SQLite integer holds it
    items = [
        EventReceived(DEVICE, event_message("ev-good")),
        *chunks(blob(200)),
        EventReceived(DEVICE, poison),
    ]
    with pytest.raises(StorageError, match="station store"):
        store.commit(items, T0)
    assert store.events() == [] and store.media(EVENT) == []
    assert count(store, "media_chunks") == 0 and store.commits == 0
    with pytest.raises(StorageError):
        store.commit([EventReceived(DEVICE, unstorable("ev-2"))], T0)


def test_events_list_their_media_count(store: StationStore) -> None:
    store.commit([EventReceived(DEVICE, event_message())], T0)
    store.commit([*chunks(blob(10), media_id="a"), *chunks(blob(20), media_id="b")], T0 + 1)
    store.commit(chunks(blob(300), media_id="c")[:1], T0 + 2)  # incomplete
    (row,) = store.events()
    assert row.media == 2
    assert [m.media_id for m in store.media(EVENT)] == ["a", "b"]
    assert store.media("ev-none") == []


# --- parsing what arrives -----------------------------------------------------


def chunk_message(item: ChunkReceived, prefix: str = "edge") -> Message:
    topic = Topics(prefix, item.device).media(item.event_id, item.media_id)
    return Message(topic, item.data, properties=chunk_properties(item.chunk))


def test_parse_each_topic() -> None:
    message = event_message()
    assert inbound.parse(Message("edge/gw-1/events", encode_event(message)), "edge") == (
        EventReceived(DEVICE, message)
    )
    item = chunks(blob(250))[1]
    assert inbound.parse(chunk_message(item), "edge") == item
    state = Message("edge/gw-1/state", b'{"v":1,"state":"online"}')
    assert inbound.parse(state, "edge") == StateReceived(DEVICE, "online")
    beat = Message("edge/gw-1/heartbeat", b'{"v":1,"interval_s":30}')
    assert inbound.parse(beat, "edge") == HeartbeatReceived(DEVICE, 30)
    assert inbound.parse(Message("edge/gw-1/cmd/result", b"{}"), "edge") is None


def _bad_messages() -> list[Message]:
    item = chunks(blob(250))[0]
    good = chunk_message(item)
    big_seq = encode_event(event_message(seq=2**63))
    props = dict(good.properties)
    return [
        Message("edge/gw-1/events", b"not json"),
        Message("edge/gw-1/events", big_seq),
        Message("edge/gw-2/events", encode_event(event_message())),  # names gw-1
        Message("edge/gw-1/state", b'{"v":1,"state":7}'),
        Message("edge/gw-1/heartbeat", b'{"v":1,"interval_s":"30"}'),
        Message("edge/gw-1/heartbeat", b'{"v":1}'),
        Message("edge/gw-1/nonsense", b"{}"),
        Message("other/gw-1/events", b"{}"),
        Message(good.topic, good.payload),  # no user properties
        Message(good.topic, good.payload, properties=(*good.properties[:-1], ("kind", "gif"))),
        Message(good.topic, b"y" * 251, properties=good.properties),  # more than the file
        Message("edge/gw-1/media/../still-1", good.payload, properties=good.properties),
        Message("edge/../media/ev-1/still-1", good.payload, properties=good.properties),
        Message("edge/gw-1/media/ev-1/.x", good.payload, properties=good.properties),
        Message("edge/gw-1/media/ev-1", good.payload, properties=good.properties),
        Message(good.topic, good.payload, properties=tuple({**props, "index": "9"}.items())),
    ]


@pytest.mark.parametrize("message", _bad_messages(), ids=lambda m: m.topic)
def test_parse_rejects_malformed_messages(message: Message) -> None:
    with pytest.raises(ProtocolError):
        inbound.parse(message, "edge")


# --- the receiver on a fake link ----------------------------------------------


class FakeLink:
    """Records acks; checks that what an ack names is already committed."""

    def __init__(self, store_path: Path) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: list[Message] = []
        self.down = False
        self.store_path = store_path

    async def start(self) -> None:
        pass

    async def stop(self, last_words: Message | None = None, timeout_s: float = 3.0) -> None:
        pass

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        return True

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        if self.down:
            raise UplinkError("not connected")
        con = sqlite3.connect(self.store_path)  # another connection sees only commits
        try:
            stored = {r[0] for r in con.execute("SELECT id FROM events")}
        finally:
            con.close()
        assert set(decode_ack(message.payload).ids) <= stored
        self.sent.append(message)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    settings = StationSettings("127.0.0.1", 1, tmp_path / "station.sqlite", batch_max=50)
    r = Receiver(settings, FakeLink(settings.db), FakeClock(T0 / 1000))
    r.store.open()
    yield r
    r.store.close()


def sent(r: Receiver) -> list[Message]:
    assert isinstance(r.link, FakeLink)
    return r.link.sent


async def test_receiver_sends_one_ack_per_device_per_batch(receiver: Receiver) -> None:
    messages = [
        Message(f"edge/{d}/events", encode_event(event_message(f"{d}-ev-{i}", d, i)))
        for i in range(3)
        for d in ("gw-1", "gw-2")
    ]
    still = chunks(blob(300))
    messages += [chunk_message(c) for c in still[:2]]
    await receiver.process(messages)
    acks = {m.topic: decode_ack(m.payload) for m in sent(receiver)}
    assert set(acks) == {"edge/gw-1/ack", "edge/gw-2/ack"}
    assert acks["edge/gw-1/ack"].ids == ("gw-1-ev-0", "gw-1-ev-1", "gw-1-ev-2")
    assert acks["edge/gw-1/ack"].media == (MediaProgress("still-1", 2),)
    assert acks["edge/gw-2/ack"].ids == ("gw-2-ev-0", "gw-2-ev-1", "gw-2-ev-2")
    assert receiver.store.commits == 1 and receiver.stats.stored == 6


async def test_receiver_survives_malformed_messages_and_a_poison_event(receiver: Receiver) -> None:
    bad = encode_event(unstorable("ev-poison"))
    messages = [
        *_bad_messages(),
        Message("edge/gw-1/events", bad),  # parses, but SQLite cannot store it
        Message("edge/gw-1/events", encode_event(event_message("ev-good", seq=3))),
    ]
    await receiver.process(messages)
    (ack,) = sent(receiver)
    assert decode_ack(ack.payload).ids == ("ev-good",)
    stats = receiver.stats
    assert (stats.rejected, stats.not_stored, stats.stored) == (len(_bad_messages()), 1, 1)
    assert [r.id for r in receiver.store.events()] == ["ev-good"]


async def test_receiver_keeps_going_when_acks_cannot_be_sent(receiver: Receiver) -> None:
    link = receiver.link
    assert isinstance(link, FakeLink)
    link.down = True
    message = Message("edge/gw-1/events", encode_event(event_message()))
    await receiver.process([message])
    assert (receiver.stats.stored, receiver.stats.acks_failed, link.sent) == (1, 1, [])
    link.down = False
    await receiver.process([message])  # the box resends: acked, counted, not stored again
    assert receiver.stats.duplicates == 1 and len(link.sent) == 1
    assert [r.deliveries for r in receiver.store.events()] == [2]


async def test_next_batch_takes_what_waits_within_the_limits(receiver: Receiver) -> None:
    for i in range(120):
        receiver.link.inbox.put_nowait(Message("edge/gw-1/events", bytes(10 * i)))
    sizes = [len(await receiver.next_batch()) for _ in range(3)]
    assert sizes == [50, 50, 20]
    big = StationSettings("h", 1, receiver.settings.db, batch_max_bytes=1_000)
    receiver.settings = big
    for _ in range(5):
        receiver.link.inbox.put_nowait(Message("edge/gw-1/events", bytes(400)))
    assert [len(await receiver.next_batch()) for _ in range(2)] == [3, 2]


def test_postgresql_connection_lost_fails_one_batch_then_reconnects(
    postgres: Postgres,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    url = postgres.fresh("station")
    store = StationStore(url, tmp_path / "media")
    store.open()
    try:
        store.commit([EventReceived(DEVICE, event_message("ev-1"))], T0)
        with psycopg.connect(url, autocommit=True) as admin:  # the server drops us
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'station' AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageError):
            store.commit([EventReceived(DEVICE, event_message("ev-2", seq=2))], T0)
        store.commit([EventReceived(DEVICE, event_message("ev-2", seq=2))], T0)  # resent
        assert [r.id for r in store.events()] == ["ev-2", "ev-1"]
    finally:
        store.close()


# --- lost notices ----------------------------------------------------------------


def test_a_lost_notice_is_stored_once_and_acknowledged_as_complete(store: StationStore) -> None:
    store.commit([EventReceived(DEVICE, event_message())], T0)
    partial = chunks(blob(500), media_id="clip-1", kind="clip")[:2]  # 2 of 5 came first
    store.commit(partial, T0)
    lost = MediaLostReceived(DEVICE, EVENT, "clip-1", "clip", "not recorded: power cut")
    for at in (T0 + 1, T0 + 2):  # the box resends until acknowledged
        receipt = store.commit([lost], at)
        assert receipt.media == {DEVICE: {"clip-1": MediaProgress("clip-1", 0, complete=True)}}
    assert store.lost_media(EVENT) == [
        {
            "media_id": "clip-1",
            "kind": "clip",
            "reason": "not recorded: power cut",
            "received_at": protocol.iso_ms(T0 + 1),
        }
    ]
    assert count(store, "media_chunks") == 0  # the chunks that came are dropped
    assert store.media(EVENT) == []


def test_a_lost_notice_never_replaces_a_complete_media(store: StationStore) -> None:
    store.commit(chunks(blob(250)), T0)
    assert [m.media_id for m in store.media(EVENT)] == ["still-1"]
    lost = MediaLostReceived(DEVICE, EVENT, "still-1", "still", "evicted")
    receipt = store.commit([lost], T0 + 1)
    assert receipt.media[DEVICE]["still-1"].complete
    assert store.lost_media(EVENT) == []
    assert [m.media_id for m in store.media(EVENT)] == ["still-1"]


def test_a_lost_notice_is_parsed_from_its_user_properties() -> None:
    topic = f"edge/{DEVICE}/media/{EVENT}/still-9"
    props = protocol.lost_properties("still", "evicted: disk full")
    item = inbound.parse(Message(topic, b"", properties=props), "edge")
    assert item == MediaLostReceived(DEVICE, EVENT, "still-9", "still", "evicted: disk full")
    for bad in (
        (("v", "2"), ("kind", "movie"), ("lost", "x")),  # unknown kind
        (("v", "2"), ("kind", "clip"), ("lost", "")),  # no reason
        (("v", "99"), ("kind", "clip"), ("lost", "x")),  # a newer protocol
        (("kind", "clip"), ("lost", "x")),  # no version
    ):
        with pytest.raises(ProtocolError):
            inbound.parse(Message(topic, b"", properties=bad), "edge")
    with pytest.raises(ProtocolError, match="no payload"):
        inbound.parse(Message(topic, b"data", properties=props), "edge")
