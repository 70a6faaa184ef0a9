"""Motion scan: the box's motion pre-filter and camera-tamper checks over a video file.

Frames go through the camera pipeline (privacy masks, lores copy) into the
box's :class:`~edge.motion.stage.MotionStage`, built from the config exactly
as ``edge run`` builds it, one frame at a time (:meth:`MotionStage.analyse`).
Each frame gives a row; the motion and tamper events the stage emits are the
events the box would have raised. A contact sheet (PNG) shows sample frames
with the motion boxes, zones and masks drawn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.clock import FakeClock
from edge.config import CameraConfig, EdgeConfig
from edge.model import Event, Frame
from edge.motion.detector import MotionResult
from edge.motion.settings import motion_params, stage_settings, tamper_params
from edge.motion.stage import MotionStage, Seen
from edge.protocol import iso_ms
from edge.tools import START_WALL_S
from edge.tools.footage import Fed, feed
from edge.video.camera import Pipeline

COLUMNS = (
    "frame",
    "t_s",
    "at",
    "motion",
    "calibrating",
    "score",
    "boxes",
    "zones",
    "tamper",
    "events",
)
SHEET_FRAMES = 12
THUMB_W = 320


@dataclass
class Scan:
    rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)  # (frame, event)
    results: list[MotionResult] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    lores: dict[int, Frame] = field(default_factory=dict)  # kept for the sheet
    problem: str | None = None  # the file could not be read to its end


def scan(
    cfg: EdgeConfig,
    cam: CameraConfig,
    *,
    armed: bool = True,
    start_wall_s: float = START_WALL_S,
    keep_lores: bool = False,
) -> Scan:
    """Run the file of ``cam`` through the pipeline and the motion stage."""
    return asyncio.run(_scan(cfg, cam, armed, start_wall_s, keep_lores))


def live_stage(cfg: EdgeConfig, cam: CameraConfig, clock: FakeClock, emit: Any) -> MotionStage:
    """The stage as ``edge run`` makes it (app.Box._motion_stage), for one camera."""
    cameras = {cam.id: (motion_params(cfg, cam.id), (cam.width, cam.height))}
    return MotionStage(
        cameras, tamper_params(cfg), stage_settings(cfg), clock, emit, lambda _c: True
    )


async def _scan(
    cfg: EdgeConfig, cam: CameraConfig, armed: bool, start_wall_s: float, keep: bool
) -> Scan:
    out = Scan()
    clock = FakeClock(start_wall_s)
    fresh: list[Event] = []

    async def emit(event: Event, _camera: str) -> None:
        fresh.append(event)

    stage = live_stage(cfg, cam, clock, emit)
    stage.armed = lambda _camera: armed
    pipeline = Pipeline(cam, cfg.recording.pre_roll_s, cfg.recording.post_roll_s)
    frames: list[Frame] = []
    pipeline.lores_sinks.append(frames.append)
    fed = Fed()
    for _at_s in feed(cam, pipeline, clock, encode=False, fed=fed):
        for frame in frames:
            try:
                result, seen, _changes = await stage.analyse(frame)
            except ValueError as exc:  # the stage skips such a frame (and so do we)
                out.rejected.append((frame.index, str(exc)))
                continue
            out.results.append(result)
            out.rows.append(_row(frame, fed.after_s(frame.at_s), result, seen, stage, fresh))
            out.events += [(frame.index, e) for e in fresh]
            fresh.clear()
            if keep:
                out.lores[frame.index] = frame
        frames.clear()
    out.problem = fed.problem
    return out


def _row(
    frame: Frame,
    t_s: float,
    result: MotionResult,
    seen: Seen,
    stage: MotionStage,
    events: list[Event],
) -> dict[str, Any]:
    watch = stage.watches[frame.camera]
    return {
        "frame": frame.index,
        "t_s": round(t_s, 3),
        "at": iso_ms(frame.wall_ms),
        "motion": result.motion,
        "calibrating": result.calibrating,
        "score": round(result.score, 5),
        "boxes": [list(b) for b in seen.boxes],  # camera pixels, as the events say
        "zones": list(result.zones),
        "tamper": sorted(t.value for t in watch.tamper.active),
        "events": [
            f"{e.kind.value}:{e.extra.get('areas') or e.extra.get('tamper', '')}" for e in events
        ],
    }


def summary(result: Scan) -> list[str]:
    moving = sum(1 for r in result.rows if r["motion"])
    lines = [f"{len(result.rows)} frame(s), {moving} with motion, {len(result.events)} event(s)"]
    for index, event in result.events:
        lines.append(f"  frame {index} {iso_ms(event.occurred_at_ms)} {event.text}")
    for index, why in result.rejected:
        lines.append(f"  frame {index} skipped by the detector: {why}")
    return lines


def contact_sheet(cfg: EdgeConfig, cam: CameraConfig, result: Scan, path: Path) -> int:
    """A PNG of up to 12 frames (those with events first, then spread over the file),
    with motion boxes (red), motion zones (green), motion masks (blue) and privacy
    masks (grey) drawn. Returns the number of frames drawn."""
    indices = sorted(result.lores)
    if not indices:
        return 0
    chosen = {i for i, _e in result.events if i in result.lores}
    step = max(1, len(indices) // SHEET_FRAMES)
    for i in indices[::step]:
        if len(chosen) >= SHEET_FRAMES:
            break
        chosen.add(i)
    by_index = {r["frame"]: r for r in result.rows}
    tiles = [_tile(cfg, cam, result.lores[i], by_index.get(i)) for i in sorted(chosen)]
    cols = 4
    blank = np.zeros_like(tiles[0])
    while len(tiles) % cols:
        tiles.append(blank)
    sheet = np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)])
    if not cv2.imwrite(str(path), sheet):
        raise OSError(f"cannot write {path}")
    return len(chosen)


def _tile(cfg: EdgeConfig, cam: CameraConfig, frame: Frame, row: dict[str, Any] | None) -> Any:
    gray = frame.gray
    scale = THUMB_W / gray.shape[1]
    image = cv2.cvtColor(
        cv2.resize(gray, (THUMB_W, round(gray.shape[0] * scale))), cv2.COLOR_GRAY2BGR
    )
    h, w = image.shape[:2]
    params = motion_params(cfg, cam.id)
    for polygons, colour in ((params.masks, (255, 0, 0)), (params.zones, (0, 200, 0))):
        for poly in polygons:
            pts = np.array([(x * w, y * h) for x, y in poly.points], dtype=np.int32)
            cv2.polylines(image, [pts], True, colour, 1)
    for mask in cam.privacy_masks:
        pts = np.array([(x * w / cam.width, y * h / cam.height) for x, y in mask], dtype=np.int32)
        cv2.polylines(image, [pts], True, (160, 160, 160), 1)
    if row is not None:
        for x, y, bw, bh in row["boxes"]:
            sx, sy = w / cam.width, h / cam.height
            top_left = (round(x * sx), round(y * sy))
            bottom_right = (round((x + bw) * sx), round((y + bh) * sy))
            cv2.rectangle(image, top_left, bottom_right, (0, 0, 255), 1)
        label = f"#{row['frame']} {row['t_s']:.1f}s" + (" MOTION" if row["motion"] else "")
        if row["tamper"]:
            label += " TAMPER " + ",".join(row["tamper"])
        cv2.putText(image, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    return image
