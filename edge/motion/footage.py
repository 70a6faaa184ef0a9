"""Accuracy of the detector on third-party footage, next to OpenCV's MOG2.

One place for the measuring code, used by the tests (which assert bars) and
by the benchmark (which prints the table). The clips and their ground truth
are described in ``../shared/data/video/README.md``; nothing here is run by
the box. Every frame is first reduced to the lores size the box analyses
(about 320 px wide); both detectors get exactly those frames, and MOG2's
foreground goes through the same post-processing as ours (the working grid,
opening/closing, minimum blob area, ``min_frames`` consecutive frames).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.model import Gray
from edge.motion.blobs import bodies
from edge.motion.detector import Box, MotionState, detect, geometry
from edge.motion.params import Mask, MotionParams
from edge.motion.person import People
from edge.motion.person import check as check_person

LORES_WIDTH = 320
HIGHWAY = "cdnet2014_highway_input.avi"
HIGHWAY_GT = "cdnet2014_highway_groundtruth.mkv"
BGS = "bgslibrary_video.avi"
PETS = "pets2009_s2l1_vtest.avi"
PETS_GT = "pets2009_s2l1_mot15_gt.txt"
# bgslibrary_video.avi, annotated by eye (README): frames with a vehicle on the road.
BGS_VEHICLES = ((58, 187), (196, 261), (289, 361))
BGS_FRAMES = 374
BGS_SLACK = 3  # the annotation is +-1 to 3 frames: frames this close to a transition are not scored


@dataclass(frozen=True)
class Verdict:
    motion: bool
    calibrating: bool
    foreground: Mask | None  # on the working grid
    boxes: tuple[Box, ...]


Step = Callable[[Gray], Verdict]


def ours(params: MotionParams | None = None) -> Step:
    params = params or MotionParams()
    state = MotionState()

    def step(gray: Gray) -> Verdict:
        nonlocal state
        state, result = detect(gray, state, params)
        return Verdict(result.motion, result.calibrating, result.foreground, result.boxes)

    return step


def mog2(params: MotionParams | None = None) -> Step:
    """``cv2.createBackgroundSubtractorMOG2()`` with defaults, then our post-processing."""
    params = params or MotionParams()
    subtractor = cv2.createBackgroundSubtractorMOG2()
    streak = 0

    def step(gray: Gray) -> Verdict:
        nonlocal streak
        height, width = gray.shape
        geo = geometry(width, height, params)
        full = np.where(subtractor.apply(gray) == 255, 255, 0).astype(np.uint8)  # 127 = shadow
        small = cv2.resize(full, geo.size, interpolation=cv2.INTER_AREA)
        fg = np.where((small > 127) & geo.watched, 255, 0).astype(np.uint8)
        clean, blobs = bodies(fg, geo.min_area_px)
        mask = clean > 0
        streak = streak + 1 if blobs else 0
        sx, sy = width / geo.size[0], height / geo.size[1]
        boxes = tuple(
            (int(x * sx), int(y * sy), round(w * sx), round(h * sy)) for x, y, w, h, _ in blobs
        )
        return Verdict(streak >= params.min_frames, False, mask, boxes)

    return step


def lores(frame: Gray) -> Gray:
    height, width = frame.shape
    if width <= LORES_WIDTH:
        return frame
    size = (LORES_WIDTH, round(height * LORES_WIDTH / width / 2) * 2)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), np.uint8)


def frames(path: Path, limit: int | None = None, small: bool = True) -> Iterator[Gray]:
    """Decoded frames of a clip in grey, reduced to the lores size unless ``small=False``."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    try:
        count = 0
        while limit is None or count < limit:
            ok, image = capture.read()
            if not ok:
                return
            gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
            yield lores(gray) if small else gray
            count += 1
    finally:
        capture.release()


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


@dataclass(frozen=True)
class Scores:
    name: str
    figures: dict[str, float]


