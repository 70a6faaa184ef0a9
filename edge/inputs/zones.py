"""The zone state machine: input changes in, events out. Pure.

``step(state, change, zones) -> (state, events)``. No clock, no I/O: the time
of an event is the time of the edge that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from edge import codes
from edge.codes import TWENTY_FOUR_HOUR, ZONE_CONDITION, Kind, ZoneType
from edge.config import ZoneConfig
from edge.model import Event, ZoneChanged, ZoneRef, new_event_id

IdFactory = Callable[[int], str]
_REPORTED = frozenset({Kind.ALARM, Kind.TAMPER, Kind.TROUBLE})  # kinds that await a restore


@dataclass(frozen=True)
class ZoneState:
    active: bool = False
    reported: bool = False  # an alarm/tamper/trouble was sent and awaits its restore
    changes: int = 0
    last_change_ms: int | None = None


@dataclass(frozen=True)
class PanelState:
    zones: Mapping[str, ZoneState] = field(default_factory=dict)
    armed: Mapping[int, bool] = field(default_factory=dict)  # partition -> armed

    def zone(self, zone_id: str) -> ZoneState:
        return self.zones.get(zone_id, ZoneState())


def step(
    state: PanelState,
    change: ZoneChanged,
    zones: Mapping[str, ZoneConfig],
    new_id: IdFactory = new_event_id,
) -> tuple[PanelState, list[Event]]:
    """Apply one input change; return the new state and the events it causes."""
    zone = zones[change.zone]
    before = state.zone(zone.id)
    now = replace(before, active=change.active)
    if change.active != before.active:
        now = replace(now, changes=before.changes + 1, last_change_ms=change.wall_ms)
    events: list[Event] = []
    armed = dict(state.armed)
    if zone.type is ZoneType.ARMED_STATE:
        if change.initial:
            # The level found at start-up: nobody armed or disarmed just now.
            armed[zone.partition] = change.active
        elif armed.get(zone.partition) is not change.active:
            armed[zone.partition] = change.active
            events.append(
                _event(zone, change, restore=change.active, armed=change.active, new_id=new_id)
            )
    elif change.active and not before.reported:
        if _reports_now(zone, armed.get(zone.partition)):
            events.append(_event(zone, change, False, armed.get(zone.partition), new_id))
            now = replace(now, reported=True)
    elif not change.active and before.reported:
        events.append(_event(zone, change, True, armed.get(zone.partition), new_id))
        now = replace(now, reported=False)
    return PanelState({**state.zones, zone.id: now}, armed), events


def resume(last: Mapping[str, Kind], zones: Mapping[str, ZoneConfig]) -> PanelState:
    """The state to start from, given the last event committed for each zone.

    A zone whose last event was an alarm, tamper or trouble is still reported:
    found quiet at start-up it sends its restore (it ended while the box was
    down), found active it sends nothing new. Without this a restart between an
    alarm and its restore would leave the zone in alarm at the station for good.
    """
    reported = {
        z: ZoneState(active=True, reported=True)
        for z, k in last.items()
        if z in zones and k in _REPORTED
    }
    return PanelState(reported)


def _reports_now(zone: ZoneConfig, armed: bool | None) -> bool:
    if zone.alarm_when_disarmed is not None:
        return zone.alarm_when_disarmed or bool(armed)
    return zone.type in TWENTY_FOUR_HOUR or bool(armed)


def _event(
    zone: ZoneConfig, change: ZoneChanged, restore: bool, armed: bool | None, new_id: IdFactory
) -> Event:
    condition = ZONE_CONDITION[zone.type]
    return Event(
        id=new_id(change.wall_ms),
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=change.wall_ms,
        partition=zone.partition,
        armed=armed,
        zone=ZoneRef(zone.id, zone.name, zone.type, zone.number),
        text=f"{zone.name}: {codes.kind(condition, restore).value}",
    )
