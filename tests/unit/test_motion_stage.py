"""MotionStage: bounded intake that drops, motion events while armed, tamper, alarm evidence."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edge.clock import FakeClock
from edge.codes import Condition, Kind, ZoneType, codes
from edge.model import Event, Frame, ZoneRef, new_event_id
from edge.motion.params import MotionParams, Polygon
from edge.motion.stage import MotionStage, StageSettings
from edge.motion.tamper import TamperParams

from .test_motion_detector import noisy, scene, with_figure

FPS = 10.0
T0_MS = 1_800_000_000_000
LEFT = Polygon("left", ((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
RIGHT = Polygon("right", ((0.5, 0), (1, 0), (1, 1), (0.5, 1)))


def frames(n: int, figure_from: int | None = None, cover_from: int | None = None) -> list[Frame]:
    rng = np.random.default_rng(1)
    img = scene()
    out = []
    for i in range(n):
        picture = img
        if figure_from is not None and i >= figure_from:
            picture = with_figure(img, 20 + 6 * (i - figure_from) % 280)
        gray = noisy(picture, rng)
        if cover_from is not None and i >= cover_from:
            gray = np.full_like(gray, 12)
        out.append(Frame("cam", i, i / FPS, T0_MS + round(i * 1000 / FPS), gray))
    return out


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Event, str]] = []

    async def __call__(self, event: Event, camera: str) -> None:
        self.events.append((event, camera))


def stage(
    emit: Recorder, armed: bool = True, queue_frames: int = 64, **settings: float
) -> MotionStage:
    params = MotionParams(zones=(LEFT, RIGHT))
    tamper = TamperParams(raise_after_s=2, restore_after_s=2, learn_s=1)
    return MotionStage(
        {"cam": (params, (1280, 960))},
        tamper,
        StageSettings(queue_frames=queue_frames, **settings),  # type: ignore[arg-type]
        FakeClock(T0_MS / 1000),
        emit,
        lambda camera: armed,
    )


async def drain(st: MotionStage, batch: list[Frame]) -> None:
    """Feed frames no faster than the stage takes them (nothing dropped), wait until done."""
    task = asyncio.create_task(st.run())
    try:
        for frame in batch:
            await st.queue.put(frame)
        await st.queue.join()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_offer_never_blocks_and_counts_what_it_drops() -> None:
    st = stage(Recorder(), queue_frames=4)
    for frame in frames(10):
        st.offer(frame)  # no task takes them: the queue stays at 4
    assert st.queue.qsize() == 4 and st.dropped == 6
    st.offer(Frame("other-camera", 0, 0.0, T0_MS, frames(1)[0].gray))  # not watched: ignored
    assert st.dropped == 6


async def test_motion_while_armed_one_event_per_area_per_cooldown() -> None:
    emit = Recorder()
    st = stage(emit, cooldown_s=60)
    await drain(st, frames(90, figure_from=20))
    kinds = [(e.kind, e.extra["areas"]) for e, _ in emit.events]
    assert kinds == [(Kind.MOTION, "left"), (Kind.MOTION, "right")], kinds
    first = emit.events[0][0]
    assert first.condition is Condition.VIDEO_MOTION and first.codes.cid == "1140"
    assert first.extra["camera"] == "cam" and first.armed is True
    x, y, w, h = (int(v) for v in first.extra["boxes"].split(";")[0].split(","))
    assert 0 <= x < 640 and 300 < y < 460 and 40 < w < 130 and 100 < h < 260  # camera pixels
    status = st.status()["cameras"]["cam"]
    assert (
        status["frames"] == 90 and not status["calibrating"] and status["fps"] == pytest.approx(10)
    )


async def test_no_motion_event_while_disarmed_or_on_a_quiet_scene() -> None:
    emit = Recorder()
    await drain(stage(emit, armed=False), frames(60, figure_from=20))
    assert emit.events == []
    await drain(stage(emit), frames(60))
    assert emit.events == []


async def test_covered_camera_is_a_tamper_with_its_restore_not_motion() -> None:
    emit = Recorder()
    batch = frames(60, cover_from=20)[:50] + frames(100)[50:]
    await drain(stage(emit), batch)
    got = [(e.kind, e.extra.get("tamper")) for e, _ in emit.events]
    assert got == [(Kind.TAMPER, "covered"), (Kind.TAMPER_RESTORE, "covered")], got
    raised = emit.events[0][0]
    assert raised.condition is Condition.CAMERA_TAMPER and raised.codes.cid == "1144"


def alarm(at_ms: int) -> Event:
    zone = ZoneRef("hall", "Hall PIR", ZoneType.INTRUSION, 3)
    condition = Condition.BURGLARY
    return Event(
        new_event_id(at_ms), Kind.ALARM, condition, codes(condition, False), at_ms, 1, True, zone
    )


async def test_an_alarm_carries_what_the_camera_saw_before_it() -> None:
    emit = Recorder()
    st = stage(emit, armed=False)
    await drain(st, frames(90, figure_from=40))  # the figure walks in at 4 s
    during = st.evidence(alarm(T0_MS + 6_000), ("cam", "not-a-motion-camera")).extra
    before = st.evidence(alarm(T0_MS + 3_000), ("cam",)).extra  # motion only after it
    quiet = st.evidence(alarm(T0_MS - 20_000), ("cam",)).extra
    assert during["motion_seen"] == "true" and 15 <= int(during["motion_frames"]) <= 21
    assert during["motion_camera"] == "cam" and during["motion_areas"] == "left,right"
    x, y, w, h = (int(v) for v in during["motion_boxes"].split(";")[0].split(","))
    assert x < 640 and 300 < y < 460 and w > 20 and h > 100  # camera pixels
    assert before["motion_seen"] == "false" and before["motion_boxes"] == ""
    assert quiet["motion_seen"] == "false" and quiet["motion_frames"] == "0"
    assert emit.events == []  # evidence is not an event of its own
    untouched = alarm(T0_MS)
    assert st.evidence(untouched, ("no-such-camera",)) is untouched


async def test_a_malformed_frame_is_skipped_and_counted_and_the_stage_goes_on() -> None:
    emit = Recorder()
    st = stage(emit)
    good = frames(30)
    bad = Frame("cam", 99, 3.0, T0_MS + 3000, np.zeros((10, 10, 3), np.uint8))
    await drain(st, [*good[:15], bad, *good[15:]])
    assert st.rejected == 1 and st.processed == 30 and emit.events == []
