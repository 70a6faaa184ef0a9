"""Filing at the workstation, in the receiver's transaction: a whole batch of new events at
once.

What each event does is pure (:func:`of_event`, :func:`of_station`; the rules are in
:mod:`edge.station.triage`). :func:`file` then applies a batch in the order the box sent
it, in memory, against what the store holds (the boxes' sites, their sites' open
incidents, the alarms still waiting for their restore: three reads), and writes the
result with one statement per table (``executemany``: pipelined on PostgreSQL), under
the ``desk`` lock and one move of the version counter. A batch of 500 alarms costs a few
round trips, not a few thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.model import new_event_id
from edge.protocol import EventMessage
from edge.station import courante, extras, incidents, triage
from edge.station.courante import SYSTEM
from edge.station.sql import Db
from edge.station.triage import Alarm, Restore


@dataclass(frozen=True)
class Filed:
    """One new event to file: an alarm (``how`` an Alarm) or a restore."""

    alarm_id: str
    source: str  # "event" (from a box) or "station" (device lost)
    device: str
    seq: int  # the box's sequence number; the station's time for its own alarms
    kind: str
    zone_name: str | None
    occurred_ms: int
    historical: bool
    how: Alarm | Restore
    media_ids: tuple[str, ...] = ()


def of_event(message: EventMessage) -> Filed | None:
    """How a new event from a box is filed; None: the site's history only."""
    event = message.event
    zone_id = event.zone.id if event.zone else None
    how = triage.filing(event.kind.value, event.condition.value, zone_id, event.codes.cid)
    if how is None:
        return None
    media = tuple(dict.fromkeys(m for v in extras.videos(event.extra) for m in v.media_ids()))
    return Filed(
        event.id,
        "event",
        message.device,
        message.seq,
        event.kind.value,
        event.zone.name if event.zone else None,
        event.occurred_at_ms,
        message.historical,
        how,
        media,
    )


def of_station(alarm_id: str, device: str, lost: bool, at_ms: int) -> Filed:
    """The station's own "device lost" alarm, or its restore (the box heard again)."""
    how = triage.device_lost() if lost else Restore(triage.DEVICE_LOST_KEY)
    return Filed(alarm_id, "station", device, at_ms, "device_lost", None, at_ms, False, how)


@dataclass
class _Incident:
    id: str
    site_key: str
    priority: int
    category: str
    top: str
    alarms: int
    unrestored: int
    new: bool = False
    loaded: bool = True  # its counts are the store's (else only deltas are known)


@dataclass
class _Waiting:
    """An alarm waiting for its restore."""

    alarm_id: str
    incident_id: str
    seq: int
    new: bool
    restored_ms: int | None = None


@dataclass
class _Batch:
    incidents: dict[str, _Incident] = field(default_factory=dict)  # by id
    open_by_key: dict[str, str] = field(default_factory=dict)  # site key -> incident id
    waiting: dict[tuple[str, str], list[_Waiting]] = field(default_factory=dict)
    alarms: list[tuple[Any, ...]] = field(default_factory=list)
    media: list[tuple[str, str, str, str]] = field(default_factory=list)
    restored: list[_Waiting] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


def file(db: Db, items: Sequence[Filed], received_ms: int) -> set[str]:
    """File ``items`` (in the order they came); the incidents they changed."""
    if not items:
        return set()
    db.lock(incidents.LOCK)
    keys = _site_keys(db, sorted({i.device for i in items}))
    batch = _load(db, items, sorted(set(keys.values())))
    for item in items:
        if isinstance(item.how, Restore):
            _restore(batch, item, item.how, received_ms)
        else:
            _join(batch, item, item.how, keys[item.device], received_ms)
    if batch.changed:
        _write(db, batch, incidents.bump(db), received_ms)
    return batch.changed


def _site_keys(db: Db, devices: list[str]) -> dict[str, str]:
    keys = {d: f"box:{d}" for d in devices}
    sql = _KEYS.format(marks=", ".join("?" for _ in devices))
    for device, site_id in db.execute(sql, devices):
        keys[str(device)] = f"site:{site_id}"
    return keys


def _load(db: Db, items: Sequence[Filed], keys: list[str]) -> _Batch:
    """The open incidents of the batch's sites, and the alarms its restores may end."""
    batch = _Batch()
    sql = _OPEN.format(marks=", ".join("?" for _ in keys))
    for row in db.execute(sql, keys):
        found = _Incident(
            str(row[0]),
            str(row[1]),
            int(row[2]),
            str(row[3]),
            str(row[4]),
            int(row[5]),
            int(row[6]),
        )
        batch.incidents[found.id] = found
        batch.open_by_key[found.site_key] = found.id
    pairs = {(i.device, i.how.restore_key) for i in items if isinstance(i.how, Restore)}
    if pairs:
        wanted = sorted({d for d, _ in pairs})
        sql = _WAITING.format(marks=", ".join("?" for _ in wanted))
        for alarm_id, incident_id, device, key, seq in db.execute(sql, wanted):
            if (device, key) in pairs:
                waiting = _Waiting(str(alarm_id), str(incident_id), int(seq), new=False)
                batch.waiting.setdefault((str(device), str(key)), []).append(waiting)
    return batch


