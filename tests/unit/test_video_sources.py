"""Sources: real third-party clips through PyAV (transcoded once on ingest into our
H.264 with its own keyframes), a looped file, camera loss and restore, masks. (An H.264
camera's own packets: test_video_passthrough.py.)"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.clock import FakeClock, SystemClock
from edge.video import masks
from edge.video import runner as camera_module
from edge.video.camera import Pipeline
from edge.video.codec import VideoError, mp4_bytes
from edge.video.runner import CameraRunner
from edge.video.sources import AvCamera, RawFrame
from tests.conftest import REPO
from tests.unit.test_video_pipeline import camera, check_clip, ffprobe

DATA = REPO.parent / "shared" / "data" / "video"


def real(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real test video {name} not present in {DATA}")
    return path


def pattern_file(path: Path, size: str, seconds: float, *codec: str) -> Path:
    """ffmpeg's test pattern at 10 frames/s, encoded with ``codec`` (default MJPEG)."""
    source = f"testsrc=size={size}:rate=10:duration={seconds:g}"
    command = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-c:v"]
    subprocess.run([*command, *(codec or ("mjpeg",)), str(path)], check=True)
    return path


def clip_from_file(path: Path, tmp: Path, width: int, height: int, fps: float) -> tuple[Path, Any]:
    """Frames of a file through the pipeline (paced by a fake clock), an alarm, its clip."""
    cfg = camera(source="file", path=path, width=width, height=height, fps=fps)
    clock = FakeClock()
    source = AvCamera(cfg, clock)
    pipe = Pipeline(cfg, pre_roll_s=2.0, post_roll_s=1.0)
    clips: list[Any] = []
    pipe.on_clip = clips.append
    source.open()
    try:
        for n in range(round(fps * 6)):
            if n == round(fps * 4):
                plan = pipe.alarm("ev", round(clock.monotonic() * 1000), 1)
            pipe.push(source.read())
            clock.advance(1 / fps)
    finally:
        source.close()
    assert len(clips) == 1
    out = tmp / f"{path.stem}.mp4"
    out.write_bytes(mp4_bytes(clips[0].packets, width, height))
    check_clip(out, plan.pre_s + plan.post_s)
    return out, plan


def test_ms_mpeg4_with_4_keyframes_yields_a_clip_with_our_keyframes(tmp_path: Path) -> None:
    out, plan = clip_from_file(real("pets2009_s2l1_vtest.avi"), tmp_path, 384, 288, 10)
    assert 2.0 <= plan.pre_s < 3.0  # not snapped to the source's 25 s keyframe spacing
    keys = [f for f in ffprobe(out)["frames"] if f["key_frame"] == 1]
    assert len(keys) >= 3  # one per second, from our encoder


def test_all_intra_mjpeg_yields_an_h264_clip(tmp_path: Path) -> None:
    out, _plan = clip_from_file(real("cdnet2014_highway_input.avi"), tmp_path, 320, 240, 30)
    assert ffprobe(out)["streams"][0]["codec_name"] == "h264"


def test_a_file_loops(tmp_path: Path) -> None:
    path = tmp_path / "short.mkv"
    pattern_file(path, "160x120", 1)
    source = AvCamera(camera(source="file", path=path), FakeClock())
    source.open()
    frames = [source.read() for _ in range(25)]  # 2.5 times the file
    source.close()
    assert all(f.yuv.shape == (180, 160) for f in frames)
    assert source.file_fps == 10


def test_a_missing_file_is_a_clear_camera_error(tmp_path: Path) -> None:
    source = AvCamera(camera(source="file", path=tmp_path / "gone.mp4"), FakeClock())
    with pytest.raises(VideoError, match="camera cam: no such file"):
        source.open()


class Flaky:
    """A camera that dies after a few frames, then refuses once, then works."""

    paced = True
    copies = False
    decodes = True
    path_reason = "raw frames"
    size = (160, 120)

    def take_audio(self) -> list[Any]:
        return []

    def __init__(self) -> None:
        self.cfg = camera()
        self.opens = 0
        self.reads = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens == 2:
            raise VideoError("camera cam: device gone")

    def read(self) -> RawFrame:
        self.reads += 1
        if self.opens == 1 and self.reads > 3:
            raise VideoError("camera cam: no frame for 5 s")
        time.sleep(0.01)
        yuv = np.full((180, 160), 100, np.uint8)
        return RawFrame(yuv, time.monotonic(), int(time.time() * 1000))

    def close(self) -> None:
        pass