def highway(folder: Path, step: Step) -> dict[str, float]:
    """CDnet 2014 highway, frames 470-1700 (1-based): pixel F-measure, and frame recall.

    Every scored frame has a vehicle, so at the frame level only recall can be
    measured here (a detector that always says "motion" scores 100 %): the
    frame-level precision is measured on the road clip's empty periods
    (:func:`bgslibrary`). Pixels labelled motion (255) are positives, static (0)
    and hard shadow (50) negatives, unknown (170) and outside-ROI (85) not scored.
    """
    first, last = (
        int(v) for v in (folder / "cdnet2014_highway_temporalROI.txt").read_text().split()
    )
    gts = frames(folder / HIGHWAY_GT, small=False)
    hits = misses = tp = fp = fn = 0
    for index, gray in enumerate(frames(folder / HIGHWAY)):
        gt = next(gts)
        verdict = step(gray)
        if not first - 1 <= index <= last - 1:
            continue
        hits, misses = hits + verdict.motion, misses + (not verdict.motion)
        fg = verdict.foreground
        if fg is None:
            pred = np.zeros(gt.shape, bool)
        else:
            size = (gt.shape[1], gt.shape[0])
            pred = cv2.resize(fg.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        positive = gt == 255
        negative = (gt == 0) | (gt == 50)
        tp += int((pred & positive).sum())
        fp += int((pred & negative).sum())
        fn += int((~pred & positive).sum())
    return {
        "frame recall": hits / max(1, hits + misses),
        "pixel F": f1(tp, fp, fn),
        "pixel precision": tp / max(1, tp + fp),
        "pixel recall": tp / max(1, tp + fn),
    }


def bgs_truth(index: int) -> bool | None:
    """Vehicle on the road in this frame of bgslibrary_video.avi; None near a transition."""
    for start, end in BGS_VEHICLES:
        if (
            start - BGS_SLACK <= index < start + BGS_SLACK
            or end - BGS_SLACK < index <= end + BGS_SLACK
        ):
            return None
    return any(start <= index <= end for start, end in BGS_VEHICLES)


def bgslibrary(folder: Path, step: Step) -> dict[str, float]:
    """Frame-level precision, recall and F1 of "motion present" on the annotated road clip."""
    tp = fp = fn = tn = 0
    for index, gray in enumerate(frames(folder / BGS)):
        verdict = step(gray)
        truth = bgs_truth(index)
        if truth is None:
            continue
        tp += verdict.motion and truth
        fp += verdict.motion and not truth
        fn += truth and not verdict.motion
        tn += not truth and not verdict.motion
    return {
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "F1": f1(tp, fp, fn),
        "false frames": float(fp),
    }


def pets_truth(folder: Path) -> dict[int, list[Box]]:
    """PETS 2009 S2L1 person boxes (MOT15, flag 1) by 0-based frame, in full-size pixels."""
    boxes: dict[int, list[Box]] = {}
    with (folder / PETS_GT).open() as f:
        for row in csv.reader(f):
            x, y, w, h = (round(float(v)) for v in row[2:6])
            if int(row[6]):  # MOT15: flag 0 = ignore this box
                boxes.setdefault(int(row[0]) - 1, []).append((x, y, w, h))
    return boxes


def pets_track(folder: Path, ident: int) -> dict[int, Box]:
    """One person's boxes in PETS 2009 S2L1 (MOT15 id), by 0-based frame, full-size pixels."""
    boxes: dict[int, Box] = {}
    with (folder / PETS_GT).open() as f:
        for row in csv.reader(f):
            if int(row[1]) == ident and int(row[6]):
                x, y, w, h = (round(float(v)) for v in row[2:6])
                boxes[int(row[0]) - 1] = (x, y, w, h)
    return boxes


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def pets(folder: Path, step: Step, limit: int | None = None) -> dict[str, float]:
    """Share of ground-truth people whose box overlaps a motion box (after calibration).

    Also the mean share of the picture covered by motion boxes, so that one
    box over everything cannot pass for detection.
    """
    truth = pets_truth(folder)
    people = found = scored = 0
    covered = 0.0
    for index, gray in enumerate(frames(folder / PETS, limit)):
        verdict = step(gray)
        if verdict.calibrating:
            continue
        scale = 768 / gray.shape[1]
        boxes = [
            (round(x * scale), round(y * scale), round(w * scale), round(h * scale))
            for x, y, w, h in verdict.boxes
        ]
        for person in truth.get(index, []):
            people += 1
            found += any(overlaps(person, box) for box in boxes)
        scored += 1
        covered += sum(b[2] * b[3] for b in verdict.boxes) / (gray.shape[0] * gray.shape[1])
    return {"people found": found / max(1, people), "box area": covered / max(1, scored)}


def throughput(make: Callable[[], Step], clip: list[Gray], seconds: float = 2.0) -> float:
    """Frames/s of one detector over ``clip`` (looped), on whatever threads OpenCV is allowed."""
    step = make()
    for gray in clip[:10]:
        step(gray)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step(clip[done % len(clip)])
        done += 1
    return done / (time.perf_counter() - started)


def person_check(
    folder: Path, people: People, min_confidence: float, every: int = 3
) -> dict[str, float]:
    """The person check on the motion boxes of our detector, every ``every``-th frame
    with motion.

    PETS 2009: each motion box is a positive when a ground-truth person's centre
    lies in it (in any other box: a negative), and is called "person" when the
    check, asked about that box alone, says so: precision and recall per box.
    The road clip has only vehicles: the share of its motion boxes called
    "person". CPU: thread time of the check as the stage runs it (the largest
    motion boxes of a frame), per analysed frame, in ms.
    """
    truth = pets_truth(folder)
    tp = fp = fn = negatives = 0
    spent, frames_checked = 0.0, 0
    for index, gray, boxes in _motion_boxes(folder / PETS, every):
        started = time.thread_time()
        check_person(people, gray, boxes, min_confidence)
        spent += time.thread_time() - started
        frames_checked += 1
        scale = 768 / gray.shape[1]
        for box in boxes:
            x0, y0, w, h = (v * scale for v in box)
            label = any(
                x0 <= x + pw / 2 <= x0 + w and y0 <= y + ph / 2 <= y0 + h
                for x, y, pw, ph in truth.get(index, [])
            )
            said = check_person(people, gray, (box,), min_confidence).seen
            tp, fp, fn = tp + (label and said), fp + (said and not label), fn + (label and not said)
            negatives += not label
    cars = called = 0
    for _, gray, boxes in _motion_boxes(folder / BGS, every):
        for box in boxes:
            cars += 1
            called += check_person(people, gray, (box,), min_confidence).seen
    return {
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "boxes": float(tp + fn + negatives),
        "negatives": float(negatives),
        "vehicles called person": called / max(1, cars),
        "vehicle boxes": float(cars),
        "cpu ms": 1000 * spent / max(1, frames_checked),
    }


def _motion_boxes(path: Path, every: int) -> Iterator[tuple[int, Gray, tuple[Box, ...]]]:
    """(index, lores frame, motion boxes) of every ``every``-th frame with motion."""
    state, params, seen = MotionState(), MotionParams(), 0
    for index, gray in enumerate(frames(path)):
        state, result = detect(gray, state, params)
        if result.motion:
            seen += 1
            if seen % every == 0:
                yield index, gray, result.boxes
