"""The stream's own clock, pure: frame times from their timestamps, the real rate, which
frames motion gets, when the encoder follows the rate, what the status notes."""

from __future__ import annotations

import pytest

from edge.video.timing import LoresGate, RateMeter, StreamClock, follow_rate, rate_note


def test_a_file_keeps_its_own_times_gaps_and_all() -> None:
    clock = StreamClock(live=False, period_s=0.1)
    stamps = [0.0, 0.1, 0.2, 20.2, 20.3]  # a camera that froze for 20 s
    times = [clock.at(s, now_s=500.0) for s in stamps]  # read all at once: no matter
    assert times == pytest.approx([500.0, 500.1, 500.2, 520.2, 520.3])
    assert clock.at(None, 500.0) == pytest.approx(520.4)  # no stamp: one period on
    assert clock.at(20.4, 500.0) == pytest.approx(520.401)  # repeated: just after
    assert clock.at(20.5, 500.0) == pytest.approx(520.5)  # and on as stamped
    assert clock.at(3.0, 500.0) == pytest.approx(520.6)  # a jump back: carried on
    assert clock.at(3.1, 500.0) == pytest.approx(520.7)


def test_a_live_camera_is_anchored_at_arrival_and_says_how_far_behind() -> None:
    clock = StreamClock(live=True)
    assert clock.at(7.0, now_s=100.0) == 100.0
    assert clock.at(7.2, now_s=100.5) == pytest.approx(100.2)  # its own time, not arrival
    assert clock.behind_s == pytest.approx(0.3)
    assert clock.at(3600.0, now_s=101.0) == 101.0  # its clock jumped: anchored again
    assert clock.behind_s == 0.0
    assert clock.at(3580.0, now_s=101.1) == 101.1  # and back: anchored again
    assert clock.wall_ms(101.0, 101.1, 1_800_000_000.0) == 1_799_999_999_900


def test_the_rate_is_measured_from_the_frames_own_times() -> None:
    meter = RateMeter()
    assert meter.fps is None
    for i in range(10):
        meter.add(i / 25)
    assert meter.fps is None  # not yet 1.5 s of frames
    for i in range(10, 200):
        meter.add(i / 25)
    assert meter.fps == pytest.approx(25.0)
    for i in range(200, 300):  # slower now: the window follows
        meter.add(8 + (i - 200) / 10)
    assert meter.fps == pytest.approx(10.0)
    meter.add(0.0)  # back in time (a jump): measured again
    assert meter.fps is None
    for i in range(1, 21):
        meter.add(i / 10)
    assert meter.fps == pytest.approx(10.0)
    meter.add(22.0)  # a camera that froze for 20 s: no rate of 0.1 a second
    meter.add(22.1)
    meter.add(22.2)
    assert meter.fps is None


def test_the_encoder_follows_the_real_rate_only_when_it_is_off() -> None:
    assert follow_rate(15.0, None) is None
    assert follow_rate(15.0, 15.9) is None  # within 10 %
    assert follow_rate(15.0, 25.0) == 25.0
    assert follow_rate(15.0, 9.97) == 9.97
    assert rate_note(15.0, 16.5) is None
    assert rate_note(15.0, None) is None
    note = rate_note(15.0, 25.0)
    assert note is not None and "25.0 frames/s" in note and "says 15" in note


@pytest.mark.parametrize(("camera", "fps", "expect"), [(25, 15, 12.5), (30, 15, 15), (10, 15, 10)])
def test_motion_gets_at_most_about_the_configured_rate(
    camera: int, fps: float, expect: float
) -> None:
    gate = LoresGate(fps)
    passed = sum(gate.due(i / camera) for i in range(camera * 10))
    assert passed / 10 == pytest.approx(expect, abs=0.2)


def test_motion_thins_a_variable_rate_by_time_not_by_count() -> None:
    gate = LoresGate(10)
    stamps = [0.0, 0.02, 0.04, 0.1, 0.5, 0.52, 0.6, 0.61]
    assert [t for t in stamps if gate.due(t)] == [0.0, 0.1, 0.5, 0.6]
