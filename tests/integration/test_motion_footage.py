"""The motion pre-filter on third-party footage, against OpenCV's MOG2 in the same run.

The bars are what the detector reaches today with some margin; the
comparison with MOG2 (defaults, same frames, same post-processing) is the
issue's bar. ``make bench`` prints the same figures as a table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.motion import footage

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"third-party footage not present at {DATA}"),
]


@pytest.fixture(scope="module")
def highway() -> tuple[dict[str, float], dict[str, float]]:
    return footage.highway(DATA, footage.ours()), footage.highway(DATA, footage.mog2())


@pytest.fixture(scope="module")
def road() -> tuple[dict[str, float], dict[str, float]]:
    return footage.bgslibrary(DATA, footage.ours()), footage.bgslibrary(DATA, footage.mog2())


@pytest.fixture(scope="module")
def pets() -> tuple[dict[str, float], dict[str, float]]:
    return footage.pets(DATA, footage.ours()), footage.pets(DATA, footage.mog2())


def test_cdnet_highway_frame_f1_and_pixel_f_measure(highway) -> None:
    ours, mog2 = highway
    print(f"highway: ours {ours}\n         MOG2 {mog2}")
    assert ours["frame F1"] >= 0.96
    assert ours["pixel F"] >= 0.69
    assert ours["pixel precision"] >= 0.85
    assert ours["frame F1"] > mog2["frame F1"]
    assert ours["pixel F"] > mog2["pixel F"]


def test_bgslibrary_road_frame_precision_and_recall(road) -> None:
    ours, mog2 = road
    print(f"road: ours {ours}\n      MOG2 {mog2}")
    assert ours["precision"] >= 0.98  # no motion on the empty road
    assert ours["recall"] >= 0.92
    assert ours["F1"] > mog2["F1"]


def test_pets_people_overlapped_by_motion_boxes(pets) -> None:
    ours, mog2 = pets
    print(f"pets: ours {ours}\n      MOG2 {mog2}")
    assert ours["people found"] >= 0.65
    assert ours["box area"] <= 0.05  # found by tight boxes, not by one box over everything
    assert ours["people found"] > mog2["people found"]


def test_the_road_clip_scoring_excludes_the_uncertain_frames() -> None:
    assert footage.bgs_truth(0) is False
    assert footage.bgs_truth(57) is None  # within the annotation's +-3 frames
    assert footage.bgs_truth(100) is True
    assert footage.bgs_truth(192) is False
    assert footage.bgs_truth(370) is False
