"""The station receiver through a real mosquitto: events and media chunks in, acks out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edge.mqttio import LinkSettings, Message, MqttLink
from edge.protocol import (
    Ack,
    MediaProgress,
    Topics,
    chunk_properties,
    decode_ack,
    encode_event,
    encode_state,
)
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import StationStore
from tests.conftest import Broker, edge_cmd, wait_for
from tests.unit.test_station_store import T0, blob, event_message, headers

pytestmark = [pytest.mark.broker, pytest.mark.timeout(20)]

DEVICE = "gw-1"


class Device:
    """An MqttLink acting as a box: publishes events and chunks, hears its acks."""

    def __init__(self, broker: Broker, device: str = DEVICE) -> None:
        self.topics = Topics("edge", device)
        self.link = MqttLink(
            LinkSettings(
                host=broker.host,
                port=broker.port,
                client_id=f"box-{device}",
                subscriptions=((self.topics.ack, 1),),
            )
        )

    async def start(self) -> None:
        await self.link.start()
        assert await self.link.wait_connected(5), "device did not connect"

    async def stop(self) -> None:
        await self.link.stop()

    async def send(
        self,
        topic: str,
        payload: bytes,
        retain: bool = False,
        properties: tuple[tuple[str, str], ...] = (),
    ) -> None:
        message = Message(topic, payload, retain=retain, properties=properties)
        await self.link.publish(message, timeout_s=5)

    async def online(self) -> None:
        body = encode_state("online", boot_id="b", version="t", at_ms=T0)
        await self.send(self.topics.state, body, retain=True)

    async def event(self, event_id: str, seq: int = 1) -> None:
        message = event_message(event_id, self.topics.device, seq)
        await self.send(self.topics.events, encode_event(message))

    async def chunks(
        self,
        data: bytes,
        indices: list[int] | None = None,
        *,
        media_id: str = "still-1",
        event_id: str = "ev-1",
        chunk_bytes: int = 100,
        kind: str = "still",
        sha256: str | None = None,
    ) -> None:
        parts = headers(data, chunk_bytes, kind=kind, sha256=sha256)
        for i in range(len(parts)) if indices is None else indices:
            chunk, payload = parts[i]
            topic = self.topics.media(event_id, media_id)
            await self.send(topic, payload, properties=chunk_properties(chunk))

    async def ack(self, timeout_s: float = 4.0) -> Ack:
        message = await asyncio.wait_for(self.link.inbox.get(), timeout_s)
        assert message.topic == self.topics.ack
        return decode_ack(message.payload)

    async def until(self, want: Callable[[Ack], bool], timeout_s: float = 4.0) -> Ack:
        """Read acks until one satisfies ``want``."""
        async with asyncio.timeout(timeout_s):
            while not want(ack := await self.ack(timeout_s)):
                pass
        return ack


def progress_of(ack: Ack, media_id: str = "still-1") -> MediaProgress | None:
    return next((m for m in ack.media if m.media_id == media_id), None)


def complete(media_id: str = "still-1") -> Callable[[Ack], bool]:
    def test(ack: Ack) -> bool:
        p = progress_of(ack, media_id)
        return p is not None and p.complete

    return test


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def station(broker: Broker, db: Path) -> AsyncIterator[Receiver]:
    """The receiver in this process, as ``edge station run`` runs it."""
    receiver = Receiver(StationSettings(broker.host, broker.port, db))
    connected = asyncio.Event()
    task = asyncio.create_task(receiver.run(connected.set), name="station")
    await asyncio.wait_for(connected.wait(), 5)
    try:
        yield receiver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def device(broker: Broker, receiver: Receiver | None = None) -> AsyncIterator[Device]:
    """A connected device; with ``receiver``, once the station is known to hear it."""
    box = Device(broker)
    await box.start()
    try:
        if receiver is not None:
            await box.online()  # retained: the station hears it once subscribed
            await until(lambda: receiver.store.devices(), "the station to hear the device")
        yield box
    finally:
        await box.stop()


async def test_event_then_still_are_acknowledged_and_stored(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "station.sqlite"
    data = blob(4_321)
    async with station(broker, db) as receiver, device(broker, receiver) as box:
        await box.event("ev-1")
        assert (await box.ack()).ids == ("ev-1",)
        await box.chunks(data, chunk_bytes=1_000)
        ack = await box.until(complete())
        assert progress_of(ack) == MediaProgress("still-1", 5, complete=True)
        assert receiver.stats.media_complete == 1
        (row,) = receiver.store.media("ev-1")
    path = db.parent / "station.sqlite.media" / DEVICE / "ev-1" / "still-1.jpg"
    assert row.path == path and path.read_bytes() == data
    assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_lost_chunk_holds_have_until_resent(broker: Broker, tmp_path: Path) -> None:
    data = blob(400)
    async with station(broker, tmp_path / "s.sqlite") as receiver, device(broker, receiver) as box:
        await box.chunks(data, [0, 1])
        await box.until(lambda a: progress_of(a) == MediaProgress("still-1", 2))
        await box.chunks(data, [3])  # chunk 2 was lost
        assert progress_of(await box.ack()) == MediaProgress("still-1", 2, complete=False)
        await box.chunks(data, [2])
        assert progress_of(await box.ack()) == MediaProgress("still-1", 4, complete=True)
        await box.chunks(data, [3])  # the complete ack was lost: acked complete again
        assert progress_of(await box.ack()) == MediaProgress("still-1", 4, complete=True)
        assert receiver.stats.duplicate_chunks == 1


async def test_bad_checksum_is_acked_have_zero_then_resent(broker: Broker, tmp_path: Path) -> None:
    data = blob(300)
    async with station(broker, tmp_path / "s.sqlite") as receiver, device(broker, receiver) as box:
        await box.chunks(data, sha256="0" * 64)
        await box.until(lambda a: progress_of(a) == MediaProgress("still-1", 0))
        assert receiver.stats.media_corrupt == 1
        await box.chunks(data)
        await box.until(complete())
    path = tmp_path / "s.sqlite.media" / DEVICE / "ev-1" / "still-1.jpg"
    assert path.read_bytes() == data


async def test_retransmitted_event_is_acked_again_and_stored_once(
    broker: Broker, tmp_path: Path
) -> None:
    async with station(broker, tmp_path / "s.sqlite") as receiver, device(broker, receiver) as box:
        for _ in range(3):
            await box.event("ev-1")
            assert (await box.ack()).ids == ("ev-1",)
        events = receiver.store.events()
    assert [(r.id, r.deliveries) for r in events] == [("ev-1", 3)]


async def test_burst_of_events_all_acked_in_few_transactions(
    broker: Broker, tmp_path: Path
) -> None:
    ids = [f"ev-{i:03d}" for i in range(200)]
    async with station(broker, tmp_path / "s.sqlite") as receiver, device(broker, receiver) as box:
        await asyncio.gather(*(box.event(i, seq) for seq, i in enumerate(ids, 1)))
        acked: list[str] = []
        while len(acked) < len(ids):
            acked += (await box.ack()).ids
        assert sorted(acked) == ids  # each once: no event is in two batches
        assert len(receiver.store.events(limit=1_000)) == 200
        assert receiver.store.commits == receiver.stats.batches < len(ids)  # group commit


async def test_malformed_messages_do_not_stop_the_receiver(broker: Broker, tmp_path: Path) -> None:
    data = blob(200)
    async with station(broker, tmp_path / "s.sqlite") as receiver, device(broker, receiver) as box:
        t = box.topics
        await box.send(t.events, b"\xff not json")
        await box.send(t.heartbeat, b'{"v":1,"interval_s":"often"}')
        await box.send(t.media("ev-1", "still-1"), b"no user properties")
        await box.send(t.media("ev-1", "still-1"), data[:100], properties=(("v", "1"),))
        await box.chunks(data, [0])
        await box.chunks(data, [1], kind="clip")  # contradicts chunk 0
        await box.event("ev-ok")
        await box.until(lambda a: "ev-ok" in a.ids)
        assert receiver.stats.rejected == 5
        await box.chunks(data, [1])
        await box.until(complete())


async def test_media_resumes_after_reconnect_and_station_restart(
    broker: Broker, tmp_path: Path
) -> None:
    db = tmp_path / "station.sqlite"
    data = blob(1_000, seed=4)
    async with station(broker, db) as receiver, device(broker, receiver) as box:
        await box.chunks(data, [0, 1, 2], media_id="clip-1", kind="clip", chunk_bytes=200)
        await box.until(lambda a: progress_of(a, "clip-1") == MediaProgress("clip-1", 3))
    # The box reconnects to a restarted station and resumes from chunk 2 (its last
    # ack may have been lost, so chunk 2 arrives twice).
    async with station(broker, db) as receiver, device(broker, receiver) as box:
        await box.chunks(data, [2, 3, 4], media_id="clip-1", kind="clip", chunk_bytes=200)
        ack = await box.until(complete("clip-1"))
        assert progress_of(ack, "clip-1") == MediaProgress("clip-1", 5, complete=True)
    assert (tmp_path / "station.sqlite.media" / DEVICE / "ev-1" / "clip-1.mp4").read_bytes() == data


async def test_cli_station_stores_and_lists_media(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    db = tmp_path / "station.sqlite"
    spawn("station", "station", "run", "--broker", broker.url, "--db", str(db), "--batch-max", "8")
    data = blob(2_500)
    box = Device(broker)
    await box.start()
    try:
        await box.online()
        await asyncio.to_thread(wait_for, lambda: _devices(db), 10, "station subscribed")
        await box.event("ev-1")
        await box.chunks(data, media_id="clip-1", kind="clip", chunk_bytes=300)
        acked: list[str] = []
        await box.until(lambda a: acked.extend(a.ids) or complete("clip-1")(a))
        assert acked == ["ev-1"]
    finally:
        await box.stop()
    listing = await asyncio.to_thread(
        subprocess.run,
        edge_cmd("station", "media", "--db", str(db), "ev-1"),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert listing.returncode == 0, listing.stderr
    path = tmp_path / "station.sqlite.media" / DEVICE / "ev-1" / "clip-1.mp4"
    assert f"clip  clip-1  2500 bytes  sha256 {hashlib.sha256(data).hexdigest()}" in listing.stdout
    assert str(path) in listing.stdout and path.read_bytes() == data
    events = await asyncio.to_thread(
        subprocess.run,
        edge_cmd("station", "events", "--db", str(db)),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert "media 1" in events.stdout and "id ev-1" in events.stdout


def _devices(db: Path) -> bool:
    if not db.exists():
        return False
    store = StationStore(db)
    try:
        store.open()
        return bool(store.devices())
    except Exception:  # the receiver is still creating the schema
        return False
    finally:
        store.close()
