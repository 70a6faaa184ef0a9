"""A video file as one of the box's cameras, on a virtual clock: the shared part of the
motion scan and the clip cut.

The file is read by the box's own file source (:class:`~edge.video.sources.AvCamera`,
told not to loop) into the box's own camera :class:`~edge.video.camera.Pipeline`;
every picture keeps its own timestamp (a variable rate, a gap) and the virtual
clock follows them, so times are the file's own.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from edge.clock import FakeClock
from edge.config import CameraConfig, EdgeConfig, load
from edge.config.load import validate
from edge.errors import ConfigError
from edge.video.camera import Pipeline
from edge.video.codec import VideoError
from edge.video.sources import AvCamera, StreamEnded

# What a camera-only file lacks to be a config (never used to send anything).
_STANDIN = {
    "device": {"id": "diag"},
    "station": {"account": "0000"},
    "uplink": {"broker": "mqtt://127.0.0.1:1883"},
}


def video_config(path: Path) -> EdgeConfig:
    """A whole box config, or just its ``[[cameras]]`` (with ``[motion]``, ``[recording]``):
    validated by the same rules either way, errors naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return load(path)  # its own clear error
    if "device" in raw or "cameras" not in raw:
        return load(path)
    return validate({**_STANDIN, **raw}, str(path))


def camera_of(cfg: EdgeConfig, camera_id: str | None, video: Path) -> CameraConfig:
    """The config's camera (the first unless named), reading ``video`` instead."""
    if not cfg.cameras:
        raise ConfigError("cameras", ["this config has no [[cameras]]: nothing to scan"])
    if camera_id is None:
        cam = cfg.cameras[0]
    else:
        found = [c for c in cfg.cameras if c.id == camera_id]
        if not found:
            known = ", ".join(c.id for c in cfg.cameras)
            raise ConfigError("--camera", [f"--camera {camera_id!r}: not in this config ({known})"])
        cam = found[0]
    return cam.model_copy(update={"source": "file", "path": video})


@dataclass(frozen=True)
class Probe:
    frames: int  # declared by the container; 0 when it does not say (never trusted)
    fps: float
    duration_s: float | None  # the stream's duration (the container's if it has none)


def probe(video: Path) -> Probe:
    """What the file declares; VideoError on a file that is no video."""
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            return Probe(int(stream.frames or 0), float(rate) if rate else 0.0, duration)
    except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{video}: not a video file: {exc}") from exc


@dataclass
class Fed:
    """What :func:`feed` read of a file: pictures, their span, and whether it is whole."""

    frames: int = 0
    first_s: float | None = None  # camera time (monotonic s) of the first picture
    last_s: float | None = None
    problem: str | None = None  # truncated or damaged: what was read still stands

    def after_s(self, at_s: float) -> float:
        """Seconds into the file of a picture at camera time ``at_s``."""
        return at_s - (self.first_s if self.first_s is not None else at_s)


def feed(
    cam: CameraConfig,
    pipeline: Pipeline,
    clock: FakeClock,
    encode: bool = True,
    fed: Fed | None = None,
) -> Iterator[float]:
    """Push the file's pictures through ``pipeline``; yields each one's time (camera
    monotonic s: the picture's own timestamp, so a variable rate or a gap keeps its
    real times). The clock follows the pictures.

    A file that cannot be read to its end (truncated or damaged) stops the feed and
    says so in ``fed.problem``; whether it ended early is judged by its duration,
    not the frame count its header declares (a variable-rate AVI declares the
    frames of its constant-rate grid). VideoError when not one picture decodes.
    """
    fed = fed if fed is not None else Fed()
    info = probe(Path(str(cam.path)))
    source = AvCamera(cam, clock)
    source.loops = False
    source.open()
    try:
        if source.copies:
            pipeline.copies = True
            pipeline.set_size(*source.size)
        else:
            pipeline.set_rate(source.file_fps)  # as the camera runner does
        while True:
            try:
                if source.copies:
                    copied = source.read_copied()
                    at_s = copied.packet.at_s
                    pipeline.push_copied(copied)
                else:
                    frame = source.read()
                    at_s = frame.at_s
                    pipeline.push(frame, encode)
                for packet in source.take_audio():
                    pipeline.push_packet(packet)
            except StreamEnded:
                break
            except VideoError as exc:
                fed.problem = (
                    f"{cam.path}: unreadable after frame {fed.frames} (truncated or damaged): {exc}"
                )
                break
            fed.frames += 1
            fed.first_s = at_s if fed.first_s is None else fed.first_s
            fed.last_s = at_s
            clock.advance(max(0.0, at_s - clock.monotonic()))
            yield at_s
    finally:
        period_s = source.timing.period_s
        source.close()
    if fed.frames == 0:
        raise VideoError(f"{cam.path}: no frame could be decoded")
    if fed.problem is None:
        fed.problem = _short(cam, info, fed, period_s)


def _short(cam: CameraConfig, info: Probe, fed: Fed, period_s: float) -> str | None:
    """Why a file that ended cleanly is still short of its declared duration, or None."""
    if info.duration_s is None or fed.first_s is None or fed.last_s is None:
        return None
    read_s = fed.last_s - fed.first_s + period_s
    if read_s >= info.duration_s - max(0.5, 0.02 * info.duration_s):
        return None
    return (
        f"{cam.path}: ends after {read_s:.2f} s of the {info.duration_s:.2f} s it declares "
        "(truncated or damaged)"
    )


def read_error(problem: str, rows: int) -> VideoError:
    """The error for a file read in part, saying what the printed rows stand for."""
    if rows:
        return VideoError(f"{problem}; the {rows} row(s) above cover what could be read")
    return VideoError(f"{problem}; no row could be made of what was read")
