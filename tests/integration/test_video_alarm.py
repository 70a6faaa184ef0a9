"""An alarm in the demo reaches the station with its stills and its clip, through a
real mosquitto and the reference station receiver; the clip is checked with ffprobe:
H.264, its duration what the event says, starting before the alarm."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.config import parse
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.protocol import Topics
from edge.protocol.commands import (
    ClipArgs,
    Command,
    CommandResult,
    HoldArgs,
    ReleaseArgs,
    SnapshotArgs,
    decode_result,
    encode_command,
)
from edge.station.store import StationStore
from edge.video import recorder
from tests.conftest import Broker, free_port
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    device_states,
    start_station,
    station_rows,
    until,
)
from tests.unit.test_video_pipeline import check_clip, ffprobe
from tests.unit.test_video_sources import pattern_file

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def small_demo(broker_port: int) -> str:
    text = demo_text(broker_port, free_port())
    for old, new in (
        ("width = 640\nheight = 360\nfps = 10", "width = 320\nheight = 180\nfps = 10"),
        ("pre_roll_s = 5\npost_roll_s = 5", "pre_roll_s = 2\npost_roll_s = 2"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def media_of(db: Path, event_id: str) -> list[tuple[str, Path]]:
    if not db.exists():
        return []
    store = StationStore(db)
    store.open()
    try:
        return [(m.kind, m.path) for m in store.media(event_id)]
    finally:
        store.close()


async def test_demo_alarm_arrives_with_stills_and_a_clip_that_starts_before_it(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(small_demo(broker.port), "video.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")
        await until(
            lambda: box.video.status()["cameras"]["entrance"]["ring_seconds"] >= 2, 15, "ring"
        )
        box.inputs.simulate("in3", True)  # the fire panel's output
        await until(lambda: station_rows(station_db, kind="alarm"), 10, "the alarm")
        alarm = station_rows(station_db, kind="alarm")[0]
        await until(lambda: len(media_of(station_db, alarm["id"])) >= 6, 20, "stills and clip")
        box.inputs.simulate("in3", False)
        await until(lambda: box.outbox.depth == 0, 10, "all acknowledged")
        first_still_ms = box.video.first_still_ms[alarm["id"]]
        clip_ms = box.video.clip_queued_ms[alarm["id"]]
    extra = json.loads(alarm["body"])["extra"]
    media = media_of(station_db, alarm["id"])
    stills = [p for kind, p in media if kind == "still"]
    clips = [p for kind, p in media if kind == "clip"]
    assert len(stills) == 5 and len(clips) == 1
    assert all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in stills)  # JPEG
    assert sorted(p.stem for p in stills) == sorted(extra["still_ids"].split())
    pre_s, post_s = float(extra["clip_pre_s"]), float(extra["clip_post_s"])
    assert 2.0 <= pre_s <= 3.0 + 0.2 and post_s == 2.0
    check_clip(clips[0], pre_s + post_s)
    assert int(extra["clip_start_ms"]) < alarm["occurred_ms"]  # the clip starts before it
    assert first_still_ms - alarm["occurred_ms"] <= 1000  # first still queued within 1 s
    assert clip_ms - alarm["occurred_ms"] <= (post_s + 2) * 1000


async def test_station_snapshot_and_clip_commands_bring_their_files(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(small_demo(broker.port), "video.toml")
    topics = Topics("edge", cfg.device.id)
    operator = MqttLink(
        LinkSettings(broker.host, broker.port, "operator", subscriptions=((topics.cmd_result, 1),))
    )
    async with RunningBox(cfg, tmp_path / "box") as box:
        await operator.start()
        try:
            assert await operator.wait_connected(5)
            await until(lambda: device_states(station_db), 15, "station subscribed")
            await until(lambda: box.video.latest_lores("entrance") is not None, 10, "a picture")
            await asyncio.sleep(2.5)  # the ring holds the last seconds

            async def ask(cid: str, args: Any) -> list[CommandResult]:
                expires = round((time.time() + 60) * 1000)
                await operator.publish(
                    Message(topics.cmd, encode_command(Command(cid, expires, args)))
                )
                results = [
                    decode_result((await asyncio.wait_for(operator.inbox.get(), 10)).payload)
                ]
                if results[0].status == "accepted":
                    results.append(
                        decode_result((await asyncio.wait_for(operator.inbox.get(), 10)).payload)
                    )
                return results

            [snap] = await ask("op-snap", SnapshotArgs("entrance"))
            assert snap.status == "done", snap.reason
            now = round(time.time() * 1000)
            accepted, clip = await ask("op-clip", ClipArgs("entrance", now - 1500, now - 500))
            assert (accepted.status, clip.status) == ("accepted", "done"), clip.reason
            for result, kind in ((snap, "still"), (clip, "clip")):
                event_id, [media_id] = result.details["event_id"], result.details["media_ids"]
                await until(lambda e=event_id: media_of(station_db, e), 10, f"the {kind}")
                [(got_kind, path)] = media_of(station_db, event_id)
                assert got_kind == kind and path.stem == media_id
            [(_kind, clip_path)] = media_of(station_db, clip.details["event_id"])
            info = check_clip(clip_path, float(ffprobe(clip_path)["streams"][0]["duration"]))
            assert 1.0 <= float(info["streams"][0]["duration"]) <= 2.5  # from a keyframe before
            log = (tmp_path / "box" / "recordings" / "access.log").read_text()
            assert '"who": "station command op-clip"' in log and '"action": "export"' in log
            # an incident hold on what is being recorded, then its release: both logged
            now = round(time.time() * 1000)
            until_ms = now + 30 * 86_400_000
            [hold] = await ask("op-hold", HoldArgs("entrance", now - 2000, now, until_ms, "PV 7"))
            assert hold.status == "done", hold.reason
            assert hold.details["hold_id"] == "op-hold" and hold.details["segments"] >= 1
            assert [h.id for h in box.video.recorder.holds()] == ["op-hold"]
            [release] = await ask("op-free", ReleaseArgs("op-hold", "case closed"))
            assert release.status == "done", release.reason
            [again] = await ask("op-free2", ReleaseArgs("op-hold", "twice"))
            assert again.status == "failed" and "no active hold 'op-hold'" in again.reason
            entries = box.video.recorder.access.entries()
            assert [(e["action"], e["who"]) for e in entries[-2:]] == [
                ("hold", "station command op-hold"),
                ("release", "station command op-free"),
            ]
            assert box.video.recorder.holds() == []
        finally:
            await operator.stop()


async def test_a_lost_camera_is_a_trouble_at_the_station_and_its_return_a_restore(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    footage = tmp_path / "camera.mkv"  # not there yet: the camera is "unplugged"
    text = small_demo(broker.port).replace(
        'source = "synthetic"', f'source = "file"\npath = "{footage}"'
    )
    cfg = parse(text, "video.toml")
    async with RunningBox(cfg, tmp_path / "box"):
        await until(lambda: station_rows(station_db, kind="trouble"), 15, "the camera trouble")
        [trouble] = station_rows(station_db, kind="trouble")
        assert (trouble["cid"], trouble["sia"]) == ("1300", "YX")
        assert "camera entrance: no such file" in json.loads(trouble["body"])["text"]
        await asyncio.to_thread(pattern_file, tmp_path / "partial.mkv", "320x180", 2)
        (tmp_path / "partial.mkv").rename(footage)  # plugged back in: found at the next attempt
        await until(lambda: station_rows(station_db, kind="trouble_restore"), 15, "the restore")
        [restore] = station_rows(station_db, kind="trouble_restore")
        assert json.loads(restore["body"])["text"] == "camera entrance restored"


async def test_an_unwritable_recordings_folder_is_one_trouble_and_writing_again_its_restore(
    broker: Broker,
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real unwritable path: the recordings folder is a file when the box starts. (The
    restore waits for a quiet spell of writing, a minute on a box; 3 s here.)"""
    monkeypatch.setattr(recorder, "RESTORE_QUIET_MS", 3000)
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    cfg = parse(small_demo(broker.port), "video.toml")
    state = tmp_path / "box"
    state.mkdir()
    (state / "recordings").write_text("not a folder")
    async with RunningBox(cfg, state) as box:
        await until(lambda: station_rows(station_db, kind="trouble"), 15, "the recorder trouble")
        [trouble] = station_rows(station_db, kind="trouble")
        assert (trouble["cid"], trouble["sia"]) == ("1300", "YX")
        text = json.loads(trouble["body"])["text"]
        assert text.startswith("recorder: cannot write in ") and "retrying" in text
        await until(lambda: box.video.latest_lores("entrance") is not None, 10, "a picture")
        (state / "recordings").unlink()  # the folder can be made at the next attempt
        await until(lambda: station_rows(station_db, kind="trouble_restore"), 20, "the restore")
        [restore] = station_rows(station_db, kind="trouble_restore")
        assert json.loads(restore["body"])["text"].startswith("recorder: segments written again")
        assert len(station_rows(station_db, kind="trouble")) == 1  # one, however many retries


