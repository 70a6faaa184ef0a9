"""A running box on mock pins logs its input trace; edge diag replay on that trace gives
exactly the events the station received from the box (kind, zone, codes, armed state,
time to the millisecond), from the text log and from the journal's JSON alike."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge import logs
from edge.__main__ import main
from edge.config import parse
from edge.protocol import parse_iso_ms
from tests.conftest import Broker
from tests.integration.test_end_to_end import (
    RunningBox,
    device_states,
    start_station,
    station_rows,
    until,
    without_video,
)
from tests.integration.test_zones_to_station import config_text

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def drive(box: object, station_db: Path) -> None:
    inputs = box.inputs  # type: ignore[attr-defined]

    async def pulse(name: str, seconds: float) -> None:
        inputs.simulate(name, True)
        await asyncio.sleep(seconds)
        inputs.simulate(name, False)

    await pulse("in1", 0.005)  # a glitch
    await pulse("in1", 0.1)  # disarmed: an intrusion zone says nothing
    inputs.simulate("in6", True)  # arm
    await until(lambda: station_rows(station_db, kind="arm"), 10, "arm")
    for _ in range(3):  # two alarms, then the swinger trouble
        await pulse("in1", 0.1)
        await asyncio.sleep(0.3)
    await pulse("in5", 0.1)  # panel tamper
    await pulse("in3", 0.1)  # fire
    await asyncio.sleep(0.2)
    inputs.simulate("in6", False)  # disarm: ends the swinger shutdown
    await until(lambda: station_rows(station_db, kind="disarm"), 10, "disarm")
    await until(lambda: len(station_rows(station_db, kind="restore")) >= 3, 10, "restores")


async def test_replay_of_the_box_trace_gives_the_events_it_sent(
    broker: Broker,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.inputs.trace")
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    text = without_video(config_text(broker.port))
    cfg_path = tmp_path / "box.toml"
    cfg_path.write_text(text)
    async with RunningBox(parse(text, str(cfg_path)), tmp_path / "box") as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")
        await drive(box, station_db)
        await until(lambda: box.outbox.depth == 0, 10, "all acknowledged")
    sent = [
        (r["kind"], r["zone_id"], r["cid"], r["sia"], r["armed"], r["occurred_ms"])
        for r in station_rows(station_db)
    ]
    assert len(sent) >= 10 and {"trouble", "tamper", "alarm"} <= {s[0] for s in sent}
    records = [r for r in caplog.records if r.name == "edge.inputs.trace"]
    formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    text_log = tmp_path / "edge.log"
    text_log.write_text("".join(formatter.format(r) + "\n" for r in records))
    journal = tmp_path / "journal.json"  # what journalctl -o json gives of the same records
    journal.write_text("".join(json.dumps(logs.journal_fields(r, "edge")) + "\n" for r in records))
    for trace in (text_log, journal):
        replayed = replay_events(trace, cfg_path)
        assert replayed == sent, trace.name


def replay_events(trace: Path, cfg_path: Path) -> list[tuple[object, ...]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["diag", "replay", str(trace), "--config", str(cfg_path)]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    # the box's ticks are in its trace: no timer had to be guessed after its end
    assert not any(r["after_trace"] for r in rows if r["row"] == "event")
    ignored = {r["what"] for r in rows if r["row"] == "ignored"}
    assert "disarmed" in ignored  # the 5 ms pulse is a "glitch" too, unless the loop was slow
    return [
        (
            r["kind"],
            r["zone"],
            r["cid"],
            r["sia"],
            None if r["armed"] is None else int(r["armed"]),
            parse_iso_ms(r["at"]),
        )
        for r in rows
        if r["row"] == "event"
    ]
