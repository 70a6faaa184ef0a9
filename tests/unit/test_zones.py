"""The zone state machine: scripted input edges and ticks, with explicit times, in; events out.

Times in a script are milliseconds since its start on the monotonic clock; the
wall clock starts at ``T0`` and moves with it unless a test steps it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.codes import ZONE_CONDITION, Condition, Kind, ZoneType
from edge.config.schema import ZoneConfig
from edge.inputs.zones import (
    PanelState,
    Tick,
    ZoneState,
    next_deadline,
    resume,
    step,
    zone_level,
)
from edge.model import Event, ZoneChanged, ZoneRef

T0 = 1_795_875_790_000  # wall clock (UTC ms) at the start of a script
MONO0_S = 5_000.0  # monotonic clock (s) at the start of a script


@dataclass
class Ids:
    """An id factory that hands out ``id-1``, ``id-2``... and records the ms it was given."""

    seen_ms: list[int] = field(default_factory=list)

    def __call__(self, now_ms: int) -> str:
        self.seen_ms.append(now_ms)
        return f"id-{len(self.seen_ms)}"


def _zone(zone_id: str, zone_type: ZoneType, number: int, **extra: Any) -> ZoneConfig:
    return ZoneConfig(id=zone_id, name=zone_id.title(), type=zone_type, number=number, **extra)


ZONES: dict[str, ZoneConfig] = {
    z.id: z
    for z in (
        _zone("armed", ZoneType.ARMED_STATE, 1),
        _zone("hall", ZoneType.INTRUSION, 2),
        _zone("door", ZoneType.ENTRY_EXIT, 3),
        _zone("fire", ZoneType.FIRE, 4),
        _zone("panic", ZoneType.PANIC, 5),
        _zone("holdup", ZoneType.HOLDUP, 6),
        _zone("flood", ZoneType.TECHNICAL, 7),
        _zone("pir-tamper", ZoneType.TAMPER, 8),
        _zone("panel-tamper", ZoneType.PANEL_TAMPER, 9),
        _zone("lid", ZoneType.ENCLOSURE_TAMPER, 10),
        _zone("mains", ZoneType.AC_POWER, 11),
        _zone("battery", ZoneType.BATTERY, 12),
        # partition 2
        _zone("armed-2", ZoneType.ARMED_STATE, 20, partition=2),
        _zone("shop", ZoneType.INTRUSION, 21, partition=2),
        # overrides
        _zone("vault", ZoneType.INTRUSION, 30, alarm_when_disarmed=True),
        _zone("smoke-lab", ZoneType.FIRE, 31, alarm_when_disarmed=False),
        # timing: no hold (restore_ms alone decides), no filter at all, a siren PGM
        _zone("quick", ZoneType.FIRE, 40, hold_s=0),
        _zone("raw", ZoneType.PANIC, 41, glitch_ms=0, restore_ms=0, hold_s=0),
        _zone("pgm", ZoneType.TECHNICAL, 42, swinger_limit=100),
    )
}


class Panel:
    """Feeds a script of edges and ticks through ``step``."""

    def __init__(self, zones: Mapping[str, ZoneConfig] = ZONES) -> None:
        self.zones = zones
        self.state = PanelState()
        self.ids = Ids()
        self.now_ms: float = 0.0
        self.wall_step_ms = 0  # how far the wall clock was stepped (NTP)
        self.log: list[Event] = []  # every event, whichever step made it

    def wall(self, at_ms: float) -> int:
        return T0 + int(at_ms) + self.wall_step_ms

    def feed(self, change: ZoneChanged | Tick) -> list[Event]:
        self.state, events = step(self.state, change, self.zones, self.ids)
        self.log += events
        return events

    def edge(
        self, zone: str, active: bool, at: float | None = None, initial: bool = False
    ) -> list[Event]:
        """An edge of ``zone``'s input at ``at`` ms (default: 1 ms after the last input)."""
        self.now_ms = self.now_ms + 1 if at is None else at
        change = ZoneChanged(
            input=f"in-{zone}",
            zone=zone,
            active=active,
            at_s=MONO0_S + self.now_ms / 1000,
            wall_ms=self.wall(self.now_ms),
            initial=initial,
        )
        return self.feed(change)

    def tick(self, at: float) -> list[Event]:
        self.now_ms = at
        return self.feed(Tick(MONO0_S + at / 1000, self.wall(at)))

    def deadline(self) -> float | None:
        """The next deadline, in script ms."""
        deadline = next_deadline(self.state)
        return None if deadline is None else round((deadline - MONO0_S) * 1000, 3)

    def settle(self) -> list[Event]:
        """Let time pass, ticking exactly at each deadline, until no timer is pending."""
        events: list[Event] = []
        for _ in range(100):
            deadline = self.deadline()
            if deadline is None:
                return events
            assert deadline >= self.now_ms
            events += self.tick(deadline)
        raise AssertionError("the timers never settle")

    def script(self, steps: Iterable[tuple[str, bool]]) -> list[Event]:
        """Each edge, then time passes until nothing is pending."""
        return [e for zone, active in steps for e in [*self.edge(zone, active), *self.settle()]]

    def arm(self, zone: str = "armed") -> list[Event]:
        return self.script([(zone, True)])

    def disarm(self, zone: str = "armed") -> list[Event]:
        return self.script([(zone, False)])

    def trip(self, zone: str, on_ms: float = 100) -> list[Event]:
        """The input active for ``on_ms``, then quiet until everything settled."""
        events = self.edge(zone, True)
        events += self.edge(zone, False, at=self.now_ms + on_ms)
        return events + self.settle()


def _summary(events: list[Event]) -> list[tuple[Kind, str, str]]:
    return [(e.kind, e.codes.cid, e.codes.sia) for e in events]


def _kinds(events: list[Event]) -> list[Kind]:
    return [e.kind for e in events]


