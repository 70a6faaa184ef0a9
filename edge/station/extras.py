"""What a box puts in an alarm's ``extra`` (PROTOCOL.md 3.3), read for the operator.

Video: ``camera``, ``clip_id``, ``clip_event`` (the event whose media topic
carries the clip), ``clip_pre_s``, ``clip_post_s``, ``clip_start_ms``,
``still_ids``, ``still_offsets_s``. Motion evidence: ``motion_camera``,
``motion_seen``, ``motion_frames``, ``motion_areas``, ``motion_boxes``,
``motion_last_at``, and with the box's person check ``motion_person`` (``yes``,
``no``, or empty when it has not looked), ``motion_person_confidence`` (0..1) and
``motion_person_box``. With several cameras each key is prefixed ``<camera>:``.
Every value is a string; one the box garbled is left out, never guessed.
Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VIDEO_KEYS = (
    "camera",
    "clip_id",
    "clip_event",
    "clip_pre_s",
    "clip_post_s",
    "clip_start_ms",
    "still_ids",
    "still_offsets_s",
)
MOTION = "motion_"


@dataclass(frozen=True)
class Video:
    """One camera's media of an alarm, as the box announced them."""

    camera: str
    clip_id: str | None
    clip_event: str | None
    pre_s: float | None  # seconds of the clip before the alarm: where its instant is
    post_s: float | None
    start_ms: int | None  # the clip's first frame (UTC ms)
    stills: tuple[tuple[str, float | None], ...]  # (media id, seconds from the alarm)

    def media_ids(self) -> list[str]:
        return [s for s, _ in self.stills] + ([self.clip_id] if self.clip_id else [])

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "clip_id": self.clip_id,
            "clip_event": self.clip_event,
            "pre_s": self.pre_s,
            "post_s": self.post_s,
            "start_ms": self.start_ms,
            "stills": [{"media_id": m, "offset_s": o} for m, o in self.stills],
        }


@dataclass(frozen=True)
class Evidence:
    """What one camera saw in the seconds before the alarm."""

    camera: str
    seen: bool | None  # None: the box said something else than true or false
    frames: int | None
    areas: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]  # x, y, w, h in the camera's pixels
    last_at: str | None
    person: bool | None = None  # the box's person check: None when it did not look
    person_confidence: float | None = None
    person_box: tuple[int, int, int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "seen": self.seen,
            "frames": self.frames,
            "areas": list(self.areas),
            "boxes": [list(b) for b in self.boxes],
            "last_at": self.last_at,
            "person": self.person,
            "person_confidence": self.person_confidence,
            "person_box": None if self.person_box is None else list(self.person_box),
        }


def _groups(extra: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Keys by camera prefix ("" for an unprefixed key)."""
    out: dict[str, dict[str, str]] = {}
    for key, value in extra.items():
        prefix, sep, name = str(key).rpartition(":")
        if not sep:
            prefix, name = "", str(key)
        out.setdefault(prefix, {})[name] = str(value)
    return out


def videos(extra: dict[str, Any]) -> list[Video]:
    """Every camera's announced media, in the order the box wrote them."""
    found = []
    for prefix, keys in _groups(extra).items():
        if not ({"clip_id", "still_ids"} & keys.keys()):
            continue
        camera = keys.get("camera") or prefix or "-"
        ids = keys.get("still_ids", "").split()
        offsets: list[float | None] = [_float(v) for v in keys.get("still_offsets_s", "").split()]
        offsets += [None] * (len(ids) - len(offsets))
        found.append(
            Video(
                camera=camera,
                clip_id=keys.get("clip_id") or None,
                clip_event=keys.get("clip_event") or None,
                pre_s=_float(keys.get("clip_pre_s")),
                post_s=_float(keys.get("clip_post_s")),
                start_ms=_int(keys.get("clip_start_ms")),
                stills=tuple(zip(ids, offsets, strict=False)),
            )
        )
    return found


def evidence(extra: dict[str, Any]) -> list[Evidence]:
    """Every camera's motion evidence for the alarm."""
    found = []
    for prefix, keys in _groups(extra).items():
        if MOTION + "seen" not in keys:
            continue
        seen = keys[MOTION + "seen"]
        areas = keys.get(MOTION + "areas", "")
        person = keys.get(MOTION + "person")
        confidence = _float(keys.get(MOTION + "person_confidence"))
        person_box = _boxes(keys.get(MOTION + "person_box", ""))
        found.append(
            Evidence(
                camera=keys.get(MOTION + "camera") or prefix or "-",
                seen=True if seen == "true" else False if seen == "false" else None,
                frames=_int(keys.get(MOTION + "frames")),
                areas=tuple(a for a in areas.split(",") if a),
                boxes=_boxes(keys.get(MOTION + "boxes", "")),
                last_at=keys.get(MOTION + "last_at") or None,
                person=True if person == "yes" else False if person == "no" else None,
                person_confidence=confidence
                if confidence is not None and 0 <= confidence <= 1
                else None,
                person_box=person_box[0] if len(person_box) == 1 else None,
            )
        )
    return found


def cameras(extra: dict[str, Any]) -> list[str]:
    """The cameras an event names (for a fresh snapshot or clip from the same one)."""
    found = [v.camera for v in videos(extra)] + [e.camera for e in evidence(extra)]
    camera = extra.get("camera")
    if isinstance(camera, str) and camera:
        found.append(camera)
    return [c for c in dict.fromkeys(found) if c != "-"]


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _boxes(text: str) -> tuple[tuple[int, int, int, int], ...]:
    boxes = []
    for part in text.split(";"):
        numbers = [_int(n) for n in part.split(",")]
        if len(numbers) == 4 and all(n is not None for n in numbers):
            x, y, w, h = (int(n or 0) for n in numbers)
            boxes.append((x, y, w, h))
    return tuple(boxes)
