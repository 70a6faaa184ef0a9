"""Camera tamper: covered, blinded, defocused or displaced. Pure reducer.

``check(gray, at_s, state, params) -> (state, changes)`` looks at a small
grey copy of the frame and compares it with a *reference* learnt over the
first ``learn_s`` seconds (and followed slowly while all is well, so the
day's light does not drift into a tamper):

- **covered**: the picture is nearly uniform (a hand, tape, a bag, paint);
- **blinded**: most of the picture is saturated (a torch, a laser, glare);
- **defocus**: sharpness (mean absolute Laplacian over contrast) fell below
  ``sharpness_ratio`` of the reference's (the lens turned, smeared, fogged);
- **displaced**: most of the reference's strongest edges are gone from the
  picture (the camera was turned or knocked); people and cars passing add
  edges but hide few of them.

A condition must hold ``raise_after_s`` to be raised and be gone
``restore_after_s`` to be restored: each raise has exactly one restore.
A covered or blinded picture has no edges, so defocus and displacement are
judged only when it is neither. These are tamper events, never motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from edge.model import Gray

Floats = npt.NDArray[np.float32]


class Tamper(StrEnum):
    COVERED = "covered"
    BLINDED = "blinded"
    DEFOCUS = "defocus"
    DISPLACED = "displaced"


@dataclass(frozen=True)
class TamperParams:
    work_width: int = 160  # 64..640 px
    uniform_std: float = 5.0  # grey-level spread below which the lens is covered, 1..40
    spread_ratio: float = 0.2  # ... or below this share of the reference's spread, 0.05..0.5
    saturated_share: float = 0.7  # share of pixels >= 245 that means blinded, 0.3..1
    sharpness_ratio: float = 0.35  # of the reference's sharpness, below: defocus, 0.05..0.9
    match_min: float = 0.55  # reference edges still found, below: displaced, 0.05..0.9
    raise_after_s: float = 5.0  # 0..600
    restore_after_s: float = 5.0  # 0..600
    learn_s: float = 3.0  # reference learnt over this long after start, 0.5..60
    follow_rate: float = 0.01  # reference follows the picture per frame while all is well

    def __post_init__(self) -> None:
        checks = [
            (64 <= self.work_width <= 640, "work_width", "64..640"),
            (1 <= self.uniform_std <= 40, "uniform_std", "1..40"),
            (0.05 <= self.spread_ratio <= 0.5, "spread_ratio", "0.05..0.5"),
            (0.3 <= self.saturated_share <= 1, "saturated_share", "0.3..1"),
            (0.05 <= self.sharpness_ratio <= 0.9, "sharpness_ratio", "0.05..0.9"),
            (0.05 <= self.match_min <= 0.9, "match_min", "0.05..0.9"),
            (0 <= self.raise_after_s <= 600, "raise_after_s", "0..600"),
            (0 <= self.restore_after_s <= 600, "restore_after_s", "0..600"),
            (0.5 <= self.learn_s <= 60, "learn_s", "0.5..60"),
            (0 <= self.follow_rate <= 0.5, "follow_rate", "0..0.5"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"tamper {name} = {getattr(self, name)!r}: must be in {allowed}")


@dataclass(frozen=True)
class Look:
    """What one frame shows, reduced to the figures tamper is judged on."""

    spread: float  # grey-level standard deviation
    saturated: float  # share of pixels >= 245
    sharpness: float
    match: float | None  # share of the reference's edges still there (None: no reference)
    edges: Floats = field(repr=False)


@dataclass(frozen=True)
class TamperState:
    started_s: float | None = None
    edges: Floats | None = None  # the reference: normalised edge image
    sharpness: float = 0.0  # the reference's
    spread: float = 0.0  # the reference's
    learnt: int = 0  # frames in the reference
    seen_since: tuple[tuple[Tamper, float], ...] = ()  # condition present since
    gone_since: tuple[tuple[Tamper, float], ...] = ()  # raised condition absent since
    active: frozenset[Tamper] = frozenset()


@dataclass(frozen=True)
class TamperChanged:
    """A tamper raised (``active``) or restored, at the time of the frame that decided it."""

    camera: str
    tamper: Tamper
    active: bool
    at_s: float
    detail: str


def look(gray: Gray, reference: Floats | None, params: TamperParams) -> Look:
    height, width = gray.shape
    work_w = min(params.work_width, width)
    size = (work_w, max(8, round(height * work_w / width)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA) if work_w < width else gray
    spread = float(small.std())
    saturated = float(np.count_nonzero(small >= 245)) / small.size
    lap = cv2.Laplacian(small, cv2.CV_32F)
    sharpness = float(np.abs(lap).mean()) / (spread + 1.0)
    blurred = cv2.GaussianBlur(small, (0, 0), 1.5).astype(np.float32)
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    magnitude = cv2.magnitude(gx, gy)
    edges: Floats = ((magnitude - magnitude.mean()) / (magnitude.std() + 1e-3)).astype(np.float32)
    match = None
    if reference is not None and reference.shape == edges.shape:
        # Share of the reference's strongest edges (top 10 %) still among the picture's
        # strongest (top 20 %): passers-by add edges but hide few; a turned camera loses them.
        kept = reference >= np.quantile(reference, 0.9)
        strong = edges >= np.quantile(edges, 0.8)
        match = float(np.count_nonzero(kept & strong)) / max(1, int(np.count_nonzero(kept)))
    return Look(spread, saturated, sharpness, match, edges)


def conditions(
    seen: Look, state: TamperState, params: TamperParams, learning: bool
) -> dict[Tamper, str]:
    """The tamper conditions this frame shows, each with a short reason."""
    found: dict[Tamper, str] = {}
    if seen.saturated >= params.saturated_share:
        found[Tamper.BLINDED] = f"{seen.saturated:.0%} of the picture saturated"
    elif seen.spread < max(params.uniform_std, params.spread_ratio * state.spread):
        found[Tamper.COVERED] = f"picture uniform (spread {seen.spread:.1f} grey levels)"
    if found or learning or state.edges is None:
        return found
    if seen.sharpness < params.sharpness_ratio * state.sharpness:
        ratio = seen.sharpness / max(state.sharpness, 1e-6)
        found[Tamper.DEFOCUS] = f"sharpness at {ratio:.0%} of the reference"
    elif seen.match is not None and seen.match < params.match_min:
        found[Tamper.DISPLACED] = f"scene matches the reference at {seen.match:.2f}"
    return found


def check(
    gray: Gray, at_s: float, state: TamperState, params: TamperParams, camera: str = ""
) -> tuple[TamperState, list[TamperChanged]]:
    """One frame through the tamper judge; ``state`` starts as ``TamperState()``."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(
            f"tamper check needs a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}"
        )
    if state.started_s is None:
        state = replace(state, started_s=at_s)
    seen = look(gray, state.edges, params)
    if state.edges is not None and state.edges.shape != seen.edges.shape:  # new resolution
        state = TamperState(started_s=at_s, active=state.active)
    assert state.started_s is not None
    learning = at_s - state.started_s <= params.learn_s
    found = conditions(seen, state, params, learning)
    state = _learn(state, seen, found, at_s, params)
    return _debounce(state, found, at_s, params, camera)