def _at(events: list[Event]) -> list[int]:
    """When each event occurred, in script ms."""
    return [e.occurred_at_ms - T0 for e in events]


# --- arming ---------------------------------------------------------------------


def test_arm_is_a_closing_and_disarm_an_opening() -> None:
    panel = Panel()
    [arm] = panel.arm()
    assert (arm.kind, arm.codes.cid, arm.codes.sia) == (Kind.ARM, "3401", "CL")
    assert arm.condition is Condition.OPEN_CLOSE
    assert arm.armed is True
    assert arm.partition == 1
    assert arm.zone == ZoneRef("armed", "Armed", ZoneType.ARMED_STATE, 1)
    assert panel.state.armed == {1: True}

    [disarm] = panel.disarm()
    assert (disarm.kind, disarm.codes.cid, disarm.codes.sia) == (Kind.DISARM, "1401", "OP")
    assert disarm.armed is False
    assert panel.state.armed == {1: False}


def test_repeated_armed_level_reports_once() -> None:
    panel = Panel()
    events = panel.script([("armed", True), ("armed", True), ("armed", True)])
    assert _kinds(events) == [Kind.ARM]
    events = panel.script([("armed", False), ("armed", False)])
    assert _kinds(events) == [Kind.DISARM]


def test_arm_and_disarm_pass_the_glitch_filter() -> None:
    panel = Panel()
    panel.edge("armed", False, at=0, initial=True)
    assert panel.edge("armed", True, at=1) == []
    assert panel.edge("armed", False, at=20) == []  # 19 ms: a glitch
    assert panel.tick(5000) == []
    assert panel.state.armed == {1: False}
    panel.edge("armed", True, at=6000)
    assert panel.tick(6019) == []
    [arm] = panel.tick(6020)  # active exactly 20 ms
    assert arm.kind is Kind.ARM and _at([arm]) == [6020]
    # a 19 ms drop of the armed output is not a disarm; 20 ms is
    panel.edge("armed", False, at=7000)
    assert panel.edge("armed", True, at=7019) == []
    assert panel.tick(9000) == []
    panel.edge("armed", False, at=10_000)
    [disarm] = panel.edge("armed", True, at=10_020)  # the timer runs before the edge
    assert disarm.kind is Kind.DISARM and _at([disarm]) == [10_020]


def test_partitions_arm_independently() -> None:
    panel = Panel()
    [arm2] = panel.arm("armed-2")
    assert arm2.partition == 2
    assert panel.state.armed.get(1) is not True
    assert panel.script([("hall", True)]) == []  # partition 1 still disarmed
    [alarm] = panel.script([("shop", True)])
    assert alarm.kind is Kind.ALARM
    assert alarm.partition == 2
    assert alarm.armed is True


def test_arming_and_a_trip_due_at_the_same_instant_arm_first() -> None:
    panel = Panel()
    panel.edge("hall", True, at=0)
    panel.edge("armed", True, at=0)
    arm, alarm = panel.tick(20)
    assert (arm.kind, alarm.kind, alarm.armed) == (Kind.ARM, Kind.ALARM, True)


# --- intrusion ------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["hall", "door"])
def test_intrusion_zone_is_silent_when_disarmed(zone: str) -> None:
    panel = Panel()
    assert panel.script([(zone, True), (zone, False), (zone, True), (zone, False)]) == []
    panel.disarm()
    assert panel.script([(zone, True), (zone, False)]) == []


@pytest.mark.parametrize(
    ("zone", "alarm", "restore"),
    [("hall", ("1130", "BA"), ("3130", "BR")), ("door", ("1134", "BA"), ("3134", "BR"))],
)
def test_intrusion_zone_alarms_when_armed(
    zone: str, alarm: tuple[str, str], restore: tuple[str, str]
) -> None:
    panel = Panel()
    panel.arm()
    [raised] = panel.script([(zone, True)])
    assert raised.kind is Kind.ALARM
    assert (raised.codes.cid, raised.codes.sia) == alarm
    assert raised.armed is True
    [restored] = panel.script([(zone, False)])
    assert restored.kind is Kind.RESTORE
    assert (restored.codes.cid, restored.codes.sia) == restore


def test_intrusion_zone_does_not_alarm_before_the_armed_state_is_known() -> None:
    panel = Panel()
    assert panel.script([("hall", True), ("hall", False)]) == []


def test_disarmed_after_arming_is_silent_again() -> None:
    panel = Panel()
    panel.arm()
    panel.disarm()
    assert panel.script([("hall", True), ("hall", False)]) == []


def test_restore_follows_alarm_even_after_disarm() -> None:
    panel = Panel()
    panel.arm()
    [alarm] = panel.script([("hall", True)])
    panel.disarm()
    [restore] = panel.script([("hall", False)])
    assert (alarm.kind, restore.kind) == (Kind.ALARM, Kind.RESTORE)
    assert restore.armed is False
    assert restore.zone == alarm.zone


def test_zone_active_while_arming_does_not_alarm_nor_restore() -> None:
    # Alarms are trips: a zone already active when the site arms raised nothing,
    # so its return to normal must not send an orphan restore.
    panel = Panel()
    assert panel.script([("hall", True)]) == []
    panel.arm()
    assert panel.script([("hall", False)]) == []
    [alarm] = panel.script([("hall", True)])
    assert alarm.kind is Kind.ALARM


def test_arming_before_the_glitch_filter_ends_makes_the_trip_count() -> None:
    panel = Panel()
    panel.edge("hall", True, at=0)
    panel.edge("armed", True, at=1)  # armed at 21, the hall trips at 20: not yet armed
    assert _kinds(panel.settle()) == [Kind.ARM]
    panel = Panel()
    panel.edge("armed", True, at=0)
    panel.edge("hall", True, at=1)  # armed at 20, the hall trips at 21: armed
    assert _kinds(panel.settle()) == [Kind.ARM, Kind.ALARM]


