"""Fresh video asked for from the workstation: a snapshot now, or a clip of the last N s.

The page sends the box a ``snapshot`` or ``clip`` command (PROTOCOL.md 3.6) and
records it here (``video_requests``); the box's answers (3.7) update it, and a
``done`` answer names the media the box then sends on its media topics, which
are linked to the incident so that they appear in place when they arrive.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from edge.protocol import ClipArgs, Command, CommandResult, SnapshotArgs
from edge.station import courante, incidents
from edge.station.sql import Db

SCHEMA = """
CREATE TABLE IF NOT EXISTS video_requests (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    camera TEXT NOT NULL,
    seconds INTEGER,
    operator TEXT NOT NULL,
    asked_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_id TEXT,
    media_ids TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS video_requests_by_incident ON video_requests (incident_id, asked_ms);
"""

SNAPSHOT_EXPIRY_S = 60
CLIP_EXPIRY_S = 180
CLIP_SECONDS = (10, 30, 60, 120)  # what the page offers
CLIP_LAG_S = 3  # a clip ends this far in the past: the box's clock may be a little behind
FINAL = ("done", "failed", "rejected")


def command(kind: str, camera: str, seconds: int | None, now_ms: int) -> Command:
    """The command for a snapshot now, or a clip of the last ``seconds``. ValueError."""
    command_id = f"ws-{uuid.uuid4().hex[:20]}"
    if kind == "snapshot":
        return Command(command_id, now_ms + SNAPSHOT_EXPIRY_S * 1000, SnapshotArgs(camera))
    if kind != "clip" or seconds not in CLIP_SECONDS:
        raise ValueError(f"a snapshot, or a clip of {CLIP_SECONDS} seconds")
    to_ms = now_ms - CLIP_LAG_S * 1000
    args = ClipArgs(camera, to_ms - seconds * 1000, to_ms)
    return Command(command_id, now_ms + CLIP_EXPIRY_S * 1000, args)


def record(
    db: Db, cmd: Command, incident_id: str, device: str, operator: str, role: str, now_ms: int
) -> None:
    """The request as sent (status ``sent``), and its line in the courante."""
    args = cmd.args
    seconds = None
    if isinstance(args, ClipArgs):
        seconds = (args.to_ms - args.from_ms) // 1000
    camera = str(getattr(args, "camera", ""))
    db.execute(
        "INSERT INTO video_requests (id, incident_id, device, type, camera, seconds, operator, "
        "asked_ms, expires_ms, status, reason, media_ids, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sent', '', '[]', ?)",
        (
            cmd.id,
            incident_id,
            device,
            cmd.type,
            camera,
            seconds,
            operator,
            now_ms,
            cmd.expires_at_ms,
            now_ms,
        ),
    )
    incidents.act(
        db,
        incident_id,
        operator,
        role,
        "request",
        {"type": cmd.type, "camera": camera, "seconds": seconds or 0, "command": cmd.id},
        now_ms,
    )


def not_sent(db: Db, command_id: str, why: str, now_ms: int) -> None:
    db.execute(
        "UPDATE video_requests SET status = 'failed', reason = ?, updated_ms = ? WHERE id = ?",
        (why, now_ms, command_id),
    )


def answer(db: Db, result: CommandResult, now_ms: int) -> str | None:
    """The box's answer to one of our requests; the incident it changed, or None (an
    answer to another console's command, or a late one after the final answer)."""
    row = db.execute(
        "SELECT incident_id, device, operator, status FROM video_requests WHERE id = ?",
        (result.command_id,),
    ).fetchone()
    if row is None or row[3] in FINAL:
        return None
    incident_id, device, operator = str(row[0]), str(row[1]), str(row[2])
    details = result.details or {}
    media_ids = [str(m) for m in details.get("media_ids", []) if isinstance(m, str)]
    event_id = details.get("event_id") if isinstance(details.get("event_id"), str) else None
    db.lock(incidents.LOCK)
    db.execute(
        "UPDATE video_requests SET status = ?, reason = ?, event_id = ?, media_ids = ?, "
        "updated_ms = ? WHERE id = ?",
        (result.status, result.reason, event_id, json.dumps(media_ids), now_ms, result.command_id),
    )
    for media_id in media_ids:
        incidents.link_media(db, device, media_id, str(result.command_id), incident_id)
    incidents.touch(db, incident_id)
    courante.append(
        db,
        now_ms,
        operator,
        "answer",
        incident_id=incident_id,
        device=device,
        detail={"command": result.command_id, "status": result.status},
        text=result.reason,
    )
    return incident_id


def of_incident(db: Db, incident_id: str, now_ms: int) -> list[dict[str, Any]]:
    """The incident's requests, oldest first; one not answered by its expiry is
    ``unanswered``."""
    rows = db.execute(
        "SELECT id, device, type, camera, seconds, operator, asked_ms, expires_ms, status, "
        "reason, event_id, media_ids FROM video_requests WHERE incident_id = ? "
        "ORDER BY asked_ms, id",
        (incident_id,),
    ).fetchall()
    out = []
    for r in rows:
        status = str(r[8])
        if status in ("sent", "accepted") and now_ms > int(r[7]):
            status = "unanswered"
        out.append(
            {
                "id": r[0],
                "device": r[1],
                "type": r[2],
                "camera": r[3],
                "seconds": r[4],
                "operator": r[5],
                "asked_ms": r[6],
                "status": status,
                "reason": r[9],
                "event_id": r[10],
                "media_ids": json.loads(r[11]),
            }
        )
    return out
