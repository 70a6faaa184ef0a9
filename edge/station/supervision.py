"""Supervision of every box: "device lost" when it falls silent, a restore when it is back.

A box announces its profile in its retained birth (``heartbeat_s``,
``lost_s``); without one, a box is lost after three of its heartbeat
intervals, or ``DEFAULT_LOST_S``. It is alive while its last heartbeat (or
its "online" birth) is younger than ``lost_s``, and lost at once when its
state is "offline" (its last will, or a clean stop). A receiver that has
just started counts from its own start, so its downtime is not blamed on
the boxes. :func:`verdict` is pure; :func:`check` applies it in the
caller's transaction, under a lock, so receivers sharing a store raise each
change once. Changes go to ``station_alarms``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from edge.protocol import iso_ms
from edge.station.sql import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS supervision (
    device TEXT PRIMARY KEY,
    heartbeat_s INTEGER,
    lost_s INTEGER,
    lost INTEGER NOT NULL DEFAULT 0,
    changed_ms INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS station_alarms (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    reason TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS station_alarms_by_time ON station_alarms (at_ms);
CREATE TABLE IF NOT EXISTS box_health (
    device TEXT PRIMARY KEY,
    outbox_depth INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;
"""

DEFAULT_LOST_S = 180
LOST, RESTORED = "device_lost", "device_restore"


@dataclass(frozen=True)
class Seen:
    """What the station knows of one box."""

    device: str
    state: str | None = None
    state_ms: int | None = None
    heartbeat_ms: int | None = None
    interval_s: int | None = None  # from its heartbeats
    lost_s: int | None = None  # from its birth
    lost: bool = False
    changed_ms: int | None = None


@dataclass(frozen=True)
class Verdict:
    lost: bool
    reason: str
    age_s: float | None  # since the last sign of life
    deadline_s: int


@dataclass(frozen=True)
class Change:
    device: str
    kind: str  # LOST or RESTORED
    at_ms: int
    reason: str
    id: str = ""  # its row in station_alarms


def deadline_s(seen: Seen) -> int:
    if seen.lost_s:
        return seen.lost_s
    return 3 * seen.interval_s if seen.interval_s else DEFAULT_LOST_S


def verdict(seen: Seen, now_ms: int, since_ms: int) -> Verdict:
    """Pure: is the box lost at ``now_ms``, for a receiver watching since ``since_ms``."""
    deadline = deadline_s(seen)
    signs = [seen.heartbeat_ms, seen.state_ms if seen.state == "online" else None]
    last = max((s for s in signs if s is not None), default=None)
    age = None if last is None else (now_ms - last) / 1000
    if seen.state == "offline":
        return Verdict(True, "the box is offline (its last will, or stopped)", age, deadline)
    silent_s = (now_ms - max(last or since_ms, since_ms)) / 1000
    if silent_s >= deadline:
        return Verdict(
            True, f"no heartbeat for {silent_s:.0f} s (lost after {deadline} s)", age, deadline
        )
    return Verdict(False, "heartbeat in time", age, deadline)


def load(db: Db, devices: Sequence[str] | None = None) -> list[Seen]:
    """What the station knows of every box (or of ``devices``)."""
    sql = (
        "SELECT d.device, d.state, d.state_ms, d.heartbeat_ms, d.heartbeat_interval_s, "
        "s.lost_s, COALESCE(s.lost, 0), s.changed_ms FROM devices d "
        "LEFT JOIN supervision s ON s.device = d.device"
    )
    args: list[str] = []
    if devices is not None:
        if not devices:
            return []
        sql += f" WHERE d.device IN ({', '.join('?' for _ in devices)})"
        args = list(devices)
    rows = db.execute(sql + " ORDER BY d.device", args).fetchall()
    return [Seen(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]


def check(db: Db, now_ms: int, since_ms: int) -> list[Change]:
    """Raise "device lost" and restores that are due; in the caller's transaction."""
    db.lock("supervision")  # receivers sharing a store: one raises each change
    changes = []
    for seen in load(db):
        judged = verdict(seen, now_ms, since_ms)
        if judged.lost == seen.lost:
            continue
        kind = LOST if judged.lost else RESTORED
        reason = judged.reason if judged.lost else "heartbeat back"
        db.execute(
            "INSERT INTO supervision (device, lost, changed_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (device) DO UPDATE SET lost = excluded.lost, "
            "changed_ms = excluded.changed_ms",
            (seen.device, int(judged.lost), now_ms),
        )
        alarm_id = str(uuid.uuid4())
        db.execute(
            "INSERT INTO station_alarms (id, device, kind, at_ms, reason) VALUES (?, ?, ?, ?, ?)",
            (alarm_id, seen.device, kind, now_ms, reason),
        )
        changes.append(Change(seen.device, kind, now_ms, reason, alarm_id))
    return changes


def announce(db: Db, device: str, heartbeat_s: int, lost_s: int) -> None:
    """Record the profile a box announced in its birth."""
    db.execute(
        "INSERT INTO supervision (device, heartbeat_s, lost_s) VALUES (?, ?, ?) "
        "ON CONFLICT (device) DO UPDATE SET heartbeat_s = excluded.heartbeat_s, "
        "lost_s = excluded.lost_s",
        (device, heartbeat_s, lost_s),
    )


def health(db: Db, device: str, outbox_depth: int, at_ms: int) -> None:
    """Record what a box's heartbeat says of its health."""
    db.execute(
        "INSERT INTO box_health (device, outbox_depth, at_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (device) DO UPDATE SET outbox_depth = excluded.outbox_depth, "
        "at_ms = excluded.at_ms",
        (device, outbox_depth, at_ms),
    )


def status(
    db: Db, now_ms: int, since_ms: int, devices: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """Every box (or those of ``devices``) with its supervision state, for the CLI and
    the operator page."""
    out: list[dict[str, object]] = []
    seen_boxes = load(db, devices)
    sql, args = "SELECT device, outbox_depth FROM box_health", [s.device for s in seen_boxes]
    if devices is not None:
        sql += f" WHERE device IN ({', '.join('?' for _ in args) or 'NULL'})"
    depths = dict(db.execute(sql, args if devices is not None else []).fetchall())
    for seen in seen_boxes:
        judged = verdict(seen, now_ms, since_ms)
        out.append(
            {
                "device": seen.device,
                "state": seen.state,
                "supervision": "lost" if seen.lost else "ok",
                "heartbeat_age_s": None if judged.age_s is None else round(judged.age_s, 1),
                "lost_after_s": judged.deadline_s,
                "outbox_depth": depths.get(seen.device),
                "changed_at": None if seen.changed_ms is None else iso_ms(seen.changed_ms),
            }
        )
    return out


def alarms(db: Db, limit: int = 100) -> list[dict[str, object]]:
    rows = db.execute(
        "SELECT id, device, kind, at_ms, reason FROM station_alarms ORDER BY at_ms DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("id", "device", "kind", "at_ms", "reason")
    return [dict(zip(keys, r, strict=True)) for r in rows]
