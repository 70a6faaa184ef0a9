"""The motion pre-filter: ``detect(gray, state, params) -> (state, result)``, pure.

On a small grey copy of each frame (its own downscale to ``work_width``, by
2x area steps), in 8-bit integers wherever it can:

1. **Lighting.** When the change is spread over much of the picture, the
   frame is compared with the background *after* a robust fit
   ``frame ~ gain * background + offset`` over the whole picture, so an
   exposure step, a cloud or a lamp changes gain/offset, not the foreground.
2. **Vibration.** A pixel is foreground only if it is darker than the
   darkest or brighter than the brightest background pixel of its 3x3
   neighbourhood, by more than the threshold: a one-pixel shake moves edges
   inside that band.
3. **Noise.** Each pixel's threshold grows with its own running flicker
   (leaves, water, sensor noise at night).
4. **Blobs** (``edge.motion.blobs``): bodies of at least ``min_area``, and
   thin targets followed from frame to frame until they have travelled (on
   one frame in ``THIN_EVERY`` while the only moving targets are bodies and
   their parts).
5. **Start-up and scene changes.** While the background is learnt (the
   first ``calibration_frames``, and again after the IR day/night switch:
   a change over ``scene_change_share`` of the picture, or over a quarter of that
   appearing in one frame, or a gain no lamp makes) the result says
   ``calibrating`` and never ``motion``.
6. **Quiet frames are cheap.** When no pixel changed and nothing is being
   followed, the frame costs its downscale and one comparison, and after
   ``QUIET_SKIP_AFTER`` such frames a frame is first probed (one working
   pixel in 4x4, read from the input) and skipped when at most one probed
   pixel changed, but for the frames that learn; the
   background and noise are then learnt every ``QUIET_LEARN_EVERY`` frames
   (every ``ACTIVE_LEARN_EVERY`` while something moves) at the rate those
   frames together would have had.

Motion needs a body or a moving target on ``min_frames`` consecutive frames.
The state is never modified in place: every call returns a new one; start
from ``MotionState()`` again when the parameters change (masks and zones
are rasterised into it). A body that fills over a quarter of
``scene_change_share`` of the picture *within one frame* is taken for a
lighting switch (the tamper judge sees a lens covered from close by);
walking in over a few frames, it is motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike

from edge.model import Gray
from edge.motion import blobs as bl
from edge.motion.params import Mask, MotionParams

Floats = npt.NDArray[np.float32]
U8 = MatLike  # an 8-bit, one-channel picture as OpenCV returns it
Box = tuple[int, int, int, int]  # x, y, width, height in the input frame's pixels
GAIN_RANGE = (0.4, 2.5)  # a fitted gain outside this is a scene change, not lighting
FIT_SHARE = 0.01  # changed share of the picture above which lighting may be fitted ...
FIT_SPREAD = 0.25  # ... if the change is spread over this share of the tiles;
FIT_MIN_GAIN = 0.01  # a fit closer to no change than this (gain, grey levels) is not used
FIT_MIN_OFFSET = 0.5
FIT_EVERY = 8  # a fit serves this many frames, unless the changed share jumps
TILES = (8, 6)
QUIET_LEARN_EVERY = 4
ACTIVE_LEARN_EVERY = 4
QUIET_SKIP_AFTER = 2  # after this many quiet frames in a row, frames are probed first:
PROBE = 4  # one working pixel in 4x4 is looked at, and the frame skipped if none changed
NOISE_RATE = 0.02
THIN_EVERY = 2  # thin targets looked for on 1 frame in 2 while only bodies move (_thin_due)
NEAR_BODY_PX = 4  # a moving target this close to a body is taken for a part of it


class Bands(NamedTuple):
    """What a frame is compared with: the 3x3 minimum and maximum of the expected
    picture, and those less and plus each pixel's limit (saturated 8-bit): a pixel
    outside [floor, ceiling] changed (``excess > limit``, in two passes instead of four)."""

    low: U8
    high: U8
    floor: U8
    ceiling: U8


@dataclass(frozen=True)
class Geometry:
    """The detector's grid for one input size, with its masks rasterised."""

    input_size: tuple[int, int]  # (width, height) of the frames given
    size: tuple[int, int]  # (width, height) of the working grid
    watched: Mask  # pixels outside every detection mask
    zones: tuple[tuple[str, Mask], ...]
    min_area_px: int
    halvings: int = 0  # 2x area reductions before the last resize
    blind: U8 = field(default_factory=lambda: np.zeros((0, 0), np.uint8), repr=False)
    watched_px: int = 1
    probe_y: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp), repr=False)
    probe_x: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp), repr=False)


