"""The [motion] config section: documented example, translation, and every mistake named."""

from __future__ import annotations

import pytest

from edge.config import load
from edge.motion.settings import motion_params, stage_settings, tamper_params

from .test_config import EXAMPLE, demo_raw, errors, message_for, put


def test_the_example_motion_section_becomes_detector_parameters() -> None:
    cfg = load(EXAMPLE)
    params = motion_params(cfg, "reception")
    assert params.sensitivity == 6
    assert [m.name for m in params.masks] == ["window-tree"]
    assert [z.name for z in params.zones] == ["door"]
    door = params.zones[0].points
    assert door[0] == pytest.approx((500 / 1280, 100 / 720))
    assert max(x for x, _ in door) <= 1 and max(y for _, y in door) <= 1
    assert tamper_params(cfg).raise_after_s == 10
    settings = stage_settings(cfg)  # the example turns the person check on, not the condition
    assert settings.person_check and settings.person_min_confidence == 0.7
    assert not settings.events_need_person


def test_defaults_when_a_camera_has_no_motion_block() -> None:
    from edge.config import validate

    raw = demo_raw()
    raw["motion"] = {"sensitivity": 8, "min_area_pct": 1.5}
    params = motion_params(validate(raw, "x.toml"), "entrance")
    assert params.sensitivity == 8 and params.masks == () and params.zones == ()
    assert params.area_share == pytest.approx(0.015)


def _camera(**extra: object) -> dict[str, object]:
    return {"camera": "entrance", **extra}


AREA = {"name": "yard", "corners": [[0, 0], [100, 0], [100, 100]]}


@pytest.mark.parametrize(
    ("mutate", "path", "rule"),
    [
        (put("motion", "sensitivity", value=11), "motion.sensitivity", "less than or equal to 10"),
        (put("motion", "sensitivity", value="5"), "motion.sensitivity", "whole number"),
        (put("motion", "event_cooldown_s", value=1), "motion.event_cooldown_s", "5"),
        (put("motion", "queue_frames", value=0), "motion.queue_frames", "1"),
        (put("motion", "sensitivty", value=5), "motion.sensitivty", "sensitivity"),
        (put("motion", "person_min_confidence", value=1.5), "motion.person_min_confidence", "0.99"),
        (
            put("motion", "events_need_person", value=True),
            "motion.events_need_person",
            "needs person_check = true",
        ),
        (
            put("motion", "cameras", value=[_camera(camera="garage")]),
            "motion.cameras[0].camera",
            "no such camera (entrance)",
        ),
        (
            put("motion", "cameras", value=[_camera(), _camera()]),
            "motion.cameras[1].camera",
            "duplicate",
        ),
        (
            put("motion", "cameras", value=[_camera(zones=[AREA, AREA])]),
            "motion.cameras[0].zones[1](name='yard').name",
            "duplicate area name",
        ),
        (
            put(
                "motion",
                "cameras",
                value=[_camera(masks=[{"name": "m", "corners": [[0, 0], [700, 0], [0, 10]]}])],
            ),
            "motion.cameras[0].masks[0](name='m').corners[1]",
            "outside the 640x360 picture",
        ),
        (
            put("motion", "cameras", value=[_camera(zones=[{"name": "z", "corners": [[0, 0]]}])]),
            "motion.cameras[0].zones[0](name='z').corners",
            "at least 3 corners",
        ),
        (
            put("motion", "cameras", value=[_camera(zones=[{**AREA, "name": "Door!"}])]),
            "motion.cameras[0].zones[0](name='Door!').name",
            "a-z",
        ),
    ],
)
def test_motion_mistakes_name_their_key(mutate, path: str, rule: str) -> None:
    message = message_for(errors(mutate), path)
    assert rule in message, message
