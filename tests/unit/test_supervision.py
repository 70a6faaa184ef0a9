"""Supervision: the pure ``assess()`` with scripted times, and the Supervisor driving it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import protocol
from edge.clock import FakeClock, ms
from edge.errors import StorageError, UplinkError
from edge.mqttio import LinkStatus, Message
from edge.uplink.supervision import PROFILES, Change, Profile, Supervisor, Watch, assess

P = Profile(heartbeat_s=60, path_loss_s=180, max_ack_s=30)
NONE = Change()

# A script step: (now_s, connected, oldest alarm age in s or None).
Step = tuple[float, bool, float | None]


def run(steps: list[Step], profile: Profile = P, watch: Watch | None = None) -> list[Change]:
    """Feed ``steps`` through assess(); the change of each step."""
    w = watch or Watch()
    changes = []
    for now_s, connected, age in steps:
        w, change = assess(w, now_s, connected, age, profile)
        changes.append(change)
    return changes


def lost(value: bool) -> Change:
    return Change(path_lost=value)


def failed(value: bool) -> Change:
    return Change(delivery_failed=value)


# -- path loss -------------------------------------------------------------


def test_connected_without_alarms_changes_nothing() -> None:
    steps: list[Step] = [(t, True, None) for t in range(0, 1000, 10)]
    assert run(steps) == [NONE] * len(steps)


def test_down_shorter_than_path_loss_raises_nothing() -> None:
    steps: list[Step] = [(100, False, None), (200, False, None), (279.999, False, None)]
    assert run(steps) == [NONE, NONE, NONE]


def test_down_since_is_the_first_sample_seen_down() -> None:
    w, _ = assess(Watch(), 100, False, None, P)
    assert w.down_since_s == 100
    w, _ = assess(w, 150, False, None, P)
    assert w.down_since_s == 100  # not moved by later samples
    w, _ = assess(w, 160, True, None, P)
    assert w.down_since_s is None


def test_reaching_path_loss_raises_the_trouble_once() -> None:
    changes = run([(100, False, None), (280, False, None)])
    assert changes == [NONE, lost(True)]


def test_staying_down_does_not_repeat_the_trouble() -> None:
    steps: list[Step] = [(100, False, None), (280, False, None)]
    steps += [(t, False, None) for t in range(281, 2000, 7)]
    changes = run(steps)
    assert changes.count(lost(True)) == 1
    assert changes[2:] == [NONE] * (len(steps) - 2)


def test_reconnect_after_loss_sends_the_restore_once() -> None:
    steps: list[Step] = [(100, False, None), (280, False, None), (300, True, None)]
    steps += [(t, True, None) for t in range(301, 400, 10)]
    changes = run(steps)
    assert changes[:3] == [NONE, lost(True), lost(False)]
    assert changes[3:] == [NONE] * (len(steps) - 3)


def test_reconnect_before_loss_sends_no_restore() -> None:
    assert run([(100, False, None), (279, False, None), (280, True, None)]) == [NONE] * 3


def test_flaps_shorter_than_path_loss_never_add_up() -> None:
    """Down 170 s, up for one sample, down again: each outage starts its own timer."""
    steps: list[Step] = []
    for start in range(0, 2000, 171):
        steps += [(start, False, None), (start + 170, False, None), (start + 170.5, True, None)]
    assert run(steps) == [NONE] * len(steps)


def test_flapping_after_loss_alternates_trouble_and_restore() -> None:
    steps: list[Step] = [
        (0, False, None),
        (180, False, None),  # lost
        (181, True, None),  # restore
        (182, False, None),  # down again: a new outage, timer from 182
        (361, False, None),  # 179 s: not yet
        (362, False, None),  # 180 s: lost again
        (363, True, None),  # restore again
    ]
    assert run(steps) == [
        NONE,
        lost(True),
        lost(False),
        NONE,
        NONE,
        lost(True),
        lost(False),
    ]


def test_a_clock_reading_zero_still_counts_the_outage() -> None:
    """Monotonic time may start at 0.0: the outage began then, not at the next sample."""
    changes = run([(0.0, False, None), (90, False, None), (180, False, None)])
    assert changes == [NONE, NONE, lost(True)]


def test_down_at_start_up_counts_from_the_first_check() -> None:
    """A box that never connects raises the trouble path_loss_s after its first check."""
    changes = run([(5, False, None), (184.9, False, None), (185, False, None)])
    assert changes == [NONE, NONE, lost(True)]


def test_assess_is_pure() -> None:
    watch = Watch(down_since_s=10, path_lost=False, delivery_failed=True)
    first = assess(watch, 200, False, 5.0, P)
    assert assess(watch, 200, False, 5.0, P) == first
    assert watch == Watch(down_since_s=10, path_lost=False, delivery_failed=True)


# -- delivery failure ------------------------------------------------------


def test_delivery_failure_when_the_oldest_alarm_reaches_max_ack() -> None:
    changes = run([(0, True, None), (1, True, 0.0), (2, True, 29.999), (3, True, 30.0)])
    assert changes == [NONE, NONE, NONE, failed(True)]


def test_delivery_failure_is_not_repeated_and_clears_when_no_alarm_is_left() -> None:
    changes = run(
        [(0, True, 30.0), (1, True, 31.0), (2, True, 500.0), (3, True, None), (4, True, None)]
    )
    assert changes == [failed(True), NONE, NONE, failed(False), NONE]


def test_delivery_failure_clears_when_the_oldest_alarm_is_young_again() -> None:
    """The late alarm was acknowledged; a newer one is still within max_ack_s."""
    assert run([(0, True, 45.0), (1, True, 2.0)]) == [failed(True), failed(False)]


def test_delivery_failure_does_not_need_the_path() -> None:
    """Disconnected or not, an unacknowledged alarm is a delivery failure."""
    assert run([(0, False, 30.0)]) == [failed(True)]


# -- both at once ----------------------------------------------------------


def test_path_loss_and_delivery_failure_in_one_step() -> None:
    changes = run([(0, False, 20.0), (180, False, 200.0), (181, True, None)])
    assert changes == [
        NONE,
        Change(path_lost=True, delivery_failed=True),
        Change(path_lost=False, delivery_failed=False),
    ]


def test_path_and_delivery_change_independently() -> None:
    changes = run(
        [
            (0, False, None),
            (100, False, 30.0),  # delivery failure only
            (180, False, 110.0),  # path lost only (delivery failure already on)
            (190, False, None),  # no unacknowledged alarm left in the store
            (200, True, None),  # path back
        ]
    )
    assert changes == [NONE, failed(True), lost(True), failed(False), lost(False)]


# -- profiles --------------------------------------------------------------


def test_profiles_follow_en_50136() -> None:
    assert PROFILES["standard"] == Profile(heartbeat_s=60, path_loss_s=180, max_ack_s=30)
    assert PROFILES["strict"] == Profile(heartbeat_s=20, path_loss_s=90, max_ack_s=30)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_trips_exactly_at_its_path_loss(name: str) -> None:
    profile = PROFILES[name]
    loss = profile.path_loss_s
    start = 1000.0
    steps: list[Step] = [
        (start, False, None),
        (start + loss - 0.001, False, None),
        (start + loss, False, None),
        (start + loss + profile.heartbeat_s, False, None),
        (start + loss + profile.heartbeat_s + 1, True, None),
    ]
    assert run(steps, profile) == [NONE, NONE, lost(True), NONE, lost(False)]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_fails_delivery_exactly_at_max_ack(name: str) -> None:
    profile = PROFILES[name]
    steps: list[Step] = [(0, True, profile.max_ack_s - 0.001), (1, True, float(profile.max_ack_s))]
    assert run(steps, profile) == [NONE, failed(True)]


# -- property: assess() against a reference model --------------------------

_steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=120, allow_nan=False),
        st.booleans(),
        st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
    max_size=60,
)


@given(_steps)
def test_assess_matches_a_reference_model(script: list[tuple[float, bool, float | None]]) -> None:
    profile = Profile(heartbeat_s=5, path_loss_s=30, max_ack_s=20)
    watch, now = Watch(), 0.0
    outage_start: float | None = None
    was_lost = was_failed = False
    for dt, connected, age in script:
        now += dt
        watch, change = assess(watch, now, connected, age, profile)
        outage_start = None if connected else (now if outage_start is None else outage_start)
        is_lost = outage_start is not None and now - outage_start >= profile.path_loss_s
        is_failed = age is not None and age >= profile.max_ack_s
        assert change.path_lost == (is_lost if is_lost != was_lost else None)
        assert change.delivery_failed == (is_failed if is_failed != was_failed else None)
        assert (watch.path_lost, watch.delivery_failed) == (is_lost, is_failed)
        was_lost, was_failed = is_lost, is_failed


# -- Supervisor ------------------------------------------------------------


class FakeLink:
    def __init__(self, connected: bool = True) -> None:
        self.status = LinkStatus(connected=connected)
        self.sent: list[Message] = []
        self.fail: Exception | None = None
        self.published = asyncio.Event()

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        return True

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        self.published.set()
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


@dataclass
class FakeStore:
    oldest_ms: int | None = None
    fail: Exception | None = None

    async def oldest_alarm_ms(self) -> int | None:
        if self.fail is not None:
            raise self.fail
        return self.oldest_ms


@dataclass
class Calls:
    log: list[tuple[object, ...]] = field(default_factory=list)

    async def path_trouble(self, lost: bool, text: str) -> None:
        self.log.append(("path_trouble", lost, text))

    def set_output(self, function: str, active: bool) -> None:
        self.log.append(("set_output", function, active))

    def take(self) -> list[tuple[object, ...]]:
        taken, self.log = self.log, []
        return taken


TOPICS = protocol.Topics("edge", "box-1")


def supervisor(
    profile: Profile = P,
) -> tuple[Supervisor, FakeLink, FakeStore, FakeClock, Calls]:
    link, store, clock, calls = FakeLink(), FakeStore(), FakeClock(), Calls()
    sup = Supervisor(
        link,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        TOPICS,
        profile,
        clock,
        lambda: 7,
        calls.path_trouble,
        calls.set_output,
    )
    return sup, link, store, clock, calls


async def test_check_while_all_is_well_calls_nothing() -> None:
    sup, _link, _store, clock, calls = supervisor()
    for _ in range(10):
        assert await sup.check() == NONE
        clock.advance(60)
    assert calls.take() == []


async def test_check_raises_path_trouble_and_output_on_changes_only() -> None:
    sup, link, _store, clock, calls = supervisor()
    await sup.check()
    link.status.connected = False
    await sup.check()  # the outage starts now
    clock.advance(179)
    await sup.check()
    assert calls.take() == []
    clock.advance(1)
    assert await sup.check() == lost(True)
    assert calls.take() == [
        ("set_output", "path_fault", True),
        ("path_trouble", True, "no path to the station for 180 s"),
    ]
    for _ in range(5):
        clock.advance(60)
        assert await sup.check() == NONE
    assert calls.take() == []
    link.status.connected = True
    assert await sup.check() == lost(False)
    assert calls.take() == [
        ("set_output", "path_fault", False),
        ("path_trouble", False, "path to the station restored"),
    ]
    clock.advance(60)
    await sup.check()
    assert calls.take() == []
    assert sup.watch == Watch()


async def test_check_drives_delivery_failure_from_the_oldest_alarm() -> None:
    sup, _link, store, clock, calls = supervisor()
    store.oldest_ms = ms(clock.time())
    clock.advance(29.999)
    await sup.check()
    assert calls.take() == []
    clock.advance(0.001)
    assert await sup.check() == failed(True)
    assert calls.take() == [("set_output", "delivery_failure", True)]  # no event for this
    clock.advance(100)
    await sup.check()
    assert calls.take() == []
    store.oldest_ms = None
    assert await sup.check() == failed(False)
    assert calls.take() == [("set_output", "delivery_failure", False)]


async def test_check_with_both_at_once() -> None:
    sup, link, store, clock, calls = supervisor(Profile(5, 10, 5))
    link.status.connected = False
    store.oldest_ms = ms(clock.time())
    await sup.check()
    clock.advance(10)
    assert await sup.check() == Change(path_lost=True, delivery_failed=True)
    assert calls.take() == [
        ("set_output", "path_fault", True),
        ("path_trouble", True, "no path to the station for 10 s"),
        ("set_output", "delivery_failure", True),
    ]
    link.status.connected = True
    store.oldest_ms = None
    await sup.check()
    assert calls.take() == [
        ("set_output", "path_fault", False),
        ("path_trouble", False, "path to the station restored"),
        ("set_output", "delivery_failure", False),
    ]


async def test_check_logs_the_loss_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    sup, link, _store, clock, _calls = supervisor()
    link.status.connected = False
    await sup.check()
    clock.advance(180)
    with caplog.at_level(logging.INFO, logger="edge.uplink.supervision"):
        await sup.check()
        link.status.connected = True
        await sup.check()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "no path to the station for 180 s"),
        (logging.INFO, "path to the station restored"),
    ]


async def test_run_watch_survives_an_unreadable_outbox(caplog: pytest.LogCaptureFixture) -> None:
    sup, _link, store, clock, calls = supervisor()
    store.fail = StorageError("disk I/O error")
    task = asyncio.create_task(sup.run_watch(period_s=0.01))
    try:
        for _ in range(200):
            if len([r for r in caplog.records if "could not read" in r.getMessage()]) >= 2:
                break
            await asyncio.sleep(0.01)
        assert not task.done()
        store.fail = None
        store.oldest_ms = ms(clock.time()) - 60_000
        for _ in range(200):
            if calls.log:
                break
            await asyncio.sleep(0.01)
        assert calls.take() == [("set_output", "delivery_failure", True)]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_first_heartbeat_goes_out_at_once() -> None:
    sup, link, _store, clock, _calls = supervisor(Profile(heartbeat_s=5, path_loss_s=10))
    task = asyncio.create_task(sup.run_heartbeat())
    try:
        await asyncio.wait_for(link.published.wait(), 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [beat] = link.sent
    assert beat.topic == "edge/box-1/heartbeat" and beat.qos == 1 and not beat.retain
    body = protocol.decode_object(beat.payload)
    assert body["seq"] == 1 and body["interval_s"] == 5 and body["outbox_depth"] == 7
    assert protocol.parse_iso_ms(body["at"]) == ms(clock.time())


async def test_heartbeat_publish_failure_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup, link, _store, _clock, _calls = supervisor(Profile(heartbeat_s=5, path_loss_s=10))
    link.fail = UplinkError("not connected")
    task = asyncio.create_task(sup.run_heartbeat())
    try:
        await asyncio.wait_for(link.published.wait(), 2)
        await asyncio.sleep(0)  # let it log
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "heartbeat 1 not sent: not connected" in caplog.text


# --- periodic test report ---------------------------------------------------------


async def test_periodic_test_is_raised_every_interval_without_drift_or_burst() -> None:
    clock = FakeClock()
    sent: list[str] = []

    async def periodic(text: str) -> object:
        sent.append(text)
        return None

    sup = Supervisor(
        cast(Any, None),
        cast(Any, None),
        protocol.Topics("edge", "gw"),
        Profile(periodic_test_s=3600),
        clock,
        lambda: 0,
        cast(Any, None),
        lambda _f, _a: None,
        periodic,
    )
    assert not await sup.periodic_check()
    clock.advance(3599.9)
    assert not await sup.periodic_check()
    clock.advance(0.1)
    assert await sup.periodic_check()
    assert not await sup.periodic_check()  # once per interval
    clock.advance(3 * 3600 + 10)  # a long stall: one report, not three catch-ups
    assert await sup.periodic_check()
    assert not await sup.periodic_check()
    clock.advance(3600 - 10)  # and the schedule stays on the hour
    assert await sup.periodic_check()
    assert sent == [
        "periodic test report #1",
        "periodic test report #2",
        "periodic test report #3",
    ]


async def test_no_periodic_test_when_the_interval_is_zero() -> None:
    clock = FakeClock()
    sup = Supervisor(
        cast(Any, None),
        cast(Any, None),
        protocol.Topics("edge", "gw"),
        Profile(periodic_test_s=0),
        clock,
        lambda: 0,
        cast(Any, None),
        lambda _f, _a: None,
        cast(Any, None),
    )
    clock.advance(10 * 86400)
    assert not await sup.periodic_check()
