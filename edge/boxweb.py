"""The technician page's view of a running box: the adapters the Box hands to the web stage.

The web stage imports no other stage; these small classes stand between it and
the outbox (event journal), the cameras (latest frame, overlays) and the
config file (redacted view, check, apply with rollback).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.clock import ms
from edge.config import EdgeConfig, parse
from edge.config.schema import MotionAreaConfig
from edge.errors import ConfigError
from edge.model import Event, MediaDue, StoredEvent
from edge.outbox.aio import AsyncOutbox
from edge.video.codec import VideoError
from edge.video.service import VideoService
from edge.web.journal import Journal

log = logging.getLogger(__name__)
APPLY_MARKER = "apply-pending.json"


class JournaledOutbox(AsyncOutbox):
    """The outbox, telling the journal what was queued, handed to the link and acknowledged."""

    journal: Journal

    async def put(self, event: Event, now_ms: int, due: tuple[MediaDue, ...] = ()) -> StoredEvent:
        stored = await super().put(event, now_ms, due)
        self.journal.queued(stored, now_ms)
        return stored

    async def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        batch = await super().lease(now_ms, live_after_ms, lease_ms, limit)
        self.journal.sent(batch, now_ms)
        return batch

    async def ack(self, ids: list[str] | tuple[str, ...]) -> int:
        deleted = await super().ack(ids)
        self.journal.acked(ids, ms(self.clock.time()))
        return deleted


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

    def camera_ids(self) -> list[str]:
        return self.video.camera_ids()

    def latest_jpeg(self, camera_id: str) -> bytes | None:
        return self.video.latest_jpeg(camera_id)

    def latest_gray(self, camera_id: str) -> npt.NDArray[np.uint8] | None:
        frame = self.video.latest_lores(camera_id)
        return None if frame is None else np.asarray(frame.gray, dtype=np.uint8)

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
            raise LookupError(str(exc)) from exc


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


class ConfigFile:
    """The running config: shown redacted, checked like ``edge check-config``, applied.

    Applying writes the new file (the old one kept as ``<name>.previous``),
    leaves a marker in the state directory and asks for a restart. The next
    start confirms the new config once the box has stayed healthy for
    ``web.apply_confirm_s``, or puts the previous one back and restarts again."""

    def __init__(
        self,
        cfg: EdgeConfig,
        path: Path | None,
        marker_dir: Path,
        restart: Callable[[], None] | None,
    ) -> None:
        self.cfg = cfg
        self.path = path
        self.marker = marker_dir / APPLY_MARKER
        self._restart = restart

    def redacted(self) -> str:
        return to_toml(self.cfg.model_dump(mode="json", exclude_none=True))

    def check(self, text: str, name: str = "upload.toml") -> list[str]:
        try:
            parse(text, name)
        except ConfigError as exc:
            return list(exc.messages)
        return []

    async def apply(self, text: str) -> dict[str, Any]:
        if self.path is None or self._restart is None:
            raise ValueError("this box was started without a config file path: cannot apply")
        if self.marker.exists():
            raise ValueError("a config applied earlier is still on probation: wait for it")
        try:
            # through a link (/etc/edge/edge.toml -> site/edge.toml) to the file
            # itself, in the one folder the service may write
            await asyncio.to_thread(self._swap, self.path.resolve(), text)
        except OSError as exc:
            self.marker.unlink(missing_ok=True)
            raise ValueError(f"cannot write the new config beside {self.path}: {exc}") from exc
        log.warning("new config written to %s; restarting to apply it", self.path)
        self._restart()
        return {
            "message": "applied: the box restarts, and keeps it if it stays healthy "
            f"for {self.cfg.web.apply_confirm_s} s"
        }

    def _swap(self, path: Path, text: str) -> None:
        """Keep the old file, leave the marker, then write the new file (in that order:
        a crash between two steps leaves either the old config or a way back)."""
        previous = path.with_name(path.name + ".previous")
        _write_atomic(previous, path.read_bytes())
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.marker, json.dumps({"previous": str(previous)}).encode())
        _write_atomic(path, text.encode("utf-8"))


def pending_previous(marker_dir: Path) -> Path | None:
    """The previous config of an apply still on probation, if any."""
    try:
        data = json.loads((marker_dir / APPLY_MARKER).read_text())
        return Path(data["previous"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def roll_back(config_path: Path, marker_dir: Path, why: str) -> bool:
    """Put the previous config back; False when there is nothing to roll back."""
    previous = pending_previous(marker_dir)
    if previous is None or not previous.is_file():
        return False
    _write_atomic(config_path.resolve(), previous.read_bytes())
    (marker_dir / APPLY_MARKER).unlink(missing_ok=True)
    log.error("new config rolled back (%s): %s restored", why, config_path)
    return True


def confirm(marker_dir: Path) -> None:
    (marker_dir / APPLY_MARKER).unlink(missing_ok=True)
    log.info("new config confirmed: the box stayed healthy")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def to_toml(data: dict[str, Any]) -> str:
    """A plain dump of the validated config as TOML (tables, arrays of tables)."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _table(lines: list[str], path: list[str], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if not isinstance(value, dict) and not _tables(value):
            lines.append(f"{key} = {json.dumps(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{'.'.join([*path, key])}]"]
            _table(lines, [*path, key], value)
        elif _tables(value):
            for item in value:
                lines += ["", f"[[{'.'.join([*path, key])}]]"]
                _table(lines, [*path, key], item)


def _tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
