"""Every stop finishes (issue 14): on a full disk, and with a large backlog and a dead
broker, ``edge run`` exits 0 on SIGTERM within 10 s, having published its retained
``offline`` state when a broker was there to take it. Real box processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.codes import Condition
from edge.model import box_event
from edge.outbox.store import Outbox
from tests.conftest import BOX_AUTH, Broker, fill, free_port, wait_for
from tests.integration.test_end_to_end import device_states
from tests.integration.test_faults import web_answers
from tests.integration.test_power_cut_media import config_text, trip

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]
Spawn = Callable[..., subprocess.Popen[bytes]]
STOP_S = 10.0


def pulses(web_port: int, name: str, count: int, on_ms: float, off_ms: float) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/sim/inputs/{name}/pulses",
        data=json.dumps({"count": count, "on_ms": on_ms, "off_ms": off_ms}).encode(),
        headers={"Content-Type": "application/json", **BOX_AUTH},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202


def stop(box: subprocess.Popen[bytes], log: Path) -> float:
    """SIGTERM; the seconds the box took to exit 0 (the test fails otherwise)."""
    started = time.monotonic()
    box.send_signal(signal.SIGTERM)
    try:
        code = box.wait(STOP_S + 20)
    except subprocess.TimeoutExpired:
        box.kill()
        pytest.fail(f"the box did not stop at all:\n{log.read_text()[-3000:]}")
    took = time.monotonic() - started
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    return took


def test_stop_on_a_full_disk_exits_0_and_publishes_offline(
    broker: Broker, spawn: Spawn, tmp_path: Path, small_disk: Path
) -> None:
    web_port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(config_text(broker.port, web_port, recording=True))
    station_db = tmp_path / "station.sqlite"
    spawn("station", "station", "run", "--broker", broker.url, "--db", str(station_db))
    box = spawn("box", "run", "--config", str(config), "--state-dir", str(small_disk))
    wait_for(lambda: web_answers(web_port), 30, "the box up")
    wait_for(lambda: device_states(station_db).get("demo-box-01") == "online", 20, "online")
    time.sleep(3)  # a segment is being written
    trip(web_port, "in3", True)  # an alarm whose clip is being collected at the stop
    time.sleep(1)
    fill(small_disk)  # the open segment's last fragment cannot be written at the stop
    took = stop(box, tmp_path / "box.log")
    print(f"stopped in {took:.2f} s on a full disk")
    assert took <= STOP_S
    wait_for(lambda: device_states(station_db).get("demo-box-01") == "offline", 10, "offline")


def test_stop_with_thousands_of_alarms_queued_with_media_and_a_dead_broker(
    spawn: Spawn, tmp_path: Path
) -> None:
    """5,000 alarms with a still each wait in the outbox, the broker is gone, and alarms
    with clips and stills are being made at the stop: still out within 10 s."""
    state = tmp_path / "box"
    state.mkdir()
    outbox = Outbox(state / "outbox.sqlite")
    outbox.open(0)
    now = int(time.time() * 1000)
    events = [box_event(Condition.FIRE, False, f"backlog {n}", now - n) for n in range(5000)]
    outbox.put_many([(e, now) for e in events])
    for event in events[:2000]:
        outbox.media.put(event.id, f"s-{event.id}", "still", "image/jpeg", bytes(20_000), 0, now)
    outbox.close()
    web_port = free_port()
    config = tmp_path / "edge.toml"
    dead_port = free_port()  # nothing listens there
    text = config_text(dead_port, web_port, recording=True)
    # every trip an alarm or a restore: no glitch filter, restore delay or hold
    text = text.replace('id = "fire"\n', 'id = "fire"\nglitch_ms = 0\nrestore_ms = 0\nhold_s = 0\n')
    config.write_text(text)
    box = spawn("box", "run", "--config", str(config), "--state-dir", str(state))
    wait_for(lambda: web_answers(web_port), 30, "the box up")
    time.sleep(3)  # the ring fills
    # 2,000 alarms and their restores in 4 s, as the inputs benchmark drives the box:
    # clips and thousands of stills are being made and queued when the stop comes
    pulses(web_port, "in3", 2000, 1.0, 1.0)
    time.sleep(3)
    took = stop(box, tmp_path / "box.log")
    print(f"stopped in {took:.2f} s with a backlog and a dead broker")
    assert took <= STOP_S
    left = Outbox(state / "outbox.sqlite")
    left.open(0)
    try:
        assert left.depth() >= 5000  # nothing lost by the hurry
    finally:
        left.close()
