"""The camera and recording keys: clear errors that name the key, value and rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_config import CAM, demo_camera, demo_raw, errors, message_for


def recording(**changes: Any) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        raw.setdefault("recording", {}).update(changes)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "path", "rule"),
    [
        (recording(retention_days=45), "recording.retention_days", "legal cap"),
        (recording(mode="always"), "recording.mode", "'alarms', 'motion' or 'continuous'"),
        (recording(segment_s=5), "recording.segment_s", "greater than or equal to 10"),
        (demo_camera(width=641), f"{CAM}.width", "= 641: must be an even number (H.264)"),
        (demo_camera(bitrate_kbps=50), f"{CAM}.bitrate_kbps", "greater than or equal to 100"),
        (
            demo_camera(privacy_masks=[[[0, 0], [10, 0]]]),
            f"{CAM}.privacy_masks[0]",
            "needs at least 3 corners",
        ),
        (
            demo_camera(privacy_masks=[[[0, 0], [700, 0], [0, 10]]]),
            f"{CAM}.privacy_masks[0][1]",
            "outside the 640x360 picture",
        ),
    ],
)
def test_video_config_mistakes(mutate: Any, path: str, rule: str) -> None:
    assert rule in message_for(errors(mutate), path)


def test_retention_message_cites_the_law() -> None:
    message = message_for(errors(recording(retention_days=31)), "recording.retention_days")
    assert "at most 30 days" in message and "L252-5" in message
    assert demo_raw()["recording"]["retention_days"] <= 30
