"""The zone state machine: scripted input edges in, events out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from edge.codes import Condition, Kind, ZoneType
from edge.config.schema import ZoneConfig
from edge.inputs.zones import PanelState, ZoneState, resume, step
from edge.model import Event, ZoneChanged, ZoneRef

T0 = 1_795_875_790_000


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
    )
}


class Panel:
    """Feeds scripted edges through ``step`` one millisecond apart."""

    def __init__(self, zones: Mapping[str, ZoneConfig] = ZONES) -> None:
        self.zones = zones
        self.state = PanelState()
        self.ids = Ids()
        self.now_ms = T0

    def edge(self, zone: str, active: bool, initial: bool = False) -> list[Event]:
        self.now_ms += 1
        change = ZoneChanged(
            input=f"in-{zone}",
            zone=zone,
            active=active,
            at_s=self.now_ms / 1000,
            wall_ms=self.now_ms,
            initial=initial,
        )
        self.state, events = step(self.state, change, self.zones, self.ids)
        return events

    def edges(self, script: Iterable[tuple[str, bool]]) -> list[Event]:
        return [e for zone, active in script for e in self.edge(zone, active)]

    def arm(self, zone: str = "armed") -> list[Event]:
        return self.edge(zone, True)

    def disarm(self, zone: str = "armed") -> list[Event]:
        return self.edge(zone, False)


def _summary(events: list[Event]) -> list[tuple[Kind, str, str]]:
    return [(e.kind, e.codes.cid, e.codes.sia) for e in events]


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
    events = panel.edges([("armed", True), ("armed", True), ("armed", True)])
    assert [e.kind for e in events] == [Kind.ARM]
    events = panel.edges([("armed", False), ("armed", False)])
    assert [e.kind for e in events] == [Kind.DISARM]


def test_partitions_arm_independently() -> None:
    panel = Panel()
    [arm2] = panel.arm("armed-2")
    assert arm2.partition == 2
    assert panel.state.armed.get(1) is not True
    assert panel.edge("hall", True) == []  # partition 1 still disarmed
    [alarm] = panel.edge("shop", True)
    assert alarm.kind is Kind.ALARM
    assert alarm.partition == 2
    assert alarm.armed is True


# --- intrusion ------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["hall", "door"])
def test_intrusion_zone_is_silent_when_disarmed(zone: str) -> None:
    panel = Panel()
    assert panel.edges([(zone, True), (zone, False), (zone, True), (zone, False)]) == []
    panel.disarm()
    assert panel.edges([(zone, True), (zone, False)]) == []


@pytest.mark.parametrize(
    ("zone", "alarm", "restore"),
    [("hall", ("1130", "BA"), ("3130", "BR")), ("door", ("1134", "BA"), ("3134", "BR"))],
)
def test_intrusion_zone_alarms_when_armed(
    zone: str, alarm: tuple[str, str], restore: tuple[str, str]
) -> None:
    panel = Panel()
    panel.arm()
    [raised] = panel.edge(zone, True)
    assert raised.kind is Kind.ALARM
    assert (raised.codes.cid, raised.codes.sia) == alarm
    assert raised.armed is True
    [restored] = panel.edge(zone, False)
    assert restored.kind is Kind.RESTORE
    assert (restored.codes.cid, restored.codes.sia) == restore


def test_intrusion_zone_does_not_alarm_before_the_armed_state_is_known() -> None:
    panel = Panel()
    assert panel.edges([("hall", True), ("hall", False)]) == []


def test_disarmed_after_arming_is_silent_again() -> None:
    panel = Panel()
    panel.arm()
    panel.disarm()
    assert panel.edges([("hall", True), ("hall", False)]) == []


def test_restore_follows_alarm_even_after_disarm() -> None:
    panel = Panel()
    panel.arm()
    [alarm] = panel.edge("hall", True)
    panel.disarm()
    [restore] = panel.edge("hall", False)
    assert (alarm.kind, restore.kind) == (Kind.ALARM, Kind.RESTORE)
    assert restore.armed is False
    assert restore.zone == alarm.zone


def test_zone_active_while_arming_does_not_alarm_nor_restore() -> None:
    # Alarms are edges: a zone already active when the site arms raised nothing,
    # so its return to normal must not send an orphan restore.
    panel = Panel()
    assert panel.edge("hall", True) == []
    panel.arm()
    assert panel.edge("hall", False) == []
    [alarm] = panel.edge("hall", True)
    assert alarm.kind is Kind.ALARM


# --- 24-hour zones --------------------------------------------------------------

TWENTY_FOUR_HOUR_CASES = [
    ("fire", Kind.ALARM, ("1110", "FA"), Kind.RESTORE, ("3110", "FR")),
    ("panic", Kind.ALARM, ("1120", "PA"), Kind.RESTORE, ("3120", "PR")),
    ("holdup", Kind.ALARM, ("1122", "HA"), Kind.RESTORE, ("3122", "HR")),
    ("flood", Kind.ALARM, ("1150", "UA"), Kind.RESTORE, ("3150", "UR")),
    ("pir-tamper", Kind.TAMPER, ("1144", "TA"), Kind.TAMPER_RESTORE, ("3144", "TR")),
    ("panel-tamper", Kind.TAMPER, ("1137", "TA"), Kind.TAMPER_RESTORE, ("3137", "TR")),
    ("lid", Kind.TAMPER, ("1145", "TA"), Kind.TAMPER_RESTORE, ("3145", "TR")),
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
    events = panel.edges([(zone, True), (zone, False)])
    assert _summary(events) == [(kind, *codes), (restore_kind, *restore_codes)]
    assert all(e.armed is expected_armed for e in events)


@pytest.mark.parametrize("zone", [c[0] for c in TWENTY_FOUR_HOUR_CASES])
def test_each_alarm_has_exactly_one_restore(zone: str) -> None:
    panel = Panel()
    script = [(zone, True)] * 3 + [(zone, False)] * 3 + [(zone, True), (zone, False)]
    events = panel.edges(script)
    assert len(events) == 4
    starts, ends = events[0::2], events[1::2]
    assert all(e.codes.cid_qualifier == 1 for e in starts)
    assert all(e.codes.cid_qualifier == 3 for e in ends)


def test_repeated_active_edges_give_one_alarm() -> None:
    panel = Panel()
    panel.arm()
    events = panel.edges([("hall", True)] * 5)
    assert [e.kind for e in events] == [Kind.ALARM]
    assert panel.state.zone("hall").reported is True
    events = panel.edges([("hall", False)] * 5)
    assert [e.kind for e in events] == [Kind.RESTORE]
    assert panel.state.zone("hall").reported is False


def test_inactive_without_alarm_sends_no_restore() -> None:
    panel = Panel()
    assert panel.edges([("fire", False), ("fire", False)]) == []


def test_zones_are_independent() -> None:
    panel = Panel()
    events = panel.edges([("fire", True), ("panic", True), ("fire", False), ("panic", False)])
    assert [(e.zone.id if e.zone else None, e.kind) for e in events] == [
        ("fire", Kind.ALARM),
        ("panic", Kind.ALARM),
        ("fire", Kind.RESTORE),
        ("panic", Kind.RESTORE),
    ]


# --- alarm_when_disarmed override -----------------------------------------------


def test_intrusion_zone_with_override_alarms_when_disarmed() -> None:
    panel = Panel()
    events = panel.edges([("vault", True), ("vault", False)])
    assert _summary(events) == [(Kind.ALARM, "1130", "BA"), (Kind.RESTORE, "3130", "BR")]
    panel.arm()
    events = panel.edges([("vault", True), ("vault", False)])
    assert [e.kind for e in events] == [Kind.ALARM, Kind.RESTORE]


def test_fire_zone_with_override_alarms_only_when_armed() -> None:
    panel = Panel()
    assert panel.edges([("smoke-lab", True), ("smoke-lab", False)]) == []
    panel.arm()
    events = panel.edges([("smoke-lab", True), ("smoke-lab", False)])
    assert _summary(events) == [(Kind.ALARM, "1110", "FA"), (Kind.RESTORE, "3110", "FR")]


# --- what an event carries ------------------------------------------------------


def test_event_carries_zone_partition_time_and_injected_id() -> None:
    panel = Panel()
    panel.arm("armed-2")
    [alarm] = panel.edge("shop", True)
    assert alarm.zone == ZoneRef("shop", "Shop", ZoneType.INTRUSION, 21)
    assert alarm.partition == 2
    assert alarm.armed is True
    assert alarm.occurred_at_ms == panel.now_ms
    assert alarm.id == "id-2"
    assert panel.ids.seen_ms[-1] == panel.now_ms
    assert alarm.condition is Condition.BURGLARY
    assert "Shop" in alarm.text


def test_ids_and_times_follow_the_edges() -> None:
    panel = Panel()
    panel.arm()
    events = panel.edges([("hall", True), ("fire", True), ("hall", False), ("fire", False)])
    assert [e.id for e in events] == ["id-2", "id-3", "id-4", "id-5"]
    assert [e.occurred_at_ms for e in events] == [T0 + 2, T0 + 3, T0 + 4, T0 + 5]
    assert panel.ids.seen_ms == [T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5]


def test_no_id_is_made_when_nothing_is_reported() -> None:
    panel = Panel()
    panel.edges([("hall", True), ("hall", False)])
    assert panel.ids.seen_ms == []


def test_zone_state_counts_changes() -> None:
    panel = Panel()
    panel.edges([("hall", True), ("hall", True), ("hall", False)])
    state = panel.state.zone("hall")
    assert state.active is False
    assert state.changes == 2
    assert state.last_change_ms == T0 + 3


def test_step_does_not_mutate_its_input_state() -> None:
    panel = Panel()
    panel.arm()
    before = panel.state
    snapshot = (dict(before.zones), dict(before.armed))
    change = ZoneChanged("in-hall", "hall", True, at_s=1.0, wall_ms=T0 + 100)
    after, events = step(before, change, ZONES, Ids())
    assert [e.kind for e in events] == [Kind.ALARM]
    assert (dict(before.zones), dict(before.armed)) == snapshot
    assert before.zone("hall") == ZoneState()
    assert after.zone("hall").reported is True


def test_unknown_zone_is_an_error() -> None:
    change = ZoneChanged("in-x", "nowhere", True, at_s=0.0, wall_ms=T0)
    with pytest.raises(KeyError):
        step(PanelState(), change, ZONES, Ids())


# --- the start-up snapshot ----------------------------------------------------


@pytest.mark.parametrize("armed", [True, False])
def test_armed_state_read_at_start_up_sends_no_arm_or_disarm(armed: bool) -> None:
    panel = Panel()
    assert panel.edge("armed", armed, initial=True) == []
    assert panel.state.armed == {1: armed}
    # a later real change is reported
    (event,) = panel.edge("armed", not armed)
    assert event.kind is (Kind.DISARM if armed else Kind.ARM)


def test_zone_active_at_start_up_alarms_when_armed_at_start_up() -> None:
    panel = Panel()
    panel.edge("armed", True, initial=True)
    (alarm,) = panel.edge("hall", True, initial=True)
    assert (alarm.kind, alarm.codes.cid, alarm.armed) == (Kind.ALARM, "1130", True)


def test_24_hour_zone_active_at_start_up_alarms() -> None:
    panel = Panel()
    (alarm,) = panel.edge("fire", True, initial=True)
    assert alarm.kind is Kind.ALARM and alarm.armed is None
    (restore,) = panel.edge("fire", False)
    assert restore.kind is Kind.RESTORE


# --- resuming after a restart ---------------------------------------------------


def test_resume_marks_zones_whose_last_event_awaits_a_restore() -> None:
    last = {"fire": Kind.ALARM, "hall": Kind.RESTORE, "pir-tamper": Kind.TAMPER, "gone": Kind.ALARM}
    state = resume(last, ZONES)
    assert state.zone("fire").reported and state.zone("pir-tamper").reported
    assert not state.zone("hall").reported
    assert "gone" not in state.zones  # a zone no longer configured is forgotten


def test_resumed_alarm_found_quiet_sends_its_restore_and_found_active_nothing() -> None:
    panel = Panel()
    panel.state = resume({"fire": Kind.ALARM, "panic": Kind.ALARM}, ZONES)
    (restore,) = panel.edge("fire", False, initial=True)
    assert restore.kind is Kind.RESTORE and restore.codes.cid == "3110"
    assert panel.edge("panic", True, initial=True) == []  # still in alarm: not sent twice