# --- 24-hour zones --------------------------------------------------------------

TWENTY_FOUR_HOUR_CASES = [
    ("fire", Kind.ALARM, ("1110", "FA"), Kind.RESTORE, ("3110", "FR")),
    ("panic", Kind.ALARM, ("1120", "PA"), Kind.RESTORE, ("3120", "PR")),
    ("holdup", Kind.ALARM, ("1122", "HA"), Kind.RESTORE, ("3122", "HR")),
    ("flood", Kind.ALARM, ("1150", "UA"), Kind.RESTORE, ("3150", "UR")),
    ("pir-tamper", Kind.TAMPER, ("1144", "TA"), Kind.TAMPER_RESTORE, ("3144", "TR")),
    ("panel-tamper", Kind.TAMPER, ("1137", "TA"), Kind.TAMPER_RESTORE, ("3137", "TR")),
    ("lid", Kind.TAMPER, ("1145", "ES"), Kind.TAMPER_RESTORE, ("3145", "EJ")),
    ("mains", Kind.TROUBLE, ("1301", "AT"), Kind.TROUBLE_RESTORE, ("3301", "AR")),
    ("battery", Kind.TROUBLE, ("1302", "YT"), Kind.TROUBLE_RESTORE, ("3302", "YR")),
]


@pytest.mark.parametrize(
    ("zone", "kind", "codes", "restore_kind", "restore_codes"),
    TWENTY_FOUR_HOUR_CASES,
    ids=[c[0] for c in TWENTY_FOUR_HOUR_CASES],
)
@pytest.mark.parametrize("arming", ["unknown", "disarmed", "armed"])
def test_twenty_four_hour_zone_reports_in_any_armed_state(
    zone: str,
    kind: Kind,
    codes: tuple[str, str],
    restore_kind: Kind,
    restore_codes: tuple[str, str],
    arming: str,
) -> None:
    panel = Panel()
    if arming == "disarmed":
        panel.arm()
        panel.disarm()
    elif arming == "armed":
        panel.arm()
    expected_armed = {"unknown": None, "disarmed": False, "armed": True}[arming]
    events = panel.script([(zone, True), (zone, False)])
    assert _summary(events) == [(kind, *codes), (restore_kind, *restore_codes)]
    assert all(e.armed is expected_armed for e in events)


@pytest.mark.parametrize("zone", [c[0] for c in TWENTY_FOUR_HOUR_CASES])
def test_each_alarm_has_exactly_one_restore(zone: str) -> None:
    panel = Panel()
    script = [(zone, True)] * 3 + [(zone, False)] * 3 + [(zone, True), (zone, False)]
    events = panel.script(script)
    assert len(events) == 4
    starts, ends = events[0::2], events[1::2]
    assert all(e.codes.cid_qualifier == 1 for e in starts)
    assert all(e.codes.cid_qualifier == 3 for e in ends)


def test_repeated_active_edges_give_one_alarm() -> None:
    panel = Panel()
    panel.arm()
    events = panel.script([("hall", True)] * 5)
    assert _kinds(events) == [Kind.ALARM]
    assert panel.state.zone("hall").reported is True
    events = panel.script([("hall", False)] * 5)
    assert _kinds(events) == [Kind.RESTORE]
    assert panel.state.zone("hall").reported is False


def test_inactive_without_alarm_sends_no_restore() -> None:
    panel = Panel()
    assert panel.script([("fire", False), ("fire", False)]) == []


def test_zones_are_independent() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)
    panel.edge("panic", True, at=5)
    panel.edge("fire", False, at=100)
    panel.edge("panic", False, at=200)
    panel.settle()
    events = panel.log
    assert [(e.zone.id if e.zone else None, e.kind) for e in events] == [
        ("fire", Kind.ALARM),
        ("panic", Kind.ALARM),
        ("fire", Kind.RESTORE),
        ("panic", Kind.RESTORE),
    ]
    assert _at(events) == [20, 25, 10_020, 10_025]  # restores when each hold ends


# --- alarm_when_disarmed override -----------------------------------------------


def test_intrusion_zone_with_override_alarms_when_disarmed() -> None:
    panel = Panel()
    events = panel.script([("vault", True), ("vault", False)])
    assert _summary(events) == [(Kind.ALARM, "1130", "BA"), (Kind.RESTORE, "3130", "BR")]
    panel.arm()
    events = panel.script([("vault", True), ("vault", False)])
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE]


def test_fire_zone_with_override_alarms_only_when_armed() -> None:
    panel = Panel()
    assert panel.script([("smoke-lab", True), ("smoke-lab", False)]) == []
    panel.arm()
    events = panel.script([("smoke-lab", True), ("smoke-lab", False)])
    assert _summary(events) == [(Kind.ALARM, "1110", "FA"), (Kind.RESTORE, "3110", "FR")]


# --- glitch filter ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("glitch_ms", "on_ms", "alarms"),
    [
        (20, 19, 0),
        (20, 19.999, 0),
        (20, 20, 1),
        (20, 21, 1),
        (1, 0.999, 0),
        (1, 1, 1),
        (1000, 999, 0),
        (1000, 1000, 1),
        (0, 0.001, 1),
    ],
)
def test_activation_shorter_than_glitch_ms_is_ignored(
    glitch_ms: int, on_ms: float, alarms: int
) -> None:
    zones = {"z": _zone("z", ZoneType.FIRE, 1, glitch_ms=glitch_ms)}
    panel = Panel(zones)
    panel.edge("z", True, at=0)
    panel.edge("z", False, at=on_ms)
    panel.tick(60_000)
    events = panel.log
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE][: 2 * alarms]
    if alarms:
        assert _at(events)[0] == glitch_ms  # at the trip, never later


