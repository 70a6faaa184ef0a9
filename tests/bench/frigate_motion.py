"""Frigate's ImprovedMotionDetector, reimplemented for the benchmark only (never shipped).

Frigate (blakeblackshear/frigate, MIT licence) is not a package on PyPI, and its
``frigate/motion/improved_motion.py`` imports Frigate's config, PTZ metrics and
ZeroMQ config updater, so it is not run from its source here: this is its
published algorithm step by step, with Frigate's default ``motion`` config
(threshold 30, contour_area 10, frame_alpha 0.01, frame_height 100,
improve_contrast on, lightning_threshold 0.8), for a fixed camera (no PTZ,
no mask). One change: its ``scipy.ndimage.gaussian_filter(sigma=1, radius=1)``
is ``cv2.GaussianBlur`` with the same 3-tap kernel and reflected border
(scipy is not a dependency). OpenCV's blur is faster than scipy's, so Frigate
is if anything measured a little faster than it runs.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.motion import footage


class ImprovedMotion:
    """One camera's detector: ``detect(gray) -> [(x1, y1, x2, y2), ...]`` in input pixels."""

    threshold = 30
    contour_area = 10
    frame_alpha = 0.01
    frame_height = 100
    lightning_threshold = 0.8

    def __init__(self, height: int, width: int) -> None:
        self.shape = (height, width)
        self.resize_factor = height / self.frame_height
        self.size = (self.frame_height * width // height, self.frame_height)  # (w, h)
        self.avg_frame = np.zeros((self.size[1], self.size[0]), np.float32)
        self.motion_frame_count = 0
        self.calibrating = True
        self.contrast_values = np.zeros((50, 2), np.uint8)
        self.contrast_values[:, 1:2] = 255
        self.contrast_index = 0
        self.dilated: np.ndarray | None = None  # the last thresholded, dilated grid

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        resized = cv2.resize(gray, self.size, interpolation=cv2.INTER_NEAREST)
        min_value = np.percentile(resized, 4).astype(np.uint8)
        max_value = np.percentile(resized, 96).astype(np.uint8)
        if min_value < max_value:
            self.contrast_values[self.contrast_index] = [min_value, max_value]
            self.contrast_index = (self.contrast_index + 1) % len(self.contrast_values)
            avg_min, avg_max = np.mean(self.contrast_values, axis=0)
            resized = np.clip(resized, avg_min, avg_max)
            resized = (((resized - avg_min) / (avg_max - avg_min)) * 255).astype(np.uint8)
        resized = cv2.GaussianBlur(resized, (3, 3), 1, borderType=cv2.BORDER_REFLECT)
        delta = cv2.absdiff(resized, cv2.convertScaleAbs(self.avg_frame))
        thresh = cv2.threshold(delta, self.threshold, 255, cv2.THRESH_BINARY)[1]
        dilated = cv2.dilate(thresh, None, iterations=1)
        self.dilated = dilated
        contours, _ = cv2.findContours(dilated, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        total = 0.0
        for c in contours:
            area = cv2.contourArea(c)
            total += area
            if area > self.contour_area:
                x, y, w, h = cv2.boundingRect(c)
                f = self.resize_factor
                boxes.append((int(x * f), int(y * f), int((x + w) * f), int((y + h) * f)))
        pct_motion = total / (self.size[0] * self.size[1])
        if pct_motion < 0.05 and len(boxes) <= 4:
            self.calibrating = False
        if self.calibrating or pct_motion > self.lightning_threshold:
            self.calibrating = True
        alpha = 0.2 if self.calibrating else self.frame_alpha
        if boxes:
            self.motion_frame_count += 1
            if self.motion_frame_count >= 10:
                cv2.accumulateWeighted(resized, self.avg_frame, alpha)
        else:
            cv2.accumulateWeighted(resized, self.avg_frame, alpha)
            self.motion_frame_count = 0
        return boxes


def frigate() -> footage.Step:
    """Frigate's detector as a footage step: motion = any box while not calibrating."""
    detector: ImprovedMotion | None = None

    def step(gray: np.ndarray) -> footage.Verdict:
        nonlocal detector
        if detector is None or detector.shape != gray.shape:
            detector = ImprovedMotion(*gray.shape)
        corners = detector.detect(gray)
        boxes = tuple((x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in corners)
        fg = None if detector.dilated is None else detector.dilated > 0
        calibrating = detector.calibrating
        return footage.Verdict(bool(boxes) and not calibrating, calibrating, fg, boxes)

    return step