@dataclass(frozen=True)
class MotionState:
    geometry: Geometry | None = None
    background: Floats | None = None
    noise: Floats | None = None
    learnt: int = 0  # frames learnt since start or the last scene change
    streak: int = 0  # consecutive frames with a blob
    changed: float = 0.0  # share of the watched picture changed in the last frame
    bands: Bands | None = field(default=None, repr=False)  # the background's
    limit: U8 | None = field(default=None, repr=False)  # per-pixel threshold, 255 = masked
    idle: int = 0  # quiet frames whose learning is still owed
    gain: float = 1.0  # the last lighting fit, and frames since it
    offset: float = 0.0
    fit_age: int = 0
    tracks: tuple[bl.Track, ...] = ()
    bodies: tuple[bl.Blob, ...] = ()  # the last frame's bodies, which a thin blob may continue
    quiet: int = 0  # quiet frames in a row (nothing changed, nothing followed)
    lit: Bands | None = field(default=None, repr=False)  # bands under the last fit


@dataclass(frozen=True)
class MotionResult:
    motion: bool
    calibrating: bool
    score: float  # share of the watched picture covered by moving blobs, 0..1
    boxes: tuple[Box, ...] = ()
    zones: tuple[str, ...] = ()
    scene_change: bool = False  # this frame restarted the background learning
    skipped: bool = False  # a quiet scene: this frame was not looked at
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
    halvings = 0
    while width >> (halvings + 1) >= work_w and height >> (halvings + 1) >= work_h:
        halvings += 1
    blind = np.where(watched, 0, 255).astype(np.uint8)
    # the input pixel at the centre of every PROBE-th working pixel
    probe_y = ((np.arange(0, work_h, PROBE) + 0.5) * height / work_h).astype(np.intp)
    probe_x = ((np.arange(0, work_w, PROBE) + 0.5) * width / work_w).astype(np.intp)
    return Geometry(
        (width, height),
        (work_w, work_h),
        watched,
        zones,
        min_area_px,
        halvings,
        blind,
        max(1, int(np.count_nonzero(watched))),
        probe_y[:, None],
        probe_x,
    )


