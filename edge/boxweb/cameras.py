"""The camera page's view of the video and motion stages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.config import EdgeConfig
from edge.config.schema import MotionAreaConfig
from edge.errors import NotFound
from edge.video.codec import VideoError, jpeg
from edge.video.service import VideoService


class Cameras:
    """The camera page's view of the video and motion stages: latest frames, what to
    draw over them (motion boxes, the motion zones and ignored areas, privacy masks),
    full-size snapshots. ``motion_status`` is the motion stage's status, if it runs."""

    def __init__(
        self,
        video: VideoService,
        cfg: EdgeConfig,
        motion_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.video = video
        self.motion_cfg = {m.camera: m for m in cfg.motion.cameras}
        self.motion_status = motion_status
        self.recording_on = cfg.recording.enabled

    def camera_ids(self) -> list[str]:
        return self.video.camera_ids()

    def latest_jpeg(self, camera_id: str) -> tuple[bytes, int] | None:
        """The newest full-size frame as JPEG, and when it was taken (wall ms)."""
        cam = self.video.cameras.get(camera_id)
        frame = cam.pipeline.latest if cam is not None else None
        return None if frame is None else (jpeg(frame.yuv), frame.wall_ms)

    def latest_gray(self, camera_id: str) -> tuple[npt.NDArray[np.uint8], int] | None:
        frame = self.video.latest_lores(camera_id)
        if frame is None:
            return None
        return np.asarray(frame.gray, dtype=np.uint8), frame.wall_ms

    def recording(self, _camera_id: str) -> dict[str, Any]:
        """Whether footage is being kept on the box: on or off, the mode (alarms,
        motion, continuous), why it fails, whether it waits for room."""
        rec = self.video.recorder
        return {
            "enabled": self.recording_on,
            "mode": rec.settings.mode,
            "failing": rec.failing,
            "yielding": rec.yielding,
        }

    def overlays(self, camera_id: str) -> dict[str, Any]:
        cam = self.video.cameras[camera_id].pipeline.cfg
        status = self.motion_status() if self.motion_status is not None else {}
        seen = status.get("cameras", {}).get(camera_id, {})
        motion = self.motion_cfg.get(camera_id)
        return {
            "width": cam.width,
            "height": cam.height,
            "motion": lores_to_camera(
                seen.get("boxes", []), seen.get("lores"), cam.width, cam.height
            ),
            "zones": [_area(a) for a in motion.zones] if motion else [],
            "ignored": [_area(a) for a in motion.masks] if motion else [],
            "masks": self.video.masks(camera_id),
        }

    async def snapshot(self, camera_id: str) -> bytes:
        try:
            return await self.video.snapshot_jpeg(camera_id)
        except VideoError as exc:
            raise NotFound(str(exc)) from exc


def lores_to_camera(
    boxes: list[list[int]], lores: list[int] | None, width: int, height: int
) -> list[list[int]]:
    """Motion boxes found on the lores frame, in the camera's pixels."""
    if not lores or not lores[0] or not lores[1]:
        return []
    sx, sy = width / lores[0], height / lores[1]
    return [[round(x * sx), round(y * sy), round(w * sx), round(h * sy)] for x, y, w, h in boxes]


def _area(area: MotionAreaConfig) -> dict[str, Any]:
    return {"name": area.name, "points": [list(c) for c in area.corners]}
