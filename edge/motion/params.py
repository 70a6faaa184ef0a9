"""What an installer sets for motion detection, and how the sensitivity knob maps to it.

Areas are given in *normalised* coordinates (0..1 of the frame's width and
height) so that a mask drawn once fits the lores stream at any resolution.
Detection masks say where motion is ignored (a tree, a busy road); they are
not privacy masks, which blank video for the recording and never reach here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Point = tuple[float, float]
Mask = npt.NDArray[np.bool_]

SENSITIVITY_MIN = 1
SENSITIVITY_MAX = 10
SENSITIVITY_DEFAULT = 5


@dataclass(frozen=True)
class Polygon:
    """A named area of the picture, corners in normalised (x, y) coordinates."""

    name: str
    points: tuple[Point, ...]

    def raster(self, width: int, height: int) -> Mask:
        """The pixels of a ``width`` x ``height`` grid inside this polygon."""
        canvas = np.zeros((height, width), np.uint8)
        corners = np.array(
            [[round(x * (width - 1)), round(y * (height - 1))] for x, y in self.points], np.int32
        )
        cv2.fillPoly(canvas, [corners], (1,))
        return canvas.astype(bool)


def threshold_of(sensitivity: int) -> int:
    """Grey levels (above the local noise) a pixel must change by: 30 at 1, 20 at 5, 7 at 10."""
    return round(32 - 2.5 * sensitivity)


def min_area_of(sensitivity: int) -> float:
    """Smallest moving blob, as a share of the frame: 0.8 % at 1, 0.2 % at 5, 0.035 % at 10."""
    return float(0.002 * 2.0 ** ((SENSITIVITY_DEFAULT - sensitivity) / 2))


@dataclass(frozen=True)
class MotionParams:
    """Detector parameters. Defaults suit a fixed camera at 5-30 frames/s.

    ``sensitivity`` (1 = only large, strong changes; 10 = small, faint ones)
    sets ``threshold`` and ``min_area`` unless those are given explicitly; from
    the default up, thin moving targets under ``min_area`` are followed too.
    """

    sensitivity: int = SENSITIVITY_DEFAULT
    threshold: int | None = None  # grey levels, 4..100
    min_area: float | None = None  # share of the frame, 0.0001..0.5
    work_width: int = 160  # the detector's own downscale, 64..640 px
    calibration_frames: int = 12  # background learning after start or a scene change, 2..300
    learn_rate: float = 0.03  # background adaptation per frame, 0.001..0.5
    noise_gain: float = 1.0  # how much a pixel's own flicker raises its threshold, 0..5
    scene_change_share: float = 0.6  # changed share that means "relearn", not motion, 0.2..1
    min_frames: int = 2  # consecutive frames with a blob before "motion", 1..10
    masks: tuple[Polygon, ...] = ()  # detection masks: motion there is ignored
    zones: tuple[Polygon, ...] = ()  # named zones reported when motion touches them

    def __post_init__(self) -> None:
        checks = [
            (SENSITIVITY_MIN <= self.sensitivity <= SENSITIVITY_MAX, "sensitivity", "1..10"),
            (self.threshold is None or 4 <= self.threshold <= 100, "threshold", "4..100"),
            (self.min_area is None or 0.0001 <= self.min_area <= 0.5, "min_area", "0.0001..0.5"),
            (64 <= self.work_width <= 640, "work_width", "64..640"),
            (2 <= self.calibration_frames <= 300, "calibration_frames", "2..300"),
            (0.001 <= self.learn_rate <= 0.5, "learn_rate", "0.001..0.5"),
            (0 <= self.noise_gain <= 5, "noise_gain", "0..5"),
            (0.2 <= self.scene_change_share <= 1, "scene_change_share", "0.2..1"),
            (1 <= self.min_frames <= 10, "min_frames", "1..10"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"motion {name} = {getattr(self, name)!r}: must be in {allowed}")
        for polygon in (*self.masks, *self.zones):
            if len(polygon.points) < 3:
                raise ValueError(f"motion area {polygon.name!r}: needs at least 3 corners")
            if not all(0 <= v <= 1 for point in polygon.points for v in point):
                raise ValueError(f"motion area {polygon.name!r}: corners must be within 0..1")

    @property
    def grey_threshold(self) -> int:
        return self.threshold if self.threshold is not None else threshold_of(self.sensitivity)

    @property
    def small_targets(self) -> bool:
        """Follow thin targets smaller than ``min_area`` while they travel: from the
        default sensitivity up (below it, only large targets are wanted)."""
        return self.sensitivity >= SENSITIVITY_DEFAULT

    @property
    def area_share(self) -> float:
        return self.min_area if self.min_area is not None else min_area_of(self.sensitivity)
