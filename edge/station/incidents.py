"""Incidents: a site's alarms grouped while open, who holds each, and how they end.

The receiver files every new event in the transaction that stores it
(:func:`file_event`; the station's "device lost" alarms through
:func:`file_station`): an alarm joins its site's open incident or opens one (one
open incident per site: a unique index says so), a restore marks the alarms of
its zone and code that came before it as back to normal. The page takes,
releases and transfers incidents, records what was done and closes them
(:func:`take` ... :func:`close`); each step is a line of the main courante.

Whatever changes an incident takes the ``desk`` lock (PostgreSQL: an advisory
lock; SQLite has one writer anyway), then moves the one version counter
(``desk_version``) and stamps the incident with it: the page pushes what
changed since the version it last saw. Taking is one conditional UPDATE (``WHERE
holder IS NULL``): of two operators, one gets it, the other is told who has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.errors import Conflict, NotFound
from edge.model import new_event_id
from edge.protocol import EventMessage
from edge.station import courante, extras, sites, triage
from edge.station.courante import SYSTEM
from edge.station.media import MediaKey
from edge.station.sql import Db
from edge.station.triage import Alarm, Restore

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    site_key TEXT NOT NULL,
    opened_ms INTEGER NOT NULL,
    waiting_ms INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    category TEXT NOT NULL,
    top_alarm TEXT NOT NULL,
    alarms INTEGER NOT NULL,
    unrestored INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    holder TEXT,
    held_ms INTEGER,
    escalated_ms INTEGER,
    outcome TEXT,
    closed_ms INTEGER,
    closed_by TEXT,
    close_reason TEXT,
    changed_v INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_by_site ON incidents (site_key)
    WHERE closed_ms IS NULL;
CREATE INDEX IF NOT EXISTS incidents_queue ON incidents (priority, opened_ms)
    WHERE closed_ms IS NULL;
CREATE INDEX IF NOT EXISTS incidents_waiting ON incidents (waiting_ms)
    WHERE closed_ms IS NULL AND holder IS NULL AND escalated_ms IS NULL;
CREATE INDEX IF NOT EXISTS incidents_changed ON incidents (changed_v);
CREATE INDEX IF NOT EXISTS incidents_by_site ON incidents (site_key, opened_ms);
CREATE TABLE IF NOT EXISTS incident_alarms (
    alarm_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    source TEXT NOT NULL,
    device TEXT NOT NULL,
    restore_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    zone_name TEXT,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    historical INTEGER NOT NULL,
    restored_ms INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS incident_alarms_by_incident
    ON incident_alarms (incident_id, received_ms);
CREATE INDEX IF NOT EXISTS incident_alarms_unrestored ON incident_alarms (device, restore_key, seq)
    WHERE restored_ms IS NULL;
CREATE TABLE IF NOT EXISTS alarm_media (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    PRIMARY KEY (device, media_id, alarm_id)
) STRICT;
CREATE INDEX IF NOT EXISTS alarm_media_by_alarm ON alarm_media (alarm_id);
CREATE TABLE IF NOT EXISTS desk_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v INTEGER NOT NULL
) STRICT;
INSERT INTO desk_version (id, v) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""

LOCK = "desk"


class Refused(Conflict):
    """Not in this incident's present state; ``code`` says why (the page words it)."""

    def __init__(self, code: str, **params: str) -> None:
        super().__init__(f"{code}: {params}" if params else code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class AlarmRow:
    """One alarm as an incident holds it."""

    alarm_id: str
    source: str  # "event" (from a box) or "station" (device lost)
    device: str
    alarm: Alarm
    seq: int  # the box's sequence number; the station's time for its own alarms
    kind: str
    zone_name: str | None
    occurred_ms: int
    historical: bool


def version(db: Db) -> int:
    return int(db.execute("SELECT v FROM desk_version WHERE id = 1").fetchone()[0])


def _bump(db: Db) -> int:
    row = db.execute("UPDATE desk_version SET v = v + 1 WHERE id = 1 RETURNING v").fetchone()
    return int(row[0])


# -- filing, in the receiver's transaction ------------------------------------------


def file_event(db: Db, message: EventMessage, received_ms: int) -> str | None:
    """File a new event from a box; the incident it changed, or None."""
    event = message.event
    zone_id = event.zone.id if event.zone else None
    how = triage.filing(event.kind.value, event.condition.value, zone_id, event.codes.cid)
    if how is None:
        return None
    db.lock(LOCK)
    if isinstance(how, Restore):
        return restore(db, message.device, how.restore_key, message.seq, received_ms)
    row = AlarmRow(
        event.id,
        "event",
        message.device,
        how,
        message.seq,
        event.kind.value,
        event.zone.name if event.zone else None,
        event.occurred_at_ms,
        message.historical,
    )
    media_ids = [m for v in extras.videos(event.extra) for m in v.media_ids()]
    return join(db, row, media_ids, received_ms)


def file_station(db: Db, alarm_id: str, device: str, lost: bool, at_ms: int) -> str | None:
    """File the station's own "device lost" alarm, or its restore."""
    db.lock(LOCK)
    if not lost:
        return restore(db, device, triage.DEVICE_LOST_KEY, at_ms, at_ms)
    row = AlarmRow(
        alarm_id, "station", device, triage.device_lost(), at_ms, "device_lost", None, at_ms, False
    )
    return join(db, row, [], at_ms)


def join(db: Db, row: AlarmRow, media_ids: Sequence[str], received_ms: int) -> str:
    """The alarm joins its site's open incident, or opens one; the incident's id."""
    v = _bump(db)
    key = sites.key_of(db, row.device)
    found = db.execute(
        "SELECT id, priority FROM incidents WHERE site_key = ? AND closed_ms IS NULL", (key,)
    ).fetchone()
    priority = row.alarm.priority
    if found is None:
        incident_id = new_event_id(received_ms)
        db.execute(
            "INSERT INTO incidents (id, site_key, opened_ms, waiting_ms, priority, category, "
            "top_alarm, alarms, unrestored, last_ms, changed_v) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)",
            (
                incident_id,
                key,
                received_ms,
                received_ms,
                priority,
                row.alarm.category.value,
                row.alarm_id,
                received_ms,
                v,
            ),
        )
        courante.append(
            db,
            received_ms,
            SYSTEM,
            "opened",
            incident_id=incident_id,
            site_key=key,
            device=row.device,
            detail={"category": row.alarm.category.value, "alarm": row.alarm_id},
        )
    else:
        incident_id = str(found[0])
        urgent = priority < int(found[1])
        db.execute(
            "UPDATE incidents SET alarms = alarms + 1, unrestored = unrestored + 1, "
            "last_ms = ?, changed_v = ?, priority = ?, category = "
            "CASE WHEN ? = 1 THEN ? ELSE category END, top_alarm = CASE WHEN ? = 1 THEN ? ELSE "
            "top_alarm END WHERE id = ?",
            (
                received_ms,
                v,
                min(priority, int(found[1])),
                int(urgent),
                row.alarm.category.value,
                int(urgent),
                row.alarm_id,
                incident_id,
            ),
        )
    db.execute(
        "INSERT INTO incident_alarms (alarm_id, incident_id, source, device, restore_key, seq, "
        "category, priority, kind, zone_name, occurred_ms, received_ms, historical) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.alarm_id,
            incident_id,
            row.source,
            row.device,
            row.alarm.restore_key,
            row.seq,
            row.alarm.category.value,
            priority,
            row.kind,
            row.zone_name,
            row.occurred_ms,
            received_ms,
            int(row.historical),
        ),
    )
    for media_id in dict.fromkeys(media_ids):
        link_media(db, row.device, media_id, row.alarm_id, incident_id)
    return incident_id


