"""What sources hand the camera pipeline: raw frames, or the camera's own packets.

- :class:`RawFrame`: a picture to mask and encode (the encode path).
- :class:`Copied`: one H.264 access unit the camera encoded itself (the
  passthrough path), with, when this picture was decoded, its luma thinned
  for motion and its full picture converted only if a still wants it.

Both carry times from the stream's own timestamps (see :mod:`edge.video.timing`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.config import CameraConfig
from edge.model import Gray
from edge.video.codec import EncodedPacket, VideoError, Yuv


class StreamEnded(VideoError):
    """The source has no more frames (a file at its end that does not loop)."""


@dataclass(frozen=True)
class RawFrame:
    yuv: Yuv
    at_s: float  # monotonic seconds of the picture (its own timestamp, mapped)
    wall_ms: int


@dataclass(frozen=True)
class Copied:
    """The camera's own H.264 packet (Annex B) and what was decoded of it."""

    packet: EncodedPacket
    lores: Gray | None = field(default=None, repr=False)  # motion's copy, when due
    picture: Callable[[], Yuv] | None = field(default=None, repr=False)  # full, on demand


def lores_step(width: int) -> int:
    """Every n-th pixel of the luma plane makes the lores frame (about 320 px wide)."""
    return max(1, width // 320)


def lores_size(cfg: CameraConfig) -> tuple[int, int]:
    """Width and height of the small analysis stream (luma subsampled by ``lores_step``)."""
    step = lores_step(cfg.width)
    return -(-cfg.width // step), -(-cfg.height // step)


def luma(frame: Any) -> Gray:
    """The lores copy of a decoded picture: its luma plane, every n-th pixel (no
    scaling pass: the cheapest way to motion's size)."""
    step = lores_step(frame.width)
    if frame.format.name.startswith(("yuv", "yuvj", "nv", "gray")):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return np.ascontiguousarray(rows[: frame.height : step, : frame.width : step])
    gray = frame.to_ndarray(format="gray")
    return np.ascontiguousarray(gray[::step, ::step])
