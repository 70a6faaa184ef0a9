"""Camera tamper on synthetic frames and on real frames of third-party footage."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.motion import footage
from edge.motion.tamper import Tamper, TamperChanged, TamperParams, TamperState, check

from .test_motion_detector import noisy, scene

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video"
FPS = 5.0
REAL: dict[str, list[np.ndarray]] = {}  # decoded once per clip


def feed(frames: list[np.ndarray], params: TamperParams | None = None) -> list[TamperChanged]:
    params = params or TamperParams()
    state, changes = TamperState(), []
    for i, frame in enumerate(frames):
        state, new = check(frame, i / FPS, state, params, camera="cam")
        changes.extend(new)
    return changes


def story(normal: list[np.ndarray], bad: list[np.ndarray]) -> list[np.ndarray]:
    """10 s normal (reference learnt), 10 s tampered, 10 s normal again."""
    n = int(10 * FPS)
    return (
        [normal[i % len(normal)] for i in range(n)]
        + [bad[i % len(bad)] for i in range(n)]
        + [normal[(i + 7) % len(normal)] for i in range(n)]
    )


def synthetic(n: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    img = scene()
    return [noisy(img, rng) for _ in range(n)]


def covered(f: np.ndarray) -> np.ndarray:
    return (cv2.GaussianBlur(f, (0, 0), 25) * 0.15).astype(np.uint8)


def blinded(f: np.ndarray) -> np.ndarray:
    return np.clip(f.astype(int) * 3 + 160, 0, 255).astype(np.uint8)


def defocused(f: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(f, (0, 0), 4)


def displaced(f: np.ndarray) -> np.ndarray:
    return np.roll(np.roll(f, f.shape[1] // 6, axis=1), f.shape[0] // 12, axis=0)


CASES = [
    (covered, Tamper.COVERED),
    (blinded, Tamper.BLINDED),
    (defocused, Tamper.DEFOCUS),
    (displaced, Tamper.DISPLACED),
]


def assert_raised_and_restored(changes: list[TamperChanged], want: Tamper) -> None:
    assert [(c.tamper, c.active) for c in changes] == [(want, True), (want, False)], changes
    raised, restored = changes
    assert 15.0 <= raised.at_s <= 15.5  # 10 s in + raise_after_s
    assert 25.0 <= restored.at_s <= 25.5  # back at 20 s + restore_after_s
    assert raised.camera == "cam" and raised.detail


@pytest.mark.parametrize(("spoil", "want"), CASES)
def test_synthetic_tamper_raised_and_restored(spoil, want: Tamper) -> None:
    normal = synthetic()
    assert_raised_and_restored(feed(story(normal, [spoil(f) for f in normal])), want)


def test_a_normal_scene_lighting_noise_and_motion_raise_nothing() -> None:
    rng = np.random.default_rng(2)
    img = scene()
    frames = []
    for i in range(300):
        f = img * (0.6 + 0.4 * abs(np.sin(i / 40))) + 10  # slow light changes
        left = (i * 5) % 340 - 20
        f[90:150, max(0, left) : max(0, left + 24)] = 200  # someone walking by
        frames.append(noisy(f, rng, 4))
    assert feed(frames) == []


def test_a_short_glitch_raises_nothing() -> None:
    normal = synthetic()
    frames = [normal[i % 20] for i in range(60)] + [covered(normal[0])] * 10 + normal * 3
    assert feed(frames) == []  # 2 s covered < raise_after_s


def test_covered_from_start_up_is_raised() -> None:
    frames = [covered(f) for f in synthetic()] * 3
    changes = feed(frames)
    assert [(c.tamper, c.active) for c in changes] == [(Tamper.COVERED, True)]


def test_bad_frames_and_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        check(np.zeros((10, 10, 3), np.uint8), 0.0, TamperState(), TamperParams())
    with pytest.raises(ValueError, match="match_min = 2"):
        TamperParams(match_min=2)


@pytest.mark.skipif(
    not DATA.is_dir(), reason="third-party footage not present (../shared/data/video)"
)
@pytest.mark.parametrize("clip", [footage.PETS, footage.HIGHWAY, footage.BGS])
@pytest.mark.parametrize(("spoil", "want"), CASES)
def test_real_footage_tamper_raised_and_restored(clip: str, spoil, want: Tamper) -> None:
    normal = REAL.setdefault(clip, list(footage.frames(DATA / clip, 60))[::2])
    assert_raised_and_restored(feed(story(normal, [spoil(f) for f in normal])), want)


@pytest.mark.skipif(
    not DATA.is_dir(), reason="third-party footage not present (../shared/data/video)"
)
@pytest.mark.parametrize("clip", [footage.PETS, footage.HIGHWAY, footage.BGS])
def test_real_footage_with_traffic_and_people_raises_nothing(clip: str) -> None:
    frames = list(footage.frames(DATA / clip, 300))
    assert feed(frames) == []