_OPEN = (
    "SELECT id, site_key, priority, category, top_alarm, alarms, unrestored FROM incidents "
    "WHERE closed_ms IS NULL AND site_key IN ({marks})"
)
_WAITING = (
    "SELECT alarm_id, incident_id, device, restore_key, seq FROM incident_alarms "
    "WHERE restored_ms IS NULL AND device IN ({marks})"
)
_KEYS = "SELECT device, site_id FROM site_devices WHERE device IN ({marks})"


def _join(batch: _Batch, item: Filed, alarm: Alarm, key: str, at_ms: int) -> None:
    incident_id = batch.open_by_key.get(key)
    if incident_id is None:
        incident_id = new_event_id(at_ms)
        batch.incidents[incident_id] = _Incident(
            incident_id, key, alarm.priority, alarm.category.value, item.alarm_id, 0, 0, new=True
        )
        batch.open_by_key[key] = incident_id
        detail = {"category": alarm.category.value, "alarm": item.alarm_id}
        batch.lines.append(_line(at_ms, "opened", incident_id, key, item.device, detail))
    found = batch.incidents[incident_id]
    found.alarms += 1
    found.unrestored += 1
    if alarm.priority < found.priority:
        found.priority, found.category, found.top = (
            alarm.priority,
            alarm.category.value,
            item.alarm_id,
        )
    batch.changed.add(incident_id)
    waiting = _Waiting(item.alarm_id, incident_id, item.seq, new=True)
    batch.waiting.setdefault((item.device, alarm.restore_key), []).append(waiting)
    batch.alarms.append((item, alarm, incident_id, at_ms, waiting))
    batch.media += [(item.device, m, item.alarm_id, incident_id) for m in item.media_ids]


def _restore(batch: _Batch, item: Filed, restore: Restore, at_ms: int) -> None:
    ended: dict[str, int] = {}
    for waiting in batch.waiting.get((item.device, restore.restore_key), []):
        if waiting.restored_ms is None and waiting.seq < item.seq:
            waiting.restored_ms = at_ms
            if not waiting.new:
                batch.restored.append(waiting)
            ended[waiting.incident_id] = ended.get(waiting.incident_id, 0) + 1
    for incident_id, n in ended.items():
        found = batch.incidents.get(incident_id)
        if found is None:  # a closed incident, or another site's: only a delta is known
            found = batch.incidents[incident_id] = _Incident(
                incident_id, "", 0, "", "", 0, 0, loaded=False
            )
        found.unrestored -= n
        batch.changed.add(incident_id)
        detail = {"ref": restore.restore_key}
        batch.lines.append(_line(at_ms, "restored", incident_id, None, item.device, detail))


def _line(
    at_ms: int, action: str, incident_id: str, key: str | None, device: str, detail: dict[str, Any]
) -> tuple[Any, ...]:
    return courante.row(
        at_ms, SYSTEM, action, incident_id=incident_id, site_key=key, device=device, detail=detail
    )


def _write(db: Db, batch: _Batch, v: int, at_ms: int) -> None:
    made = [i for i in batch.incidents.values() if i.new]
    db.executemany(
        "INSERT INTO incidents (id, site_key, opened_ms, waiting_ms, priority, category, "
        "top_alarm, alarms, unrestored, last_ms, changed_v) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?)",
        [
            (
                i.id,
                i.site_key,
                at_ms,
                at_ms,
                i.priority,
                i.category,
                i.top,
                i.alarms,
                i.unrestored,
                at_ms,
                v,
            )
            for i in made
        ],
    )
    kept = [i for i in batch.incidents.values() if not i.new and i.id in batch.changed]
    db.executemany(
        "UPDATE incidents SET priority = ?, category = ?, top_alarm = ?, alarms = ?, "
        "unrestored = ?, last_ms = ?, changed_v = ? WHERE id = ?",
        [
            (i.priority, i.category, i.top, i.alarms, i.unrestored, at_ms, v, i.id)
            for i in kept
            if i.loaded
        ],
    )
    db.executemany(
        "UPDATE incidents SET unrestored = unrestored + ?, changed_v = ? WHERE id = ?",
        [(i.unrestored, v, i.id) for i in kept if not i.loaded],
    )
    db.executemany(
        "INSERT INTO incident_alarms (alarm_id, incident_id, source, device, restore_key, seq, "
        "category, priority, kind, zone_name, occurred_ms, received_ms, historical, "
        "restored_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                item.alarm_id,
                incident_id,
                item.source,
                item.device,
                alarm.restore_key,
                item.seq,
                alarm.category.value,
                alarm.priority,
                item.kind,
                item.zone_name,
                item.occurred_ms,
                received,
                int(item.historical),
                waiting.restored_ms,
            )
            for item, alarm, incident_id, received, waiting in batch.alarms
        ],
    )
    db.executemany(
        "UPDATE incident_alarms SET restored_ms = ? WHERE alarm_id = ?",
        [(w.restored_ms, w.alarm_id) for w in batch.restored],
    )
    db.executemany(
        "INSERT INTO alarm_media (device, media_id, alarm_id, incident_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        batch.media,
    )
    courante.append_many(db, batch.lines)
