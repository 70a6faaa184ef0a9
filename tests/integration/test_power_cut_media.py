"""Media after a power cut (issue 14): the box dies inside an alarm's post-roll.

The event announced its clip and five stills. After the restart every one of them
reaches the station: cut from the recordings still on disk, or, when nothing on
the disk covers it, as a lost notice the station stores with its reason. A real
box process is killed with SIGKILL (a power cut, as far as the process can tell),
with a real broker and station; the clip is checked with ffprobe.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.station.store import StationStore
from tests.conftest import BOX_AUTH, Broker, free_port, wait_for
from tests.integration.test_end_to_end import demo_text, device_states, station_rows
from tests.integration.test_faults import web_answers
from tests.unit.test_video_pipeline import ffprobe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]
Spawn = Callable[..., subprocess.Popen[bytes]]


def config_text(broker_port: int, web_port: int, recording: bool) -> str:
    text = demo_text(broker_port, web_port, ack_timeout_s=3)
    for old, new in (
        ("width = 640\nheight = 360\nfps = 10", "width = 320\nheight = 180\nfps = 10"),
        ("pre_roll_s = 5\npost_roll_s = 5", "pre_roll_s = 3\npost_roll_s = 8"),
        ("[recording]\n", f"[recording]\nenabled = {str(recording).lower()}\nsegment_s = 10\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def trip(web_port: int, name: str, active: bool) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/sim/inputs/{name}",
        data=json.dumps({"active": active}).encode(),
        headers={"Content-Type": "application/json", **BOX_AUTH},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def announced(body: dict[str, object]) -> dict[str, str]:
    """media id -> kind, as the event's extra announces them."""
    extra = body["extra"]
    assert isinstance(extra, dict)
    out = {str(extra["clip_id"]): "clip"}
    out.update(dict.fromkeys(str(extra["still_ids"]).split(), "still"))
    return out


def accounted(db: Path, event_id: str) -> tuple[dict[str, Path], dict[str, str]]:
    """(complete media id -> file, lost media id -> reason) of an event at the station."""
    store = StationStore(db)
    store.open()
    try:
        body = store.body(event_id) or {}
        clip_event = str((body.get("extra") or {}).get("clip_event", event_id))
        complete = {m.media_id: m.path for e in {event_id, clip_event} for m in store.media(e)}
        lost = {
            m["media_id"]: m["reason"] for e in {event_id, clip_event} for m in store.lost_media(e)
        }
        return complete, lost
    finally:
        store.close()


@pytest.mark.parametrize("recording", [True, False], ids=["recording-on", "recording-off"])
def test_media_of_an_alarm_cut_short_by_a_power_cut_reach_the_station_or_are_told_lost(
    broker: Broker, spawn: Spawn, tmp_path: Path, recording: bool
) -> None:
    web_port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(config_text(broker.port, web_port, recording))
    station_db = tmp_path / "station.sqlite"
    spawn("station", "station", "run", "--broker", broker.url, "--db", str(station_db))
    state = tmp_path / "box"
    run = ("run", "--config", str(config), "--state-dir", str(state))
    box = spawn("box-1", *run)
    wait_for(lambda: web_answers(web_port), 30, "the box up")
    wait_for(lambda: device_states(station_db).get("demo-box-01") == "online", 20, "online")
    time.sleep(4)  # pre-roll in the ring, footage on disk
    trip(web_port, "in3", True)  # the fire panel's output
    wait_for(lambda: station_rows(station_db, kind="alarm"), 10, "the fire at the station")
    time.sleep(1.5)  # inside the 8 s post-roll: the clip is still being collected
    box.send_signal(signal.SIGKILL)
    assert box.wait(10) == -signal.SIGKILL
    alarm = station_rows(station_db, kind="alarm")[0]
    wanted = announced(json.loads(alarm["body"]))
    assert len(wanted) == 6
    complete, lost = accounted(station_db, alarm["id"])
    assert set(wanted) - set(complete) - set(lost), "the kill came too late to test anything"

    spawn("box-2", *run)
    wait_for(
        lambda: (
            set(wanted)
            <= set(accounted(station_db, alarm["id"])[0])
            | set(accounted(station_db, alarm["id"])[1])
        ),
        60,
        "every announced still and clip at the station, or told lost",
    )
    complete, lost = accounted(station_db, alarm["id"])
    assert not set(complete) & set(lost)
    clip = next(m for m, k in wanted.items() if k == "clip")
    if recording:
        # the clip and the stills are cut from the recordings the power cut left
        assert clip in complete, lost
        probe = ffprobe(complete[clip])
        assert probe["streams"][0]["codec_name"] == "h264"
        frames = probe["frames"]
        assert frames[0]["key_frame"] == 1
        times = [float(f["pts_time"]) for f in frames]
        assert times == sorted(times) and times[-1] - times[0] >= 2.0  # the pre-roll at least
        assert all(m in complete for m, k in wanted.items() if k == "still"), lost
    else:
        assert clip in lost and "not recorded" in lost[clip]
        assert all("not recorded" in why for why in lost.values())
