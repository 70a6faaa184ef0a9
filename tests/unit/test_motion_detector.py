"""The motion detector on scripted synthetic frames, next to OpenCV's MOG2 on the same frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.motion import footage
from edge.motion.detector import MotionState, detect
from edge.motion.params import MotionParams, Polygon, min_area_of, threshold_of

W, H = 320, 240


def scene(seed: int = 1) -> np.ndarray:
    """A textured static background: gradients, blocks and fine detail, like a room or yard."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    base = 70 + 0.25 * x + 0.2 * y
    for _ in range(25):
        x0, y0 = rng.integers(0, W - 40), rng.integers(0, H - 30)
        base[y0 : y0 + rng.integers(10, 60), x0 : x0 + rng.integers(10, 80)] += rng.integers(
            -40, 40
        )
    detail = cv2.GaussianBlur(rng.normal(0, 12, (H, W)), (0, 0), 1.2)
    return np.clip(base + detail, 0, 255)


def noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 2.5) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def with_figure(img: np.ndarray, left: int, top: int = 90, value: float = 200) -> np.ndarray:
    out = img.copy()
    out[top : top + 60, max(0, left) : max(0, left + 24)] = value
    return out


def run(frames: list[np.ndarray], params: MotionParams | None = None) -> list:
    params = params or MotionParams()
    state, results = MotionState(), []
    for frame in frames:
        state, result = detect(frame, state, params)
        results.append(result)
    return results


def mog2_motion(frames: list[np.ndarray], skip: int = 0) -> tuple[int, int]:
    """MOG2 (defaults) on the same frames: frames with any foreground pixel, as an NVR counts
    them, and frames with motion after our post-processing; the first ``skip`` not counted."""
    subtractor = cv2.createBackgroundSubtractorMOG2()
    step = footage.mog2()
    raw = post = 0
    for i, frame in enumerate(frames):
        any_pixel = bool((subtractor.apply(frame) == 255).any())
        moved = step(frame).motion
        if i >= skip:
            raw, post = raw + any_pixel, post + moved
    return raw, post


