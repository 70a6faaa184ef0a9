"""What the workstation shows, read from the store: the queue, and one incident in full.

The functions take ``db``, an open (read) transaction of either back-end, and
return JSON-ready data. Times are UTC milliseconds; the page writes them in the
station's time zone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from edge.station import courante, extras, sites, supervision, triage, videoreq
from edge.station.sql import Db

QUEUE_LIMIT = 200
CHANGED_LIMIT = 1000  # more changes than this at once: the page reloads the queue
_INCIDENT = (
    "i.id, i.site_key, i.opened_ms, i.waiting_ms, i.priority, i.category, i.alarms, "
    "i.unrestored, i.holder, i.held_ms, i.escalated_ms, i.outcome, i.closed_ms, i.changed_v, "
    "a.alarm_id, a.kind, a.zone_name, a.device, a.historical, a.occurred_ms, i.closed_by, "
    "i.close_reason"
)
_FROM = "FROM incidents i JOIN incident_alarms a ON a.alarm_id = i.top_alarm"


def _rows(
    db: Db, rows: Sequence[Sequence[Any]], now_ms: int, escalate_s: float
) -> list[dict[str, Any]]:
    names = sites.names(db, [str(r[1]) for r in rows])
    counts = _media_counts(db, [str(r[14]) for r in rows])
    out = []
    for r in rows:
        holder = r[8]
        out.append(
            {
                "id": r[0],
                "site_key": r[1],
                "site": names.get(r[1], r[1]),
                "opened_ms": r[2],
                "waiting_ms": r[3],
                "priority": r[4],
                "category": r[5],
                "alarms": r[6],
                "unrestored": r[7],
                "holder": holder,
                "held_ms": r[9],
                "escalated": r[12] is None and triage.escalated(holder, r[3], now_ms, escalate_s),
                "outcome": r[11],
                "closed": r[12] is not None,
                "closed_ms": r[12],
                "v": r[13],
                "closed_by": r[20],
                "close_reason": r[21],
                "top": {
                    "alarm_id": r[14],
                    "kind": r[15],
                    "zone": r[16],
                    "device": r[17],
                    "historical": bool(r[18]),
                    "occurred_ms": r[19],
                },
                "media": counts.get(str(r[14]), {"expected": 0, "ready": 0, "lost": 0}),
            }
        )
    return out


def _media_counts(db: Db, alarm_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    rows = _in(
        db,
        "SELECT am.alarm_id, COUNT(*), COUNT(m.media_id), COUNT(l.media_id) "
        "FROM alarm_media am LEFT JOIN media m ON m.device = am.device AND "
        "m.media_id = am.media_id LEFT JOIN media_lost l ON l.device = am.device AND "
        "l.media_id = am.media_id WHERE am.alarm_id IN ({marks}) GROUP BY am.alarm_id",
        alarm_ids,
    )
    return {str(a): {"expected": e, "ready": r, "lost": lost} for a, e, r, lost in rows}


def queue(db: Db, now_ms: int, escalate_s: float, limit: int = QUEUE_LIMIT) -> dict[str, Any]:
    """The open incidents, most urgent first, then oldest; with counts of all open ones."""
    v = int(db.execute("SELECT v FROM desk_version WHERE id = 1").fetchone()[0])
    rows = db.execute(
        f"SELECT {_INCIDENT} {_FROM} WHERE i.closed_ms IS NULL "
        "ORDER BY i.priority, i.opened_ms, i.id LIMIT ?",
        (limit,),
    ).fetchall()
    totals = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN holder IS NULL THEN 1 ELSE 0 END), 0) "
        "FROM incidents WHERE closed_ms IS NULL"
    ).fetchone()
    return {
        "v": v,
        "now_ms": now_ms,
        "escalate_s": escalate_s,
        "open": int(totals[0]),
        "unheld": int(totals[1]),
        "rows": _rows(db, rows, now_ms, escalate_s),
    }


def changed(db: Db, since_v: int, now_ms: int, escalate_s: float) -> dict[str, Any]:
    """The incidents changed after version ``since_v`` (closed ones too: they leave the
    queue). ``reload``: too many at once, read the queue again."""
    v = int(db.execute("SELECT v FROM desk_version WHERE id = 1").fetchone()[0])
    if v <= since_v:
        return {"v": v, "rows": []}
    rows = db.execute(
        f"SELECT {_INCIDENT} {_FROM} WHERE i.changed_v > ? ORDER BY i.changed_v LIMIT ?",
        (since_v, CHANGED_LIMIT + 1),
    ).fetchall()
    if len(rows) > CHANGED_LIMIT:
        return {"v": v, "rows": [], "reload": True}
    return {"v": v, "now_ms": now_ms, "rows": _rows(db, rows, now_ms, escalate_s)}


def holders(db: Db) -> list[dict[str, Any]]:
    """Who holds what (the supervisor's view): every open incident held, by holder."""
    rows = db.execute(
        "SELECT holder, id, site_key, priority, category, held_ms FROM incidents "
        "WHERE closed_ms IS NULL AND holder IS NOT NULL ORDER BY holder, priority, held_ms"
    ).fetchall()
    names = sites.names(db, [str(r[2]) for r in rows])
    return [
        {
            "holder": r[0],
            "id": r[1],
            "site": names.get(r[2], r[2]),
            "priority": r[3],
            "category": r[4],
            "held_ms": r[5],
        }
        for r in rows
    ]


# -- one incident -------------------------------------------------------------------

ALARM_LIMIT = 200
HISTORY_LIMIT = 30


def incident(db: Db, incident_id: str, now_ms: int, escalate_s: float) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {_INCIDENT} {_FROM} WHERE i.id = ?",
        (incident_id,),
    ).fetchone()
    if row is None:
        return None
    head = _rows(db, [row], now_ms, escalate_s)[0]
    alarms = _alarms(db, incident_id)
    key = str(row[1])
    devices = sorted({a["device"] for a in alarms} | set(sites.devices_of(db, key)))
    categories = sorted(
        {a["category"] for a in alarms}, key=lambda c: triage.PRIORITY.get(triage.Category(c), 99)
    )
    site = sites.view(db, key)
    steps = _steps(db, key, categories)
    entries = courante.of_incident(db, incident_id)
    done = {
        (e.detail.get("category"), e.detail.get("step")): e.as_dict()
        for e in entries
        if e.action == "instruction"
    }
    for group in steps:
        for step in group["steps"]:
            step["done"] = done.get((group["category"], step["index"]))
    cameras = list(dict.fromkeys(c for a in alarms for c in a["cameras"]))
    return {
        "incident": head,
        "site": site,
        "instructions": steps,
        "alarms": alarms,
        "boxes": boxes(db, devices, now_ms),
        "history": history(db, devices),
        "courante": [e.as_dict() for e in entries],
        "requests": _requests(db, incident_id, now_ms),
        "cameras": cameras or _cameras_seen(db, devices),
        "clip_seconds": list(videoreq.CLIP_SECONDS),
    }


