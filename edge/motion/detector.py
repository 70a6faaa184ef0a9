"""The motion pre-filter: ``detect(gray, state, params) -> (state, result)``, pure.

On a small grey copy of each frame (its own downscale to ``work_width``):

1. **Lighting.** The frame is compared with the background *after* a robust
   fit ``frame ~ gain * background + offset`` over the whole picture, so an
   exposure step, a cloud or a lamp changes gain/offset, not the foreground.
2. **Vibration.** A pixel is foreground only if it is darker than the
   darkest or brighter than the brightest background pixel of its 3x3
   neighbourhood, by more than the threshold: a one-pixel shake moves edges
   inside that band.
3. **Noise.** Each pixel's threshold grows with its own running flicker
   (leaves, water, sensor noise at night).
4. **Blobs.** Opening removes speckles, closing joins the parts of one
   body; connected blobs smaller than ``min_area`` are dropped.
5. **Start-up and scene changes.** While the background is learnt (the
   first ``calibration_frames``, and again after the IR day/night switch:
   a change over ``scene_change_share`` of the picture, or over a quarter of that
   appearing in one frame, or a gain no lamp makes) the result says
   ``calibrating`` and never ``motion``.

Motion needs blobs on ``min_frames`` consecutive frames. The state is never
modified in place: every call returns a new one; start from ``MotionState()``
again when the parameters change (masks and zones are rasterised into it).
A body that fills over a quarter of ``scene_change_share`` of the picture
*within one frame* is taken for a lighting switch (the tamper judge sees a
lens covered from close by); walking in over a few frames, it is motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from edge.model import Gray
from edge.motion.params import Mask, MotionParams

Floats = npt.NDArray[np.float32]
Box = tuple[int, int, int, int]  # x, y, width, height in the input frame's pixels
GAIN_RANGE = (0.4, 2.5)  # a fitted gain outside this is a scene change, not lighting
_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Geometry:
    """The detector's grid for one input size, with its masks rasterised."""

    input_size: tuple[int, int]  # (width, height) of the frames given
    size: tuple[int, int]  # (width, height) of the working grid
    watched: Mask  # pixels outside every detection mask
    zones: tuple[tuple[str, Mask], ...]
    min_area_px: int


@dataclass(frozen=True)
class MotionState:
    geometry: Geometry | None = None
    background: Floats | None = None
    noise: Floats | None = None
    learnt: int = 0  # frames learnt since start or the last scene change
    streak: int = 0  # consecutive frames with a blob
    changed: float = 0.0  # share of the watched picture changed in the last frame


@dataclass(frozen=True)
class MotionResult:
    motion: bool
    calibrating: bool
    score: float  # share of the watched picture covered by moving blobs, 0..1
    boxes: tuple[Box, ...] = ()
    zones: tuple[str, ...] = ()
    scene_change: bool = False  # this frame restarted the background learning
    gain: float = 1.0
    offset: float = 0.0
    foreground: Mask | None = field(default=None, repr=False, compare=False)  # working grid


def geometry(width: int, height: int, params: MotionParams) -> Geometry:
    work_w = min(params.work_width, width)
    work_h = max(8, round(height * work_w / width))
    watched = np.ones((work_h, work_w), bool)
    for polygon in params.masks:
        watched &= ~polygon.raster(work_w, work_h)
    zones = tuple((z.name, z.raster(work_w, work_h) & watched) for z in params.zones)
    min_area_px = max(2, round(params.area_share * work_w * work_h))
    return Geometry((width, height), (work_w, work_h), watched, zones, min_area_px)


