"""The person check: is there a person in the motion boxes? A second stage, pure but for
the detector it is given, run only on frames where motion was found, only inside the
motion boxes.

``People`` is the one small interface a detector implements (OpenCV's HOG people
detector here; a Coral or Hailo accelerator later): given a grey picture, the
people in it, with a confidence 0..1. ``check(people, gray, boxes)`` crops each
motion box (with a margin), scales it so that a person filling the box stands
``PERSON_PX`` tall, asks the detector and keeps the most confident answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge.model import Gray
from edge.motion.detector import Box

PERSON_PX = 96  # a person filling a motion box is scaled to stand this tall
MARGIN = 0.25  # of the box's height, added around it (a person's box is tight)
MAX_BOXES = 3  # the largest motion boxes only: the check has a CPU budget
MIN_BOX_PX = 6  # smaller boxes (on the lores frame) are too small to tell anything


@dataclass(frozen=True)
class PersonSeen:
    """The answer for one frame: person or not, how sure, where (lores frame pixels)."""

    seen: bool
    confidence: float  # 0..1 of the most confident person found, 0 when none
    box: Box | None = None
    checked: int = 0  # motion boxes looked at


class People(Protocol):
    """A person detector: the people in ``gray`` as ((x, y, w, h), confidence 0..1)."""

    def people(self, gray: Gray) -> list[tuple[Box, float]]: ...


class HogPeople:
    """OpenCV's built-in HOG + linear SVM people detector (Dalal and Triggs; its
    coefficients ship inside OpenCV, nothing is downloaded). Its SVM margin is turned
    into a confidence with a logistic curve: margin 0 is 0.5."""

    def __init__(self) -> None:
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        )
        self.window = (64, 128)

    def people(self, gray: Gray) -> list[tuple[Box, float]]:
        if gray.shape[0] < self.window[1] or gray.shape[1] < self.window[0]:
            return []
        rects, weights = self.hog.detectMultiScale(
            gray, hitThreshold=-1.0, winStride=(8, 8), padding=(8, 8), scale=1.1
        )
        return [
            ((int(x), int(y), int(w), int(h)), 1 / (1 + math.exp(-2 * float(s))))
            for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=True)
        ]


def _region(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box with a margin, clipped to the picture: (x0, y0, x1, y1)."""
    x, y, w, h = box
    pad = round(MARGIN * h)
    width, height = size
    return max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad)


def check(people: People, gray: Gray, boxes: tuple[Box, ...], min_confidence: float) -> PersonSeen:
    """The most confident person inside the largest motion boxes of ``gray``."""
    best: tuple[Box, float] | None = None
    chosen = sorted((b for b in boxes if min(b[2], b[3]) >= MIN_BOX_PX), key=lambda b: -b[2] * b[3])
    for box in chosen[:MAX_BOXES]:
        x0, y0, x1, y1 = _region(box, (gray.shape[1], gray.shape[0]))
        scale = PERSON_PX / max(1, box[3])
        # tall enough for the detector's window even when a person does not fill the box
        scale = max(scale, 136 / max(1, y1 - y0))
        crop = cv2.resize(
            gray[y0:y1, x0:x1],
            (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
            interpolation=cv2.INTER_LINEAR,
        )
        for (px, py, pw, ph), confidence in people.people(np.asarray(crop, np.uint8)):
            if best is None or confidence > best[1]:
                found = (
                    x0 + round(px / scale),
                    y0 + round(py / scale),
                    round(pw / scale),
                    round(ph / scale),
                )
                best = (found, confidence)
    if best is None:
        return PersonSeen(False, 0.0, None, min(len(chosen), MAX_BOXES))
    return PersonSeen(best[1] >= min_confidence, best[1], best[0], min(len(chosen), MAX_BOXES))
