"""The motion stage: zones limit what raises events and evidence; the person check's
answer travels in the events' and the evidence's ``extra`` and can hold events back."""

from __future__ import annotations

import numpy as np

from edge.clock import FakeClock
from edge.model import Gray
from edge.motion.detector import Box
from edge.motion.params import MotionParams, Polygon
from edge.motion.stage import MotionStage, StageSettings
from edge.motion.tamper import TamperParams

from .test_motion_stage import LEFT, T0_MS, Recorder, alarm, drain, frames

RIGHT_THIRD = Polygon("gate", ((0.7, 0), (1, 0), (1, 1), (0.7, 1)))


class FakePeople:
    """A person detector that answers from a script: a person (the whole crop) with a
    confidence once ``from_call`` calls have been made, else nobody."""

    def __init__(self, confidence: float, from_call: int = 0) -> None:
        self.confidence, self.from_call, self.calls = confidence, from_call, 0

    def people(self, gray: Gray) -> list[tuple[Box, float]]:
        self.calls += 1
        if self.calls <= self.from_call:
            return []
        h, w = gray.shape
        return [((w // 4, h // 8, w // 2, 3 * h // 4), self.confidence)]


def stage(
    emit: Recorder,
    zones: tuple[Polygon, ...],
    people: FakePeople | None = None,
    **settings: object,
) -> MotionStage:
    return MotionStage(
        {"cam": (MotionParams(zones=zones), (1280, 960))},
        TamperParams(raise_after_s=2, restore_after_s=2, learn_s=1),
        StageSettings(queue_frames=64, cooldown_s=5, **settings),  # type: ignore[arg-type]
        FakeClock(T0_MS / 1000),
        emit,
        lambda camera: True,
        people,
    )


async def test_zones_limit_events_and_evidence_and_the_rest_is_counted() -> None:
    """The figure walks left to right; only the right third is a zone."""
    emit = Recorder()
    st = stage(emit, (RIGHT_THIRD,))
    await drain(st, frames(80, figure_from=20))
    areas = [e.extra["areas"] for e, _ in emit.events]
    assert areas and set(areas) == {"gate"}  # never "picture" for motion outside the zone
    status = st.status()["cameras"]["cam"]
    assert status["outside_zones"] >= 20  # the walk across the other two thirds
    early = st.evidence(alarm(T0_MS + 4_000), ("cam",)).extra  # the figure still on the left
    assert early["motion_seen"] == "false" and early["motion_frames"] == "0"

    everywhere = Recorder()
    whole = stage(everywhere, ())
    await drain(whole, frames(80, figure_from=20))
    assert everywhere.events[0][0].extra["areas"] == "picture"
    assert whole.status()["cameras"]["cam"]["outside_zones"] == 0


async def test_the_person_check_answer_is_in_the_motion_event_and_the_alarm_evidence() -> None:
    emit = Recorder()
    people = FakePeople(0.9)
    st = stage(emit, (LEFT,), people, person_check=True)
    await drain(st, frames(60, figure_from=20))
    extra = emit.events[0][0].extra
    assert extra["person"] == "yes" and extra["person_confidence"] == "0.90"
    x, y, w, h = (int(v) for v in extra["person_box"].split(","))
    assert 0 <= x < 640 and 200 < y < 500 and w > 10 and h > 60  # camera pixels
    assert all(isinstance(v, str) for v in extra.values())  # as the wire wants
    evidence = st.evidence(alarm(T0_MS + 5_000), ("cam",)).extra
    assert evidence["motion_person"] == "yes" and evidence["motion_person_confidence"] == "0.90"
    # at most twice a second: the figure crosses the left half in about 2.5 s at 10
    # frames/s (25 frames with motion there), and is checked 5 times, not 25
    in_zone = sum(1 for s in st.watches["cam"].history if s.areas)
    assert in_zone >= 20 and 3 <= people.calls <= in_zone // 4
    assert st.status()["cameras"]["cam"]["person"] == "yes"

    unsure = Recorder()
    await drain(stage(unsure, (LEFT,), FakePeople(0.4), person_check=True), frames(60, 20))
    assert unsure.events[0][0].extra["person"] == "no"
    assert unsure.events[0][0].extra["person_box"] == ""

    off = Recorder()
    await drain(stage(off, (LEFT,)), frames(60, figure_from=20))
    assert "person" not in off.events[0][0].extra  # the check off: the wire as before


async def test_events_need_person_holds_motion_events_until_a_person_is_seen() -> None:
    emit = Recorder()
    people = FakePeople(0.9, from_call=6)  # three seconds of "nobody", then a person
    st = stage(emit, (LEFT,), people, person_check=True, events_need_person=True)
    batch = frames(80, figure_from=20)
    await drain(st, batch[:45])
    assert emit.events == []  # motion, but no person yet
    await drain(st, batch[45:])
    assert emit.events and emit.events[0][0].extra["person"] == "yes"

    nobody = Recorder()
    quiet = stage(
        nobody,
        (LEFT,),
        FakePeople(0.9, from_call=10**6),
        person_check=True,
        events_need_person=True,
    )
    await drain(quiet, frames(80, figure_from=20))
    assert nobody.events == []
    assert quiet.status()["cameras"]["cam"]["motion"] in (True, False)  # still analysed
    assert quiet.status()["cameras"]["cam"]["person"] == "no"


def test_a_real_person_detector_is_built_only_when_the_check_is_on() -> None:
    on = stage(Recorder(), (), person_check=True)
    off = stage(Recorder(), ())
    assert on.people is not None and off.people is None
    blank = np.zeros((240, 320), np.uint8)
    assert on.people.people(blank) == []  # nothing on a blank picture