def test_alarm_is_due_exactly_glitch_ms_after_the_activation() -> None:
    panel = Panel()
    panel.edge("fire", True, at=1000)
    assert panel.deadline() == 1020
    assert panel.tick(1019) == []
    assert panel.tick(1019.999) == []
    [alarm] = panel.tick(1020)
    assert alarm.kind is Kind.ALARM
    assert alarm.occurred_at_ms == T0 + 1020
    assert panel.deadline() is None  # active and reported: nothing to wait for


def test_a_late_tick_stamps_the_alarm_with_its_due_time() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)
    [alarm] = panel.tick(750)  # the loop was busy
    assert _at([alarm]) == [20]


def test_the_next_input_runs_a_due_timer_before_itself() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)
    [alarm] = panel.edge("panic", True, at=300)  # no tick came: the panic edge fires it
    assert alarm.zone is not None and alarm.zone.id == "fire"
    assert _at([alarm]) == [20]


def test_every_activation_restarts_the_filter() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)
    panel.edge("fire", False, at=10)
    panel.edge("fire", True, at=15)
    assert panel.tick(34) == []
    [alarm] = panel.tick(35)
    assert _at([alarm]) == [35]


def test_without_a_filter_the_alarm_is_the_edge_itself() -> None:
    panel = Panel()
    [alarm] = panel.edge("raw", True, at=7)
    [restore] = panel.edge("raw", False, at=8)
    assert _at([alarm, restore]) == [7, 8]


def test_chatter_shorter_than_the_filter_raises_nothing() -> None:
    panel = Panel()
    for i in range(20_000):  # 10 s at 1 kHz: 0.5 ms on, 0.5 ms off
        assert panel.edge("fire", i % 2 == 0, at=i * 0.5) == []
    assert panel.tick(60_000) == []
    assert panel.state.zone("fire").changes == 20_000
    assert len(panel.state.zones) == 1


# --- restore ----------------------------------------------------------------------


def test_restore_comes_exactly_restore_ms_after_the_deactivation() -> None:
    panel = Panel()
    panel.edge("quick", True, at=0)  # fire zone without hold
    panel.edge("quick", False, at=500)
    assert panel.deadline() == 1500
    assert panel.tick(1499) == []
    [restore] = panel.tick(1500)
    assert (restore.kind, _at([restore])) == (Kind.RESTORE, [1500])


def test_activation_exactly_at_restore_ms_comes_after_the_restore() -> None:
    panel = Panel()
    panel.edge("quick", True, at=0)
    panel.edge("quick", False, at=500)
    [restore] = panel.edge("quick", True, at=1500)  # quiet for exactly restore_ms
    assert restore.kind is Kind.RESTORE
    [alarm] = panel.tick(1520)  # a new alarm: no hold
    assert alarm.kind is Kind.ALARM


def test_any_activation_restarts_the_quiet_time_even_a_glitch() -> None:
    panel = Panel()
    panel.edge("quick", True, at=0)
    panel.edge("quick", False, at=500)
    panel.edge("quick", True, at=1499)  # 1 ms before the restore, 5 ms: a glitch
    panel.edge("quick", False, at=1504)
    assert panel.tick(2503) == []
    [restore] = panel.tick(2504)
    assert _at([restore]) == [2504]
    assert _kinds(panel.tick(60_000)) == []


def test_restore_waits_for_the_hold_to_end() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)  # alarm at 20, held until 10,020
    panel.edge("fire", False, at=100)
    assert panel.deadline() == 10_020
    assert panel.tick(10_019) == []
    [restore] = panel.tick(10_020)
    assert _at([restore]) == [10_020]


def test_without_filter_restore_and_hold_the_restore_is_the_edge_itself() -> None:
    panel = Panel()
    assert _kinds(panel.edge("raw", True, at=0)) == [Kind.ALARM]
    assert _kinds(panel.edge("raw", False, at=0.5)) == [Kind.RESTORE]
    assert _kinds(panel.edge("raw", True, at=1)) == [Kind.ALARM]


# --- pulse trains and the hold window ---------------------------------------------


def _pulses(panel: Panel, zone: str, start: float, count: int, on: float, off: float) -> float:
    """``count`` pulses from ``start`` (events in ``panel.log``); returns the last end."""
    at = start
    for _ in range(count):
        panel.edge(zone, True, at=at)
        panel.edge(zone, False, at=at + on)
        at += on + off
    return at - off


def test_pulses_closer_than_restore_ms_are_one_alarm_for_any_length() -> None:
    panel = Panel()
    end = _pulses(panel, "pgm", 0, count=180, on=500, off=500)  # a siren for 3 minutes
    panel.settle()
    events = panel.log
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE]
    assert _at(events) == [20, end + 1000]  # restore_ms after the last pulse


def test_pulses_within_the_hold_window_are_one_alarm() -> None:
    panel = Panel()
    end = _pulses(panel, "pgm", 0, count=3, on=1000, off=3000)  # gaps longer than restore_ms
    assert end == 9000
    panel.settle()
    events = panel.log
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE]
    assert _at(events) == [20, 10_020]  # restore at the end of the hold


def test_a_long_pulse_train_alarms_at_most_once_per_hold_window() -> None:
    panel = Panel()
    _pulses(panel, "pgm", 0, count=15, on=1000, off=3000)  # 60 s, gaps > restore_ms
    panel.settle()
    events = panel.log
    alarms = [e for e in events if e.kind is Kind.ALARM]
    times = _at(alarms)
    assert times == [20, 12_020, 24_020, 36_020, 48_020]
    assert all(b - a >= 10_000 for a, b in itertools.pairwise(times))
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE] * 5


def test_an_input_stuck_active_for_hours_alarms_once() -> None:
    panel = Panel()
    panel.edge("fire", True, at=0)
    events = [e for minute in range(1, 5 * 60) for e in panel.tick(minute * 60_000)]
    assert _kinds(events) == [Kind.ALARM]
    assert panel.deadline() is None
    events = panel.edge("fire", False, at=5 * 3_600_000) + panel.settle()
    assert _kinds(events) == [Kind.RESTORE]


