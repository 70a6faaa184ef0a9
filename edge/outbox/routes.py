"""Per-route delivery state: which backup route has sent, and had acknowledged, which event.

The primary route (1, the ``[uplink]``) keeps using the events table's own lease
columns. A backup route ``r`` (2, 3, ...) keeps its own in ``route_sends``: it
takes an event once the routes before it have not had it acknowledged within
``r - 1`` times the event's class's failover time, or at once while the primary
is down (or when every route must carry everything). With ``done_when =
"first"`` an acknowledgement on any route deletes the event; with ``"every"``
each route's acknowledgement is noted and the event goes once all have one.
A route's refusal (a broker's, a DC-09 receiver's DUH) ends the event on that
route only. Every function runs inside the caller's transaction (blocking, the
outbox's worker thread).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.outbox.schema import MOTION, ROUTINE, TROUBLE

DONE_MS = 2**62  # an event acknowledged on the primary but kept for the other routes
ACKED, REFUSED = 1, 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS route_sends (
    event_id TEXT NOT NULL,
    route INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent_ms INTEGER,
    next_send_ms INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, route)
) STRICT;
-- a DC-09 route's last sequence number, and the message awaiting its answer (its bytes)
CREATE TABLE IF NOT EXISTS dc09_sender (
    route INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    event_id TEXT,
    frame TEXT
) STRICT;
CREATE TRIGGER IF NOT EXISTS route_sends_go_with_their_event AFTER DELETE ON events
BEGIN
    DELETE FROM route_sends WHERE event_id = old.id;
END;
"""


@dataclass(frozen=True)
class Failover:
    """How long the primary has, per class, before a backup takes an event too (ms)."""

    alarm_ms: int = 20_000
    trouble_ms: int = 20_000
    routine_ms: int = 20_000
    motion_ms: int = 20_000

    def of(self, priority: int) -> int:
        if priority < TROUBLE:
            return self.alarm_ms
        if priority < ROUTINE:
            return self.trouble_ms
        if priority < MOTION:
            return self.routine_ms
        return self.motion_ms


_WAIT = (
    "CASE WHEN e.priority < ?4 THEN ?5 WHEN e.priority < ?6 THEN ?7 "
    "WHEN e.priority < ?8 THEN ?9 ELSE ?10 END"
)
# ?1 route, ?2 now, ?3 at once (primary down, or every route carries everything),
# ?4..?10 the class bounds and their waits (already times the route's rank), ?11 limit
_DUE = f"""
SELECT e.id, e.body, e.seq, e.priority, COALESCE(s.attempts, 0), s.first_sent_ms
FROM events e LEFT JOIN route_sends s ON s.event_id = e.id AND s.route = ?1
WHERE COALESCE(s.acked, 0) = 0 AND COALESCE(s.next_send_ms, 0) <= ?2
  AND (?3 OR e.created_ms + {_WAIT} <= ?2)
ORDER BY e.priority, e.seq LIMIT ?11
"""  # noqa: S608 (constant)
_NEXT = f"""
SELECT MIN(MAX(COALESCE(s.next_send_ms, 0), CASE WHEN ?3 THEN 0 ELSE e.created_ms + {_WAIT} END))
FROM events e LEFT JOIN route_sends s ON s.event_id = e.id AND s.route = ?1
WHERE COALESCE(s.acked, 0) = 0
"""  # noqa: S608 (constant)


def _args(route: int, now_ms: int, at_once: bool, failover: Failover) -> tuple[int | bool, ...]:
    rank = route - 1  # the first backup waits once the failover time, the next twice...
    return (
        route,
        now_ms,
        at_once,
        TROUBLE,
        failover.alarm_ms * rank,
        ROUTINE,
        failover.trouble_ms * rank,
        MOTION,
        failover.routine_ms * rank,
        failover.motion_ms * rank,
    )


