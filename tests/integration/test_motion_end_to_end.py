"""Motion through the whole box: synthetic camera (figures walking) -> motion stage ->
outbox -> real mosquitto -> station. Disarmed: nothing is sent; armed: one motion event
per cooldown, with its clip; an alarm carries its motion evidence."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import parse
from tests.conftest import Broker
from tests.integration.test_end_to_end import (
    RunningBox,
    device_states,
    start_station,
    station_rows,
    until,
)
from tests.integration.test_video_alarm import media_of, small_demo

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def motion_demo(broker_port: int) -> str:
    text = small_demo(broker_port)
    old = "[motion]\nevents_when_armed = false\n"
    assert old in text
    return text.replace(old, "[motion]\nevents_when_armed = true\nevidence_window_s = 3\n")


async def test_motion_is_sent_only_while_armed_and_an_alarm_carries_its_evidence(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(motion_demo(broker.port), "motion.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        assert box.motion is not None
        await until(lambda: device_states(station_db), 15, "station subscribed")
        cam = lambda: box.motion.status()["cameras"]["entrance"]  # noqa: E731
        await until(lambda: cam()["frames"] >= 40 and not cam()["calibrating"], 15, "learnt")
        await until(lambda: cam()["motion"], 10, "the walking figures seen (disarmed)")
        seen_disarmed = cam()["frames"]
        assert box.outbox.depth == 0 and not station_rows(station_db, kind="motion")

        box.inputs.simulate("in6", True)  # the panel's armed output
        await until(lambda: station_rows(station_db, kind="motion"), 15, "a motion event")
        await until(lambda: box.outbox.depth == 0, 10, "acknowledged")
        box.inputs.simulate("in1", True)  # front door opens: an intrusion alarm while armed
        await until(lambda: station_rows(station_db, kind="alarm"), 10, "the alarm")
        first = station_rows(station_db, kind="motion")[0]["id"]
        clip = lambda: [k for k, _ in media_of(station_db, first) if k == "clip"]  # noqa: E731
        await until(clip, 20, "the motion event's clip")
        status = box.motion.status()
    assert seen_disarmed >= 40 and status["dropped"] <= status["processed"]
    assert status["cameras"]["entrance"]["tamper"] == []
    motions = [json.loads(r["body"]) for r in station_rows(station_db, kind="motion")]
    armed = [m for m in motions if m["extra"]["reason"] == "armed"]
    assert len(armed) == 1  # one per camera area per cooldown (60 s)
    arm = station_rows(station_db, kind="arm")[0]
    motion_row = station_rows(station_db, kind="motion")[0]
    assert motion_row["occurred_ms"] >= arm["occurred_ms"]  # nothing while it was disarmed
    assert armed[0]["extra"]["camera"] == "entrance" and armed[0]["extra"]["areas"] == "picture"
    assert armed[0]["cid"] == "1140" and armed[0]["condition"] == "video_motion"
    assert armed[0]["extra"]["boxes"]
    alarm = json.loads(station_rows(station_db, kind="alarm")[0]["body"])
    assert alarm["extra"]["motion_seen"] == "true"  # the figures walked in the last 3 s
    assert alarm["extra"]["motion_camera"] == "entrance" and alarm["extra"]["motion_boxes"]
    assert int(alarm["extra"]["motion_frames"]) >= 10
    assert not station_rows(station_db, kind="tamper")
