"""Events as boxes send them, for the workstation's tests and benchmark: alarms of each
kind with their zones, their restores, arming and tests, filed through the real store."""

from __future__ import annotations

from edge import codes
from edge.codes import Condition, ZoneType
from edge.model import Event, ZoneRef
from edge.protocol import EventMessage
from edge.station import oplog
from edge.station.inbound import EventReceived
from edge.station.store import Receipt, StationStore

T0 = 1_795_875_790_000
ZONES: dict[Condition, ZoneRef | None] = {
    Condition.FIRE: ZoneRef("kitchen", "Kitchen smoke", ZoneType.FIRE, 4),
    Condition.PANIC: ZoneRef("panic", "Panic button", ZoneType.PANIC, 11),
    Condition.HOLDUP: ZoneRef("till", "Till hold-up", ZoneType.HOLDUP, 12),
    Condition.BURGLARY: ZoneRef("hall", "Hall PIR", ZoneType.INTRUSION, 3),
    Condition.SENSOR_TAMPER: ZoneRef("hall-tamper", "Hall PIR tamper", ZoneType.TAMPER, 5),
    Condition.AC_LOSS: ZoneRef("mains", "Panel AC power", ZoneType.AC_POWER, 91),
    Condition.OPEN_CLOSE: ZoneRef("armed", "Panel armed output", ZoneType.ARMED_STATE, 90),
    Condition.MANUAL_TEST: None,
    Condition.VIDEO_MOTION: None,
}
OPERATORS = {"alice": "operator", "bob": "operator", "sam": "supervisor"}
PASSWORD = "correct horse battery"


def event(
    event_id: str,
    seq: int,
    condition: Condition = Condition.BURGLARY,
    *,
    restore: bool = False,
    device: str = "gw-1",
    zone: ZoneRef | bool | None = True,
    extra: dict[str, str] | None = None,
    occurred_ms: int = T0,
    historical: bool = False,
) -> EventMessage:
    """One event of ``condition`` (its start, or its end with ``restore``)."""
    where = ZONES.get(condition) if zone is True else zone or None
    done = Event(
        id=event_id,
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=occurred_ms,
        partition=1,
        armed=True,
        zone=where,
        text=f"{where.name if where else condition.value}: {'restore' if restore else 'alarm'}",
        extra=extra or {},
    )
    return EventMessage(done, seq, device, "1234", occurred_ms + 50, historical)


def file(store: StationStore, *messages: EventMessage, at_ms: int = T0) -> Receipt:
    """Store the events as the receiver would (one transaction)."""
    return store.commit([EventReceived(m.device, m) for m in messages], at_ms)


def operators(store: StationStore) -> None:
    with store.transaction() as db:
        for name, role in OPERATORS.items():
            oplog.set_operator(db, name, PASSWORD, role)


def video_extra(event_id: str, camera: str = "entrance", pre_s: float = 5.0) -> dict[str, str]:
    """What a box with one camera puts in an alarm's ``extra`` (edge/video/clips.py)."""
    return {
        "camera": camera,
        "clip_id": f"{event_id}-clip",
        "clip_event": event_id,
        "clip_pre_s": f"{pre_s:.2f}",
        "clip_post_s": "5.00",
        "clip_start_ms": str(T0 - round(pre_s * 1000)),
        "still_ids": " ".join(f"{event_id}-s{i}" for i in range(5)),
        "still_offsets_s": "-1 -0.5 0 0.5 1",
        "motion_camera": camera,
        "motion_seen": "true",
        "motion_frames": "7",
        "motion_areas": "door",
        "motion_boxes": "10,20,30,40",
        "motion_last_at": "2026-11-28T14:23:10.123Z",
        "motion_person": "yes",  # a box with the person check on
        "motion_person_confidence": "0.83",
        "motion_person_box": "12,22,20,36",
    }
