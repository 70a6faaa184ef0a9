"""Passthrough: a camera that sends H.264 is recorded as it comes. Its clips are its own
packets (byte for byte between keyframes, checked against ffmpeg's own reading of the
source), motion gets every Nth picture, stills come from its pictures or, with a
sub-stream, are decoded from the ring; a masked camera is never passed through."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from edge.clock import FakeClock, SystemClock
from edge.model import Frame
from edge.video.avcamera import AvCamera, passthrough
from edge.video.camera import Pipeline, StillTaken
from edge.video.clips import ClipJob
from edge.video.codec import mp4_bytes
from edge.video.runner import CameraRunner
from edge.video.service import _newest_jpeg
from tests.conftest import wait_for
from tests.unit.test_video_pipeline import camera
from tests.unit.videofiles import annexb_packets, check_clip, h264_file, slices, video_only


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h264_file(tmp_path_factory.mktemp("pass") / "camera.mp4", "320x240", 10, 5, gop=10)


class Run:
    """A file source read packet by packet into a pipeline (no thread, no pacing)."""

    def __init__(self, source: AvCamera, pipe: Pipeline) -> None:
        self.source, self.pipe = source, pipe
        self.clips: list[ClipJob] = []
        self.stills: list[StillTaken] = []
        self.lores: list[Frame] = []
        pipe.on_clip, pipe.on_still = self.clips.append, self.stills.append
        pipe.lores_sinks.append(self.lores.append)
        source.open()
        pipe.copies = source.copies
        pipe.set_size(*source.size)
        self.first_ms: int | None = None
        self.last_ms = 0

    def push(self, copied: Any) -> None:
        self.first_ms = copied.packet.pts_ms if self.first_ms is None else self.first_ms
        self.last_ms = copied.packet.pts_ms
        self.pipe.push_copied(copied)

    def packets(self, n: int) -> None:
        for _ in range(n):
            self.push(self.source.read_copied())

    def alarm(self) -> Any:
        return self.pipe.alarm("ev-1", self.last_ms, 1_800_000_000_000)


def test_a_clip_is_the_cameras_own_packets_from_one_of_its_keyframes(
    h264: Path, tmp_path: Path
) -> None:
    cfg = camera(source="file", path=h264, width=320, height=240)
    run = Run(AvCamera(cfg, FakeClock()), Pipeline(cfg, pre_roll_s=1.5, post_roll_s=1.0))
    assert run.source.copies and "as it comes" in run.source.path_reason
    run.packets(30)
    plan = run.alarm()
    run.packets(12)
    run.source.close()
    assert run.pipe.encoder.idle  # nothing was encoded
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes(run.clips[0].packets, *run.pipe.size))
    info = check_clip(clip, plan.pre_s + plan.post_s, audio=False)
    assert 1.5 <= plan.pre_s < 2.5  # the camera's own keyframes: every second
    source = [slices(p) for p in annexb_packets(h264)]
    mine = [slices(p) for p in annexb_packets(clip)]
    start = source.index(mine[0])
    assert start % 10 == 0  # a keyframe of the camera's GOP
    assert mine == source[start : start + len(mine)]  # byte for byte, every picture
    times = [float(p["pts_time"]) for p in info["packets"] if p["codec_type"] == "video"]
    assert times == pytest.approx([i / 10 for i in range(len(mine))], abs=0.002)


def test_motion_gets_every_nth_picture_of_a_faster_camera(tmp_path: Path) -> None:
    path = h264_file(tmp_path / "fast.mp4", "640x360", 30, 3, gop=30)
    cfg = camera(source="file", path=path, width=640, height=360, fps=10)
    run = Run(AvCamera(cfg, FakeClock()), Pipeline(cfg, pre_roll_s=1.0, post_roll_s=1.0))
    run.packets(90)
    run.source.close()
    assert len(run.lores) == 30  # every 3rd picture: the config's 10 a second
    steps = np.diff([f.at_s for f in run.lores])
    assert steps == pytest.approx(0.1, abs=0.002)
    assert run.lores[0].gray.shape == (180, 320)  # the luma, every 2nd pixel
    assert [f.index for f in run.lores[:3]] == [0, 3, 6]  # the camera's picture numbers
    with av.open(str(path)) as src:  # the luma of the camera's own picture
        first = next(src.decode(video=0)).to_ndarray(format="yuv420p")[:360]
    assert np.array_equal(run.lores[0].gray, first[::2, ::2])


def test_stills_are_the_cameras_pictures_around_the_alarm(h264: Path) -> None:
    cfg = camera(source="file", path=h264, width=320, height=240)
    run = Run(AvCamera(cfg, FakeClock()), Pipeline(cfg, pre_roll_s=1.0, post_roll_s=1.0))
    run.packets(25)
    run.alarm()
    assert len(run.stills) == 3  # 1 s, 0.5 s before and at: pictures kept in memory
    run.packets(12)
    assert len(run.stills) == 5
    assert all(s.yuv is not None and s.yuv.shape == (360, 320) for s in run.stills)


def test_a_masked_camera_is_never_passed_through(h264: Path) -> None:
    polygon = ((0, 0), (160, 0), (160, 120), (0, 120))
    cfg = camera(source="file", path=h264, width=320, height=240, privacy_masks=(polygon,))
    source = AvCamera(cfg, FakeClock())
    pipe = Pipeline(cfg, pre_roll_s=1.0, post_roll_s=0.5)
    runner = CameraRunner(source, pipe, lambda *_: None)
    source.open()
    runner._opened()
    try:
        assert not source.copies and runner.status.path == "encode"
        assert "privacy masks" in runner.status.path_reason
        for _ in range(20):
            pipe.push(source.read())
    finally:
        source.close()
    assert not pipe.encoder.idle
    mine = {bytes(u) for p in video_only(pipe.ring.since(0)) for u in slices(p.data)}
    theirs = {bytes(u) for p in annexb_packets(h264) for u in slices(p)}
    assert not mine & theirs  # not one of the camera's pictures went through
    data = mp4_bytes(pipe.ring.since(0), *pipe.size)
    with av.open(io.BytesIO(data), "r") as clip:
        gray = next(clip.decode(video=0)).to_ndarray(format="gray")
    assert int(gray[4:112, 4:152].max()) <= 4  # blanked before encoding


def test_the_path_and_its_reason() -> None:
    plain = camera(source="file", path=Path("x.mp4"))
    assert passthrough(plain, "h264", False)[0]
    assert passthrough(plain, "mjpeg", False) == (
        False,
        "the camera sends mjpeg, not H.264: re-encoded",
    )
    assert "B-frames" in passthrough(plain, "h264", True)[1]
    off = camera(source="file", path=Path("x.mp4"), passthrough=False)
    assert passthrough(off, "h264", False) == (
        False,
        "passthrough = false in the config: re-encoded",
    )
    masked = camera(source="file", path=Path("x.mp4"), privacy_masks=(((0, 0), (9, 0), (0, 9)),))
    assert not passthrough(masked, "h264", False)[0]


def test_with_a_sub_stream_the_main_stream_is_not_decoded(tmp_path: Path) -> None:
    main = h264_file(tmp_path / "main.mp4", "640x360", 10, 4, gop=10)
    sub = h264_file(tmp_path / "sub.mp4", "320x180", 10, 4, gop=10)
    cfg = camera(source="file", path=main, width=640, height=360, substream=str(sub))
    clock = FakeClock()
    pipe = Pipeline(cfg, pre_roll_s=1.0, post_roll_s=1.0)
    sub_source = AvCamera(cfg, clock, target=str(sub))
    runner = CameraRunner(AvCamera(cfg, clock), pipe, lambda *_: None, sub=sub_source)
    run = Run(runner.source, pipe)  # type: ignore[arg-type]
    pipe.stills_from_ring = True  # as the runner sets it once the main stream is open
    sub_source.open()
    try:
        for _ in range(25):
            copied = runner.source.read_copied()
            assert copied.lores is None and copied.picture is None  # never decoded
            run.push(copied)
            pipe.push_sub(sub_source.read())
        run.alarm()
        run.packets(12)
    finally:
        sub_source.close()
        run.source.close()
    assert len(run.lores) == 25 and run.lores[0].gray.shape == (180, 320)  # the sub-stream's
    assert len(run.stills) == 5 and all(s.yuv is None for s in run.stills)
    with av.open(str(main)) as src:  # the camera's own full pictures, by number
        originals = [f.to_ndarray(format="yuv420p") for f in src.decode(video=0)]
    for still in run.stills:
        picture = still.picture()  # decoded from the ring's packets, full size
        assert picture.shape == (540, 640)
        number = round((still.pts_ms - (run.first_ms or 0)) / 100)
        assert np.abs(picture.astype(int) - originals[number]).mean() < 1.0
    snapshot = _newest_jpeg(pipe.newest_packets())
    with av.open(io.BytesIO(snapshot), "r") as jpeg:
        assert next(jpeg.decode(video=0)).width == 640


def test_a_running_camera_with_a_sub_stream(tmp_path: Path) -> None:
    """The runner's threads, paced in real time: the main stream recorded as it comes,
    the sub-stream's thread feeding motion, the status saying so."""
    main = h264_file(tmp_path / "main.mp4", "640x360", 10, 3, gop=10)
    sub = h264_file(tmp_path / "sub.mp4", "320x180", 10, 3, gop=10)
    cfg = camera(source="file", path=main, width=640, height=360, substream=str(sub))
    clock = SystemClock()
    pipe = Pipeline(cfg, pre_roll_s=1.0, post_roll_s=1.0)
    lores: list[Frame] = []
    pipe.lores_sinks.append(lores.append)
    sub_source = AvCamera(cfg, clock, target=str(sub))
    runner = CameraRunner(AvCamera(cfg, clock), pipe, lambda *_: None, clock.monotonic, sub_source)
    runner.start()
    try:
        wait_for(lambda: len(lores) >= 20 and runner.status.frames >= 20, 10, "both streams")
        assert runner.status.substream == "running"
    finally:
        runner.stop()
    st = runner.status
    assert (st.path, st.substream, st.encoder) == ("passthrough", "stopped", None)
    assert pipe.stills_from_ring and pipe.encoder.idle
    assert {f.gray.shape for f in lores} == {(180, 320)}
    assert pipe.latest is not None and pipe.latest.yuv.shape == (270, 320)  # the live view
    assert st.source_fps == pytest.approx(10, rel=0.05)
