"""Receivers that scale out: two instances on an MQTT v5 shared subscription, one PostgreSQL.

Chunks of one media land on both instances (the broker deals messages round
robin, not by media), so both write into the same store and media folder;
the per-media advisory lock makes one of them decide each media's first
chunk and finish its file. Also: supervision through a real broker with a
short profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from edge.protocol import Ack, Topics, encode_heartbeat, encode_state
from edge.station import supervision
from edge.station.inbound import ChunkReceived, Inbound
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import Receipt
from tests.conftest import Broker
from tests.integration.test_station import Device, until
from tests.postgres import Postgres, postgres  # noqa: F401 (fixture)
from tests.unit.test_station_store import T0, blob

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

BOXES = ("gw-a", "gw-b", "gw-c")
EVENTS = 40  # per box


@contextlib.asynccontextmanager
async def receivers(settings: list[StationSettings]) -> AsyncIterator[list[Receiver]]:
    running = [Receiver(s) for s in settings]
    tasks = []
    for r in running:
        connected = asyncio.Event()
        tasks.append(asyncio.create_task(r.run(connected.set), name=r.settings.client_id))
        await asyncio.wait_for(connected.wait(), 10)
    try:
        yield running
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def record_chunks(receiver: Receiver) -> set[str]:
    """The media ids whose chunks ``receiver`` stores (its store's commit, wrapped)."""
    seen: set[str] = set()
    commit = receiver.store.commit

    def recording(items: Sequence[Inbound], received_ms: int) -> Receipt:
        seen.update(i.media_id for i in items if isinstance(i, ChunkReceived))
        return commit(items, received_ms)

    receiver.store.commit = recording  # type: ignore[method-assign]
    return seen


async def acked_ids(box: Device, want: set[str], media: int, timeout_s: float = 30) -> set[str]:
    """Read acks until every id of ``want`` and ``media`` complete media are acknowledged."""
    got: set[str] = set()
    done: set[str] = set()
    async with asyncio.timeout(timeout_s):
        while not (want <= got and len(done) >= media):
            ack: Ack = await box.ack(timeout_s)
            got.update(ack.ids)
            done.update(m.media_id for m in ack.media if m.complete)
    return got


async def test_two_receivers_split_the_load_and_store_each_event_once(
    broker: Broker,
    postgres: Postgres,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    url, media = postgres.fresh("scale"), tmp_path / "media"
    settings = [
        StationSettings(broker.host, broker.port, url, media=media, share_group="station",
                        client_id=f"station-{n}")
        for n in (1, 2)
    ]  # fmt: skip
    clips = {box: blob(12_000, seed=i) for i, box in enumerate(BOXES)}
    async with receivers(settings) as (one, two):
        heard = [record_chunks(one), record_chunks(two)]
        boxes = [Device(broker, name) for name in BOXES]
        for box in boxes:
            await box.start()
        try:

            async def send(box: Device) -> set[str]:
                name = box.topics.device
                ids = {f"{name}-ev-{i}" for i in range(EVENTS)}
                for i in range(EVENTS):
                    await box.event(f"{name}-ev-{i}", seq=i + 1)
                await box.chunks(clips[name], media_id="clip-1", event_id=f"{name}-ev-0",
                                 chunk_bytes=500, kind="clip")  # fmt: skip
                return await acked_ids(box, ids, media=1)

            acked = await asyncio.gather(*(send(b) for b in boxes))
        finally:
            for box in boxes:
                await box.stop()
        rows = one.store.events(limit=1_000)
    assert all(len(ids) == EVENTS for ids in acked)
    assert len(rows) == len({r.id for r in rows}) == EVENTS * len(BOXES)  # each once
    assert one.stats.stored + two.stats.stored == EVENTS * len(BOXES)
    assert one.stats.stored > 0 and two.stats.stored > 0  # the load was split
    assert heard[0] & heard[1]  # some media had chunks stored by both receivers
    assert one.stats.media_complete + two.stats.media_complete == len(BOXES)
    for name, data in clips.items():
        path = media / name / f"{name}-ev-0" / "clip-1.mp4"
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_silent_box_is_lost_within_its_profile_and_restored(
    broker: Broker, tmp_path: Path
) -> None:
    settings = StationSettings(
        broker.host, broker.port, tmp_path / "s.sqlite", supervise_period_s=0.1
    )
    box = Device(broker, "gw-quiet")
    topics = Topics("edge", "gw-quiet")
    async with receivers([settings]) as (receiver,):
        await box.start()
        try:
            birth = encode_state("online", boot_id="b", version="t", at_ms=T0,
                                 supervision={"heartbeat_s": 1, "lost_s": 2})  # fmt: skip
            await box.send(topics.state, birth, retain=True)
            beat = encode_heartbeat(seq=1, at_ms=T0, interval_s=1, outbox_depth=0)
            loop = asyncio.get_running_loop()
            for _ in range(3):  # alive while it beats
                await box.send(topics.heartbeat, beat)
                silent_at = loop.time()
                await asyncio.sleep(0.5)
            assert receiver.stats.devices_lost == 0
            await until(lambda: receiver.stats.devices_lost == 1, "device lost", 8)
            assert 1.8 <= loop.time() - silent_at <= 4.0  # its 2 s profile, with some slack
            await box.send(topics.heartbeat, beat)
            await until(lambda: receiver.stats.devices_restored == 1, "restore", 5)
        finally:
            await box.stop()
        kinds = [a["kind"] for a in receiver.store.station_alarms()]
        (status,) = receiver.store.device_status(0)
    assert kinds == [supervision.RESTORED, supervision.LOST]
    assert json.loads(json.dumps(status))["supervision"] == "ok"
