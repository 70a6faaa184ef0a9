"""edge diag motion: the scan's per-frame decisions equal the live motion stage's (the one the
Box builds, fed through its queue and worker thread) on the same frames; synthetic footage
with a covered lens, real footage, and bad files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import av
import numpy as np
import pytest

from edge import app
from edge.__main__ import main
from edge.clock import FakeClock
from edge.config import EdgeConfig, parse
from edge.model import Event, Frame
from edge.tools import motion_scan
from edge.tools.footage import camera_of, feed
from edge.video.camera import Pipeline
from edge.video.sources import SyntheticCamera
from tests.conftest import REPO

DATA = REPO.parent / "shared" / "data" / "video"
FPS = 10
COVER_FROM = 70  # frames 70.. are a covered lens
FRAMES = 110


def config_text(width: int = 160, height: int = 120) -> str:
    text = (REPO / "config" / "demo.toml").read_text()
    for old, new in (
        (
            "width = 640\nheight = 360\nfps = 10\n",
            f"width = {width}\nheight = {height}\nfps = {FPS}\n",
        ),
        (
            "[motion]\nevents_when_armed = false\n",
            "[motion]\nevents_when_armed = true\ntamper_after_s = 1\ntamper_restore_s = 1\n"
            'event_cooldown_s = 5\n\n[[motion.cameras]]\ncamera = "entrance"\n'
            'zones = [{ name = "left", corners = [[0, 0], [80, 0], [80, 120], [0, 120]] }]\n',
        ),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def config(tmp: Path, text: str | None = None) -> tuple[EdgeConfig, Path]:
    path = tmp / "box.toml"
    path.write_text(text or config_text())
    return parse(path.read_text(), str(path)), path


def synthetic_video(path: Path, frames: int = FRAMES, cover_from: int = COVER_FROM) -> Path:
    """The synthetic scene (figures walking), then a covered lens; MPEG-4 Part 2 in AVI."""
    cfg, _ = config(path.parent)
    scene = SyntheticCamera(cfg.cameras[0], FakeClock())
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            yuv = scene.render(i)
            if i >= cover_from:
                yuv[:120] = 12
            for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_video(tmp_path_factory.mktemp("footage") / "scene.avi")


def lores_frames(cfg: EdgeConfig, video: Path) -> list[Frame]:
    cam = camera_of(cfg, None, video)
    pipeline = Pipeline(cam, 1, 1)
    frames: list[Frame] = []
    pipeline.lores_sinks.append(frames.append)
    for _ in feed(cam, pipeline, FakeClock(), encode=False):
        pass
    return frames


async def live(cfg: EdgeConfig, frames: list[Frame], tmp: Path) -> tuple[list[tuple], list[Event]]:
    """The Box's own motion stage, frames offered to its queue and analysed by run()."""
    box = app.Box(cfg, tmp / "state")
    stage = box.motion
    assert stage is not None
    events: list[Event] = []

    async def emit(event: Event, _camera: str) -> None:
        events.append(event)

    stage.emit, stage.armed = emit, lambda _camera: True
    task = asyncio.create_task(stage.run())
    for frame in frames:
        stage.offer(frame)
        await stage.queue.join()  # one at a time: nothing dropped
    task.cancel()
    assert stage.dropped == 0
    watch = stage.watches["entrance"]
    seen = [(s.motion, [list(b) for b in s.boxes]) for s in watch.history]
    return seen, events


def same_as_live(cfg: EdgeConfig, video: Path, tmp: Path) -> motion_scan.Scan:
    cam = camera_of(cfg, None, video)
    result = motion_scan.scan(cfg, cam)
    seen, events = asyncio.run(live(cfg, lores_frames(cfg, video), tmp))
    assert [(r["motion"], r["boxes"]) for r in result.rows] == seen
    mine = [(e.kind, e.occurred_at_ms, e.text, e.extra) for _i, e in result.events]
    assert mine == [(e.kind, e.occurred_at_ms, e.text, e.extra) for e in events]
    return result


def test_scan_decides_as_the_live_stage_on_synthetic_footage(video: Path, tmp_path: Path) -> None:
    cfg, _ = config(tmp_path)
    result = same_as_live(cfg, video, tmp_path)
    assert len(result.rows) == FRAMES
    moving = [r for r in result.rows if r["motion"]]
    assert moving and all(r["boxes"] for r in moving)
    assert any("left" in r["zones"] for r in moving)
    kinds = [e.kind.value for _i, e in result.events]
    assert "motion" in kinds and "tamper" in kinds
    covered = [i for i, e in result.events if e.kind.value == "tamper" and "covered" in e.text]
    assert covered == [COVER_FROM + FPS]  # raised after tamper_after_s (1 s) of a covered lens
    assert result.rows[-1]["tamper"] == ["covered"]


def test_scan_decides_as_the_live_stage_on_real_footage(tmp_path: Path) -> None:
    path = DATA / "bgslibrary_video.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present in {DATA}")
    cfg, _ = config(tmp_path, config_text(640, 360))
    result = same_as_live(cfg, path, tmp_path)
    assert len(result.rows) == 374
    assert sum(r["motion"] for r in result.rows) > 100  # vehicles pass most of the time


def test_cli_rows_csv_and_contact_sheet(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    sheet = tmp_path / "sheet.png"
    args = ["diag", "motion", str(video), "--config", str(path), "--sheet", str(sheet)]
    assert main([*args, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split(",")[:4] == ["frame", "t_s", "at", "motion"]
    assert len(lines) == FRAMES + 1
    assert f"{FRAMES} frame(s)" in err and "camera tamper" in err
    with av.open(str(sheet)) as png:  # a real PNG with 12 tiles of 320 px, 4 a row
        image = next(png.decode(video=0)).to_ndarray(format="rgb24")
    assert image.shape[1] == 4 * 320 and image.shape[0] >= 3 * 240
    assert (image[..., 0] > 200).any()  # the red motion boxes are drawn
    assert main([*args[:5], "--disarmed"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not any(e.startswith("motion") for r in rows for e in r["events"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_bad_video_is_a_clear_error(
    damage: str, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    bad = tmp_path / "bad.avi"
    if damage == "truncated":
        bad.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(np.random.default_rng(3).bytes(20_000))
    assert main(["diag", "motion", str(bad), "--config", str(path)]) == 1
    err = capsys.readouterr().err
    expected = {"truncated": "truncated", "garbage": "not a video", "missing": "no such file"}
    assert expected[damage] in err, err


def test_unknown_camera_is_a_config_error(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    assert main(["diag", "motion", str(video), "--config", str(path), "--camera", "x"]) == 2
    assert "--camera 'x'" in capsys.readouterr().err


def test_camera_section_alone_is_a_config(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installer's file with only [[cameras]] and [motion] does: same rules, same errors."""
    section = tmp_path / "camera.toml"
    section.write_text(
        '[[cameras]]\nid = "yard"\nsource = "rtsp"\nurl = "rtsp://10.0.0.9/s1"\n'
        "width = 160\nheight = 120\nfps = 10\n"
        "[motion]\ntamper_after_s = 1\n"
    )
    assert main(["diag", "motion", str(video), "--config", str(section)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == FRAMES and "camera tamper: yard covered" in err
    section.write_text('[[cameras]]\nid = "yard"\nsource = "file"\nwidth = 10\n')
    assert main(["diag", "motion", str(video), "--config", str(section)]) == 2
    assert "camera.toml: cameras[0](id='yard').width = 10" in capsys.readouterr().err