def link_media(db: Db, device: str, media_id: str, alarm_id: str, incident_id: str) -> None:
    db.execute(
        "INSERT INTO alarm_media (device, media_id, alarm_id, incident_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (device, media_id, alarm_id, incident_id),
    )


def restore(db: Db, device: str, key: str, seq: int, at_ms: int) -> str | None:
    """Alarms of ``key`` before ``seq`` are back to normal; the last incident changed."""
    rows = db.execute(
        "SELECT incident_id FROM incident_alarms WHERE device = ? AND restore_key = ? "
        "AND seq < ? AND restored_ms IS NULL",
        (device, key, seq),
    ).fetchall()
    if not rows:
        return None
    v = _bump(db)
    db.execute(
        "UPDATE incident_alarms SET restored_ms = ? WHERE device = ? AND restore_key = ? "
        "AND seq < ? AND restored_ms IS NULL",
        (at_ms, device, key, seq),
    )
    counts: dict[str, int] = {}
    for (found,) in rows:
        counts[str(found)] = counts.get(str(found), 0) + 1
    for incident_id, n in counts.items():
        db.execute(
            "UPDATE incidents SET unrestored = unrestored - ?, changed_v = ? WHERE id = ?",
            (n, v, incident_id),
        )
        courante.append(
            db,
            at_ms,
            SYSTEM,
            "restored",
            incident_id=incident_id,
            device=device,
            detail={"ref": key},
        )
    return incident_id


