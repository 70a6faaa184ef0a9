"""The durable outbox: every event committed with fsync before its first send,
deleted only when the station acknowledged it.

SQLite in WAL mode with ``synchronous=FULL``. A database SQLite finds corrupt
at open is kept aside as ``<name>.corrupt-<ms>`` and a new one begun, its
sequence numbers starting above the current UTC milliseconds (any other failure,
a lock or an I/O error, stops the start: see :func:`edge.db.open_checked`).
The per-device sequence number
lives in the same database and is taken in the same transaction as the
insert, so it survives restarts and never repeats. Events are *leased* for
sending (their next send time moves by the ack timeout); an event the
station does not acknowledge in time is simply offered again. Blocking: the
app calls it from one dedicated thread (see :mod:`edge.outbox.aio`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.codes import Kind
from edge.db import Transaction, open_checked
from edge.model import Event, MediaDue, StoredEvent
from edge.outbox import routes
from edge.outbox.media import MediaShelf
from edge.outbox.routes import DONE_MS, Failover
from edge.outbox.schema import MOTION, SCHEMA, TROUBLE, UPGRADES, priority
from edge.protocol import event_from_record, event_record

# Due events in send order (see Outbox.lease), in two index-friendly halves
# merged in Python: the backlog walks the (priority, seq) index and stops at the
# limit; the live events (few) come by creation time. A live event never sent,
# of a zone that still has backlog never sent, is held back in the query itself
# so that it does not use up the limit. Parameters: ?1 now, ?2 live_after, ?3 limit.
_COLUMNS = "body, seq, priority, attempts, first_sent_ms"
_DUE_BACKLOG = f"""
SELECT {_COLUMNS} FROM events INDEXED BY events_order
WHERE next_send_ms <= ?1 AND created_ms < ?2
ORDER BY priority, seq LIMIT ?3
"""  # noqa: S608 (constant)
_DUE_LIVE = f"""
SELECT {_COLUMNS} FROM events e
WHERE created_ms >= ?2 AND next_send_ms <= ?1 AND NOT (
    e.zone IS NOT NULL AND e.attempts = 0 AND EXISTS (
        SELECT 1 FROM events b WHERE b.zone = e.zone AND b.attempts = 0 AND b.created_ms < ?2
    )
)
ORDER BY priority, seq LIMIT ?3
"""  # noqa: S608 (constant)


@dataclass(frozen=True)
class Limits:
    max_events: int = 10_000
    media_quota_bytes: int = 2 * 1024**3
    chunk_bytes: int = 256 * 1024


@dataclass(frozen=True)
class PutResult:
    stored: list[StoredEvent]
    evicted_events: int = 0


class Outbox:
    """Store-and-forward queue of events and their media. Construct, then :meth:`open`."""

    def __init__(self, path: Path, limits: Limits | None = None, busy_s: float = 5.0) -> None:
        self.path = path
        self.busy_s = busy_s  # how long a lock held elsewhere may delay the check at open
        self.limits = limits or Limits()
        self.media = MediaShelf(
            path.parent / "media", self._tx, self.limits.media_quota_bytes, self.limits.chunk_bytes
        )
        self.moved_aside: Path | None = None
        self.corruption: str = ""
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._last_seq = 0  # the highest sequence number committed or handed out
        self._seq_floor = 0  # numbers up to here went to events held in memory

    def open(self, now_ms: int) -> None:
        """``now_ms``: the UTC time; after a corrupt database the sequence restarts above it."""
        opened = open_checked(self.path, SCHEMA + routes.SCHEMA, "outbox", now_ms, self.busy_s)
        self._db = opened.db
        self.moved_aside, self.corruption = opened.moved_aside, opened.reason
        if opened.moved_aside is not None:  # numbers never repeat: restart above any used
            opened.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (now_ms,))
        with self._tx() as db:
            for table, column, statement in UPGRADES:
                columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(statement)
        self._last_seq = self.last_seq()
        self.media.open()

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    # -- events ------------------------------------------------------------

    def put(self, event: Event, now_ms: int) -> StoredEvent:
        return self.put_many([(event, now_ms)]).stored[0]

    def put_many(
        self,
        items: list[tuple[Event, int]],
        room_for: int | None = None,
        seqs: list[int | None] | None = None,
        due: list[MediaDue] | None = None,
    ) -> PutResult:
        """Commit events in one transaction (group commit), making room if full.

        Room is made for ``room_for`` of them (default: all). The box's own
        reports of an eviction need none: making room for them would evict
        again, to be reported again, until no motion event is left. ``seqs``
        gives the numbers events held in memory were sent with (None: the next
        one); ``due``, the media the events announced (see ``media_due``).
        """
        stored = []
        needed = len(items) if room_for is None else room_for
        given = seqs or [None] * len(items)
        with self._tx() as db:
            depth = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            evicted = self._evict_motion(db, depth + needed - self.limits.max_events)
            if self._seq_floor:  # never hand out a number an event in memory was sent with
                db.execute(
                    "UPDATE meta SET value = MAX(value, ?) WHERE key = 'seq'", (self._seq_floor,)
                )
            for (event, now_ms), seq in zip(items, given, strict=True):
                # a held event is committed with the number it was sent with, once
                insert = "INSERT" if seq is None else "INSERT OR IGNORE"
                if seq is None:
                    seq = int(
                        db.execute(
                            "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value"
                        ).fetchone()[0]
                    )
                prio = priority(event)
                db.execute(
                    f"{insert} INTO events (id, seq, priority, zone, body, created_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (event.id, seq, prio, _zone_key(event), _body(event), now_ms),
                )
                _note_zone(db, event, seq)
                stored.append(StoredEvent(event, seq, prio, attempts=0, first_sent_ms=None))
            db.executemany(
                "INSERT INTO media_due (id, event_id, kind, camera, from_ms, to_ms, priority) "
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS "
                "(SELECT 1 FROM media WHERE id = ?1) "
                "ON CONFLICT (id) DO UPDATE SET to_ms = MAX(to_ms, excluded.to_ms)",
                [_due_row(d, items) for d in due or ()],
            )
        self._last_seq = max([self._last_seq, *(s.seq for s in stored)])
        return PutResult(stored, evicted)

    def reserve_seqs(self, count: int) -> list[int]:
        """Sequence numbers for events that could not be committed and are sent from
        memory; committed later with these numbers, never handed out again meanwhile."""
        base = max(self._last_seq, self._seq_floor)
        self._seq_floor = base + count
        return list(range(base + 1, base + count + 1))

    def note_zones(self, events: list[tuple[Event, int]]) -> None:
        """The station stored these events before the disk took them: only each zone's
        last event is kept (what the zones resume from after a restart)."""
        with self._tx() as db:
            for event, seq in events:
                _note_zone(db, event, seq)

    def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        """Take up to ``limit`` events due now, in send order, and lease them for ``lease_ms``.

        Order: priority class, then live events (created after ``live_after_ms``)
        before backlog, then sequence. A live event of a zone that still has
        unsent backlog waits for it, so each zone's events go in order.
        """
        with self._tx() as db:
            args = (now_ms, live_after_ms, limit)
            live = db.execute(_DUE_LIVE, args).fetchall()
            backlog = db.execute(_DUE_BACKLOG, args).fetchall()
            # priority class first, then live before backlog, then sequence
            ranked = sorted(
                [(r, 0) for r in live] + [(r, 1) for r in backlog],
                key=lambda pair: (pair[0][2], pair[1], pair[0][1]),
            )
            chosen = [r for r, _live in ranked[:limit]]
            db.executemany(
                "UPDATE events SET attempts = attempts + 1, "
                "first_sent_ms = COALESCE(first_sent_ms, ?), next_send_ms = ? WHERE seq = ?",
                [(now_ms, now_ms + lease_ms, r[1]) for r in chosen],
            )
        return [
            StoredEvent(_event(body), seq, prio, attempts + 1, first or now_ms)
            for body, seq, prio, attempts, first in chosen
        ]

    def release(self, event_ids: list[str]) -> None:
        """Offer leased events again at once (their publish failed)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE events SET next_send_ms = 0 WHERE id = ?", [(i,) for i in event_ids]
            )

    def reset_leases(self) -> None:
        """After a reconnect: everything unacknowledged is due again, media from its last ack."""
        with self._tx() as db:
            db.execute(
                "UPDATE events SET next_send_ms = 0 WHERE next_send_ms > 0 AND next_send_ms < ?",
                (DONE_MS,),  # not those the primary has done with (kept for other routes)
            )
            db.execute("UPDATE media SET next_send_ms = 0 WHERE next_send_ms > 0")

    def next_due_ms(self) -> int | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT MIN(t) FROM (SELECT MIN(next_send_ms) AS t FROM events "
                "UNION ALL SELECT MIN(next_send_ms) FROM media)"
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def ack(self, ids: list[str] | tuple[str, ...]) -> int:
        """Delete acknowledged events; returns how many were still here."""
        if not ids:
            return 0
        with self._tx() as db:
            cur = db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    # -- backup routes (edge/outbox/routes.py) -------------------------------------------

    def lease_route(
        self,
        route: int,
        now_ms: int,
        at_once: bool,
        failover: Failover,
        lease_ms: int,
        limit: int,
    ) -> list[StoredEvent]:
        with self._tx() as db:
            rows = routes.lease(db, route, now_ms, at_once, failover, lease_ms, limit)
        return [
            StoredEvent(_event(body), seq, prio, attempts + 1, first or now_ms)
            for _id, body, seq, prio, attempts, first in rows
        ]

    def route_next_due_ms(
        self, route: int, now_ms: int, at_once: bool, failover: Failover
    ) -> int | None:
        with self._tx() as db:
            return routes.next_due_ms(db, route, now_ms, at_once, failover)

    def release_route(self, route: int, ids: list[str]) -> None:
        with self._tx() as db:
            routes.release(db, route, ids)

    def reset_route(self, route: int) -> None:
        with self._tx() as db:
            routes.reset(db, route)

    def ack_route(self, route: int, ids: list[str], every: int | None) -> int:
        """``route`` acknowledged ``ids``; returns the events this ended (deleted)."""
        if not ids:
            return 0
        with self._tx() as db:
            return routes.ack(db, route, ids, every)

    def refuse_route(self, route: int, ids: list[str], every: int | None) -> int:
        with self._tx() as db:
            return routes.refuse(db, route, ids, every)

    def dc09_state(self, route: int) -> tuple[int, str | None, bytes | None]:
        with self._tx() as db:
            return routes.dc09_state(db, route)

    def dc09_take(self, route: int, seq: int, event_id: str | None, frame: bytes | None) -> None:
        with self._tx() as db:
            routes.dc09_take(db, route, seq, event_id, frame)

    def dc09_answered(self, route: int) -> None:
        with self._tx() as db:
            routes.dc09_answered(db, route)

    def dead_letter(self, event_id: str, reason: str, code: int | None, now_ms: int) -> bool:
        """Move an event the broker refused out of the queue, for good."""
        with self._tx() as db:
            row = db.execute("SELECT body FROM events WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO dead_letters (id, what, body, reason, code, at_ms) "
                "VALUES (?, 'event', ?, ?, ?, ?)",
                (event_id, row[0], reason, code, now_ms),
            )
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            # its stills and clip would reach the station for an event it never got
            files = self.media.dead_letter_of_event(db, event_id, reason, code, now_ms)
            db.execute(
                "UPDATE meta SET value = value + ? WHERE key = 'dead_letters'", (1 + len(files),)
            )
        self.media.unlink(files)
        return True

    # -- figures -----------------------------------------------------------

    def depth(self) -> int:
        with self._tx() as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def oldest_ms(self) -> int | None:
        with self._tx() as db:
            row = db.execute("SELECT MIN(created_ms) FROM events").fetchone()
        return None if row[0] is None else int(row[0])

    def oldest_alarm_ms(self) -> int | None:
        """When the oldest alarm, restore or tamper still unacknowledged was stored."""
        with self._tx() as db:
            row = db.execute(
                "SELECT MIN(created_ms) FROM events WHERE priority < ?", (TROUBLE,)
            ).fetchone()
        return None if row[0] is None else int(row[0])

    def zone_kinds(self) -> dict[str, Kind]:
        """The kind of the last event committed for each zone id, acknowledged or not.

        Committed in the same transaction as the event, so after a crash the
        zones resume from exactly what the station will hear (see
        :func:`edge.inputs.zones.resume`).
        """
        with self._tx() as db:
            rows = db.execute("SELECT zone, kind FROM zone_last").fetchall()
        return {str(zone): Kind(kind) for zone, kind in rows}

    def last_seq(self) -> int:
        return self.counter("seq")

    def counter(self, key: str) -> int:
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def dead_letters(self) -> list[tuple[str, str, str, int | None]]:
        with self._tx() as db:
            return list(
                db.execute("SELECT id, what, reason, code FROM dead_letters ORDER BY at_ms")
            )

    # -- internals ---------------------------------------------------------

    def _evict_motion(self, db: sqlite3.Connection, excess: int) -> int:
        """Drop the oldest motion-only events (and their media) to stay under capacity."""
        if excess <= 0:
            return 0
        cur = db.execute(
            "SELECT id FROM events WHERE priority >= ? ORDER BY seq LIMIT ?", (MOTION, excess)
        )
        victims = [r[0] for r in cur.fetchall()]
        for event_id in victims:
            db.execute("DELETE FROM events WHERE id = ?", (event_id,))
            self.media.drop_event(db, event_id)
        if victims:
            db.execute(
                "UPDATE meta SET value = value + ? WHERE key = 'evicted_events'", (len(victims),)
            )
        return len(victims)

    def _tx(self) -> Transaction:
        return Transaction(self._db, self._lock, f"outbox {self.path}")


def _note_zone(db: sqlite3.Connection, event: Event, seq: int) -> None:
    if event.zone is not None:
        db.execute(
            "INSERT INTO zone_last (zone, kind, seq) VALUES (?, ?, ?) ON CONFLICT "
            "(zone) DO UPDATE SET kind = excluded.kind, seq = excluded.seq "
            "WHERE excluded.seq >= zone_last.seq",
            (event.zone.id, event.kind.value, seq),
        )


def _due_row(due: MediaDue, items: list[tuple[Event, int]]) -> tuple[object, ...]:
    # the announcing event's class (a shared clip names the first event, maybe long sent)
    own = [priority(e) for e, _ in items if e.id == due.event_id]
    prio = min(own or [priority(e) for e, _ in items] or [0])
    return (due.id, due.event_id, due.kind, due.camera, due.from_ms, due.to_ms, prio)


def _zone_key(event: Event) -> str | None:
    return f"{event.partition}/{event.zone.id}" if event.zone else None


def _body(event: Event) -> str:
    return json.dumps(event_record(event), separators=(",", ":"))


def _event(body: str) -> Event:
    return event_from_record(json.loads(body))
