"""The Pi camera at its seam: a stand-in for picamera2 (which cannot be imported off a
Pi) that hands out YUV420 requests with a sensor timestamp. Each frame's time is the
sensor's, the pictures take the encode path with the chosen encoder."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

from edge.clock import FakeClock
from edge.video.camera import Pipeline
from edge.video.runner import CameraRunner
from edge.video.sources import Picamera2Camera
from tests.unit.test_video_pipeline import camera


class Request:
    def __init__(self, yuv: Any, stamp_ns: int) -> None:
        self.yuv, self.stamp_ns = yuv, stamp_ns

    def make_array(self, stream: str) -> Any:
        assert stream == "main"
        return self.yuv

    def get_metadata(self) -> dict[str, int]:
        return {"SensorTimestamp": self.stamp_ns}

    def release(self) -> None:
        pass


class FakePicamera2:
    """What Picamera2Camera uses of picamera2: 25 frames a second by the sensor's clock."""

    def __init__(self) -> None:
        self.count = 0

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["main"]["format"] == "YUV420"
        self.size = kwargs["main"]["size"]
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        pass

    def start(self) -> None:
        pass

    def capture_request(self) -> Request:
        width, height = self.size
        yuv = np.full((height * 3 // 2, width), 16 + self.count % 200, np.uint8)
        self.count += 1
        return Request(yuv, 5_000_000_000 + self.count * 40_000_000)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)


@pytest.mark.usefixtures("picamera2")
def test_the_pi_cameras_frames_keep_the_sensors_times() -> None:
    cfg = camera(source="picamera2", width=320, height=240, fps=15)
    clock = FakeClock()
    source = Picamera2Camera(cfg, clock)
    pipe = Pipeline(cfg, 1.0, 1.0, hardware=lambda: "no /dev/video11")
    runner = CameraRunner(source, pipe, lambda *_: None)
    source.open()
    runner._opened()
    times = []
    for i in range(50):  # read with jitter (30 or 50 ms apart): the sensor says 40 ms
        frame = source.read()
        times.append(frame.at_s)
        pipe.push(frame)
        clock.advance(0.03 if i % 2 else 0.05)
    source.close()
    assert np.diff(times) == pytest.approx(0.04)
    runner._figures(50, 0.0)
    st = runner.status
    assert (st.path, st.encoder) == ("encode", "libx264")
    assert st.encoder_reason == "no hardware H.264 encoder (no /dev/video11)"
    assert st.source_fps == pytest.approx(25.0) and "25.0 frames/s" in str(st.fps_note)