def shrink(gray: Gray, geo: Geometry) -> Floats:
    if geo.size == geo.input_size:
        return gray.astype(np.float32)
    small = cv2.resize(gray, geo.size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def fit_lighting(small: Floats, background: Floats) -> tuple[float, float]:
    """Gain and offset with ``small ~ gain * background + offset``, robust to moving objects.

    On every third pixel: a first guess (offset only, by median), then twice a
    least-squares fit on the pixels the last guess explains (moving bodies are left out).
    """
    x = background[::3, ::3].ravel()
    y = small[::3, ::3].ravel()
    gain, offset = 1.0, float(np.median(y - x))
    for _ in range(2):
        residual = np.abs(y - (gain * x + offset))
        keep = residual <= max(8.0, 3.0 * float(np.median(residual)))
        xs, ys = x[keep], y[keep]
        if xs.size < 16:
            break
        mx, my = float(xs.mean()), float(ys.mean())
        var = float(np.dot(xs - mx, xs - mx))
        if var < xs.size:  # a flat picture (std < 1): offset only
            return 1.0, float(np.median(y - x))
        gain = float(np.dot(xs - mx, ys - my)) / var
        offset = my - gain * mx
    return gain, offset


def postprocess(
    foreground: npt.NDArray[np.uint8], min_area_px: int
) -> tuple[Mask, list[tuple[int, int, int, int, int]]]:
    """Open, close, keep blobs of at least ``min_area_px``: (mask, [(x, y, w, h, area)])."""
    clean = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, _KERNEL)
    clean = cv2.morphologyEx(clean, cv2.MORPH_CLOSE, _KERNEL)
    if cv2.countNonZero(clean) == 0:
        return clean.astype(bool), []
    # 16-bit labels: blobs survive a 3x3 opening, so fewer than 65,536 of them fit any grid
    # up to 640 px wide, and this is three times faster than the default here.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        clean, connectivity=8, ltype=cv2.CV_16U
    )
    big = np.flatnonzero(stats[1:, 4] >= min_area_px) + 1
    blobs = [(int(x), int(y), int(w), int(h), int(a)) for x, y, w, h, a in stats[big].tolist()]
    if len(blobs) == count - 1:
        return clean.astype(bool), blobs
    keep = np.zeros(count, bool)
    keep[big] = True
    return keep[labels], blobs


def _relearn(geo: Geometry, small: Floats, scene_change: bool) -> tuple[MotionState, MotionResult]:
    state = MotionState(geo, small, np.zeros_like(small), 1, 0)
    return state, MotionResult(False, True, 0.0, scene_change=scene_change)


def detect(
    gray: Gray, state: MotionState, params: MotionParams
) -> tuple[MotionState, MotionResult]:
    """One frame through the detector. ``gray`` is uint8 HxW; ``state`` starts as MotionState()."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"detect needs a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}")
    height, width = gray.shape
    geo = state.geometry
    if geo is None or geo.input_size != (width, height):
        geo = geometry(width, height, params)
    small = shrink(gray, geo)
    bg, noise = state.background, state.noise
    if bg is None or noise is None or state.geometry is not geo:
        return _relearn(geo, small, scene_change=False)

    gain, offset = fit_lighting(small, bg)
    expected = bg * np.float32(gain) + np.float32(offset)
    low = cv2.erode(expected, _KERNEL)
    high = cv2.dilate(expected, _KERNEL)
    excess = np.maximum(np.maximum(low - small, small - high), 0)
    threshold = params.grey_threshold + params.noise_gain * noise
    raw = (excess > threshold) & geo.watched
    changed = float(np.count_nonzero(raw)) / max(1, int(np.count_nonzero(geo.watched)))
    if (
        changed > params.scene_change_share
        or changed - state.changed > params.scene_change_share / 4  # IR switch: all at once
        or not GAIN_RANGE[0] <= gain <= GAIN_RANGE[1]
    ):
        return _relearn(geo, small, scene_change=True)

    learnt = state.learnt + 1
    calibrating = learnt <= params.calibration_frames
    rate = max(params.learn_rate, 1.0 / learnt) if calibrating else params.learn_rate
    # Moving pixels are learnt ten times slower, so a body does not melt into the background.
    rates = np.where(raw, np.float32(rate / 10), np.float32(rate))
    new_bg = bg + rates * (small - bg)
    new_noise = noise + np.float32(0.02) * (np.minimum(excess, 2 * params.grey_threshold) - noise)
    if calibrating:
        return MotionState(geo, new_bg, new_noise, learnt, 0, changed), MotionResult(
            False, True, 0.0, gain=gain, offset=offset
        )

    mask, blobs = postprocess(raw.astype(np.uint8), geo.min_area_px)
    streak = state.streak + 1 if blobs else 0
    score = float(mask.sum()) / max(1, int(geo.watched.sum()))
    sx, sy = width / geo.size[0], height / geo.size[1]
    boxes = tuple(
        (int(x * sx), int(y * sy), max(1, round(w * sx)), max(1, round(h * sy)))
        for x, y, w, h, _ in blobs
    )
    zones = tuple(name for name, zone in geo.zones if blobs and bool((zone & mask).any()))
    result = MotionResult(
        motion=streak >= params.min_frames,
        calibrating=False,
        score=score,
        boxes=boxes,
        zones=zones,
        gain=gain,
        offset=offset,
        foreground=mask,
    )
    return MotionState(geo, new_bg, new_noise, learnt, streak, changed), result
