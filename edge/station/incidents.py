"""Incidents: a site's alarms grouped while open, who holds each, and how they end.

The receiver files new events in the transaction that stores them
(:mod:`edge.station.filing`): an alarm joins its site's open incident or opens one
(one open incident per site: a unique index says so), a restore marks the alarms of
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
from edge.station import courante, triage
from edge.station.courante import SYSTEM
from edge.station.media import MediaKey
from edge.station.sql import Db

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


def version(db: Db) -> int:
    return int(db.execute("SELECT v FROM desk_version WHERE id = 1").fetchone()[0])


def bump(db: Db) -> int:
    """Move the version counter (the caller holds the ``desk`` lock); its new value."""
    row = db.execute("UPDATE desk_version SET v = v + 1 WHERE id = 1 RETURNING v").fetchone()
    return int(row[0])


# -- media ---------------------------------------------------------------------------


def link_media(db: Db, device: str, media_id: str, alarm_id: str, incident_id: str) -> None:
    db.execute(
        "INSERT INTO alarm_media (device, media_id, alarm_id, incident_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (device, media_id, alarm_id, incident_id),
    )


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
    v = bump(db)
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
    v = bump(db)
    extra = f"{sets}, " if sets else ""
    db.execute(
        f"UPDATE incidents SET {extra}changed_v = ? WHERE id = ?",  # noqa: S608
        (*args, v, incident_id),
    )


def take(db: Db, incident_id: str, operator: str, at_ms: int) -> None:
    """``operator`` holds the incident; Refused ``held`` (with the holder) or ``closed``."""
    db.lock(LOCK)
    v = bump(db)
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
    v = bump(db)
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
