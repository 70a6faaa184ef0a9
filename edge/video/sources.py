"""Camera sources behind one small interface.

For now the synthetic scene only (the demo and the tests); picamera2 and
PyAV sources plug in here behind the same ``run(sink)`` seam.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.clock import Clock, ms
from edge.config import CameraConfig
from edge.model import Frame, Gray


@dataclass
class SourceStatus:
    state: str = "stopped"
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0


def lores_size(cfg: CameraConfig) -> tuple[int, int]:
    """Width and height of the small analysis stream: about 320 px wide, even sizes."""
    scale = min(1.0, 320 / cfg.width)
    return max(2, round(cfg.width * scale / 2) * 2), max(2, round(cfg.height * scale / 2) * 2)


class SyntheticCamera:
    """A scene with a figure walking across a textured background, plus sensor noise."""

    def __init__(self, cfg: CameraConfig, clock: Clock, seed: int = 0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.status = SourceStatus()
        self.width, self.height = lores_size(cfg)
        self._rng = np.random.default_rng(seed)
        x = np.linspace(0, 1, self.width)
        y = np.linspace(0, 1, self.height)
        self._background = (60 + 80 * np.outer(y, np.ones_like(x)) + 30 * x).astype(np.uint8)

    def render(self, index: int) -> Gray:
        frame = self._background.copy()
        size = max(4, self.height // 4)
        period = max(1, round(self.cfg.fps * 8))
        left = (index % period) * (self.width + size) // period - size
        top = self.height // 2 - size // 2
        frame[top : top + size, max(0, left) : max(0, left + size // 2)] = 220
        noise = self._rng.integers(-3, 4, frame.shape, dtype=np.int16)
        noisy: Gray = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        return noisy

    async def run(self, sink: Callable[[Frame], Any]) -> None:
        """Produce frames at the configured rate until cancelled; ``sink`` must not block."""
        self.status = SourceStatus("running", 0, 0.0, self.width, self.height)
        period_s = 1.0 / self.cfg.fps
        start = self.clock.monotonic()
        index = 0
        try:
            while True:
                now = self.clock.monotonic()
                sink(Frame(self.cfg.id, index, now, ms(self.clock.time()), self.render(index)))
                index += 1
                self.status.frames = index
                elapsed = now - start
                self.status.fps = round(index / elapsed, 1) if elapsed > 0 else 0.0
                await asyncio.sleep(max(0.0, start + index * period_s - self.clock.monotonic()))
        finally:
            self.status.state = "stopped"
