"""The uplink end to end through a real mosquitto: media, commands, supervision, heartbeat,
and a broker restart. The box and the reference station run in this process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from edge import app, protocol
from edge.clock import Clock, FakeClock
from edge.config import EdgeConfig, parse
from edge.errors import UplinkError
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.protocol import Command, SnapshotArgs, TestArgs, decode_result, encode_command
from edge.station.receiver import Receiver, StationSettings
from edge.uplink.supervision import Change
from tests.conftest import Broker, free_port, start_broker
from tests.integration.test_end_to_end import demo_text, until

pytestmark = pytest.mark.broker

DEVICE = "demo-box-01"
TOPICS = protocol.Topics("edge", DEVICE)
PATH_FAULT_PIN = 16  # config/demo.toml: [[outputs]] path-fault


def config(
    broker: Broker,
    *,
    ack_timeout_s: float = 10,
    chunk_bytes: int | None = None,
    heartbeat_s: int = 30,
    path_loss_s: int = 90,
) -> EdgeConfig:
    text = demo_text(broker.port, free_port(), ack_timeout_s)
    supervision = "heartbeat_s = 30\npath_loss_s = 90\n"
    assert supervision in text
    text = text.replace(supervision, f"heartbeat_s = {heartbeat_s}\npath_loss_s = {path_loss_s}\n")
    if chunk_bytes is not None:
        head = "[uplink]\n"
        assert head in text
        text = text.replace(head, f"{head}chunk_bytes = {chunk_bytes}\n")
    return parse(text, "test.toml")


class BoxRun:
    """The whole box in this process on mock pins, as ``edge run`` runs it; any clock."""

    def __init__(self, cfg: EdgeConfig, state_dir: Path, clock: Clock | None = None) -> None:
        self.stop = asyncio.Event()
        self.box: app.Box | None = None
        self.task = asyncio.create_task(
            app.run(cfg, state_dir, clock=clock, stop=self.stop, ready=self._ready), name="box"
        )

    def _ready(self, box: app.Box) -> None:
        self.box = box

    async def __aenter__(self) -> app.Box:
        await until(lambda: self.box or self.task.done(), 10, "the box to start")
        if self.task.done():
            self.task.result()  # the box's own error, rather than a timeout
        assert self.box is not None
        box = self.box
        await until(lambda: box.link.status.connected, 5, "the box to connect")
        return box

    async def __aexit__(self, *_exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


class StationRun:
    """The reference station receiver in this process."""

    def __init__(self, broker: Broker, db: Path) -> None:
        self.receiver = Receiver(StationSettings(broker.host, broker.port, db))
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receiver:
        self.task = asyncio.create_task(self.receiver.run(self.ready.set), name="station")
        await asyncio.wait_for(self.ready.wait(), 10)
        return self.receiver

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def rows(station: Receiver, **where: Any) -> list[dict[str, Any]]:
    """The station's stored events in sequence order, filtered by column values."""
    con = sqlite3.connect(station.settings.db)
    con.row_factory = sqlite3.Row
    try:
        found = [dict(r) for r in con.execute("SELECT * FROM events ORDER BY seq")]
    finally:
        con.close()
    return [r for r in found if all(r[k] == v for k, v in where.items())]


def device(station: Receiver) -> dict[str, Any]:
    devices = {d["device"]: d for d in station.store.devices()}
    return devices.get(DEVICE, {})