# --- swinger shutdown -------------------------------------------------------------


def _swinger(events: list[Event]) -> list[Event]:
    return [e for e in events if e.condition is Condition.SYSTEM_TROUBLE]


def test_swinger_shutdown_after_the_limit_until_the_next_disarm() -> None:
    panel = Panel()
    panel.arm()
    for _ in range(3):
        assert _kinds(panel.trip("hall")) == [Kind.ALARM, Kind.RESTORE]
    [trouble] = panel.trip("hall")  # the 4th trip: more than swinger_limit
    assert (trouble.kind, trouble.codes.cid, trouble.codes.sia) == (Kind.TROUBLE, "1300", "YX")
    assert trouble.zone == ZoneRef("hall", "Hall", ZoneType.INTRUSION, 2)
    assert trouble.armed is True and "swinger" in trouble.text
    assert panel.state.zone("hall").suppressed
    for _ in range(10):
        assert panel.trip("hall") == []  # silent: no alarm, no second trouble
    disarm, ended = panel.disarm()
    assert disarm.kind is Kind.DISARM
    assert (ended.kind, ended.codes.cid, ended.codes.sia) == (Kind.TROUBLE_RESTORE, "3300", "YZ")
    assert ended.zone == trouble.zone and ended.armed is False
    assert _at([ended]) == _at([disarm])
    assert _kinds(panel.arm()) == [Kind.ARM]  # the shutdown already ended
    assert _kinds(panel.trip("hall")) == [Kind.ALARM, Kind.RESTORE]


def test_swinger_shutdown_ends_at_the_next_arm_and_alarms_count_again() -> None:
    panel = Panel()
    for _ in range(3):
        panel.trip("flood")
    [trouble] = panel.trip("flood")
    assert trouble.kind is Kind.TROUBLE
    arm, ended = panel.arm()
    assert (arm.kind, ended.kind) == (Kind.ARM, Kind.TROUBLE_RESTORE)
    for _ in range(3):
        assert _kinds(panel.trip("flood")) == [Kind.ALARM, Kind.RESTORE]
    assert _kinds(panel.trip("flood")) == [Kind.TROUBLE]


def test_exactly_swinger_limit_alarms_is_no_shutdown() -> None:
    panel = Panel()
    for _ in range(3):
        panel.trip("flood")
    assert not panel.state.zone("flood").suppressed
    assert _swinger(panel.arm()) == []


def test_arm_and_disarm_reset_the_swinger_count() -> None:
    panel = Panel()
    for _ in range(3):
        panel.trip("flood")
    panel.arm()
    for _ in range(3):
        panel.trip("flood")
    panel.disarm()
    events = [e for _ in range(3) for e in panel.trip("flood")]
    assert _kinds(events) == [Kind.ALARM, Kind.RESTORE] * 3


def test_swinger_limit_of_one() -> None:
    zones = {
        "armed": _zone("armed", ZoneType.ARMED_STATE, 1),
        "z": _zone("z", ZoneType.TECHNICAL, 2, swinger_limit=1),
    }
    panel = Panel(zones)
    assert _kinds(panel.trip("z")) == [Kind.ALARM, Kind.RESTORE]
    assert _kinds(panel.trip("z")) == [Kind.TROUBLE]
    assert _kinds(panel.arm()) == [Kind.ARM, Kind.TROUBLE_RESTORE]


def test_only_the_zones_own_partition_ends_its_shutdown() -> None:
    panel = Panel()
    for _ in range(4):
        panel.trip("flood")
    assert panel.state.zone("flood").suppressed
    assert _kinds(panel.arm("armed-2")) == [Kind.ARM]
    assert panel.state.zone("flood").suppressed
    assert _kinds(panel.arm()) == [Kind.ARM, Kind.TROUBLE_RESTORE]


def test_the_armed_level_read_at_start_up_does_not_end_a_shutdown() -> None:
    panel = Panel()
    for _ in range(4):
        panel.trip("flood")
    assert panel.edge("armed", True, initial=True) == []
    assert panel.state.zone("flood").suppressed


def test_trouble_zones_have_no_swinger_shutdown() -> None:
    panel = Panel()
    events = [e for _ in range(10) for e in panel.trip("mains")]
    assert _kinds(events) == [Kind.TROUBLE, Kind.TROUBLE_RESTORE] * 10
    assert all(e.condition is Condition.AC_LOSS for e in events)


def test_a_zone_shut_down_by_swinger_does_not_alarm_while_active_at_arming() -> None:
    panel = Panel()
    for _ in range(4):
        panel.trip("flood")
    panel.edge("flood", True)
    panel.settle()
    assert _kinds(panel.arm()) == [Kind.ARM, Kind.TROUBLE_RESTORE]
    assert panel.settle() == []  # active before the arm: not a new trip
    assert _kinds(panel.trip("flood")) == []  # the release, then quiet
    assert _kinds(panel.trip("flood")) == [Kind.ALARM, Kind.RESTORE]


# --- what an event carries ------------------------------------------------------


def test_event_carries_zone_partition_time_and_injected_id() -> None:
    panel = Panel()
    panel.arm("armed-2")
    panel.edge("shop", True, at=1000)
    [alarm] = panel.settle()
    assert alarm.zone == ZoneRef("shop", "Shop", ZoneType.INTRUSION, 21)
    assert alarm.partition == 2
    assert alarm.armed is True
    assert alarm.occurred_at_ms == T0 + 1020
    assert alarm.id == "id-2"
    assert panel.ids.seen_ms[-1] == T0 + 1020
    assert alarm.condition is Condition.BURGLARY
    assert "Shop" in alarm.text