def _steps(db: Db, key: str, categories: list[str]) -> list[dict[str, Any]]:
    kind, _, name = key.partition(":")
    site = sites.get(db, name) if kind == "site" else None
    if site is None:
        return []
    return [
        {"category": c, "steps": [{"index": i, "text": t} for i, t in enumerate(site.steps(c))]}
        for c in categories
    ]


def _alarms(db: Db, incident_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT alarm_id, source, device, category, priority, kind, zone_name, occurred_ms, "
        "received_ms, historical, restored_ms FROM incident_alarms WHERE incident_id = ? "
        "ORDER BY received_ms, alarm_id LIMIT ?",
        (incident_id, ALARM_LIMIT),
    ).fetchall()
    ids = [str(r[0]) for r in rows if r[1] == "event"]
    bodies = _bodies(db, ids)
    reasons = _station_reasons(db, [str(r[0]) for r in rows if r[1] == "station"])
    linked = _linked_media(db, [str(r[0]) for r in rows])
    out = []
    for r in rows:
        body = bodies.get(str(r[0]), {})
        extra = body.get("extra") or {}
        out.append(
            {
                "id": r[0],
                "source": r[1],
                "device": r[2],
                "category": r[3],
                "priority": r[4],
                "kind": r[5],
                "zone_name": r[6],
                "occurred_ms": r[7],
                "received_ms": r[8],
                "historical": bool(r[9]),
                "restored_ms": r[10],
                "zone": body.get("zone"),
                "cid": body.get("cid"),
                "sia": body.get("sia"),
                "condition": body.get("condition"),
                "armed": body.get("armed"),
                "partition": body.get("partition"),
                "text": body.get("text", ""),
                "reason": reasons.get(str(r[0])),
                "videos": [v.as_dict() for v in extras.videos(extra)],
                "evidence": [e.as_dict() for e in extras.evidence(extra)],
                "cameras": extras.cameras(extra),
                "media": linked.get(str(r[0]), []),
            }
        )
    return out


def _in(db: Db, sql: str, ids: Sequence[str]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(ids), 500):
        part = list(ids[start : start + 500])
        if part:
            marks = ", ".join("?" for _ in part)
            out += db.execute(sql.format(marks=marks), part).fetchall()
    return out


