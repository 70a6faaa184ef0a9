"""The motion stage: lores frames in, motion and tamper events out, never blocking capture.

``offer(frame)`` (on the event loop) puts a frame in a small bounded queue
and returns at once; when the detector falls behind, the frame is dropped
and counted. One task takes frames from the queue and runs the pure
detector and tamper judge in a worker thread. What it finds goes out
through callbacks given by the composition root:

- ``emit(event, camera)``: a video-only motion event (while ``armed(camera)``,
  at most one per camera area per cooldown), a camera tamper or its restore;
- ``evidence(alarm, cameras)``: the alarm, before it is stored, gains in
  ``extra`` whether the cameras covering its zone saw motion in the seconds
  before it, with the boxes and the number of frames.

When a camera has motion zones, only motion inside them counts (events and
evidence); motion elsewhere is only counted (``outside_zones`` in the status).
With the person check on, frames with motion are looked at by a person
detector inside their motion boxes (at most every ``PERSON_EVERY_S``); its
answer travels in the events' and the evidence's ``extra``, and
``events_need_person`` holds video-only motion events back until a person is
seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from edge.clock import Clock
from edge.codes import Condition
from edge.model import Event, Frame, box_event
from edge.motion.detector import Box, MotionResult, MotionState, detect
from edge.motion.params import MotionParams
from edge.motion.person import HogPeople, People, PersonSeen
from edge.motion.person import check as person_check
from edge.motion.tamper import TamperChanged, TamperParams, TamperState, check
from edge.protocol import iso_ms

log = logging.getLogger(__name__)
TAMPER_EVERY_S = 0.5  # the tamper judge looks twice a second
HISTORY_S = 120.0  # per-camera motion history kept for alarm evidence
WHOLE = "picture"  # the area name when a camera has no named zones
PERSON_EVERY_S = 0.5  # the person check looks at most twice a second per camera ...
PERSON_FRESH_S = 2.0  # ... and its answer stands this long for events_need_person


@dataclass(frozen=True)
class Seen:
    """One analysed frame, kept for alarm evidence."""

    at_s: float
    wall_ms: int
    motion: bool
    boxes: tuple[Box, ...]
    areas: tuple[str, ...]  # empty when the motion is outside every zone: it does not count
    person: PersonSeen | None = None  # when the person check looked at this frame


@dataclass(frozen=True)
class StageSettings:
    cooldown_s: float = 60.0
    evidence_window_s: float = 5.0
    queue_frames: int = 4
    events_when_armed: bool = True
    tamper: bool = True
    person_check: bool = False
    person_min_confidence: float = 0.7
    events_need_person: bool = False  # video-only motion events only with a person seen


@dataclass
class CameraWatch:
    """Per-camera state of the stage (touched only by the stage's task)."""

    camera: str
    params: MotionParams
    size: tuple[int, int]  # the camera's picture, for boxes in its pixels
    state: MotionState = field(default_factory=MotionState)
    tamper: TamperState = field(default_factory=TamperState)
    history: deque[Seen] = field(default_factory=lambda: deque(maxlen=4096))
    last_event_s: dict[str, float] = field(default_factory=dict)  # area -> when
    tamper_checked_s: float | None = None
    frames: int = 0
    latest: MotionResult | None = None
    lores: tuple[int, int] = (0, 0)
    fps: float = 0.0
    outside_zones: int = 0  # frames with motion outside every zone (no event, no evidence)
    person: PersonSeen | None = None  # the last person check's answer (camera pixels)
    person_at_s: float | None = None
    person_checks: int = 0
    person_seen: int = 0
    _fps_window: deque[float] = field(default_factory=lambda: deque(maxlen=32))


Emit = Callable[[Event, str], Awaitable[None]]


class MotionStage:
    """Runs detection and tamper for every camera. Constructing does no I/O."""

    def __init__(
        self,
        cameras: dict[str, tuple[MotionParams, tuple[int, int]]],
        tamper: TamperParams,
        settings: StageSettings,
        clock: Clock,
        emit: Emit,
        armed: Callable[[str], bool],
        people: People | None = None,
    ) -> None:
        """``people``: the person detector (default: OpenCV's HOG when the settings
        turn the person check on); an accelerator's plugs in here."""
        self.watches = {cid: CameraWatch(cid, p, size) for cid, (p, size) in cameras.items()}
        self.people = people if people is not None or not settings.person_check else HogPeople()
        self.tamper_params = tamper
        self.settings = settings
        self.clock = clock
        self.emit = emit
        self.armed = armed
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(maxsize=settings.queue_frames)
        self.dropped = 0
        self.processed = 0
        self.rejected = 0

    # -- frames in ----------------------------------------------------------

    def offer(self, frame: Frame) -> None:
        """Take a lores frame if there is room, else drop it (counted). Never blocks."""
        if frame.camera not in self.watches:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Analyse queued frames until cancelled."""
        while True:
            frame = await self.queue.get()
            try:
                watch = self.watches[frame.camera]
                result, changes, person = await asyncio.to_thread(self._analyse, watch, frame)
            except ValueError as exc:  # a malformed frame: skipped, counted, logged
                self.rejected += 1
                log.error("motion: frame %d of %s skipped: %s", frame.index, frame.camera, exc)
                self.queue.task_done()
                continue
            try:
                self.processed += 1
                await self._report(watch, frame, result, changes, person)
            finally:
                self.queue.task_done()

    async def analyse(self, frame: Frame) -> tuple[MotionResult, Seen, list[TamperChanged]]:
        """One frame through detection, tamper and reporting, here and now (the field
        tools' seam: the same decisions as :meth:`run`, without the queue or thread)."""
        watch = self.watches[frame.camera]
        result, changes, person = self._analyse(watch, frame)
        self.processed += 1
        await self._report(watch, frame, result, changes, person)
        return result, watch.history[-1], changes

    def _analyse(
        self, watch: CameraWatch, frame: Frame
    ) -> tuple[MotionResult, list[TamperChanged], PersonSeen | None]:
        """Worker thread: the pure detector, the person check on motion in the zones (at
        most every PERSON_EVERY_S) and, twice a second, the tamper judge."""
        watch.state, result = detect(frame.gray, watch.state, watch.params)
        person = None
        if (
            self.people is not None
            and _counts(watch, result)
            and (watch.person_at_s is None or frame.at_s - watch.person_at_s >= PERSON_EVERY_S)
        ):
            watch.person_at_s = frame.at_s
            min_confidence = self.settings.person_min_confidence
            person = person_check(self.people, frame.gray, result.boxes, min_confidence)
        changes: list[TamperChanged] = []
        due = (
            watch.tamper_checked_s is None or frame.at_s - watch.tamper_checked_s >= TAMPER_EVERY_S
        )
        if self.settings.tamper and due:
            watch.tamper_checked_s = frame.at_s
            watch.tamper, changes = check(
                frame.gray, frame.at_s, watch.tamper, self.tamper_params, watch.camera
            )
        return result, changes, person

    # -- findings out ---------------------------------------------------------

    async def _report(
        self,
        watch: CameraWatch,
        frame: Frame,
        result: MotionResult,
        changes: list[TamperChanged],
        person: PersonSeen | None = None,
    ) -> None:
        watch.frames += 1
        watch.latest = result
        watch.lores = (frame.gray.shape[1], frame.gray.shape[0])
        watch._fps_window.append(frame.at_s)
        if len(watch._fps_window) > 1:
            span = watch._fps_window[-1] - watch._fps_window[0]
            watch.fps = round((len(watch._fps_window) - 1) / span, 1) if span > 0 else 0.0
        boxes = tuple(self._to_camera(watch, box) for box in result.boxes)
        counts = _counts(watch, result)
        watch.outside_zones += result.motion and not counts
        areas = (result.zones or (WHOLE,)) if counts else ()
        if person is not None:
            box = None if person.box is None else self._to_camera(watch, person.box)
            person = PersonSeen(person.seen, person.confidence, box, person.checked)
            watch.person, watch.person_checks = person, watch.person_checks + 1
            watch.person_seen += person.seen
        watch.history.append(Seen(frame.at_s, frame.wall_ms, result.motion, boxes, areas, person))
        while watch.history and frame.at_s - watch.history[0].at_s > HISTORY_S:
            watch.history.popleft()
        for change in changes:
            await self.emit(self._tamper_event(change, frame.wall_ms), watch.camera)
        if (
            counts
            and self._person_allows(watch, frame)
            and self.settings.events_when_armed
            and (self.armed(watch.camera))
        ):
            due = [
                a
                for a in areas
                if frame.at_s - watch.last_event_s.get(a, -1e18) >= self.settings.cooldown_s
            ]
            if due:
                for area in due:
                    watch.last_event_s[area] = frame.at_s
                await self.emit(self._motion_event(watch, frame, boxes, tuple(due)), watch.camera)

    def _person_allows(self, watch: CameraWatch, frame: Frame) -> bool:
        """Without events_need_person, always; with it, a person seen in the last
        PERSON_FRESH_S."""
        if not self.settings.events_need_person:
            return True
        person, at_s = watch.person, watch.person_at_s
        return (
            person is not None
            and person.seen
            and at_s is not None
            and (frame.at_s - at_s <= PERSON_FRESH_S)
        )

    def _to_camera(self, watch: CameraWatch, box: Box) -> Box:
        """A box on the lores frame -> the camera's pixels."""
        sx = watch.size[0] / max(1, watch.lores[0])
        sy = watch.size[1] / max(1, watch.lores[1])
        x, y, w, h = box
        return (round(x * sx), round(y * sy), round(w * sx), round(h * sy))

    def _motion_event(
        self, watch: CameraWatch, frame: Frame, boxes: tuple[Box, ...], areas: tuple[str, ...]
    ) -> Event:
        extra = {
            "reason": "armed",
            "camera": watch.camera,
            "areas": ",".join(areas),
            "boxes": _boxes(boxes),
            "frames": str(watch.state.streak),
            "first_at": iso_ms(frame.wall_ms),
            "last_at": iso_ms(frame.wall_ms),
        }
        if self.people is not None:
            extra.update(_person_extra("", watch.person))
        return box_event(
            Condition.VIDEO_MOTION,
            False,
            f"motion on camera {watch.camera}: {', '.join(areas)}",
            frame.wall_ms,
            armed=True,
            extra=extra,
        )

    def _tamper_event(self, change: TamperChanged, wall_ms: int) -> Event:
        what = "camera tamper" if change.active else "camera tamper restored"
        return box_event(
            Condition.CAMERA_TAMPER,
            not change.active,
            f"{what}: {change.camera} {change.tamper.value} ({change.detail})",
            wall_ms,
            extra={"camera": change.camera, "tamper": change.tamper.value},
        )

    # -- alarm evidence -------------------------------------------------------

    def evidence(self, alarm: Event, cameras: tuple[str, ...]) -> Event:
        """``alarm`` with what ``cameras`` saw in the ``evidence_window_s`` up to it, in
        ``extra`` (``motion_seen``, ``motion_frames``, ``motion_boxes``, ...). Never waits:
        the alarm goes at once, so motion after it is in its clip, not here."""
        extra = dict(alarm.extra)
        window_ms = round(self.settings.evidence_window_s * 1000)
        lo, hi = alarm.occurred_at_ms - window_ms, alarm.occurred_at_ms
        chosen = [c for c in cameras if c in self.watches]
        for camera in chosen:
            history = self.watches[camera].history
            moving = [s for s in history if lo <= s.wall_ms <= hi and s.motion and s.areas]
            biggest = max(moving, key=lambda s: sum(b[2] * b[3] for b in s.boxes), default=None)
            prefix = "motion_" if len(chosen) == 1 else f"{camera}:motion_"
            extra[prefix + "camera"] = camera
            extra[prefix + "seen"] = "true" if moving else "false"
            extra[prefix + "frames"] = str(len(moving))
            extra[prefix + "areas"] = ",".join(sorted({a for s in moving for a in s.areas}))
            extra[prefix + "boxes"] = _boxes(biggest.boxes) if biggest else ""
            extra[prefix + "last_at"] = iso_ms(moving[-1].wall_ms) if moving else ""
            if self.people is not None:
                checked = [s.person for s in history if lo <= s.wall_ms <= hi and s.person]
                best = max(checked, key=lambda p: (p.seen, p.confidence), default=None)
                extra.update(_person_extra(prefix, best))
        if not chosen:
            return alarm
        return Event(**{**alarm.__dict__, "extra": extra})

    # -- status ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Per camera: fps, frames, calibrating, motion now, the boxes on the lores
        frame (``lores`` gives its size), active tampers; overall processed/dropped."""
        cameras = {}
        for cid, watch in self.watches.items():
            latest = watch.latest
            cameras[cid] = {
                "fps": watch.fps,
                "frames": watch.frames,
                "calibrating": latest.calibrating if latest else True,
                "motion": latest.motion if latest else False,
                "boxes": [list(b) for b in (latest.boxes if latest else ())],
                "lores": list(watch.lores),
                "tamper": sorted(t.value for t in watch.tamper.active),
                "outside_zones": watch.outside_zones,
                "person_checks": watch.person_checks,
                "person_seen": watch.person_seen,
                "person": None if watch.person is None else ("yes" if watch.person.seen else "no"),
            }
        return {
            "processed": self.processed,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "cameras": cameras,
        }


def _boxes(boxes: tuple[Box, ...]) -> str:
    return ";".join(f"{x},{y},{w},{h}" for x, y, w, h in boxes)


def _counts(watch: CameraWatch, result: MotionResult) -> bool:
    """Motion that counts: anywhere without zones, inside one when the camera has zones."""
    return result.motion and (not watch.params.zones or bool(result.zones))


def _person_extra(prefix: str, person: PersonSeen | None) -> dict[str, str]:
    """The person check's answer as the wire wants it (strings): person yes/no ("" when
    it has not looked yet), confidence 0..1, the person's box in camera pixels."""
    if person is None:
        return {prefix + "person": "", prefix + "person_confidence": "", prefix + "person_box": ""}
    return {
        prefix + "person": "yes" if person.seen else "no",
        prefix + "person_confidence": f"{person.confidence:.2f}",
        prefix + "person_box": _boxes((person.box,)) if person.box and person.seen else "",
    }
