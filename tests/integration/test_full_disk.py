"""A full disk never holds back an alarm (issue 14), on a real small file system.

The box's state folder is a tmpfs of its own, filled by a ballast file until not
one block is free, as a full SD card is; the broker and the station are real and
run on the machine's disk. Mounting needs root (CI runs as root): elsewhere these
tests skip, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import parse
from tests.conftest import Broker, fill, free_port
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    device_states,
    start_station,
    station_rows,
    until,
)
from tests.integration.test_video_alarm import media_of

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(300)]
Spawn = Callable[..., subprocess.Popen[bytes]]


def free_bytes(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def disk_config(broker: Broker, recording: bool, keep_free: str = "1MiB") -> str:
    text = demo_text(broker.port, free_port(), ack_timeout_s=5)
    for old, new in (
        ("width = 640\nheight = 360\nfps = 10", "width = 320\nheight = 180\nfps = 10"),
        ("pre_roll_s = 5\npost_roll_s = 5", "pre_roll_s = 2\npost_roll_s = 2"),
        (
            "[recording]\n",
            f"[recording]\nenabled = {str(recording).lower()}\nsegment_s = 10\n"
            f'keep_free_bytes = "{keep_free}"\n',
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("recording", [False, True], ids=["recording-off", "recording-on"])
async def test_a_fire_on_a_full_disk_reaches_the_station_within_5_s(
    broker: Broker, spawn: Spawn, small_disk: Path, tmp_path: Path, recording: bool
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(disk_config(broker, recording), "full-disk.toml")
    async with RunningBox(cfg, small_disk) as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")
        await until(lambda: box.link.status.connected, 10, "box connected")
        await until(
            lambda: box.outbox.reserve is not None and box.outbox.reserve.held, 5, "reserve"
        )
        ballast = fill(small_disk)
        assert free_bytes(small_disk) == 0
        tripped = time.monotonic()
        box.inputs.simulate("in3", True)  # the fire panel's output
        await until(lambda: station_rows(station_db, kind="alarm"), 5, "the fire at the station")
        print(f"fire at the station {time.monotonic() - tripped:.2f} s after the trip")
        # the box says what is wrong, but keeps pinging systemd's watchdog
        await until(lambda: "outbox" in box.health.problems(), 5, "the storage fault shown")
        assert box.health.problems(watchdog_only=True) == {}
        # the station heard of the fault too: one system trouble (300)
        await until(
            lambda: [
                r
                for r in station_rows(station_db, kind="trouble")
                if _text(r).startswith("outbox:")
            ],
            10,
            "the outbox's trouble",
        )
        box.inputs.simulate("in3", False)
        await until(lambda: station_rows(station_db, kind="restore"), 10, "the restore")
        # room again: everything is committed, acknowledged, the reserve taken back
        ballast.unlink()
        await until(
            lambda: not box.outbox.held and box.outbox.reserve.held,  # type: ignore[union-attr]
            20,
            "events on disk and the reserve back",
        )
        await until(lambda: box.outbox.depth == 0, 20, "the outbox drained")
        await until(lambda: "outbox" not in box.health.problems(), 10, "healthy again")
        await until(
            lambda: [
                r
                for r in station_rows(station_db, kind="trouble_restore")
                if _text(r).startswith("outbox:")
            ],
            10,
            "the trouble's restore",
        )
    fires = [r for r in station_rows(station_db) if r["cid"] in ("1110", "3110")]
    assert [r["kind"] for r in fires] == ["alarm", "restore"]  # once each at the station
    troubles = [r["kind"] for r in station_rows(station_db) if _text(r).startswith("outbox:")]
    assert troubles == ["trouble", "trouble_restore"]  # one pair for the episode


def _text(row: sqlite3.Row) -> str:
    return str(json.loads(row["body"]).get("text", ""))


async def test_alarm_media_on_a_full_disk_outrank_continuous_recording(
    broker: Broker, spawn: Spawn, small_disk: Path, tmp_path: Path
) -> None:
    """The disk is full of footage under an incident hold, so nothing can be freed when
    an alarm comes: its stills and clip wait (recording yields meanwhile). Once the
    hold is released, they make room from the oldest footage and reach the station;
    continuous recording, which would refill freed room at once, does not take it.
    (No keep_free_bytes here: recording fills every byte it frees, as in the field.)"""
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(disk_config(broker, recording=True, keep_free="0"), "full-disk.toml")
    async with RunningBox(cfg, small_disk) as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")
        recorder = box.video.recorder
        await until(lambda: len(recorder.segments()) >= 2, 40, "footage on disk")
        now = int(time.time() * 1000)
        await box.video.hold(
            "entrance", 0, now + 3_600_000, now + 3_600_000, "test", "case 1", "h1"
        )
        fill(small_disk)
        box.inputs.simulate("in3", True)
        await until(lambda: station_rows(station_db, kind="alarm"), 5, "the fire")
        alarm = station_rows(station_db, kind="alarm")[0]["id"]
        await until(lambda: box.video.media_waiting, 10, "the alarm's media waiting for room")
        await asyncio.sleep(3)
        assert recorder.yielding  # no new footage while they wait
        assert media_of(station_db, alarm) == []  # nothing could be freed yet
        await box.video.release("h1", "test", "case closed")
        await until(
            lambda: sorted(k for k, _p in media_of(station_db, alarm)) == ["clip"] + ["still"] * 5,
            60,
            "the alarm's five stills and its clip at the station",
        )
        assert not box.video.media_lost
        deletions = [e for e in recorder.access.entries() if e["action"] == "delete"]
        assert deletions, "room was made from footage"
