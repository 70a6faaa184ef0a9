"""One alarm end to end through a real mosquitto: box -> outbox -> MQTT -> station -> ack."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge import app
from edge.config import EdgeConfig, parse
from edge.station.store import StationStore
from tests.conftest import BOX_AUTH, DEMO_CONFIG, Broker, edge_cmd, free_port, wait_for

pytestmark = pytest.mark.broker


def demo_text(broker_port: int, web_port: int, ack_timeout_s: float = 10) -> str:
    text = DEMO_CONFIG.read_text()
    for old, new in (
        ('broker = "mqtt://127.0.0.1:18830"', f'broker = "mqtt://127.0.0.1:{broker_port}"'),
        ("port = 8080", f"port = {web_port}"),
        ("ack_timeout_s = 10", f"ack_timeout_s = {ack_timeout_s}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def without_video(text: str) -> str:
    """A demo config without its camera: for tests that count every message or byte
    of the uplink, which the alarm clips and stills would add to."""
    text = re.sub(r'^cameras = \["entrance"\]\n', "", text, flags=re.MULTILINE)
    block = re.search(r"^\[\[cameras\]\]\n(?:[a-z_]+ = .*\n)+", text, flags=re.MULTILINE)
    assert block is not None, "the demo config has a camera"
    return text.replace(block.group(0), "")


def demo_config(broker_port: int, ack_timeout_s: float = 10) -> EdgeConfig:
    return parse(demo_text(broker_port, free_port(), ack_timeout_s), "test.toml")


def station_rows(db: Path, **where: str) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("SELECT * FROM events ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # table not created yet
        return []
    finally:
        con.close()
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def outbox_ids(state_dir: Path) -> list[str]:
    con = sqlite3.connect(state_dir / "outbox.sqlite")
    try:
        return [r[0] for r in con.execute("SELECT id FROM events")]
    finally:
        con.close()


async def until(predicate: Callable[[], object], timeout_s: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def start_station(spawn: Callable[..., subprocess.Popen[bytes]], broker: Broker, db: Path) -> None:
    spawn("station", "station", "run", "--broker", broker.url, "--db", str(db))


def box_status(web_port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{web_port}/api/status"
    with urllib.request.urlopen(urllib.request.Request(url, headers=BOX_AUTH), timeout=5) as resp:
        status: dict[str, Any] = json.load(resp)
    return status


def device_states(db: Path) -> dict[str, str]:
    """Devices the station has heard a retained birth/will from (so it is subscribed)."""
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT device, state FROM devices WHERE state IS NOT NULL"))
    except sqlite3.OperationalError:  # table not created yet
        return {}
    finally:
        con.close()


class RunningBox:
    """The box in this process, on mock pins, as ``edge run`` would run it."""

    def __init__(self, cfg: EdgeConfig, state_dir: Path) -> None:
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.box: app.Box | None = None
        self.task = asyncio.create_task(
            app.run(cfg, state_dir, stop=self.stop, ready=self._ready), name="box"
        )

    def _ready(self, box: app.Box) -> None:
        self.box = box
        self.ready.set()

    async def __aenter__(self) -> app.Box:
        await asyncio.wait_for(self.ready.wait(), 10)
        assert self.box is not None
        return self.box

    async def __aexit__(self, *_exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


async def test_alarm_reaches_station_once_and_leaves_outbox(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    state = tmp_path / "box"
    async with RunningBox(demo_config(broker.port), state) as box:
        await until(lambda: box.link.status.connected, what="box connected")
        await until(lambda: device_states(station_db), what="station subscribed")
        assert box.outbox.depth == 0  # no arm/disarm invented at boot
        box.inputs.simulate("in3", True)  # the fire panel's output
        await until(lambda: station_rows(station_db, kind="alarm"), what="alarm at station")
        await until(lambda: box.outbox.depth == 0, what="outbox drained by the ack")
        assert box.forwarder.stats.acked == 1
    alarms = station_rows(station_db, kind="alarm")
    assert len(alarms) == 1
    alarm = alarms[0]
    assert (alarm["zone_id"], alarm["cid"], alarm["sia"]) == ("fire", "1110", "FA")
    assert alarm["device"] == "demo-box-01" and alarm["account"] == "1234"
    assert alarm["deliveries"] == 1 and alarm["historical"] == 0
    assert alarm["armed"] == 0  # the demo panel starts disarmed
    assert outbox_ids(state) == []


async def test_event_waits_in_outbox_until_station_acknowledges(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """No station: the broker takes the event, but only the station's ack deletes it,
    across a restart of the box, with the same id and sequence number."""
    state = tmp_path / "box"
    cfg = demo_config(broker.port, ack_timeout_s=1)
    async with RunningBox(cfg, state) as box:
        await until(lambda: box.link.status.connected, what="box connected")
        box.inputs.simulate("in4", True)  # panic button (NO contact)
        await until(lambda: box.forwarder.stats.published >= 2, what="a resend without an ack")
        assert box.outbox.depth == 1  # the broker took it twice, nobody acknowledged it
    pending = outbox_ids(state)
    assert len(pending) == 1

    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    async with RunningBox(cfg, state) as box:
        # the panic button was released while the box was down: its restore follows
        await until(lambda: len(station_rows(station_db)) == 2, what="backlog at station")
        await until(lambda: box.outbox.depth == 0, what="outbox drained")
    rows = station_rows(station_db)
    assert [r["id"] for r in rows[:1]] == pending
    panic, restore = rows
    assert (panic["zone_id"], panic["seq"], panic["cid"]) == ("panic", 1, "1120")
    assert (restore["zone_id"], restore["seq"], restore["cid"]) == ("panic", 2, "3120")
    assert outbox_ids(state) == []


def test_cli_box_station_and_simulator(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """The demo path with real processes: edge run, edge station run, edge simulate."""
    web_port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(demo_text(broker.port, web_port))
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    state = tmp_path / "box"
    box = spawn("box", "run", "--config", str(config), "--state-dir", str(state))
    wait_for(lambda: device_states(station_db) == {"demo-box-01": "online"}, 15, "box online")
    for args in (("arm",), ("trip", "front-door", "--hold-s", "0.3")):
        result = subprocess.run(
            edge_cmd("simulate", "--config", str(config), *args),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
    wait_for(lambda: station_rows(station_db, kind="restore"), 15, "restore at station")
    wait_for(lambda: box_status(web_port)["outbox"]["depth"] == 0, 15, "the box to get the ack")
    box.send_signal(signal.SIGTERM)
    assert box.wait(15) == 0
    kinds = [(r["kind"], r["zone_id"]) for r in station_rows(station_db)]
    assert kinds == [
        ("arm", "armed"),
        ("alarm", "front-door"),
        ("restore", "front-door"),
    ]
    front = station_rows(station_db, kind="alarm")[0]
    assert (front["cid"], front["sia"], front["armed"]) == ("1130", "BA", 1)
    assert outbox_ids(state) == []
    store = StationStore(station_db)
    store.open()
    try:
        wait_for(lambda: [d["state"] for d in store.devices()] == ["offline"], 10, "offline")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("trip", "nope"), "no input wired to zone 'nope'"),
        (("restore", "nope"), "no input wired to zone 'nope'"),
        (("trip", "fire"), "no box answering"),
        (("restore", "fire"), "no box answering"),
        (("pulse", "fire"), "no box answering"),
    ],
)
def test_simulate_reports_unknown_zone_and_dead_box(
    tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(demo_text(free_port(), free_port()))
    result = subprocess.run(
        edge_cmd("simulate", "--config", str(config), *args),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert error in result.stderr
    dead = subprocess.run(
        edge_cmd("simulate", "--config", str(config), "trip", "fire"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert dead.returncode == 1
    assert "no box answering" in dead.stderr