def test_ids_and_times_follow_the_timers() -> None:
    panel = Panel()
    panel.arm()  # at 21
    panel.edge("hall", True, at=100)
    panel.edge("fire", True, at=101)
    panel.edge("hall", False, at=200)
    panel.edge("fire", False, at=201)
    panel.settle()
    events = panel.log[1:]
    assert [e.id for e in events] == ["id-2", "id-3", "id-4", "id-5"]
    assert _at(events) == [120, 121, 10_120, 10_121]
    assert panel.ids.seen_ms == [T0 + 21, *(e.occurred_at_ms for e in events)]


def test_no_id_is_made_when_nothing_is_reported() -> None:
    panel = Panel()
    panel.script([("hall", True), ("hall", False)])
    assert panel.ids.seen_ms == []


def test_zone_state_counts_changes() -> None:
    panel = Panel()
    panel.edge("hall", True, at=1)
    panel.edge("hall", True, at=2)
    panel.edge("hall", False, at=3)
    state = panel.state.zone("hall")
    assert state.active is False
    assert state.changes == 2
    assert state.last_change_ms == T0 + 3


def test_step_does_not_mutate_its_input_state() -> None:
    panel = Panel()
    panel.arm()
    before = panel.state
    snapshot = (dict(before.zones), dict(before.armed))
    change = ZoneChanged("in-hall", "hall", True, at_s=MONO0_S + 1.0, wall_ms=T0 + 1000)
    middle, events = step(before, change, ZONES, Ids())
    assert events == []
    after, events = step(middle, Tick(MONO0_S + 1.02, T0 + 1020), ZONES, Ids())
    assert _kinds(events) == [Kind.ALARM]
    assert (dict(before.zones), dict(before.armed)) == snapshot
    assert before.zone("hall") == ZoneState()
    assert not middle.zone("hall").reported
    assert after.zone("hall").reported is True


def test_unknown_zone_is_an_error() -> None:
    change = ZoneChanged("in-x", "nowhere", True, at_s=0.0, wall_ms=T0)
    with pytest.raises(KeyError):
        step(PanelState(), change, ZONES, Ids())


def test_a_tick_with_nothing_pending_changes_nothing_but_the_time() -> None:
    state, events = step(PanelState(), Tick(MONO0_S, T0), ZONES, Ids())
    assert events == [] and state.zones == {} and next_deadline(state) is None


# --- time: late inputs and clock steps ----------------------------------------------


def test_an_input_older_than_the_last_one_is_taken_at_the_later_time() -> None:
    panel = Panel()
    panel.tick(100)
    panel.edge("fire", True, at=50)  # stamped before the tick, processed after it
    assert panel.deadline() == 120
    assert panel.tick(119) == []
    [alarm] = panel.tick(120)
    assert alarm.kind is Kind.ALARM


def test_an_older_tick_does_nothing() -> None:
    panel = Panel()
    panel.edge("fire", True, at=100)
    assert panel.tick(50) == []
    assert panel.deadline() == 120


@pytest.mark.parametrize("wall_step_ms", [-3_600_000, 86_400_000])
def test_a_wall_clock_step_changes_stamps_not_intervals(wall_step_ms: int) -> None:
    panel = Panel()
    panel.edge("quick", True, at=0)
    panel.wall_step_ms = wall_step_ms  # NTP stepped the wall clock
    assert panel.tick(19) == []
    [alarm] = panel.tick(20)
    assert alarm.occurred_at_ms == T0 + 20 + wall_step_ms
    panel.edge("quick", False, at=100)
    assert panel.tick(1099) == []
    [restore] = panel.tick(1100)
    assert restore.occurred_at_ms == T0 + 1100 + wall_step_ms


# --- the start-up snapshot ----------------------------------------------------


@pytest.mark.parametrize("armed", [True, False])
def test_armed_state_read_at_start_up_sends_no_arm_or_disarm(armed: bool) -> None:
    panel = Panel()
    assert panel.edge("armed", armed, initial=True) == []
    assert panel.state.armed == {1: armed}
    assert panel.settle() == []
    # a later real change is reported
    (event,) = panel.script([("armed", not armed)])
    assert event.kind is (Kind.DISARM if armed else Kind.ARM)


def test_zone_active_at_start_up_alarms_when_armed_at_start_up() -> None:
    panel = Panel()
    panel.edge("armed", True, initial=True)
    panel.edge("hall", True, initial=True)
    (alarm,) = panel.settle()
    assert (alarm.kind, alarm.codes.cid, alarm.armed) == (Kind.ALARM, "1130", True)


def test_24_hour_zone_active_at_start_up_alarms() -> None:
    panel = Panel()
    panel.edge("fire", True, initial=True)
    (alarm,) = panel.settle()
    assert alarm.kind is Kind.ALARM and alarm.armed is None
    (restore,) = panel.script([("fire", False)])
    assert restore.kind is Kind.RESTORE


# --- resuming after a restart ---------------------------------------------------


def test_resume_marks_zones_whose_last_event_awaits_a_restore() -> None:
    last = {"fire": Kind.ALARM, "hall": Kind.RESTORE, "pir-tamper": Kind.TAMPER, "gone": Kind.ALARM}
    state = resume(last, ZONES)
    assert state.zone("fire").reported and state.zone("pir-tamper").reported
    assert not state.zone("hall").reported
    assert "gone" not in state.zones  # a zone no longer configured is forgotten
    assert next_deadline(state) is None


def test_resumed_alarm_found_quiet_sends_its_restore_and_found_active_nothing() -> None:
    panel = Panel()
    panel.state = resume({"fire": Kind.ALARM, "panic": Kind.ALARM}, ZONES)
    assert panel.edge("fire", False, at=0, initial=True) == []
    assert panel.edge("panic", True, at=0, initial=True) == []  # still in alarm: not sent twice
    (restore,) = panel.settle()
    assert restore.kind is Kind.RESTORE and restore.codes.cid == "3110"
    assert _at([restore]) == [1000]  # quiet for restore_ms; no hold after a restart
    (restore,) = panel.script([("panic", False)])
    assert restore.codes.cid == "3120"