def _bodies(db: Db, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = _in(db, "SELECT id, body FROM events WHERE id IN ({marks})", ids)
    return {str(i): dict(json.loads(b)) for i, b in rows}


def _station_reasons(db: Db, ids: Sequence[str]) -> dict[str, str]:
    rows = _in(db, "SELECT id, reason FROM station_alarms WHERE id IN ({marks})", ids)
    return {str(i): str(r) for i, r in rows}


def _linked_media(db: Db, alarm_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every media an alarm (or a request) announced: complete, lost, or still to come."""
    rows = _in(
        db,
        "SELECT am.alarm_id, am.device, am.media_id, m.kind, m.content_type, m.size, "
        "l.kind, l.reason FROM alarm_media am LEFT JOIN media m ON m.device = am.device AND "
        "m.media_id = am.media_id LEFT JOIN media_lost l ON l.device = am.device AND "
        "l.media_id = am.media_id WHERE am.alarm_id IN ({marks})",
        alarm_ids,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for alarm_id, device, media_id, kind, ctype, size, lost_kind, reason in rows:
        state = "ready" if kind else "lost" if lost_kind else "pending"
        out.setdefault(str(alarm_id), []).append(
            {
                "device": device,
                "media_id": media_id,
                "state": state,
                "kind": kind or lost_kind,
                "content_type": ctype,
                "size": size,
                "reason": reason,
            }
        )
    return out


def _requests(db: Db, incident_id: str, now_ms: int) -> list[dict[str, Any]]:
    found = videoreq.of_incident(db, incident_id, now_ms)
    linked = _linked_media(db, [r["id"] for r in found])
    for request in found:
        request["media"] = linked.get(request["id"], [])
    return found


def boxes(db: Db, devices: Sequence[str], now_ms: int) -> list[dict[str, Any]]:
    """Each box's supervision, health, location and armed state now."""
    wanted = set(devices)
    status = {s["device"]: s for s in supervision.status(db, now_ms, now_ms, devices)}
    out = []
    for device in sorted(wanted):
        armed = db.execute(
            "SELECT kind, occurred_ms FROM events WHERE device = ? AND kind IN ('arm', 'disarm') "
            "ORDER BY seq DESC LIMIT 1",
            (device,),
        ).fetchone()
        out.append(
            {
                **status.get(device, {"device": device, "supervision": None}),
                "located": sites.box_site(db, device),
                "armed": None if armed is None else armed[0] == "arm",
                "armed_ms": None if armed is None else armed[1],
            }
        )
    return out


def history(db: Db, devices: Sequence[str], limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The site's latest events of every kind (restores, arming, tests, motion), newest first."""
    found: list[dict[str, Any]] = []
    for device in devices:
        for r in db.execute(
            "SELECT id, device, seq, kind, cid, sia, zone_name, occurred_ms, received_ms, "
            "historical, body FROM events WHERE device = ? ORDER BY seq DESC LIMIT ?",
            (device, limit),
        ):
            body = json.loads(r[10])
            found.append(
                {
                    "id": r[0],
                    "device": r[1],
                    "seq": r[2],
                    "kind": r[3],
                    "cid": r[4],
                    "sia": r[5],
                    "zone": r[6],
                    "occurred_ms": r[7],
                    "received_ms": r[8],
                    "historical": bool(r[9]),
                    "text": body.get("text", ""),
                }
            )
    found.sort(key=lambda e: (e["received_ms"], e["seq"]), reverse=True)
    return found[:limit]


def _cameras_seen(db: Db, devices: Sequence[str]) -> list[str]:
    found: list[str] = []
    for device in devices:
        for (body,) in db.execute(
            "SELECT body FROM events WHERE device = ? ORDER BY seq DESC LIMIT 50", (device,)
        ):
            found += extras.cameras(json.loads(body).get("extra") or {})
    return list(dict.fromkeys(found))


def incident_of_event(db: Db, event_id: str) -> str | None:
    """The incident an alarm is in (the DC-09 video reference names an event)."""
    row = db.execute(
        "SELECT incident_id FROM incident_alarms WHERE alarm_id = ?", (event_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def devices_of_incident(db: Db, incident_id: str) -> list[str]:
    """The boxes an incident's alarms came from, and those of its site."""
    row = db.execute("SELECT site_key FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        return []
    alarms = db.execute(
        "SELECT DISTINCT device FROM incident_alarms WHERE incident_id = ?", (incident_id,)
    ).fetchall()
    return sorted({str(r[0]) for r in alarms} | set(sites.devices_of(db, str(row[0]))))