def static(n: int, seed: int = 2, sigma: float = 2.5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    img = scene()
    return [noisy(img, rng, sigma) for _ in range(n)]


def test_start_up_is_calibrating_never_motion_where_mog2_fires() -> None:
    frames = static(100, sigma=5)
    results = run(frames)
    params = MotionParams()
    assert [r.calibrating for r in results[: params.calibration_frames]] == [True] * 12
    assert not any(r.calibrating for r in results[params.calibration_frames + 1 :])
    assert sum(r.motion for r in results) == 0
    assert max(r.score for r in results) == 0.0
    raw, post = mog2_motion(frames)
    print(f"start-up: ours 0/100 frames with motion; MOG2 {raw}/100 raw, {post}/100 post-processed")
    assert raw > 50  # the baseline's behaviour the issue describes, reproduced in this run


@pytest.mark.parametrize("step", [40, -35, 70])
def test_global_brightness_step_is_not_motion(step: int) -> None:
    rng = np.random.default_rng(3)
    img = scene()
    frames = [noisy(img, rng) for _ in range(60)]
    frames += [noisy(np.clip(img + step, 0, 255), rng) for _ in range(100)]
    results = run(frames)
    assert sum(r.motion for r in results) == 0
    assert not any(r.calibrating for r in results[60:])  # compensated, not even relearnt
    raw, post = mog2_motion(frames, skip=60)
    print(f"brightness {step:+d}: ours 0/100 after the step; MOG2 {raw}/100 raw, {post} post")
    if step == 40:  # the case; MOG2 absorbs a darkening at once
        assert post > 5  # MOG2 takes this many frames to absorb the step


def test_gradual_gain_change_auto_exposure_is_not_motion() -> None:
    rng = np.random.default_rng(4)
    img = scene()
    frames = [noisy(img * (1.0 + 0.5 * min(1.0, i / 60)), rng) for i in range(150)]
    assert sum(r.motion for r in run(frames)) == 0


@pytest.mark.parametrize(("gain", "offset"), [(0.35, 25), (0.7, 30), (1.0, 0)])
def test_ir_day_night_switch_relearns_instead_of_firing(gain: float, offset: float) -> None:
    rng = np.random.default_rng(5)
    day = scene(1)
    night = gain * day + offset  # monochrome, other exposure
    night[40:140, 20:200] = 210 - 0.5 * night[40:140, 20:200]  # IR turns foliage bright
    frames = [noisy(day, rng) for _ in range(40)] + [noisy(night, rng, 4) for _ in range(100)]
    results = run(frames)
    assert sum(r.motion for r in results) == 0
    assert any(r.scene_change for r in results[40:42])
    assert not any(r.calibrating for r in results[60:])  # back in service within a second or two


def test_sensor_noise_is_not_motion() -> None:
    assert sum(r.motion for r in run(static(200, seed=6, sigma=7))) == 0


def test_salt_and_pepper_and_dead_pixels_are_not_motion() -> None:
    rng = np.random.default_rng(7)
    img = scene()
    frames = []
    for _ in range(120):
        f = noisy(img, rng)
        ys, xs = rng.integers(0, H, 150), rng.integers(0, W, 150)
        f[ys, xs] = rng.choice([0, 255], 150)
        frames.append(f)
    assert sum(r.motion for r in run(frames)) == 0


@pytest.mark.parametrize("amplitude", [1, 2])
def test_small_camera_vibration_is_not_motion(amplitude: int) -> None:
    rng = np.random.default_rng(8)
    img = scene()
    frames = []
    for _ in range(150):
        dx, dy = rng.integers(-amplitude, amplitude + 1, 2)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(img, shift, (W, H), borderMode=cv2.BORDER_REFLECT)
        frames.append(noisy(moved, rng))
    assert sum(r.motion for r in run(frames)) == 0


def walking(n: int = 80, start: int = -20, speed: int = 4) -> tuple[list[np.ndarray], list[int]]:
    rng = np.random.default_rng(9)
    img = scene()
    frames = [noisy(img, rng) for _ in range(20)]
    lefts = [start + speed * i for i in range(n)]
    frames += [noisy(with_figure(img, left), rng) for left in lefts]
    return frames, lefts


def test_a_walking_figure_is_motion_with_a_box_around_it() -> None:
    frames, lefts = walking()
    results = run(frames)
    assert not any(r.motion for r in results[:20])
    moving = results[20:]
    visible = [i for i, left in enumerate(lefts) if left >= 0 and left + 24 <= W]
    assert sum(moving[i].motion for i in visible) >= len(visible) - 2
    for i in visible[2:]:
        box = max(moving[i].boxes, key=lambda b: b[2] * b[3])
        x, y, w, h = box
        assert abs(x - lefts[i]) <= 8 and abs(y - 90) <= 8, (i, box, lefts[i])
        assert 12 <= w <= 40 and 30 <= h <= 72, (i, box)  # part may match the backdrop
        assert 0.005 < moving[i].score < 0.05


def test_zones_touched_and_detection_masks() -> None:
    left_half = Polygon("left", ((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
    right_half = Polygon("right", ((0.5, 0), (1, 0), (1, 1), (0.5, 1)))
    frames, lefts = walking()
    results = run(frames, MotionParams(zones=(left_half, right_half)))
    at = {left: r for left, r in zip(lefts, results[20:], strict=True)}
    assert at[60].zones == ("left",)
    assert at[260].zones == ("right",)
    masked = run(frames, MotionParams(masks=(right_half,), zones=(left_half, right_half)))
    at_masked = {left: r for left, r in zip(lefts, masked[20:], strict=True)}
    assert at_masked[60].motion and at_masked[60].zones == ("left",)
    assert not at_masked[260].motion and at_masked[260].boxes == ()


def test_sensitivity_orders_what_is_detected() -> None:
    rng = np.random.default_rng(10)
    img = scene()
    faint = [noisy(img, rng) for _ in range(20)]
    faint += [
        noisy(with_figure(img, 100 + 3 * i, value=img[90:150, 100:124].mean() + 15), rng)
        for i in range(30)
    ]
    low = sum(r.motion for r in run(faint, MotionParams(sensitivity=1)))
    high = sum(r.motion for r in run(faint, MotionParams(sensitivity=10)))
    assert low == 0 and high >= 25
    assert threshold_of(1) > threshold_of(5) > threshold_of(10)
    assert min_area_of(1) > min_area_of(5) > min_area_of(10)


def test_any_resolution_and_resolution_change_restart_learning() -> None:
    frames, _ = walking(40)
    small = [cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA) for f in frames]
    assert sum(r.motion for r in run(small)) >= 30
    state, _ = detect(frames[0], MotionState(), MotionParams())
    state, result = detect(small[0], state, MotionParams())
    assert result.calibrating and not result.motion


def test_the_state_is_not_modified_in_place() -> None:
    frames = static(20)
    state = MotionState()
    for f in frames[:15]:
        state, _ = detect(f, state, MotionParams())
    assert state.background is not None
    before = state.background.copy()
    detect(frames[15], state, MotionParams())
    assert np.array_equal(state.background, before)


@pytest.mark.parametrize(
    ("gray", "message"),
    [
        (np.zeros((240, 320, 3), np.uint8), "2-D uint8"),
        (np.zeros((240, 320), np.float32), "2-D uint8"),
    ],
)
def test_bad_frames_are_refused_clearly(gray: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect(gray, MotionState(), MotionParams())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sensitivity": 0}, "sensitivity = 0: must be in 1..10"),
        ({"sensitivity": 11}, "sensitivity"),
        ({"threshold": 2}, "threshold"),
        ({"min_area": 0.9}, "min_area"),
        ({"zones": (Polygon("z", ((0, 0), (1, 1))),)}, "at least 3 corners"),
        ({"masks": (Polygon("m", ((0, 0), (1.5, 0), (1, 1))),)}, "within 0..1"),
    ],
)
def test_bad_parameters_are_refused_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MotionParams(**kwargs)


def test_a_big_body_close_to_the_camera_walking_in_is_motion_not_a_scene_change() -> None:
    rng = np.random.default_rng(11)
    img = scene()
    frames = [noisy(img, rng) for _ in range(20)]
    for i in range(20):  # 110 x 200 px (about 30 % of the picture), 15 px per frame
        out = img.copy()
        left = -110 + 15 * i
        out[20:220, max(0, left) : max(0, left + 110)] = 230
        frames.append(noisy(out, rng))
    results = run(frames)
    assert not any(r.scene_change for r in results)
    assert sum(r.motion for r in results[22:]) == 18


def test_a_quiet_scene_is_probed_not_analysed_and_motion_is_still_seen_at_once() -> None:
    """On a quiet scene most frames are only probed (skipped), but for those that learn;
    a figure stepping in is motion on its second frame all the same (min_frames 2)."""
    rng = np.random.default_rng(12)
    img = scene()
    frames = [noisy(img, rng) for _ in range(60)]
    frames += [noisy(with_figure(img, 100 + 4 * i), rng) for i in range(10)]
    results = run(frames)
    quiet = results[MotionParams().calibration_frames + 4 : 60]
    assert sum(r.skipped for r in quiet) >= len(quiet) // 2
    assert not any(r.skipped and r.motion for r in results)
    assert not results[60].motion and results[61].motion and all(r.motion for r in results[61:])