def shows(db: Db, key: MediaKey) -> bool:
    """Whether an incident shows this media (a read: takes no lock)."""
    row = db.execute(
        "SELECT 1 FROM alarm_media WHERE device = ? AND media_id = ? LIMIT 1",
        (key.device, key.media_id),
    ).fetchone()
    return row is not None


def media_arrived(db: Db, device: str, media_id: str) -> list[str]:
    """A still or clip came in (or was told lost): the incidents that show it change."""
    rows = db.execute(
        "SELECT DISTINCT incident_id FROM alarm_media WHERE device = ? AND media_id = ?",
        (device, media_id),
    ).fetchall()
    if not rows:
        return []
    db.lock(LOCK)
    v = _bump(db)
    for (incident_id,) in rows:
        db.execute("UPDATE incidents SET changed_v = ? WHERE id = ?", (v, incident_id))
    return [str(r[0]) for r in rows]


# -- the page's steps --------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What a step needs to know of the incident."""

    id: str
    site_key: str
    holder: str | None
    outcome: str | None
    unrestored: int
    closed: bool


def _held(db: Db, incident_id: str) -> Held:
    row = db.execute(
        "SELECT id, site_key, holder, outcome, unrestored, closed_ms FROM incidents WHERE id = ?",
        (incident_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    return Held(str(row[0]), str(row[1]), row[2], row[3], int(row[4]), row[5] is not None)


def touch(db: Db, incident_id: str) -> None:
    """Something of the incident changed (an answer, a media): the page shows it again."""
    db.lock(LOCK)
    _touch(db, incident_id)


def _touch(db: Db, incident_id: str, sets: str = "", args: Sequence[Any] = ()) -> None:
    v = _bump(db)
    extra = f"{sets}, " if sets else ""
    db.execute(
        f"UPDATE incidents SET {extra}changed_v = ? WHERE id = ?",  # noqa: S608
        (*args, v, incident_id),
    )


def take(db: Db, incident_id: str, operator: str, at_ms: int) -> None:
    """``operator`` holds the incident; Refused ``held`` (with the holder) or ``closed``."""
    db.lock(LOCK)
    v = _bump(db)
    cur = db.execute(
        "UPDATE incidents SET holder = ?, held_ms = ?, changed_v = ? "
        "WHERE id = ? AND holder IS NULL AND closed_ms IS NULL",
        (operator, at_ms, v, incident_id),
    )
    held = _held(db, incident_id)
    if cur.rowcount == 1:
        courante.append(
            db, at_ms, operator, "take", incident_id=incident_id, site_key=held.site_key
        )
        return
    if held.closed:
        raise Refused("closed")
    if held.holder != operator:
        raise Refused("held", holder=str(held.holder))


def _may_act(held: Held, operator: str, role: str) -> None:
    if held.closed:
        raise Refused("closed")
    if held.holder != operator and role != "supervisor":
        raise Refused("not_holder", holder=held.holder or "")


def release(db: Db, incident_id: str, operator: str, role: str, at_ms: int) -> None:
    """Back to the queue (its escalation timer starts again)."""
    db.lock(LOCK)
    held = _held(db, incident_id)
    _may_act(held, operator, role)
    if held.holder is None:
        return
    _touch(
        db,
        incident_id,
        "holder = NULL, held_ms = NULL, escalated_ms = NULL, waiting_ms = ?",
        (at_ms,),
    )
    courante.append(
        db,
        at_ms,
        operator,
        "release",
        incident_id=incident_id,
        site_key=held.site_key,
        detail={"holder": held.holder},
    )


def transfer(db: Db, incident_id: str, operator: str, role: str, to: str, at_ms: int) -> None:
    """To a colleague (the caller checks that ``to`` is an operator)."""
    db.lock(LOCK)
    held = _held(db, incident_id)
    _may_act(held, operator, role)
    _touch(db, incident_id, "holder = ?, held_ms = ?", (to, at_ms))
    courante.append(
        db,
        at_ms,
        operator,
        "transfer",
        incident_id=incident_id,
        site_key=held.site_key,
        detail={"to": to, "from": held.holder or ""},
    )


def act(
    db: Db,
    incident_id: str,
    operator: str,
    role: str,
    action: str,
    detail: dict[str, Any],
    at_ms: int,
    text: str = "",
    corrects: int | None = None,
) -> None:
    """One step of the handling (a call, a dispatch, an instruction done, ...) in the
    courante. Only the holder acts (a supervisor too); anyone may comment."""
    db.lock(LOCK)
    held = _held(db, incident_id)
    if action not in ("comment", "correction", "media_view"):
        _may_act(held, operator, role)
    _touch(db, incident_id)
    courante.append(
        db,
        at_ms,
        operator,
        action,
        incident_id=incident_id,
        site_key=held.site_key,
        detail=detail,
        text=text,
        corrects=corrects,
    )


def set_outcome(
    db: Db, incident_id: str, operator: str, role: str, code: str, cause: str, at_ms: int
) -> None:
    """The levée de doute's outcome (``triage.OUTCOMES``), with its cause in words."""
    if code not in triage.OUTCOMES:
        raise Refused("bad_outcome")
    db.lock(LOCK)
    held = _held(db, incident_id)
    _may_act(held, operator, role)
    _touch(db, incident_id, "outcome = ?", (code,))
    courante.append(
        db,
        at_ms,
        operator,
        "outcome",
        incident_id=incident_id,
        site_key=held.site_key,
        detail={"code": code},
        text=cause,
    )


def close(db: Db, incident_id: str, operator: str, role: str, reason: str, at_ms: int) -> None:
    """Closed: with an outcome, and every alarm restored or a written reason."""
    db.lock(LOCK)
    held = _held(db, incident_id)
    _may_act(held, operator, role)
    problem = triage.close_problem(held.outcome, held.unrestored, reason)
    if problem is not None:
        raise Refused(problem, unrestored=str(held.unrestored))
    _touch(
        db,
        incident_id,
        "closed_ms = ?, closed_by = ?, close_reason = ?",
        (at_ms, operator, reason.strip()),
    )
    courante.append(
        db,
        at_ms,
        operator,
        "closed",
        incident_id=incident_id,
        site_key=held.site_key,
        detail={"restored": held.unrestored == 0},
        text=reason.strip(),
    )


def escalate_due(db: Db, now_ms: int, escalate_s: float) -> list[str]:
    """Mark the incidents nobody took within ``escalate_s``; once each (a courante line)."""
    due_ms = now_ms - round(escalate_s * 1000)
    rows = db.execute(
        "SELECT id, site_key FROM incidents WHERE closed_ms IS NULL AND holder IS NULL "
        "AND escalated_ms IS NULL AND waiting_ms <= ?",
        (due_ms,),
    ).fetchall()
    if not rows:
        return []
    db.lock(LOCK)
    v = _bump(db)
    done = []
    for incident_id, key in rows:
        cur = db.execute(
            "UPDATE incidents SET escalated_ms = ?, changed_v = ? WHERE id = ? "
            "AND holder IS NULL AND escalated_ms IS NULL AND closed_ms IS NULL",
            (now_ms, v, incident_id),
        )
        if cur.rowcount == 1:
            courante.append(db, now_ms, SYSTEM, "escalated", incident_id=incident_id, site_key=key)
            done.append(str(incident_id))
    return done
