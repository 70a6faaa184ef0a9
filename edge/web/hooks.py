"""What the page may ask of the box: callables and small Protocols, passed in by the Box.

The web stage imports no other stage; the Box hands it these. Anything left
``None`` is absent on this box and the page says so (404 in the API).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.web.journal import Journal

StatusFn = Callable[[], Mapping[str, Any]]
SimulateFn = Callable[[str, bool], None]
PulseFn = Callable[[str, int, float, float], Coroutine[Any, Any, None]]
TestEventFn = Callable[[str], Coroutine[Any, Any, str]]  # text -> event id


class WalkControl(Protocol):
    def start_walk(self, duration_s: float) -> dict[str, Any]:
        """The test started; Conflict when one runs already."""
        ...

    def walk_status(self) -> dict[str, Any] | None: ...

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None: ...


class CameraView(Protocol):
    """What the camera page needs from the video and motion stages.

    ``latest_jpeg`` is preferred; a box whose video stage has no JPEG encoder
    yet gives ``latest_gray`` (the lores frame), which the page sends as PNG.
    ``overlays`` is in the frame's own pixels:
    ``{"width", "height", "motion": [[x, y, w, h], ...],
    "zones": [{"name", "points": [[x, y], ...]}], "masks": [[[x, y], ...], ...]}``.
    """

    def camera_ids(self) -> list[str]: ...

    def latest_jpeg(self, camera_id: str) -> bytes | None: ...

    def latest_gray(self, camera_id: str) -> npt.NDArray[np.uint8] | None: ...

    def overlays(self, camera_id: str) -> dict[str, Any]: ...

    async def snapshot(self, camera_id: str) -> bytes:
        """A fresh full-size JPEG; NotFound when the camera has no picture."""
        ...


class ConfigControl(Protocol):
    """The box's config file: shown redacted, checked, applied with rollback."""

    def redacted(self) -> str: ...

    def check(self, text: str, name: str) -> list[str]: ...

    async def apply(self, text: str) -> dict[str, Any]:
        """Write it and restart; Conflict when it cannot be applied now."""
        ...


@dataclass
class Hooks:
    status: StatusFn
    inputs: StatusFn | None = None  # {"zones", "walktest"} sections only, cheaper than status
    simulate: SimulateFn | None = None
    pulses: PulseFn | None = None
    walk: WalkControl | None = None
    journal: Journal | None = None
    send_test: TestEventFn | None = None
    cameras: CameraView | None = None
    config: ConfigControl | None = None
    monotonic: Callable[[], float] = time.monotonic
