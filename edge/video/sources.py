"""Camera sources behind one small interface: ``open``, ``read``, ``close``.

``read`` blocks until the next frame and returns it as I420 at the camera's
configured size, or raises :class:`VideoError` when the camera is lost (the
runner then reports the trouble and reconnects with backoff). Sources that
do not wait for real time themselves (the synthetic scene, files) say
``paced = False`` and the runner paces them.

- :class:`SyntheticCamera`: a generated scene (the demo and the tests).
- :class:`AvCamera`: PyAV for V4L2 devices, RTSP/HTTP cameras and video files
  (looped). Every frame is decoded, masked and encoded once on ingest by the
  pipeline, whatever the source's codec (MS-MPEG4, MJPEG, H.264...).
- :class:`Picamera2Camera`: the Pi camera; picamera2 is imported lazily, only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.clock import Clock, ms
from edge.config import CameraConfig
from edge.video.codec import EncodedPacket, VideoError, Yuv

READ_TIMEOUT_S = 5.0  # a live camera silent this long is lost
REANCHOR_S = 10.0  # "behind" by more than this is a jump of the camera's clock, not lag


class StreamEnded(VideoError):
    """The source has no more frames (a file at its end that does not loop)."""


@dataclass(frozen=True)
class RawFrame:
    yuv: Yuv
    at_s: float  # monotonic seconds when captured
    wall_ms: int


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


class Source(Protocol):
    cfg: CameraConfig
    paced: bool
    copies: bool  # gives the camera's own H.264 packets (read_copied), not raw frames
    size: tuple[int, int]  # of the copied stream

    def open(self) -> None: ...

    def read(self) -> RawFrame: ...

    def read_copied(self) -> tuple[EncodedPacket, RawFrame | None]: ...

    def close(self) -> None: ...


class _RawOnly:
    """Mixin: a source of raw frames only."""

    copies = False
    size = (0, 0)

    def read_copied(self) -> tuple[EncodedPacket, RawFrame | None]:
        raise VideoError("this source gives raw frames only")


def lores_step(width: int) -> int:
    """Every n-th pixel of the luma plane makes the lores frame (about 320 px wide)."""
    return max(1, width // 320)


def lores_size(cfg: CameraConfig) -> tuple[int, int]:
    """Width and height of the small analysis stream (luma subsampled by ``lores_step``)."""
    step = lores_step(cfg.width)
    return -(-cfg.width // step), -(-cfg.height // step)


class SyntheticCamera(_RawOnly):
    """Figures walking across a textured background, slow lighting changes, sensor noise."""

    paced = False

    def __init__(self, cfg: CameraConfig, clock: Clock, seed: int = 0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.index = 0
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
        frame = RawFrame(self.render(self.index), self.clock.monotonic(), ms(self.clock.time()))
        self.index += 1
        return frame

    def close(self) -> None:
        pass


class AvCamera:
    """V4L2, RTSP/HTTP or a file through PyAV (FFmpeg); a file loops at its own rate."""

    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        self.paced = cfg.source != "file"  # live sources deliver at their own rate
        self.file_fps: float | None = None
        self.loops = True  # a file starts again at its end (the field tools stop there)
        self.copies = False
        self.size = (cfg.width, cfg.height)
        self.behind_s = 0.0  # a live stream's frames queued behind real time
        self._first: tuple[float, float] | None = None  # (monotonic, stream s) of frame 1
        self._container: Any = None
        self._frames: Any = None
        self._stream: Any = None
        self._annexb: Any = None
        self._pending: list[Any] = []

    def _target(self) -> tuple[str, dict[str, Any]]:
        cfg = self.cfg
        if cfg.source == "v4l2":
            size = f"{cfg.width}x{cfg.height}"
            options = {"video_size": size, "framerate": str(cfg.fps)}
            return str(cfg.device), {"format": "v4l2", "options": options}
        if cfg.source == "rtsp":
            return str(cfg.url), {"options": {"rtsp_transport": "tcp"}}
        return str(cfg.path), {}

    def open(self) -> None:
        import av

        target, kwargs = self._target()
        if self.cfg.source == "file" and not Path(target).is_file():
            raise VideoError(f"camera {self.cfg.id}: no such file {target}")
        try:
            self._container = av.open(target, timeout=(READ_TIMEOUT_S, READ_TIMEOUT_S), **kwargs)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as exc:
            raise VideoError(f"camera {self.cfg.id}: cannot open {target}: {exc}") from exc
        rate = stream.average_rate or stream.guessed_rate
        self.file_fps = float(rate) if rate else None
        self._stream = stream
        # H.264 already, and nothing to blank: keep the camera's own packets (no encoder)
        self.copies = stream.codec_context.name == "h264" and not self.cfg.privacy_masks
        self.size = (int(stream.codec_context.width), int(stream.codec_context.height))
        if self.copies:
            from av.bitstream import BitStreamFilterContext

            self._annexb = BitStreamFilterContext("h264_mp4toannexb", stream)
            self._frames = self._container.demux(stream)
        else:
            self._frames = self._container.decode(stream)

    def read_copied(self) -> tuple[EncodedPacket, RawFrame | None]:
        """The next H.264 packet (Annex B, as our encoder gives) and its decoded picture."""
        import av

        while not self._pending:
            try:
                packet = next(self._frames, None)
                if packet is None and self.cfg.source == "file" and self.loops:
                    self._container.seek(0)
                    self._frames = self._container.demux(self._stream)
                    packet = next(self._frames, None)
                if packet is None:
                    raise StreamEnded(f"camera {self.cfg.id}: stream ended")
                if packet.size:
                    decoded = self._stream.codec_context.decode(packet)
                    filtered = self._annexb.filter(packet)
                    self._pending.extend((p, decoded[-1] if decoded else None) for p in filtered)
            except av.FFmpegError as exc:
                raise VideoError(f"camera {self.cfg.id}: {exc}") from exc
        packet, picture = self._pending.pop(0)
        at_s, wall = self.clock.monotonic(), ms(self.clock.time())
        copied = EncodedPacket(bytes(packet), round(at_s * 1000), wall, bool(packet.is_keyframe))
        frame = None
        if picture is not None:
            out = picture.reformat(self.cfg.width, self.cfg.height, "yuv420p")
            frame = RawFrame(np.ascontiguousarray(out.to_ndarray()), at_s, wall)
        return copied, frame

    def read(self) -> RawFrame:
        import av

        if self._container is None:
            raise VideoError(f"camera {self.cfg.id}: not open")
        try:
            frame = next(self._frames, None)
            if frame is None and self.cfg.source == "file" and self.loops:  # loop the file
                self._container.seek(0)
                self._frames = self._container.decode(self._container.streams.video[0])
                frame = next(self._frames, None)
        except av.FFmpegError as exc:
            raise VideoError(f"camera {self.cfg.id}: {exc}") from exc
        if frame is None:
            raise StreamEnded(f"camera {self.cfg.id}: stream ended")
        now = self.clock.monotonic()
        if self.paced and frame.time is not None:  # how far behind the camera we read
            if self._first is None:
                self._first = (now, float(frame.time))
            real_s, stream_s = now - self._first[0], float(frame.time) - self._first[1]
            if not -1.0 <= real_s - stream_s <= REANCHOR_S:  # the camera's clock jumped
                self._first, real_s, stream_s = (now, float(frame.time)), 0.0, 0.0
            self.behind_s = max(0.0, real_s - stream_s)
        out = frame.reformat(self.cfg.width, self.cfg.height, "yuv420p")
        yuv = np.ascontiguousarray(out.to_ndarray())
        return RawFrame(yuv, now, ms(self.clock.time()))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = self._stream = self._annexb = None
        self._pending = []
        self._first = None
        self.behind_s = 0.0


class Picamera2Camera(_RawOnly):
    """The Raspberry Pi camera through picamera2 (imported here only, lazily).

    The main stream is taken as YUV420 at the configured size and goes through
    the same mask-then-libx264 pipeline as every other source, which is what a
    Pi 5 does anyway (it has no H.264 block). NOT yet checked on a Pi: see the
    README section "What must be checked on a real Pi".
    """

    paced = True

    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
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

    def read(self) -> RawFrame:
        if self._cam is None:
            raise VideoError(f"camera {self.cfg.id}: not open")
        try:
            array = self._cam.capture_array("main")
        except Exception as exc:
            raise VideoError(f"camera {self.cfg.id}: picamera2: {exc}") from exc
        yuv = np.ascontiguousarray(array[: self.cfg.height * 3 // 2, : self.cfg.width])
        return RawFrame(yuv, self.clock.monotonic(), ms(self.clock.time()))

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
