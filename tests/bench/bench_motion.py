"""Motion pre-filter: accuracy on third-party footage and frames/s, next to OpenCV's MOG2.

Both detectors see the same lores frames; MOG2 (defaults) gets our
post-processing for the accuracy rows (see ``edge.motion.footage``). Speed
is on one core (``cv2.setNumThreads(1)``): our detector including its own
downscale, against ``MOG2.apply`` alone on the same frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.motion import footage
from edge.motion.params import MotionParams
from edge.motion.tamper import TamperParams, TamperState, check

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video"
Row = tuple[str, float, float, str, str]


def accuracy() -> list[Row]:
    if not DATA.is_dir():
        print(f"(no footage at {DATA}: accuracy skipped)")
        return []
    rows: list[Row] = []
    for clip, score, keys in (
        ("highway", footage.highway, ("frame recall", "pixel F", "pixel precision", "pixel recall")),
        ("bgs", footage.bgslibrary, ("F1", "precision", "recall", "false frames")),
        ("pets", lambda d, s: footage.pets(d, s), ("people found", "box area")),
    ):
        ours = score(DATA, footage.ours())
        mog2 = score(DATA, footage.mog2())
        for key in keys:
            scale, unit = (1.0, "frames") if key == "false frames" else (100.0, "%")
            rows.append((f"{clip} {key}", ours[key] * scale, mog2[key] * scale, unit, "MOG2"))
    return rows


def _clip(name: str, width: int, height: int, count: int = 120) -> list[np.ndarray]:
    if DATA.is_dir():
        frames = list(footage.frames(DATA / name, count, small=False))
        return [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (height, width), dtype=np.uint8) for _ in range(count)]


def speed() -> list[Row]:
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        rows: list[Row] = []
        for width, height, name in ((640, 360, footage.BGS), (320, 240, footage.HIGHWAY)):
            clip = _clip(name, width, height)
            mog2 = footage.throughput(_mog2_raw, clip)
            rows.append(
                (
                    f"detect {width}x{height}",
                    footage.throughput(footage.ours, clip),
                    mog2,
                    "fr/s",
                    "MOG2.apply",
                )
            )
            rows.append(
                (
                    f"detect+tamper/8 {width}x{height}",
                    footage.throughput(_with_tamper, clip),
                    mog2,
                    "fr/s",
                    "MOG2.apply",
                )
            )
        return rows
    finally:
        cv2.setNumThreads(threads)


def _mog2_raw() -> footage.Step:
    subtractor = cv2.createBackgroundSubtractorMOG2()

    def step(gray: np.ndarray) -> footage.Verdict:
        subtractor.apply(gray)
        return footage.Verdict(False, False, None, ())

    return step


def _with_tamper() -> footage.Step:
    """What MotionStage does per frame: detect, and the tamper check on every 8th frame."""
    detect = footage.ours(MotionParams())
    params, state, index = TamperParams(), TamperState(), 0

    def step(gray: np.ndarray) -> footage.Verdict:
        nonlocal state, index
        if index % 8 == 0:
            state, _ = check(gray, index / 15, state, params)
        index += 1
        return detect(gray)

    return step


CASES = [("motion speed", speed), ("motion accuracy", accuracy)]
