"""The store's read side: stored events and media files, as the CLI and the page list them.

The functions take ``db``, an open transaction of either back-end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.protocol import iso_ms
from edge.station.sql import Db


@dataclass(frozen=True)
class StoredRow:
    id: str
    device: str
    seq: int
    kind: str
    cid: str
    sia: str
    zone: str | None
    occurred_at: str
    received_at: str
    historical: bool
    deliveries: int
    media: int = 0


@dataclass(frozen=True)
class StoredMedia:
    device: str
    event_id: str
    media_id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    path: Path
    received_at: str


def events(
    db: Db,
    device: str | None,
    limit: int,
    kind: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    event_id: str | None = None,
) -> list[StoredRow]:
    """Stored events, newest first; each filter that is not None applies."""
    query = (
        "SELECT id, device, seq, kind, cid, sia, zone_name, occurred_ms, received_ms, "
        "historical, deliveries, (SELECT COUNT(*) FROM media m "
        "WHERE m.device = events.device AND m.event_id = events.id) FROM events"
    )
    where, args = [], []
    for clause, value in (
        ("device = ?", device),
        ("kind = ?", kind),
        ("occurred_ms >= ?", since_ms),
        ("occurred_ms < ?", until_ms),
        ("id = ?", event_id),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY received_ms DESC, seq DESC LIMIT ?"
    args.append(limit)
    return [
        StoredRow(
            id=r[0],
            device=r[1],
            seq=r[2],
            kind=r[3],
            cid=r[4],
            sia=r[5],
            zone=r[6],
            occurred_at=iso_ms(r[7]),
            received_at=iso_ms(r[8]),
            historical=bool(r[9]),
            deliveries=r[10],
            media=r[11],
        )
        for r in db.execute(query, args).fetchall()
    ]


def body(db: Db, event_id: str) -> dict[str, Any] | None:
    """The stored event as the box sent it (JSON), or None."""
    row = db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def media(
    db: Db, root: Path, event_id: str | None, device: str | None, media_id: str | None
) -> list[StoredMedia]:
    """Complete media files, oldest first; each filter that is not None applies."""
    query = (
        "SELECT device, event_id, media_id, kind, content_type, size, sha256, path, "
        "received_ms FROM media WHERE 1 = 1"
    )
    args: list[Any] = []
    for clause, value in (
        (" AND event_id = ?", event_id),
        (" AND device = ?", device),
        (" AND media_id = ?", media_id),
    ):
        if value is not None:
            query += clause
            args.append(value)
    rows = db.execute(query + " ORDER BY received_ms, media_id", args).fetchall()
    return [
        StoredMedia(
            device=r[0],
            event_id=r[1],
            media_id=r[2],
            kind=r[3],
            content_type=r[4],
            size=r[5],
            sha256=r[6],
            path=root / r[7],
            received_at=iso_ms(r[8]),
        )
        for r in rows
    ]


def lost_media(db: Db, event_id: str, device: str | None) -> list[dict[str, Any]]:
    """Lost notices of an event: media the box will never send, and why."""
    query = "SELECT media_id, kind, reason, received_ms FROM media_lost WHERE event_id = ?"
    args: list[Any] = [event_id]
    if device is not None:
        query += " AND device = ?"
        args.append(device)
    rows = db.execute(query + " ORDER BY received_ms, media_id", args).fetchall()
    return [
        {"media_id": r[0], "kind": r[1], "reason": r[2], "received_at": iso_ms(r[3])} for r in rows
    ]