async def test_an_ip_cameras_alarm_clip_is_its_own_h264_with_its_sound(
    broker: Broker, spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """An H.264 camera with sound (a file standing for the RTSP stream): the station gets
    the camera's own pictures, not re-encoded, and an AAC track; so do the recordings."""
    from tests.unit.videofiles import annexb_packets, h264_file, slices
    from tests.unit.videofiles import check_clip as check_av_clip

    camera = h264_file(tmp_path / "ipcam.mkv", "320x180", 10, 30, gop=10, tone_hz=1000)
    station_db = tmp_path / "station.sqlite"
    start_station(spawn, broker, station_db)
    text = small_demo(broker.port).replace(
        'source = "synthetic"', f'source = "file"\npath = "{camera}"\naudio = true'
    )
    cfg = parse(text, "video.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        await until(lambda: device_states(station_db), 15, "station subscribed")
        await until(
            lambda: box.video.status()["cameras"]["entrance"]["ring_seconds"] >= 2, 15, "ring"
        )
        status = box.video.status()["cameras"]["entrance"]
        assert (status["path"], status["encoder"], status["audio"]) == ("passthrough", None, "on")
        box.inputs.simulate("in3", True)
        await until(lambda: station_rows(station_db, kind="alarm"), 10, "the alarm")
        alarm = station_rows(station_db, kind="alarm")[0]
        await until(lambda: len(media_of(station_db, alarm["id"])) >= 6, 20, "stills and clip")
        box.inputs.simulate("in3", False)
        await until(lambda: box.outbox.depth == 0, 10, "all acknowledged")
    extra = json.loads(alarm["body"])["extra"]
    [clip] = [p for kind, p in media_of(station_db, alarm["id"]) if kind == "clip"]
    check_av_clip(clip, float(extra["clip_pre_s"]) + float(extra["clip_post_s"]), audio=True)
    source = [slices(p) for p in annexb_packets(camera)]
    mine = [slices(p) for p in annexb_packets(clip)]
    assert all(picture in source for picture in mine)  # the camera's own, byte for byte
    segments = sorted((tmp_path / "box" / "recordings" / "entrance").glob("*.mp4"))
    assert segments
    check_av_clip(segments[0], float(ffprobe(segments[0])["streams"][0]["duration"]), audio=True)
