"""Mock pins through the timed zone state machine to the station, via a real broker:
alarm and restore, tamper, arm/disarm, a glitch ignored, and swinger shutdown."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import parse
from tests.conftest import Broker, free_port
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    device_states,
    start_station,
    station_rows,
    until,
)

pytestmark = pytest.mark.broker

# The intrusion zones get short timers so the test runs in seconds.
FAST = "glitch_ms = 20\nrestore_ms = 100\nhold_s = 0\nswinger_limit = 2\n"


def config_text(broker_port: int) -> str:
    text = demo_text(broker_port, free_port())
    for zone in ("front-door", "panel-tamper"):
        key = f'id = "{zone}"\n'
        text = text.replace(key, key + FAST, 1)
    return text


async def test_zone_events_reach_the_station_with_their_codes(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(config_text(broker.port), "zones.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")

        async def pulse(name: str, seconds: float) -> None:
            box.inputs.simulate(name, True)
            await asyncio.sleep(seconds)
            box.inputs.simulate(name, False)

        await pulse("in1", 0.005)  # 5 ms on the front door: a glitch, ignored
        box.inputs.simulate("in6", True)  # the panel arms
        await until(lambda: station_rows(station_db, kind="arm"), 10, "arm")
        for _ in range(3):  # two alarms allowed, the third trip is a swinger
            await pulse("in1", 0.1)
            await asyncio.sleep(0.3)
        await pulse("in5", 0.1)  # panel tamper loop opened
        await until(
            lambda: len(station_rows(station_db, zone_id="panel-tamper")) == 2, 10, "tamper"
        )
        box.inputs.simulate("in6", False)  # disarm: ends the swinger shutdown
        await until(lambda: station_rows(station_db, kind="disarm"), 10, "disarm")
        await until(lambda: box.outbox.depth == 0, 10, "all acknowledged")
    rows = station_rows(station_db)
    front = [(r["kind"], r["cid"]) for r in rows if r["zone_id"] == "front-door"]
    assert front == [
        ("alarm", "1130"),
        ("restore", "3130"),
        ("alarm", "1130"),
        ("restore", "3130"),
        ("trouble", "1300"),  # swinger shutdown
        ("trouble_restore", "3300"),  # ended by the disarm
    ]
    tamper = [(r["kind"], r["cid"], r["sia"]) for r in rows if r["zone_id"] == "panel-tamper"]
    assert tamper == [("tamper", "1137", "TA"), ("tamper_restore", "3137", "TR")]
    arming = [(r["kind"], r["cid"]) for r in rows if r["zone_id"] == "armed"]
    assert arming == [("arm", "3401"), ("disarm", "1401")]
    alarms = [r for r in rows if r["kind"] == "alarm"]
    assert all(r["armed"] == 1 for r in alarms)
