"""Camera sources behind one small interface: ``open``, ``read`` or
``read_copied``, ``take_audio``, ``close``.

A source says after ``open`` whether it gives the camera's own H.264 packets
(``copies``: the passthrough path, ``read_copied``) or raw frames to mask and
encode (``read``: I420 at the camera's configured size), and why
(``path_reason``). Either blocks until the next frame, or raises
:class:`VideoError` when the camera is lost (the runner then reports the
trouble and reconnects with backoff). Times are the frames' own. Sources
that do not wait for real time themselves (the synthetic scene, files) say
``paced = False`` and the runner paces them by those times.

- :class:`SyntheticCamera`: a generated scene (the demo and the tests).
- :class:`~edge.video.avcamera.AvCamera`: PyAV for V4L2 devices, RTSP/HTTP
  cameras and video files (looped); H.264 ones are passed through.
- :class:`Picamera2Camera`: the Pi camera; picamera2 is imported lazily, only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge.clock import Clock, ms
from edge.config import CameraConfig
from edge.video.avcamera import READ_TIMEOUT_S, AvCamera, passthrough
from edge.video.codec import EncodedPacket, VideoError, Yuv
from edge.video.frames import Copied, RawFrame, StreamEnded, lores_size, lores_step
from edge.video.timing import StreamClock

__all__ = [
    "READ_TIMEOUT_S",
    "AvCamera",
    "Copied",
    "RawFrame",
    "Source",
    "SourceStatus",
    "StreamEnded",
    "lores_size",
    "lores_step",
    "make_source",
    "passthrough",
]


@dataclass
class SourceStatus:
    state: str = "stopped"  # stopped | running | lost
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    error: str = ""
    dropped: int = 0  # frames of a live camera skipped (not encoded) to catch up
    ring_bytes: int = 0  # pre-alarm ring: memory held
    ring_seconds: float = 0.0  # and seconds of video in it
    path: str = ""  # passthrough | encode (known once the camera is open)
    path_reason: str = ""
    encoder: str | None = None  # libx264 | h264_v4l2m2m; None when passed through
    encoder_reason: str = ""
    source_fps: float | None = None  # the rate frames really come at (their own times)
    fps_note: str | None = None  # said when that differs from the config's fps
    audio: str = "off"  # off | on | no sound (asked, but the camera has none) | lost: why
    substream: str | None = None  # the sub-stream's state, when the camera has one


class Source(Protocol):
    cfg: CameraConfig
    paced: bool
    copies: bool  # gives the camera's own H.264 packets (read_copied), not raw frames
    path_reason: str  # why it does or does not
    decodes: bool  # copy path: decode the main stream (False when a sub-stream serves motion)
    size: tuple[int, int]  # of the copied stream

    def open(self) -> None: ...

    def read(self) -> RawFrame: ...

    def read_copied(self) -> Copied: ...

    def take_audio(self) -> list[EncodedPacket]: ...

    def close(self) -> None: ...


class _RawOnly:
    """Mixin: a source of raw frames only (and no sound of its own)."""

    copies = False
    decodes = True
    path_reason = "raw frames: encoded by the box"
    size = (0, 0)

    def read_copied(self) -> Copied:
        raise VideoError("this source gives raw frames only")

    def take_audio(self) -> list[EncodedPacket]:
        return []


class SyntheticCamera(_RawOnly):
    """Figures walking across a textured background, slow lighting changes, sensor noise."""

    paced = False

    def __init__(self, cfg: CameraConfig, clock: Clock, seed: int = 0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.index = 0
        self._t0 = (clock.monotonic(), clock.time())
        self._rng = np.random.default_rng(seed)
        w, h = cfg.width, cfg.height
        x = np.linspace(0, 1, w)
        y = np.linspace(0, 1, h)
        texture = 60 + 80 * np.outer(y, np.ones_like(x)) + 30 * x
        texture += 12 * np.sin(np.outer(np.ones_like(y), x) * 40)  # fence posts: some detail
        self._background = texture.astype(np.int16)
        self._noise = self._rng.integers(-3, 4, (h, w), dtype=np.int16)

    def open(self) -> None:
        self.index = 0
        self._t0 = (self.clock.monotonic(), self.clock.time())

    def render(self, index: int) -> Yuv:
        w, h = self.cfg.width, self.cfg.height
        light = int(10 * np.sin(index / max(1.0, self.cfg.fps * 20) * 2 * np.pi))
        luma = self._background + light + np.roll(self._noise, index * 7)
        size = max(4, h // 4)
        period = max(1, round(self.cfg.fps * 8))
        for n, speed in enumerate((1, 2)):  # two figures, different speeds
            left = ((index * speed) % period) * (w + size) // period - size
            top = h // 2 - size // 2 + n * size // 2
            luma[top : top + size, max(0, left) : max(0, left + size // 2)] = 220 - 60 * n
        yuv = np.empty((h * 3 // 2, w), dtype=np.uint8)
        yuv[:h] = np.clip(luma, 0, 255)
        yuv[h:] = 128
        return yuv

    def read(self) -> RawFrame:
        """The next picture, stamped ``index / fps`` after ``open`` (its own time)."""
        t0_s, t0_wall_s = self._t0
        after_s = self.index / self.cfg.fps
        frame = RawFrame(self.render(self.index), t0_s + after_s, ms(t0_wall_s + after_s))
        self.index += 1
        return frame

    def close(self) -> None:
        pass


class Picamera2Camera(_RawOnly):
    """The Raspberry Pi camera through picamera2 (imported here only, lazily).

    The main stream is taken as YUV420 at the configured size and goes through
    the same mask-then-encode pipeline as every other raw source: on a Pi 4 the
    encoder is the hardware one (``h264_v4l2m2m``, see :mod:`edge.video.encoders`),
    on a Pi 5 (no H.264 block) libx264. Each frame's time is the sensor's own
    (``SensorTimestamp``). NOT yet checked on a Pi: see the README section "What
    must be checked on a real Pi".
    """

    paced = True

    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.timing = StreamClock(live=True)
        self._cam: Any = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise VideoError("picamera2 is not installed (only on a Raspberry Pi)") from exc
        try:
            cam = Picamera2()
            size = (self.cfg.width, self.cfg.height)
            config = cam.create_video_configuration(
                main={"size": size, "format": "YUV420"},
                controls={"FrameRate": self.cfg.fps},
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            raise VideoError(f"camera {self.cfg.id}: picamera2: {exc}") from exc
        self._cam = cam
        self.timing = StreamClock(live=True)

    def read(self) -> RawFrame:
        if self._cam is None:
            raise VideoError(f"camera {self.cfg.id}: not open")
        try:
            request = self._cam.capture_request()
            try:
                array = request.make_array("main")
                stamp_ns = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
        except Exception as exc:
            raise VideoError(f"camera {self.cfg.id}: picamera2: {exc}") from exc
        yuv = np.ascontiguousarray(array[: self.cfg.height * 3 // 2, : self.cfg.width])
        now = self.clock.monotonic()
        at = self.timing.at(None if stamp_ns is None else stamp_ns / 1e9, now)
        return RawFrame(yuv, at, self.timing.wall_ms(at, now, self.clock.time()))

    @property
    def behind_s(self) -> float:
        return self.timing.behind_s

    def close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
        self._cam = None


def make_source(cfg: CameraConfig, clock: Clock) -> Source:
    if cfg.source == "synthetic":
        return SyntheticCamera(cfg, clock)
    if cfg.source == "picamera2":
        return Picamera2Camera(cfg, clock)
    return AvCamera(cfg, clock)