def outbox_bodies(state_dir: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(state_dir / "outbox.sqlite")
    try:
        return [json.loads(r[0]) for r in con.execute("SELECT body FROM events ORDER BY seq")]
    finally:
        con.close()


def path_fault_pin(box: app.Box) -> bool:
    """The level the panel sees on the path-fault output (active high in the demo)."""
    return bool(box.inputs.factory.pin(PATH_FAULT_PIN).state)


async def online(station: Receiver, after_ms: int = 0) -> None:
    """Wait until the station heard the box's birth (so both are subscribed)."""
    await until(
        lambda: device(station).get("state") == "online" and device(station)["state_ms"] > after_ms,
        10,
        "the box's birth at the station",
    )


# -- a. media ---------------------------------------------------------------


async def test_still_of_an_alarm_reaches_the_station_in_chunks(
    broker: Broker, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(40_000)  # 3 chunks of at most 16 KiB
    cfg = config(broker, chunk_bytes=16384)
    cfg = cfg.model_copy(update={"cameras": ()})  # no camera: this test's still is the only media
    async with (
        StationRun(broker, tmp_path / "station.sqlite") as station,
        BoxRun(cfg, tmp_path / "box") as box,
    ):
        await online(station)
        box.inputs.simulate("in3", True)  # the fire panel's output
        await until(lambda: rows(station, kind="alarm"), 5, "the alarm at the station")
        [alarm_row] = rows(station, kind="alarm")
        alarm = protocol.event_from_record(json.loads(alarm_row["body"]))

        queued = await box.outbox.put_media(alarm, "still-1", "still", "image/jpeg", data)
        assert queued.chunks == 3

        await until(lambda: station.store.media(alarm.id), 5, "the still at the station")
        await until(lambda: box.outbox.media_count == 0, 5, "the still out of the box's outbox")
        [still] = station.store.media(alarm.id)
        assert (still.device, still.media_id, still.kind) == (DEVICE, "still-1", "still")
        assert (still.content_type, still.size) == ("image/jpeg", len(data))
        assert still.sha256 == hashlib.sha256(data).hexdigest()
        assert hashlib.sha256(still.path.read_bytes()).hexdigest() == still.sha256
        assert station.stats.chunks == 3 and station.stats.media_complete == 1
        assert box.forwarder.stats.media_done == 1
        assert box.outbox.media_bytes == 0
        assert not list((tmp_path / "box").rglob("still-1.*"))  # the file left the box too
        [alarm_row] = rows(station, kind="alarm")
        assert alarm_row["deliveries"] == 1
        [stored] = [r for r in station.store.events(DEVICE) if r.id == alarm.id]
        assert stored.media == 1


# -- b. commands ------------------------------------------------------------


async def test_commands_from_the_station(broker: Broker, tmp_path: Path) -> None:
    operator = MqttLink(
        LinkSettings(
            broker.host,
            broker.port,
            "operator",
            subscriptions=((TOPICS.cmd_result, 1),),
        )
    )
    async with (
        StationRun(broker, tmp_path / "station.sqlite") as station,
        BoxRun(config(broker), tmp_path / "box") as box,
    ):
        await operator.start()
        try:
            assert await operator.wait_connected(5)
            await online(station)  # the box subscribed to cmd before it sent its birth

            async def ask(cid: str, args: Any, expires_in_s: float = 60) -> protocol.CommandResult:
                expires = round((time.time() + expires_in_s) * 1000)
                payload = encode_command(Command(cid, expires, args))
                await operator.publish(Message(TOPICS.cmd, payload))
                answer = await asyncio.wait_for(operator.inbox.get(), 5)
                assert answer.topic == TOPICS.cmd_result
                return decode_result(answer.payload)

            done = await ask("op-test-1", TestArgs("monthly test"))
            assert (done.command_id, done.status) == ("op-test-1", "done")
            event_id = done.details["event_id"]
            await until(lambda: rows(station, id=event_id), 5, "the test event at the station")
            [test] = rows(station, id=event_id)
            assert (test["kind"], test["cid"], test["sia"]) == ("test", "1601", "RX")
            assert json.loads(test["body"])["text"] == "monthly test"

            late = await ask("op-test-2", TestArgs(), expires_in_s=-1)
            assert (late.command_id, late.status) == ("op-test-2", "rejected")
            assert late.reason.startswith("expired: ")

            snap = await ask("op-snap-1", SnapshotArgs("garage"))  # not a camera of the box
            assert (snap.command_id, snap.status) == ("op-snap-1", "rejected")
            assert snap.reason.startswith("bad_args: no camera 'garage'")

            assert (box.commands.handled, box.commands.rejected) == (1, 2)
            await until(lambda: box.outbox.depth == 0, 5, "the test event acknowledged")
            assert len(rows(station, kind="test")) == 1  # only the valid test raised one
        finally:
            await operator.stop()


# -- c. supervision ---------------------------------------------------------


async def test_path_loss_trouble_output_and_restore(broker: Broker, tmp_path: Path) -> None:
    """Time is an input: the box runs on a fake clock, so a 10 s path loss takes no 10 s."""
    clock = FakeClock(start=time.time())
    cfg = config(broker, heartbeat_s=5, path_loss_s=10)
    state = tmp_path / "box"
    restarted: list[Broker] = []
    try:
        async with (
            StationRun(broker, tmp_path / "station.sqlite") as station,
            BoxRun(cfg, state, clock) as box,
        ):
            await online(station)
            assert box.outputs.state["path_fault"] is False and not path_fault_pin(box)
            seen_ms = device(station)["state_ms"]

            broker.stop()
            await until(lambda: not box.link.status.connected, 5, "the box to see the loss")
            await box.supervisor.check()  # the outage starts now (run_watch may beat us to it)
            assert box.supervisor.watch.down_since_s == clock.monotonic()
            clock.advance(9.999)
            assert await box.supervisor.check() == Change()
            assert box.outputs.state["path_fault"] is False
            clock.advance(0.001)
            await box.supervisor.check()
            assert box.supervisor.watch.path_lost
            assert box.outputs.state["path_fault"] is True and path_fault_pin(box)
            await until(lambda: box.outbox.depth == 1, 5, "the trouble in the outbox")
            [trouble] = outbox_bodies(state)
            assert (trouble["kind"], trouble["cid"], trouble["sia"]) == ("trouble", "1350", "YS")

            restarted.append(start_broker(tmp_path, port=broker.port))
            await until(lambda: box.link.status.connected, 8, "the box to reconnect")
            await online(station, after_ms=seen_ms)  # the station is subscribed again
            # Whatever the box sent before the station was back is due again after the
            # ack timeout: let that time pass on the box's clock.
            clock.advance(cfg.uplink.ack_timeout_s)
            box.forwarder.kick()
            await until(
                lambda: len(rows(station, cid="3350")) == 1, 5, "the restore at the station"
            )
            await until(lambda: box.outbox.depth == 0, 5, "the outbox drained")
            assert box.outputs.state["path_fault"] is False and not path_fault_pin(box)
            assert not box.supervisor.watch.path_lost
            comm = [r["cid"] for r in rows(station) if r["cid"] in ("1350", "3350")]
            assert comm == ["1350", "3350"]  # the trouble, then its restore, once each
    finally:
        for b in restarted:
            b.stop()


# -- d. heartbeat -----------------------------------------------------------


async def test_station_records_the_first_heartbeat_at_once(broker: Broker, tmp_path: Path) -> None:
    cfg = config(broker, heartbeat_s=5, path_loss_s=10)
    async with (
        StationRun(broker, tmp_path / "station.sqlite") as station,
        BoxRun(cfg, tmp_path / "box") as box,
    ):
        await until(lambda: device(station).get("heartbeat_ms"), 4, "the first heartbeat")
        heard = device(station)
        assert heard["heartbeat_interval_s"] == 5
        assert box.supervisor.heartbeats == 1
        assert heard["state"] == "online"
        assert abs(heard["heartbeat_ms"] - heard["state_ms"]) < 2000  # with the birth, not 5 s on


# -- e. broker restart ------------------------------------------------------


async def test_box_reconnects_after_a_broker_restart(broker: Broker, tmp_path: Path) -> None:
    cfg = config(broker, ack_timeout_s=2)
    state = tmp_path / "box"
    restarted: list[Broker] = []
    try:
        async with (
            StationRun(broker, tmp_path / "station.sqlite") as station,
            BoxRun(cfg, state) as box,
        ):
            await online(station)
            broker.stop()
            await until(lambda: not box.link.status.connected, 5, "the box to see the loss")
            box.inputs.simulate("in3", True)  # fire, while there is no path
            await until(lambda: box.outbox.depth == 1, 5, "the alarm in the outbox")
            [alarm] = outbox_bodies(state)
            assert alarm["kind"] == "alarm"

            restarted.append(start_broker(tmp_path, port=broker.port))  # same port
            await until(lambda: box.link.status.connected, 8, "the box to reconnect by itself")
            await until(lambda: rows(station, id=alarm["id"]), 5, "the alarm at the station")
            await until(lambda: box.outbox.depth == 0, 5, "the alarm acknowledged")
            assert len(rows(station, kind="alarm")) == 1
            assert station.stats.stored == 1
            assert box.link.status.connects == 2 and box.link.status.disconnects == 1
    finally:
        for b in restarted:
            b.stop()


async def test_a_full_publish_window_times_out_as_an_uplink_error(broker: Broker) -> None:
    """A publish that gets no slot in time fails like any other uplink failure, which the
    heartbeat, the sender and the command answers all handle (a bare TimeoutError would
    escape them and end the box's task group)."""
    link = MqttLink(LinkSettings(broker.host, broker.port, "slow-box", max_inflight=1))
    await link.start()
    try:
        assert await link.wait_connected(5)
        broker.proc.send_signal(signal.SIGSTOP)  # the broker stops answering
        try:
            first = asyncio.create_task(link.publish(Message("t/1", b"1"), timeout_s=5))
            await until(lambda: link.status.in_flight == 1, 2, "the first publish in flight")
            with pytest.raises(UplinkError, match=r"no free publish slot in 0\.2 s"):
                await link.publish(Message("t/2", b"2"), timeout_s=0.2)
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        await first  # acknowledged once the broker runs again
        await link.publish(Message("t/3", b"3"), timeout_s=5)  # and the slot came back
    finally:
        await link.stop()
