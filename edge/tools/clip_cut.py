"""Clip cut: the clip and stills an alarm at time T would have produced from a video file.

The file goes through the box's camera :class:`~edge.video.camera.Pipeline`
(masks, encoder or stream copy, pre-alarm ring, clip and still jobs) with the
config's pre/post roll; at ``T`` the alarm is raised on it exactly as the video
service does (:meth:`Pipeline.alarm`). The finished clip is muxed with the
box's own ``mp4_bytes`` and the stills encoded with its ``jpeg``, so what is
written is what the station would have received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clock import FakeClock, ms
from edge.config import CameraConfig, EdgeConfig
from edge.errors import ConfigError
from edge.model import new_event_id
from edge.protocol import iso_ms
from edge.tools import START_WALL_S
from edge.tools.footage import Fed, feed
from edge.video.camera import Pipeline, StillTaken
from edge.video.clips import STILL_OFFSETS_MS, ClipJob, VideoPlan
from edge.video.codec import jpeg, mp4_bytes

COLUMNS = ("media", "path", "offset_s", "t_s", "bytes", "pre_s", "post_s", "frames")


@dataclass
class Cut:
    plan: VideoPlan | None = None
    clip: ClipJob | None = None
    stills: list[StillTaken] = field(default_factory=list)
    alarm_ms: int = 0  # camera ms of the alarm
    first_ms: int = 0  # camera ms of the file's first frame
    frames: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # the file could not be read to its end


def cut(
    cfg: EdgeConfig,
    cam: CameraConfig,
    at_s: float,
    out_dir: Path,
    start_wall_s: float = START_WALL_S,
) -> Cut:
    """Raise an alarm ``at_s`` seconds into the file; write ``clip.mp4`` and ``still-N.jpg``."""
    if at_s < 0:
        raise ConfigError("--at", [f"--at {at_s}: seconds from the file's start, not negative"])
    result = Cut()
    clock = FakeClock(start_wall_s)
    pipeline = Pipeline(cam, cfg.recording.pre_roll_s, cfg.recording.post_roll_s)
    pipeline.on_clip = lambda job: setattr(result, "clip", job)
    pipeline.on_still = result.stills.append
    event_id = new_event_id(ms(clock.time()))
    fed = Fed()
    for now_s in feed(cam, pipeline, clock, fed=fed):  # each picture's own time
        result.frames = fed.frames
        result.first_ms = round((fed.first_s or now_s) * 1000)
        if result.plan is None and fed.after_s(now_s) >= at_s - 1e-6:
            result.alarm_ms = round(now_s * 1000)
            result.plan = pipeline.alarm(event_id, result.alarm_ms, ms(clock.time()))
        if result.clip is not None and len(result.stills) == len(STILL_OFFSETS_MS):
            break
    result.problem = fed.problem if result.plan is None or result.clip is None else None
    if result.plan is None and result.problem is None:
        span_s = fed.after_s(fed.last_s or 0.0)
        raise ConfigError("--at", [f"--at {at_s}: after the end of the file ({span_s:.2f} s)"])
    if result.clip is None and result.plan is not None:  # the file ended before the
        result.clip = pipeline.flush() or result.clip  # post-roll: cut where it ends
    _write(result, pipeline, out_dir)
    return result


def _write(result: Cut, pipeline: Pipeline, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = result.clip
    if clip is not None and clip.packets:
        data = mp4_bytes(clip.packets, *pipeline.size)
        path = out_dir / "clip.mp4"
        path.write_bytes(data)
        video = [p for p in clip.packets if not p.audio]
        pre_s = (result.alarm_ms - video[0].pts_ms) / 1000
        post_s = (video[-1].pts_ms - result.alarm_ms) / 1000
        result.rows.append(
            {
                "media": "clip",
                "path": str(path),
                "t_s": round((clip.packets[0].pts_ms - result.first_ms) / 1000, 3),
                "bytes": len(data),
                "pre_s": round(pre_s, 3),
                "post_s": round(post_s, 3),
                "frames": clip.frames,
            }
        )
    for still in sorted(result.stills, key=lambda s: s.index):
        data = jpeg(still.picture())
        path = out_dir / f"still-{still.index}.jpg"
        path.write_bytes(data)
        result.rows.append(
            {
                "media": "still",
                "path": str(path),
                "offset_s": STILL_OFFSETS_MS[still.index] / 1000,
                "t_s": round((still.pts_ms - result.first_ms) / 1000, 3),
                "bytes": len(data),
            }
        )


def summary(result: Cut, cfg: EdgeConfig) -> list[str]:
    rec = cfg.recording
    plan = result.plan
    clip = next((r for r in result.rows if r["media"] == "clip"), None)
    if plan is None:
        return [f"no alarm: the file was read for {result.frames} frame(s) only"]
    alarm_t = (result.alarm_ms - result.first_ms) / 1000
    start = iso_ms(plan.start_wall_ms) if plan else "-"
    lines = [f"alarm at {alarm_t:.2f} s into the file (clip starts {start})"]
    if clip is None:
        lines.append("no clip: the ring held no keyframe before the alarm")
    else:
        lines.append(
            f"clip {clip['path']}: {clip['pre_s']:.2f} s before the alarm (asked "
            f"{rec.pre_roll_s:g}), {clip['post_s']:.2f} s after (asked {rec.post_roll_s:g}), "
            f"{clip['frames']} frames"
        )
    lines.append(f"{len(result.stills)} of {len(STILL_OFFSETS_MS)} stills")
    return lines
