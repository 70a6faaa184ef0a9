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

    def last_result(self) -> dict[str, Any] | None:
        """The last walk test's result: ``seen``, ``not_seen``, ``ended_by``,
        ``duration_s``, ``text`` (as the station got it), ``event_id``, ``ended_at``."""
        ...


class CameraView(Protocol):
    """What the camera page needs from the video and motion stages.

    ``latest_jpeg`` is preferred; a box whose video stage has no JPEG encoder
    yet gives ``latest_gray`` (the lores frame), which the page sends as PNG; both
    with the wall time (ms) the frame was taken at.
    ``overlays`` is in the frame's own pixels:
    ``{"width", "height", "motion": [[x, y, w, h], ...],
    "zones": [{"name", "points": [[x, y], ...]}], "masks": [[[x, y], ...], ...]}``.
    """

    def camera_ids(self) -> list[str]: ...

    def latest_jpeg(self, camera_id: str) -> tuple[bytes, int] | None: ...

    def latest_gray(self, camera_id: str) -> tuple[npt.NDArray[np.uint8], int] | None: ...

    def overlays(self, camera_id: str) -> dict[str, Any]: ...

    def recording(self, camera_id: str) -> dict[str, Any]:
        """``{"enabled", "mode", "failing", "yielding"}``: whether footage is kept."""
        ...

    async def snapshot(self, camera_id: str) -> bytes:
        """A fresh full-size JPEG; NotFound when the camera has no picture."""
        ...


class ConfigControl(Protocol):
    """The box's config file: shown redacted, checked, applied with rollback."""

    @property
    def confirm_s(self) -> int:
        """How long a box must stay healthy after an apply to keep the new config."""
        ...

    def redacted(self) -> str: ...

    def check(self, text: str, name: str) -> list[str]: ...

    async def apply(self, text: str) -> dict[str, Any]:
        """Write it and restart; Conflict when it cannot be applied now."""
        ...


class HoldControl(Protocol):
    """Incident holds on recorded footage: listed, and placed from the camera page."""

    async def holds(self) -> list[dict[str, Any]]: ...

    async def place(self, camera: str, minutes: int, keep_days: int, why: str) -> dict[str, Any]:
        """NotFound for an unknown camera, Conflict when nothing of that time is on disk."""
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
    holds: HoldControl | None = None
    monotonic: Callable[[], float] = time.monotonic