def _learn(
    state: TamperState, seen: Look, found: dict[Tamper, str], at_s: float, params: TamperParams
) -> TamperState:
    """Average the reference over the first seconds, then follow slowly while all is well."""
    if found or state.active or state.seen_since:
        return state
    if state.edges is None:
        return replace(
            state, edges=seen.edges, sharpness=seen.sharpness, spread=seen.spread, learnt=1
        )
    learning = state.started_s is None or at_s - state.started_s <= params.learn_s
    rate = 1.0 / (state.learnt + 1) if learning else params.follow_rate
    edges = (state.edges + np.float32(rate) * (seen.edges - state.edges)).astype(np.float32)
    sharpness = state.sharpness + rate * (seen.sharpness - state.sharpness)
    spread = state.spread + rate * (seen.spread - state.spread)
    return replace(state, edges=edges, sharpness=sharpness, spread=spread, learnt=state.learnt + 1)


def _debounce(
    state: TamperState, found: dict[Tamper, str], at_s: float, params: TamperParams, camera: str
) -> tuple[TamperState, list[TamperChanged]]:
    seen_since = {k: v for k, v in state.seen_since if k in found and k not in state.active}
    gone_since = {k: v for k, v in state.gone_since if k in state.active and k not in found}
    active = set(state.active)
    changes: list[TamperChanged] = []
    for tamper, reason in found.items():
        if tamper in active:
            continue
        since = seen_since.setdefault(tamper, at_s)
        if at_s - since >= params.raise_after_s:
            active.add(tamper)
            del seen_since[tamper]
            changes.append(TamperChanged(camera, tamper, True, at_s, reason))
    for tamper in sorted(state.active):
        if tamper in found:
            continue
        since = gone_since.setdefault(tamper, at_s)
        if at_s - since >= params.restore_after_s:
            active.discard(tamper)
            del gone_since[tamper]
            changes.append(TamperChanged(camera, tamper, False, at_s, "picture back to normal"))
    new = replace(
        state,
        seen_since=tuple(sorted(seen_since.items())),
        gone_since=tuple(sorted(gone_since.items())),
        active=frozenset(active),
    )
    return new, changes