def test_camera_loss_raises_one_trouble_reconnects_with_backoff_and_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(camera_module, "BACKOFF_MIN_S", 0.02)
    troubles: list[tuple[bool, str]] = []
    restored = threading.Event()

    def trouble(lost: bool, text: str) -> None:
        troubles.append((lost, text))
        if not lost:
            restored.set()

    source = Flaky()
    runner = CameraRunner(source, Pipeline(source.cfg, 1.0, 1.0), trouble, SystemClock().monotonic)
    runner.start()
    assert restored.wait(10)
    runner.stop()
    assert troubles == [(True, "camera cam: no frame for 5 s"), (False, "camera cam restored")]
    assert source.opens == 3  # lost, refused once (no second trouble), then back
    assert runner.status.state == "stopped"


class Gone:
    """A camera unplugged for good: every open fails."""

    paced = True
    copies = False
    decodes = True
    path_reason = "raw frames"
    size = (160, 120)

    def take_audio(self) -> list[Any]:
        return []

    def __init__(self) -> None:
        self.cfg = camera()
        self.opened_at: list[float] = []

    def open(self) -> None:
        self.opened_at.append(time.monotonic())
        raise VideoError("camera cam: device gone")

    def read(self) -> RawFrame:
        raise AssertionError("never open")

    def close(self) -> None:
        pass


def test_reconnect_attempts_back_off_and_one_trouble_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(camera_module, "BACKOFF_MIN_S", 0.02)
    troubles: list[tuple[bool, str]] = []
    source = Gone()
    runner = CameraRunner(
        source, Pipeline(source.cfg, 1.0, 1.0), lambda *t: troubles.append(t), time.monotonic
    )
    runner.start()
    deadline = time.monotonic() + 10
    while len(source.opened_at) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    gaps = [b - a for a, b in itertools.pairwise(source.opened_at[:5])]  # 0.02, 0.04, 0.08, 0.16
    assert gaps[3] > 4 * gaps[0] and gaps[3] >= 0.16, gaps  # doubling, not a fixed retry
    assert troubles == [(True, "camera cam: device gone")]


class Late:
    """A live camera read slower than it films: frames pile up behind real time."""

    paced = True
    copies = False
    decodes = True
    path_reason = "raw frames"
    size = (160, 120)

    def take_audio(self) -> list[Any]:
        return []

    def __init__(self) -> None:
        self.cfg = camera()
        self.reads = 0
        self.behind_s = 0.0

    def open(self) -> None:
        pass

    def read(self) -> RawFrame:
        self.reads += 1
        if self.reads > 20:
            raise VideoError("camera cam: end of the test")
        self.behind_s = 1.0 if 5 < self.reads <= 15 else 0.0  # 10 frames read late
        return RawFrame(np.full((180, 160), 90, np.uint8), self.reads / 10, self.reads * 100)

    def close(self) -> None:
        pass


def test_a_live_camera_read_late_drops_frames_and_counts_them() -> None:
    source = Late()
    pipe = Pipeline(source.cfg, 1.0, 1.0)
    runner = CameraRunner(source, pipe, lambda *t: runner.stop_flag.set(), time.monotonic)
    runner.run()
    assert runner.status.dropped == 10 and pipe.frames == 10  # encoded: the ones on time


def test_mask_polygon_rasterises_pixel_centres() -> None:
    mask = masks.rasterise([((2, 1), (6, 1), (6, 4), (2, 4))], 8, 6)
    assert mask is not None
    assert mask.sum() == 4 * 3 and mask[1:4, 2:6].all()
    triangle = masks.rasterise([((0, 0), (8, 0), (0, 6))], 8, 6)
    assert triangle is not None and triangle[0, 0] and not triangle[5, 7]
    assert masks.rasterise([], 8, 6) is None


def test_a_live_stream_knows_how_far_behind_real_time_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "live.mkv"
    pattern_file(path, "160x120", 2)
    clock = FakeClock()
    source = AvCamera(camera(source="file", path=path), clock)
    source.live = True  # read as a live camera would be
    source.open()
    try:
        for _ in range(5):  # read at the camera's own rate
            source.read()
            clock.advance(0.1)
        assert source.behind_s == pytest.approx(0.0, abs=0.01)
        for _ in range(5):  # each frame takes 0.3 s to handle: falling behind
            source.read()
            clock.advance(0.3)
        assert source.behind_s == pytest.approx(0.8, abs=0.01)
    finally:
        source.close()


def test_a_jump_of_the_camera_clock_is_not_taken_for_lag(tmp_path: Path) -> None:
    path = tmp_path / "live.mkv"
    pattern_file(path, "160x120", 1)
    clock = FakeClock()
    source = AvCamera(camera(source="file", path=path), clock)
    source.live = True
    source.open()
    try:
        source.read()
        clock.advance(30)  # 30 s without a frame as far as our clock goes
        source.read()
        assert source.behind_s == 0.0
    finally:
        source.close()