def lease(
    db: sqlite3.Connection,
    route: int,
    now_ms: int,
    at_once: bool,
    failover: Failover,
    lease_ms: int,
    limit: int,
) -> list[tuple[str, str, int, int, int, int | None]]:
    """Events due on ``route`` now, leased for ``lease_ms``: (id, body, seq, priority,
    attempts before this one, first sent)."""
    rows = db.execute(_DUE, (*_args(route, now_ms, at_once, failover), limit)).fetchall()
    db.executemany(
        "INSERT INTO route_sends (event_id, route, attempts, first_sent_ms, next_send_ms) "
        "VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (event_id, route) DO UPDATE SET "
        "attempts = attempts + 1, first_sent_ms = COALESCE(first_sent_ms, ?3), "
        "next_send_ms = ?4",
        [(r[0], route, now_ms, now_ms + lease_ms) for r in rows],
    )
    return [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), r[5]) for r in rows]


def next_due_ms(
    db: sqlite3.Connection, route: int, now_ms: int, at_once: bool, failover: Failover
) -> int | None:
    row = db.execute(_NEXT, _args(route, now_ms, at_once, failover)).fetchone()
    return None if row[0] is None else int(row[0])


def release(db: sqlite3.Connection, route: int, ids: list[str]) -> None:
    db.executemany(
        "UPDATE route_sends SET next_send_ms = 0 WHERE event_id = ? AND route = ?",
        [(i, route) for i in ids],
    )


def reset(db: sqlite3.Connection, route: int) -> None:
    db.execute("UPDATE route_sends SET next_send_ms = 0 WHERE route = ? AND acked = 0", (route,))


def ack(db: sqlite3.Connection, route: int, ids: list[str], every: int | None) -> int:
    """Note ``route``'s acknowledgement of ``ids``. ``every``: the number of routes that
    must each acknowledge an event (None: the first one ends it). Returns how many of
    ``ids`` were still in the outbox (what this route is credited with: an event
    another route ended first is not counted)."""
    if every is None:
        cur = db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        return cur.rowcount
    return _note(db, route, ids, ACKED, every)


def refuse(db: sqlite3.Connection, route: int, ids: list[str], every: int | None) -> int:
    """``route`` will never carry ``ids`` (refused there): the other routes still do (with
    ``every``, the event is done once the others have answered too). Returns how many
    of ``ids`` were still in the outbox."""
    return _note(db, route, ids, REFUSED, every or 10**6)


def _note(db: sqlite3.Connection, route: int, ids: list[str], state: int, every: int) -> int:
    known = [i for i in ids if db.execute("SELECT 1 FROM events WHERE id = ?", (i,)).fetchone()]
    db.executemany(
        "INSERT INTO route_sends (event_id, route, acked) VALUES (?, ?, ?) "
        "ON CONFLICT (event_id, route) DO UPDATE SET acked = excluded.acked",
        [(i, route, state) for i in known],
    )
    if route == 1:  # the primary's own lease must never take it again
        db.executemany(
            "UPDATE events SET next_send_ms = ? WHERE id = ?", [(DONE_MS, i) for i in known]
        )
    done = []
    for i in known:  # every route answered, and at least one of them stored it
        answered, stored = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(acked = ?), 0) FROM route_sends "
            "WHERE event_id = ? AND acked > 0",
            (ACKED, i),
        ).fetchone()
        if int(answered) >= every and int(stored) > 0:
            done.append(i)
    db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in done])
    return len(known)


def dc09_state(db: sqlite3.Connection, route: int) -> tuple[int, str | None, bytes | None]:
    """(last sequence number, event awaiting its answer, its message's bytes)."""
    row = db.execute(
        "SELECT seq, event_id, frame FROM dc09_sender WHERE route = ?", (route,)
    ).fetchone()
    if row is None:
        return 0, None, None
    return int(row[0]), row[1], None if row[2] is None else str(row[2]).encode("ascii")


def dc09_take(
    db: sqlite3.Connection, route: int, seq: int, event_id: str | None, frame: bytes | None
) -> None:
    """Message ``seq`` is about to go (for an event, with these bytes; None: a NULL)."""
    db.execute(
        "INSERT INTO dc09_sender (route, seq, event_id, frame) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (route) DO UPDATE SET seq = excluded.seq, event_id = excluded.event_id, "
        "frame = excluded.frame",
        (route, seq, event_id, None if frame is None else frame.decode("ascii")),
    )


def dc09_answered(db: sqlite3.Connection, route: int) -> None:
    db.execute("UPDATE dc09_sender SET event_id = NULL, frame = NULL WHERE route = ?", (route,))
