"""Which H.264 encoder a camera that must be encoded gets, and why.

A Raspberry Pi 4 has a hardware H.264 encoder behind V4L2 (``/dev/video11``),
which FFmpeg (and so PyAV) drives as ``h264_v4l2m2m``; a Pi 5 and a PC have
none and use libx264. :func:`choose` is pure: it is given whether the
hardware encoder opens (``probe_hardware``, or a stand-in in tests) and
returns the codec with the reason the status shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

SOFTWARE = "libx264"
HARDWARE = "h264_v4l2m2m"
Probe = Callable[[], str | None]  # None: the hardware encoder opens; else why not


@dataclass(frozen=True)
class EncoderChoice:
    codec: str  # libx264 | h264_v4l2m2m
    reason: str


def choose(asked: str, hardware: Probe) -> EncoderChoice:
    """``asked`` is the camera's ``encoder`` key: auto | libx264 | v4l2m2m."""
    if asked == "libx264":
        return EncoderChoice(SOFTWARE, 'encoder = "libx264" in the config')
    why_not = hardware()
    if why_not is None:
        how = 'encoder = "v4l2m2m"' if asked == "v4l2m2m" else "auto"
        return EncoderChoice(HARDWARE, f"the Pi's hardware H.264 encoder is present ({how})")
    if asked == "v4l2m2m":
        return EncoderChoice(
            SOFTWARE, f'encoder = "v4l2m2m" but the hardware encoder is not usable ({why_not})'
        )
    return EncoderChoice(SOFTWARE, f"no hardware H.264 encoder ({why_not})")


def fallback(choice: EncoderChoice, error: str) -> EncoderChoice:
    """The hardware encoder was chosen but failed to open for this camera."""
    return EncoderChoice(SOFTWARE, f"{choice.codec} failed to open ({error}): libx264 instead")


@functools.cache
def probe_hardware() -> str | None:
    """Open ``h264_v4l2m2m`` once at a small size: None when it works, else why not.
    Cached: the answer does not change while the box runs."""
    if HARDWARE not in av.codecs_available:
        return f"{HARDWARE} is not in this FFmpeg build"
    try:
        ctx: Any = av.CodecContext.create(HARDWARE, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 640, 480, "yuv420p"
        ctx.time_base = Fraction(1, 1000)
        ctx.framerate = Fraction(15)
        ctx.bit_rate = 1_000_000
        ctx.open()
    except (av.FFmpegError, ValueError, OSError) as exc:
        return f"{HARDWARE} does not open here: {exc}"
    return None