def shrink(gray: Gray, geo: Geometry) -> U8:
    """The working grid: 2x area steps (OpenCV's fast path), then one area resize."""
    small: U8 = gray
    for _ in range(geo.halvings):
        height, width = small.shape
        small = cv2.resize(small, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    if (small.shape[1], small.shape[0]) != geo.size:
        small = cv2.resize(small, geo.size, interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.uint8)


def _median(values: Floats) -> float:
    return float(np.partition(values, values.size // 2)[values.size // 2])


def fit_lighting(small: U8, background: Floats) -> tuple[float, float]:
    """Gain and offset with ``small ~ gain * background + offset``, robust to moving objects.

    On every third pixel: a first guess (offset only, by median), then twice a
    least-squares fit on the pixels the last guess explains (moving bodies are left out).
    """
    x = background[::3, ::3].ravel()
    y = small[::3, ::3].ravel().astype(np.float32)
    gain, offset = 1.0, _median(y - x)
    for _ in range(2):
        residual = np.abs(y - (np.float32(gain) * x + np.float32(offset)))
        keep = residual <= max(8.0, 3.0 * _median(residual))
        xs, ys = x[keep], y[keep]
        if xs.size < 16:
            break
        mx, my = float(xs.sum()) / xs.size, float(ys.sum()) / ys.size
        dx = xs - np.float32(mx)
        var = float(np.dot(dx, dx))
        if var < xs.size:  # a flat picture (std < 1): offset only
            return 1.0, _median(y - x)
        gain = float(np.dot(dx, ys - np.float32(my))) / var
        offset = my - gain * mx
    return gain, offset


def spread(raw: U8) -> float:
    """Share of the picture's 8x6 tiles with a changed pixel: lighting changes everywhere,
    bodies in a few tiles."""
    tiles = cv2.resize(raw, TILES, interpolation=cv2.INTER_AREA)
    return cv2.countNonZero(tiles) / (TILES[0] * TILES[1])


def _still(gray: Gray, geo: Geometry, state: MotionState) -> bool:
    """At most one probed pixel is outside its band (one working pixel in PROBE x PROBE,
    read straight from the input: about 1/16 of the downscale's work; a lone pixel is
    the input's own noise, which the downscale averages away)."""
    if state.bands is None:
        return False
    probe = gray[geo.probe_y, geo.probe_x]
    below = probe < state.bands.floor[::PROBE, ::PROBE]
    above = probe > state.bands.ceiling[::PROBE, ::PROBE]
    return int(np.count_nonzero(below | above)) < 2  # 1: noise


def _skipped(s: MotionState) -> MotionState:
    """``s`` one skipped frame later (its learning owed). ``dataclasses.replace`` costs
    as much as the probe itself."""
    return MotionState(
        s.geometry,
        s.background,
        s.noise,
        s.learnt + 1,
        s.streak,
        s.changed,
        s.bands,
        s.limit,
        s.idle + 1,
        s.gain,
        s.offset,
        s.fit_age,
        s.tracks,
        s.bodies,
        s.quiet + 1,
        s.lit,
    )


def _bands(expected: U8, limit: U8) -> Bands:
    low, high = cv2.erode(expected, bl.KERNEL), cv2.dilate(expected, bl.KERNEL)
    return Bands(low, high, cv2.subtract(low, limit), cv2.add(high, limit))


def _changed(small: U8, bands: Bands) -> tuple[U8, U8]:
    """The changed pixels (0/255, outside [floor, ceiling]) and the others."""
    inside = cv2.inRange(small, bands.floor, bands.ceiling)
    return cv2.bitwise_not(inside), inside


def _excess(small: U8, bands: Bands) -> U8:
    """How far each pixel is outside its neighbourhood's band (saturating 8-bit)."""
    return cv2.max(cv2.subtract(bands.low, small), cv2.subtract(small, bands.high))


def _learnt(
    geo: Geometry,
    background: Floats,
    noise: Floats,
    params: MotionParams,
    small: U8,
    compared: Bands,
    rate: float,
    noise_rate: float,
    split: tuple[U8, U8] | None,
) -> tuple[Floats, Floats, Bands, U8]:
    """Background and noise after this frame (new arrays), their bands and limit.
    Changed pixels (``split``: changed, unchanged) are learnt ten times slower, so a body
    does not melt in;
    the flicker is learnt from how far each pixel was outside the bands it was
    ``compared`` with."""
    bg = background.copy()
    if split is None:
        cv2.accumulateWeighted(small, bg, rate)
    else:
        cv2.accumulateWeighted(small, bg, rate, mask=split[1])
        cv2.accumulateWeighted(small, bg, rate / 10, mask=split[0])
    flicker = noise.copy()
    excess = _excess(small, compared)
    capped = cv2.threshold(excess, min(255, 2 * params.grey_threshold), 255, cv2.THRESH_TRUNC)[1]
    cv2.accumulateWeighted(capped, flicker, noise_rate)
    limit = cv2.convertScaleAbs(flicker, alpha=params.noise_gain, beta=params.grey_threshold)
    if geo.watched_px < geo.size[0] * geo.size[1]:  # masks: their pixels never change
        limit = cv2.bitwise_or(limit, geo.blind)
    return bg, flicker, _bands(cv2.convertScaleAbs(bg), limit), limit


def _relearn(geo: Geometry, small: U8, scene_change: bool) -> tuple[MotionState, MotionResult]:
    bg = small.astype(np.float32)
    limit = cv2.bitwise_or(np.zeros_like(small), geo.blind)
    state = MotionState(geo, bg, np.zeros_like(bg), 1, 0, 0.0, _bands(small, limit), limit)
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
    elif (
        state.quiet >= QUIET_SKIP_AFTER
        and state.idle + 1 < QUIET_LEARN_EVERY
        and _still(gray, geo, state)
    ):
        return _skipped(state), MotionResult(False, False, 0.0, skipped=True)
    small = shrink(gray, geo)
    bg, noise, bands, limit = state.background, state.noise, state.bands, state.limit
    if bg is None or noise is None or bands is None or limit is None or state.geometry is not geo:
        return _relearn(geo, small, scene_change=False)

    raw, inside = _changed(small, bands)
    changed_px = cv2.countNonZero(raw)
    calibrating = state.learnt + 1 <= params.calibration_frames
    if changed_px == 0 and not calibrating and not state.streak and not state.tracks:
        return _quiet(geo, state, params, small)

    gain, offset, fit_age, lit, compared = 1.0, 0.0, 0, None, bands
    share = changed_px / geo.watched_px
    reuse = 0 < state.fit_age < FIT_EVERY and share < 2 * state.changed + FIT_SHARE
    if share > FIT_SHARE and (reuse or spread(raw) >= FIT_SPREAD):
        if reuse:
            gain, offset, fit_age, lit = state.gain, state.offset, state.fit_age + 1, state.lit
        else:
            gain, offset, fit_age = (*fit_lighting(small, bg), 1)
        if abs(gain - 1) > FIT_MIN_GAIN or abs(offset) > FIT_MIN_OFFSET:
            if lit is None:
                lit = _bands(cv2.convertScaleAbs(bg, alpha=gain, beta=offset), limit)
            compared = lit
            raw, inside = _changed(small, lit)
            changed_px = cv2.countNonZero(raw)
    changed = changed_px / geo.watched_px
    if (
        changed > params.scene_change_share
        or changed - state.changed > params.scene_change_share / 4  # IR switch: all at once
        or not GAIN_RANGE[0] <= gain <= GAIN_RANGE[1]
    ):
        return _relearn(geo, small, scene_change=True)

    learnt = state.learnt + 1
    owed = state.idle + 1
    if calibrating:
        rate, noise_rate, owed = max(params.learn_rate, 1.0 / learnt), NOISE_RATE, 0
    elif owed >= ACTIVE_LEARN_EVERY:
        rate = 1 - (1 - params.learn_rate) ** owed
        noise_rate, owed = 1 - (1 - NOISE_RATE) ** owed, 0
    if owed:
        new_bg, new_noise = bg, noise
    else:
        new_bg, new_noise, bands, limit = _learnt(
            geo, bg, noise, params, small, compared, rate, noise_rate, (raw, inside)
        )
        lit = None  # a new background: its lit bands are made again when needed
    if calibrating:
        state = MotionState(
            geo,
            new_bg,
            new_noise,
            learnt,
            0,
            changed,
            bands,
            limit,
            0,
            gain,
            offset,
            fit_age,
        )
        return state, MotionResult(False, True, 0.0, gain=gain, offset=offset)

    fg, found, tracks = _blobs(raw, geo, state, params.small_targets)
    bodies = [b for b in found if b[4] >= geo.min_area_px]  # a thin target may be as big
    streak = state.streak + 1 if found else 0
    # the blobs are apart (a thin blob is 2 px or more from the bodies): their areas add up
    score = sum(blob[4] for blob in found) / geo.watched_px
    sx, sy = width / geo.size[0], height / geo.size[1]
    boxes = tuple(
        [
            (int(x * sx), int(y * sy), round(w * sx) or 1, round(h * sy) or 1)
            for x, y, w, h, _ in found
        ]
    )
    zones: tuple[str, ...] = ()
    if geo.zones and found:
        zones = tuple(name for name, zone in geo.zones if bool((zone & fg).any()))
    result = MotionResult(
        motion=streak >= params.min_frames,
        calibrating=False,
        score=score,
        boxes=boxes,
        zones=zones,
        gain=gain,
        offset=offset,
        foreground=fg,
    )
    new_state = MotionState(
        geo,
        new_bg,
        new_noise,
        learnt,
        streak,
        changed,
        bands,
        limit,
        owed,
        gain,
        offset,
        fit_age,
        tracks,
        tuple(bodies),
        lit=lit,
    )
    return new_state, result


def _blobs(
    raw: U8, geo: Geometry, state: MotionState, small_targets: bool
) -> tuple[Mask, list[bl.Blob], tuple[bl.Track, ...]]:
    """The moving pixels, the moving blobs (bodies and thin targets that have travelled or
    continue a body) and the tracks, found in the rectangle around the
    changed pixels only (3 px of margin: the same blobs as on the whole grid, for a
    fraction of the work)."""
    x, y, w, h = cv2.boundingRect(raw)
    height, width = raw.shape
    x0, y0 = max(0, x - 3), max(0, y - 3)
    x1, y1 = min(width, x + w + 3), min(height, y + h + 3)
    crop = raw[y0:y1, x0:x1]
    part, found = bl.bodies(crop, geo.min_area_px)
    bodies = [(bx + x0, by + y0, bw, bh, a) for bx, by, bw, bh, a in found]
    found = list(bodies)
    tracks = state.tracks
    if small_targets and _thin_due(state, bodies):
        following = any(t.moving for t in tracks)
        thin = bl.thin(crop, part, bool(bodies), bl.least(geo.min_area_px, following))
        if thin.blobs or tracks:
            small = [(bx + x0, by + y0, bw, bh, a) for bx, by, bw, bh, a in thin.blobs]
            start = bl.least(geo.min_area_px, following=False)
            tracks, moving = bl.follow(tracks, small, (*bodies, *state.bodies), start)
            if moving:
                thin.draw(moving, part)
                found += [small[i] for i in moving]
    elif not small_targets:
        tracks = ()
    fg = np.zeros(raw.shape, bool)
    fg[y0:y1, x0:x1] = part  # 255: True
    return fg, found, tracks


def _thin_due(state: MotionState, bodies: list[bl.Blob]) -> bool:
    """Thin targets are looked for on every frame, but on one in ``THIN_EVERY`` while
    bodies are in view and every moving target is near one of them: the bits of a car
    that the opening cuts off add little to the car, and cost as much as the car. A far
    walker away from the bodies is followed on every frame, and one setting off is
    picked up at most a frame later."""
    if not bodies or state.learnt % THIN_EVERY == 0:
        return True
    return any(t.moving and not bl.near(t.blob, bodies, NEAR_BODY_PX) for t in state.tracks)


def _quiet(
    geo: Geometry, state: MotionState, params: MotionParams, small: U8
) -> tuple[MotionState, MotionResult]:
    """Nothing changed and nothing is followed: learn only every ``QUIET_LEARN_EVERY``
    frames, at the rate those frames together would have had."""
    assert state.background is not None and state.noise is not None and state.bands is not None
    owed = state.idle + 1
    learnt = state.learnt + 1
    if owed < QUIET_LEARN_EVERY:
        new = MotionState(
            geo,
            state.background,
            state.noise,
            learnt,
            0,
            0.0,
            state.bands,
            state.limit,
            owed,
            quiet=state.quiet + 1,
        )
        return new, MotionResult(False, False, 0.0)
    rate = 1 - (1 - params.learn_rate) ** owed
    noise_rate = 1 - (1 - NOISE_RATE) ** owed
    bg, noise, bands, limit = _learnt(
        geo, state.background, state.noise, params, small, state.bands, rate, noise_rate, None
    )
    new = MotionState(geo, bg, noise, learnt, 0, 0.0, bands, limit, quiet=state.quiet + 1)
    return new, MotionResult(False, False, 0.0)
