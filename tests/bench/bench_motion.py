"""Motion pre-filter: accuracy on third-party footage and frames/s, next to OpenCV's MOG2
and Frigate's ImprovedMotionDetector on the same frames; the person check's figures.

All detectors see the same lores frames; MOG2 (defaults) gets our
post-processing for the accuracy rows (see ``edge.motion.footage``), Frigate's
detector (``frigate_motion.py``: its algorithm reimplemented here, with
Frigate's default config) its own. Frame-level precision is scored on the road
clip, which has empty periods; on CDnet highway every scored frame has a
vehicle, so only its pixel F-measure and frame recall are shown.

Speed: one thread (``cv2.setNumThreads(1)``), CPU time of the calling thread,
runs alternated between the detectors (ours, Frigate, MOG2, ours, ...) and
the median of ``ROUNDS`` kept. Each run is a whole pass over the clip, so the
quiet stretches and the busy ones count as they come: our detector including
its own downscale, Frigate's including its resize, ``MOG2.apply`` alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.motion import footage
from edge.motion.person import HogPeople
from tests.bench.frigate_motion import frigate

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video"
Row = tuple[str, float, float, str, str]
ROUNDS = 7
PERSON_MIN_CONFIDENCE = 0.7  # the config's default


def accuracy() -> list[Row]:
    if not DATA.is_dir():
        print(f"(no footage at {DATA}: accuracy skipped)")
        return []
    rows: list[Row] = []
    for clip, score, keys in (
        (
            "highway",
            footage.highway,
            ("pixel F", "pixel precision", "pixel recall", "frame recall"),
        ),
        ("road", footage.bgslibrary, ("F1", "precision", "recall", "false frames")),
        ("pets", lambda d, s: footage.pets(d, s), ("people found", "box area")),
    ):
        ours = score(DATA, footage.ours())
        others = (("MOG2", score(DATA, footage.mog2())), ("Frigate", score(DATA, frigate())))
        for key in keys:
            scale, unit = (1.0, "frames") if key == "false frames" else (100.0, "%")
            for name, other in others:
                rows.append((f"{clip} {key}", ours[key] * scale, other[key] * scale, unit, name))
    return rows


def _clip(name: str, width: int, height: int, count: int | None) -> list[np.ndarray]:
    if DATA.is_dir():
        frames = list(footage.frames(DATA / name, count, small=False))
        return [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width), dtype=np.uint8) for _ in range(count or 120)]


def _pass(make: Callable[[], footage.Step], clip: list[np.ndarray]) -> float:
    """Frames/s of one whole pass over the clip, in this thread's CPU time."""
    step = make()
    started = time.thread_time()
    for gray in clip:
        step(gray)
    return len(clip) / max(1e-9, time.thread_time() - started)


def _alternated(makers: dict[str, Callable[[], footage.Step]], clip: list[np.ndarray]) -> dict:
    rates: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(ROUNDS):
        for name, make in makers.items():
            rates[name].append(_pass(make, clip))
    return {name: statistics.median(r) for name, r in rates.items()}


def speed() -> list[Row]:
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        rows: list[Row] = []
        for width, height, name, count, label in (
            (640, 360, footage.BGS, 120, "road 120 fr"),  # the frames the issue measured
            (640, 360, footage.BGS, None, "road 374 fr"),
            (320, 240, footage.HIGHWAY, 600, "highway 600 fr"),
        ):
            clip = _clip(name, width, height, count)
            makers = {"ours": footage.ours, "Frigate": frigate, "MOG2": _mog2_raw}
            rate = _alternated(makers, clip)
            for other in ("Frigate", "MOG2"):
                metric = f"{label} {width}x{height}"
                unit = "fr/s"
                rows.append((metric, rate["ours"], rate[other], unit, other))
        return rows
    finally:
        cv2.setNumThreads(threads)


def _mog2_raw() -> footage.Step:
    subtractor = cv2.createBackgroundSubtractorMOG2()

    def step(gray: np.ndarray) -> footage.Verdict:
        subtractor.apply(gray)
        return footage.Verdict(False, False, None, ())

    return step


def person() -> list[Row]:
    """The person check (OpenCV's HOG people detector) on our motion boxes: PETS 2009
    per-box precision and recall, road-clip vehicles called "person", CPU per analysed
    frame (the three largest motion boxes of a lores frame, one thread)."""
    if not DATA.is_dir():
        print(f"(no footage at {DATA}: person check skipped)")
        return []
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        got = footage.person_check(DATA, HogPeople(), PERSON_MIN_CONFIDENCE)
    finally:
        cv2.setNumThreads(threads)
    print(
        f"(person check: {got['boxes']:.0f} PETS motion boxes, {got['negatives']:.0f} without"
        f" a person; {got['vehicle boxes']:.0f} road-clip vehicle boxes;"
        f" min confidence {PERSON_MIN_CONFIDENCE})"
    )
    return [
        ("pets person precision", 100 * got["precision"], 0.0, "%", "-"),
        ("pets person recall", 100 * got["recall"], 0.0, "%", "-"),
        ("road vehicles as person", 100 * got["vehicles called person"], 0.0, "%", "-"),
        ("person check CPU/frame", got["cpu ms"], 0.0, "ms", "-"),
    ]


CASES = [("motion speed", speed), ("motion accuracy", accuracy), ("motion person", person)]
