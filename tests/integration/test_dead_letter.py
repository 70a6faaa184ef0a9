"""A message the broker refuses goes to the dead-letter table with a trouble event,
and never loops: neither an oversized packet nor a topic the ACL denies."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from edge.codes import Condition
from edge.config import parse
from edge.station.receiver import Receiver, StationSettings
from tests.conftest import free_port, wait_for
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    station_rows,
    until,
    without_video,
)

pytestmark = pytest.mark.broker


def start_mosquitto(tmp: Path, extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    # as root mosquitto would switch to its own user, who cannot read our tmp files
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}{extra}"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            return False
        return True

    wait_for(up, 10, "mosquitto")
    return proc, port


def dead_letters(state: Path) -> list[tuple[str, str, int]]:
    con = sqlite3.connect(state / "outbox.sqlite")
    try:
        return list(con.execute("SELECT what, reason, code FROM dead_letters ORDER BY at_ms"))
    finally:
        con.close()


async def test_oversized_media_is_dead_lettered_with_a_trouble(tmp_path: Path) -> None:
    proc, port = start_mosquitto(tmp_path, "max_packet_size 8192\n")
    try:
        station_db = tmp_path / "station.sqlite"
        station = Receiver(StationSettings("127.0.0.1", port, station_db))
        station_task = asyncio.create_task(station.run())
        text = without_video(demo_text(port, free_port())).replace(
            "ack_timeout_s = 10", "ack_timeout_s = 2\nchunk_bytes = 16384"
        )
        state = tmp_path / "box"
        async with RunningBox(parse(text, "t.toml"), state) as box:
            await until(lambda: box.link.status.connected, what="box connected")
            assert box.link.status.max_packet == 8192
            alarm = await box.raise_event(Condition.FIRE, False, "fire panel")
            await box.outbox.put_media(
                alarm, "big-still", "still", "image/jpeg", os.urandom(40_000)
            )
            await until(lambda: box.outbox.media_count == 0, what="media dead-lettered")
            await until(
                lambda: station_rows(station_db, cid="1354"), what="354 trouble at the station"
            )
            refused = box.forwarder.stats.refused
            await asyncio.sleep(0.5)  # a loop would keep refusing and reconnecting
            assert box.forwarder.stats.refused == refused
            assert box.link.status.connects == 1  # the broker never dropped us
        assert [(w, c) for w, _r, c in dead_letters(state)] == [("media", 0x95)]
        assert len(station_rows(station_db, kind="alarm")) == 1
        station_task.cancel()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_acl_denied_events_are_dead_lettered_without_a_loop(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    device = "edge/demo-box-01"
    acl.write_text(
        f"topic readwrite {device}/state\ntopic write {device}/heartbeat\n"
        f"topic read {device}/ack\ntopic read {device}/cmd\n"
    )
    proc, port = start_mosquitto(tmp_path, f"acl_file {acl}\n")
    try:
        state = tmp_path / "box"
        cfg = parse(without_video(demo_text(port, free_port(), ack_timeout_s=2)), "t.toml")
        async with RunningBox(cfg, state) as box:
            await until(lambda: box.link.status.connected, what="box connected")
            box.inputs.simulate("in3", True)  # fire alarm: refused by the ACL
            # the alarm, then the 354 trouble about it, are both refused; the
            # trouble about a refused trouble is not raised again
            await until(lambda: box.forwarder.stats.refused >= 2, what="refusals")
            await until(lambda: box.outbox.depth == 0, what="outbox emptied")
            await asyncio.sleep(1.0)
            assert box.forwarder.stats.refused == 2
            assert box.outbox.depth == 0
        letters = dead_letters(state)
        assert [(w, c) for w, _r, c in letters] == [("event", 0x87), ("event", 0x87)]
    finally:
        proc.terminate()
        proc.wait(10)
