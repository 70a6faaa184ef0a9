"""The encoder of a camera that must be encoded: the Pi 4's hardware one when present
(chosen with a stand-in for the hardware here: h264_v4l2m2m does not open on this
machine, so libx264 is the real fallback), the choice and its reason in the status, and
the bitrate held within 15 % whatever rate the camera really delivers."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from edge.clock import FakeClock
from edge.video.camera import Pipeline
from edge.video.codec import VideoError, has_sps, mp4_bytes
from edge.video.encoders import HARDWARE, SOFTWARE, choose, probe_hardware
from edge.video.runner import CameraRunner
from edge.video.sources import RawFrame, SyntheticCamera
from tests.unit.test_video_pipeline import camera
from tests.unit.videofiles import check_clip, video_only


def present() -> None:
    return None


def absent() -> str:
    return "no /dev/video11"


def never() -> str:
    raise AssertionError("libx264 asked: the hardware is not probed")


def test_the_choice_and_its_reason() -> None:
    hw = choose("auto", present)
    assert hw.codec == HARDWARE and "hardware H.264 encoder is present (auto)" in hw.reason
    sw = choose("auto", absent)
    assert sw.codec == SOFTWARE and sw.reason == "no hardware H.264 encoder (no /dev/video11)"
    assert choose("libx264", never).codec == SOFTWARE
    asked = choose("v4l2m2m", absent)
    assert asked.codec == SOFTWARE and 'encoder = "v4l2m2m" but' in asked.reason
    assert choose("v4l2m2m", present).codec == HARDWARE


def test_this_machine_has_no_hardware_encoder_and_says_why() -> None:
    why = probe_hardware()
    if why is None:
        pytest.skip("h264_v4l2m2m opens here: a Pi 4")
    assert HARDWARE in why


class Frames:
    """The synthetic scene (moving figures, sensor noise) at a camera's real rate."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        self.cam = SyntheticCamera(camera(width=width, height=height), FakeClock())

    def push(self, pipe: Pipeline, rate: float, seconds: float, t0: float = 1000.0) -> None:
        for i in range(round(rate * seconds)):
            at = t0 + i / rate
            pipe.push(RawFrame(self.cam.render(i), at, round(at * 1000)))


def test_a_hardware_encoder_said_present_that_does_not_open_falls_back_to_libx264() -> None:
    if probe_hardware() is None:
        pytest.skip("h264_v4l2m2m opens here: a Pi 4")
    cfg = camera(width=320, height=240)
    pipe = Pipeline(cfg, 1.0, 1.0, hardware=present)  # "present": it is chosen
    runner = CameraRunner(SyntheticCamera(cfg, FakeClock()), pipe, lambda *_: None)
    Frames().push(pipe, 10, 1.0)
    runner._figures(1, 0.0)
    assert runner.status.encoder == SOFTWARE  # what really encodes
    assert f"{HARDWARE} failed to open" in runner.status.encoder_reason
    packets = video_only(pipe.ring.since(0))
    assert packets[0].keyframe and has_sps(packets[0].data)


def test_the_status_says_which_encoder_and_why() -> None:
    cfg = camera(width=320, height=240, encoder="libx264")
    pipe = Pipeline(cfg, 1.0, 1.0, hardware=never)
    runner = CameraRunner(SyntheticCamera(cfg, FakeClock()), pipe, lambda *_: None)
    runner.source.open()
    runner._opened()
    Frames().push(pipe, 10, 0.5)
    runner._figures(1, 0.0)
    st = runner.status
    assert (st.path, st.encoder) == ("encode", SOFTWARE)
    assert st.encoder_reason == 'encoder = "libx264" in the config'


def kbps(pipe: Pipeline) -> float:
    packets = video_only(pipe.ring.since(0))
    span_s = (packets[-1].pts_ms - packets[0].pts_ms) / 1000
    period_s = span_s / (len(packets) - 1)
    return sum(len(p.data) for p in packets) * 8 / (span_s + period_s) / 1000


@pytest.mark.parametrize("rate", [10, 25, 30])
def test_the_bitrate_holds_whatever_rate_the_camera_really_delivers(
    rate: float, tmp_path: Path
) -> None:
    """A camera configured at 15 frames/s that delivers ``rate``: the stream stays within
    15 % of bitrate_kbps (the encoder follows the measured rate), and the status says
    the rate differs."""
    cfg = camera(width=320, height=240, fps=15, bitrate_kbps=300, keyframe_interval_s=1)
    pipe = Pipeline(cfg, pre_roll_s=30.0, post_roll_s=1.0)
    runner = CameraRunner(SyntheticCamera(cfg, FakeClock()), pipe, lambda *_: None)
    Frames().push(pipe, rate, 12.0)
    assert kbps(pipe) == pytest.approx(300, rel=0.15)
    runner._figures(1, 0.0)
    assert runner.status.source_fps == pytest.approx(rate, rel=0.02)
    note = runner.status.fps_note
    assert (note is None) == (rate == 15) or "config says 15" in str(note)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes(pipe.ring.since(0), 320, 240))
    info = check_clip(clip, 12.0, audio=False)
    keys = [float(f["pts_time"]) for f in info["frames"] if f["key_frame"]]
    steady = [k for k in keys if k >= 1.5]  # once the rate is measured: 1 s in real time
    assert [round(b - a, 2) for a, b in itertools.pairwise(steady)] == [1.0] * (len(steady) - 1)


def test_the_ffmpeg_cli_gets_the_same_rate_control() -> None:
    """The options the benchmark gives the ffmpeg CLI are valid libx264 options."""
    cfg = camera(width=320, height=240)
    settings = Pipeline(cfg, 1.0, 1.0).settings
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:d=0.5"]
    for key, value in settings.x264_options().items():
        cmd += [f"-{key}", value]
    subprocess.run([*cmd, "-c:v", "libx264", "-f", "null", "-"], check=True)


def test_an_encoder_that_cannot_open_at_all_is_a_video_error() -> None:
    cfg = camera(width=320, height=240)
    pipe = Pipeline(cfg, 1.0, 1.0)
    with pytest.raises(VideoError, match=r"H\.264 encoder"):
        pipe.encoder.settings = pipe.encoder.settings.__class__(321, 240, 10, 1, 300)
        Frames().push(pipe, 10, 0.1)
