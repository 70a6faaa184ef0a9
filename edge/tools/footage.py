"""A video file as one of the box's cameras, on a virtual clock: the shared part of the
motion scan and the clip cut.

The file is read by the box's own file source (:class:`~edge.video.sources.AvCamera`,
told not to loop) into the box's own camera :class:`~edge.video.camera.Pipeline`;
the clock advances one frame period per frame, so times are the file's own.
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
    frames: int  # declared by the container; 0 when it does not say
    fps: float


def probe(video: Path) -> Probe:
    """What the file declares; VideoError on a file that is no video."""
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return Probe(int(stream.frames or 0), float(rate) if rate else 0.0)
    except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{video}: not a video file: {exc}") from exc


def feed(
    cam: CameraConfig, pipeline: Pipeline, clock: FakeClock, encode: bool = True
) -> Iterator[int]:
    """Push the file's frames through ``pipeline``; yields after each (the count so far).

    Raises VideoError when the file cannot be read, or ends well before the
    number of frames its container declares (truncated or damaged).
    """
    declared = probe(Path(str(cam.path))).frames
    source = AvCamera(cam, clock)
    source.loops = False
    source.open()
    period_s = 1.0 / (source.file_fps or cam.fps)
    count = 0
    try:
        if source.copies:
            pipeline.set_size(*source.size)
        while True:
            try:
                if source.copies:
                    packet, picture = source.read_copied()
                    pipeline.push_copied(packet, picture)
                else:
                    pipeline.push(source.read(), encode)
            except StreamEnded:
                break
            except VideoError as exc:
                of = f" of the {declared} it declares" if declared else ""
                raise VideoError(
                    f"{cam.path}: unreadable after frame {count}{of} (truncated or damaged): {exc}"
                ) from exc
            count += 1
            yield count
            clock.advance(period_s)
    finally:
        source.close()
    if count == 0:
        raise VideoError(f"{cam.path}: no frame could be decoded")
    if declared and count < declared * 0.98 - 1:
        raise VideoError(
            f"{cam.path}: ends after {count} of the {declared} frames it declares "
            "(truncated or damaged); the rows above cover what could be read"
        )
