"""From the validated config to the detector's and the tamper judge's parameters."""

from __future__ import annotations

from edge.config import CameraConfig, EdgeConfig
from edge.config.schema import MotionAreaConfig
from edge.motion.params import MotionParams, Polygon
from edge.motion.stage import StageSettings
from edge.motion.tamper import TamperParams


def _polygon(area: MotionAreaConfig, cam: CameraConfig) -> Polygon:
    """Pixel corners of the camera's picture -> normalised corners (any lores size fits)."""
    return Polygon(
        area.name,
        tuple((min(1.0, x / cam.width), min(1.0, y / cam.height)) for x, y in area.corners),
    )


def motion_params(cfg: EdgeConfig, camera: str) -> MotionParams:
    motion = cfg.motion
    cam = next(c for c in cfg.cameras if c.id == camera)
    own = next((c for c in motion.cameras if c.camera == camera), None)
    sensitivity = motion.sensitivity if own is None or own.sensitivity is None else own.sensitivity
    return MotionParams(
        sensitivity=sensitivity,
        threshold=motion.threshold,
        min_area=None if motion.min_area_pct is None else motion.min_area_pct / 100,
        calibration_frames=motion.calibration_frames,
        min_frames=motion.min_frames,
        masks=() if own is None else tuple(_polygon(a, cam) for a in own.masks),
        zones=() if own is None else tuple(_polygon(a, cam) for a in own.zones),
    )


def stage_settings(cfg: EdgeConfig) -> StageSettings:
    motion = cfg.motion
    return StageSettings(
        motion.event_cooldown_s,
        motion.evidence_window_s,
        motion.queue_frames,
        motion.events_when_armed,
        motion.tamper,
        person_check=motion.person_check,
        person_min_confidence=motion.person_min_confidence,
        events_need_person=motion.events_need_person,
    )


def tamper_params(cfg: EdgeConfig) -> TamperParams:
    return TamperParams(
        raise_after_s=cfg.motion.tamper_after_s, restore_after_s=cfg.motion.tamper_restore_s
    )