def test_resumed_swinger_shutdown_ends_at_the_next_arm() -> None:
    panel = Panel()
    panel.state = resume({"hall": Kind.TROUBLE, "mains": Kind.TROUBLE}, ZONES)
    assert panel.state.zone("hall").suppressed
    assert panel.state.zone("mains").reported  # a trouble zone's trouble is its own
    panel.edge("armed", False, initial=True)
    arm, ended = panel.arm()
    assert (arm.kind, ended.kind, ended.condition) == (
        Kind.ARM,
        Kind.TROUBLE_RESTORE,
        Condition.SYSTEM_TROUBLE,
    )
    assert _kinds(panel.trip("hall")) == [Kind.ALARM, Kind.RESTORE]
    (restore,) = panel.script([("mains", False)])
    assert restore.codes.cid == "3301"


# --- properties over random scripts -------------------------------------------------

PROPERTY_ZONES: dict[str, ZoneConfig] = {
    z.id: z
    for z in (
        _zone("arm", ZoneType.ARMED_STATE, 1, glitch_ms=20),
        _zone("hall", ZoneType.INTRUSION, 2, restore_ms=300, hold_s=2, swinger_limit=2),
        _zone("fire", ZoneType.FIRE, 3, glitch_ms=5, restore_ms=0, hold_s=0),
        _zone("pgm", ZoneType.PANIC, 4, glitch_ms=50, restore_ms=1000, hold_s=10),
        _zone("mains", ZoneType.AC_POWER, 5, restore_ms=500, hold_s=1),
    )
}
RESUMED = {"hall": Kind.ALARM, "pgm": Kind.TROUBLE}  # an alarm and a swinger shutdown

Op = tuple[int, str | None, bool]  # (ms since the previous op, zone or None for a tick, level)
ops_strategy = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 60), st.integers(0, 3000), st.integers(0, 15_000)),
        st.one_of(st.none(), st.sampled_from(sorted(PROPERTY_ZONES))),
        st.booleans(),
    ),
    max_size=80,
)


@dataclass
class Run:
    panel: Panel
    events: list[Event]
    edges: dict[str, list[tuple[int, bool]]]  # zone -> (ms, level), every edge fed
    resumed: bool


def _run(ops: list[Op], resumed: bool, ticks: str = "scripted") -> Run:
    """Feed ``ops``; ``ticks``: "scripted" (as drawn), "punctual" (at every deadline), "none"."""
    panel = Panel(PROPERTY_ZONES)
    if resumed:
        panel.state = resume(RESUMED, PROPERTY_ZONES)
    events: list[Event] = []
    edges: dict[str, list[tuple[int, bool]]] = {z: [] for z in PROPERTY_ZONES}
    at = 0
    for dt, zone, level in ops:
        at += dt
        if ticks == "punctual":
            while (deadline := panel.deadline()) is not None and deadline <= at:
                events += panel.tick(deadline)
        if zone is None:
            if ticks == "scripted":
                events += panel.tick(at)
        else:
            events += panel.edge(zone, level, at=at)
            edges[zone].append((at, level))
        _assert_bounded(panel.state)
    return Run(panel, events, edges, resumed)


def _assert_bounded(state: PanelState) -> None:
    assert set(state.zones) <= set(PROPERTY_ZONES)
    assert set(state.armed) <= {1}
    for zone_id, zone in state.zones.items():
        assert zone.alarms <= PROPERTY_ZONES[zone_id].swinger_limit
        assert zone.due_us is None or state.now_us is None or zone.due_us >= state.now_us


def _level_before(run: Run, zone: str, t: int) -> tuple[bool, int | None]:
    """The input's level just before ``t`` ms, and when it last changed (None: never)."""
    level, since = run.resumed and RESUMED.get(zone) is Kind.ALARM, None
    for at, active in run.edges[zone]:
        if at >= t:
            break
        if active != level:
            level, since = active, at
    return level, since


def _zone_of(event: Event) -> ZoneConfig:
    assert event.zone is not None
    return PROPERTY_ZONES[event.zone.id]


def _start(event: Event) -> bool:
    return event.codes.cid_qualifier == 1


@settings(max_examples=150, deadline=None)
@given(ops=ops_strategy, resumed=st.booleans())
def test_starts_and_restores_alternate_per_zone_and_condition(ops: list[Op], resumed: bool) -> None:
    run = _run(ops, resumed)
    by_key: dict[tuple[str, Condition], list[bool]] = {}
    for event in run.events:
        by_key.setdefault((_zone_of(event).id, event.condition), []).append(_start(event))
    for (zone, condition), starts in by_key.items():
        assert all(a != b for a, b in itertools.pairwise(starts)), (zone, starts)
        if condition is Condition.OPEN_CLOSE:
            continue  # arm and disarm alternate, starting with either
        awaited = resumed and (zone, condition) in {
            ("hall", Condition.BURGLARY),
            ("pgm", Condition.SYSTEM_TROUBLE),
        }
        assert starts[0] is not awaited, (zone, condition, starts)


@settings(max_examples=150, deadline=None)
@given(ops=ops_strategy, resumed=st.booleans())
def test_every_event_follows_a_real_activation_of_at_least_glitch_ms(
    ops: list[Op], resumed: bool
) -> None:
    run = _run(ops, resumed)
    alarm_at: dict[str, int] = {}
    arming_at: set[int] = set()
    for event in run.events:
        cfg, t = _zone_of(event), event.occurred_at_ms - T0
        level, since = _level_before(run, cfg.id, t)
        if cfg.type is ZoneType.ARMED_STATE:
            assert level is (event.kind is Kind.ARM) and since == t - cfg.glitch_ms
            arming_at.add(t)
        elif event.condition is Condition.SYSTEM_TROUBLE and not _start(event):
            assert t in arming_at  # a swinger shutdown ends at an arm or disarm
        elif _start(event):
            assert level and since == t - cfg.glitch_ms, (event.kind, t, since)
            if event.condition is ZONE_CONDITION[cfg.type]:
                alarm_at[cfg.id] = t
        else:
            if level and (t, False) in run.edges[cfg.id]:
                level, since = False, t  # restore_ms = 0: the restore follows its edge at once
            assert not level and since is not None
            held = alarm_at[cfg.id] + cfg.hold_s * 1000 if cfg.id in alarm_at else 0
            assert t == max(since + cfg.restore_ms, held)


@settings(max_examples=150, deadline=None)
@given(ops=ops_strategy, resumed=st.booleans())
def test_a_zone_alarms_at_most_once_per_hold_window(ops: list[Op], resumed: bool) -> None:
    run = _run(ops, resumed)
    for zone_id, cfg in PROPERTY_ZONES.items():
        if cfg.type is ZoneType.ARMED_STATE:
            continue  # arm and disarm: no hold
        own = ZONE_CONDITION[cfg.type]
        times = [
            e.occurred_at_ms
            for e in run.events
            if e.zone and e.zone.id == zone_id and e.condition is own and _start(e)
        ]
        assert all(b - a >= cfg.hold_s * 1000 for a, b in itertools.pairwise(times))


@settings(max_examples=100, deadline=None)
@given(
    pulses=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 400)), max_size=200),
    start=st.integers(0, 1000),
)
def test_chatter_within_the_hold_window_is_at_most_one_alarm(
    pulses: list[tuple[int, int]], start: int
) -> None:
    panel = Panel(PROPERTY_ZONES)
    at, events = start, []
    for on, off in pulses:
        if at + on >= 10_000:  # the pgm zone holds for 10 s
            break
        events += panel.edge("pgm", True, at=at) + panel.edge("pgm", False, at=at + on)
        at += on + off
    events += panel.settle()
    assert _kinds(events) in ([], [Kind.ALARM, Kind.RESTORE])


@settings(max_examples=100, deadline=None)
@given(ops=ops_strategy, resumed=st.booleans())
def test_events_do_not_depend_on_when_the_ticks_come(ops: list[Op], resumed: bool) -> None:
    def seen(ticks: str) -> list[tuple[Kind, str | None, int, bool | None]]:
        run = _run(ops, resumed, ticks)
        events = run.events + run.panel.settle()
        return [(e.kind, e.zone.id if e.zone else None, e.occurred_at_ms, e.armed) for e in events]

    assert seen("scripted") == seen("punctual") == seen("none")


@settings(max_examples=100, deadline=None)
@given(ops=ops_strategy, resumed=st.booleans())
def test_every_start_gets_exactly_one_restore_once_quiet_and_rearmed(
    ops: list[Op], resumed: bool
) -> None:
    run = _run(ops, resumed)
    panel = run.panel
    events = run.events
    for zone in ("hall", "fire", "pgm", "mains"):
        events += panel.edge(zone, False, at=panel.now_ms + 1)
    events += panel.settle()
    armed = panel.state.armed.get(1)
    events += panel.edge("arm", not armed, at=panel.now_ms + 1) + panel.settle()
    assert all(not z.reported and not z.suppressed for z in panel.state.zones.values())
    opened: dict[tuple[str, Condition], int] = {}
    for event in events:
        if event.condition is Condition.OPEN_CLOSE:
            continue
        key = (_zone_of(event).id, event.condition)
        opened[key] = opened.get(key, 0) + (1 if _start(event) else -1)
    awaited = RESUMED if resumed else {}
    for (zone, condition), balance in opened.items():
        resumed_here = zone in awaited and (
            condition is Condition.SYSTEM_TROUBLE
            if awaited[zone] is Kind.TROUBLE
            else condition is ZONE_CONDITION[PROPERTY_ZONES[zone].type]
        )
        assert balance == (-1 if resumed_here else 0), (zone, condition)


@pytest.mark.parametrize("zone", ["fire", "panic", "holdup"])
def test_life_safety_zones_are_never_shut_down_as_swingers(zone: str) -> None:
    panel = Panel()
    for _ in range(20):
        assert _kinds(panel.trip(zone)) == [Kind.ALARM, Kind.RESTORE]


# --- a zone wired to several inputs -------------------------------------------------------


def _edge(inp: str, active: bool, initial: bool = False) -> ZoneChanged:
    return ZoneChanged(inp, "hall", active, 1.0, T0, initial=initial)


def test_zone_with_two_inputs_is_active_while_either_is() -> None:
    inputs = ["a", "b"]
    levels: dict[str, bool] = {}
    levels, out = zone_level(levels, _edge("a", True), inputs)
    assert out is not None and out.active
    levels, out = zone_level(levels, _edge("b", True), inputs)
    assert out is None  # the zone was active already
    levels, out = zone_level(levels, _edge("a", False), inputs)
    assert out is None  # b still holds it active
    levels, out = zone_level(levels, _edge("b", False), inputs)
    assert out is not None and not out.active and out.input == "b"


def test_single_input_zone_passes_every_change_through() -> None:
    levels, out = zone_level({}, _edge("a", False), ["a"])
    assert out == _edge("a", False)
    _, out = zone_level(levels, _edge("a", False), ["a"])
    assert out == _edge("a", False)  # the reducer decides what a repeat means


def test_initial_readings_always_go_through() -> None:
    levels, _ = zone_level({}, _edge("a", True), ["a", "b"])
    _, out = zone_level(levels, _edge("b", True, initial=True), ["a", "b"])
    assert out is not None and out.active and out.initial
