"""The station's durable store (SQLite): each event id once, media chunks, whole files.

:meth:`StationStore.commit` stores a batch of what was heard in ONE
transaction (one SQLite fsync, after one fsync per part file the batch wrote:
group commit), then finishes every media file whose chunks are now all in
(one more transaction), and answers with a :class:`Receipt`: what to
acknowledge to each device. Media files live in ``<db>.media/``, chunks of
unfinished ones in ``<db>.media/.partial/`` (see :mod:`edge.station.media`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ProtocolError, StorageError
from edge.protocol import EventMessage, MediaProgress, event_record
from edge.station import (
    assembly,
    courante,
    filing,
    incidents,
    media,
    oplog,
    parts,
    queries,
    sites,
    sql,
    supervision,
    videoreq,
)
from edge.station.assembly import Outcome
from edge.station.inbound import (
    ChunkReceived,
    EventReceived,
    Inbound,
    MediaLostReceived,
    StateReceived,
)
from edge.station.media import MediaKey, Put
from edge.station.parts import PartWriter
from edge.station.queries import StoredMedia, StoredRow
from edge.station.sql import Backend, Db, SqliteBackend

log = logging.getLogger(__name__)

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    account TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    cid TEXT NOT NULL,
    sia TEXT NOT NULL,
    zone_id TEXT,
    zone_name TEXT,
    partition INTEGER NOT NULL,
    armed INTEGER,
    occurred_ms INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    historical INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_device ON events (device, seq);
CREATE TABLE IF NOT EXISTS device_routes (
    device TEXT NOT NULL,
    route INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_ms INTEGER NOT NULL,
    PRIMARY KEY (device, route)
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    state TEXT,
    state_ms INTEGER,
    heartbeat_ms INTEGER,
    heartbeat_interval_s INTEGER
) STRICT;
"""
    + media.SCHEMA
    + supervision.SCHEMA
    + oplog.SCHEMA
    + sites.SCHEMA
    + incidents.SCHEMA
    + videoreq.SCHEMA
    + """
CREATE TABLE IF NOT EXISTS forwarded (
    event_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;
-- the DC-09 bridge's last sequence number, and the event message awaiting its answer
CREATE TABLE IF NOT EXISTS dc09_sender (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    event_id TEXT,
    frame TEXT
) STRICT;
"""
)


@dataclass
class Receipt:
    """What a batch did, and what to acknowledge to each device."""

    ids: dict[str, list[str]] = field(default_factory=dict)  # device -> event ids
    media: dict[str, dict[str, MediaProgress]] = field(default_factory=dict)
    events: list[tuple[EventMessage, bool]] = field(default_factory=list)  # (message, new)
    rejected: list[str] = field(default_factory=list)
    chunks: int = 0
    duplicate_chunks: int = 0
    complete: int = 0
    corrupt: int = 0
    unwritten: int = 0  # media files, or chunks, the media disk refused

    def acks(self) -> dict[str, tuple[list[str], tuple[MediaProgress, ...]]]:
        devices = dict.fromkeys([*self.ids, *self.media])
        return {d: (self.ids.get(d, []), tuple(self.media.get(d, {}).values())) for d in devices}

    def merge(self, other: Receipt) -> None:
        for device, ids in other.ids.items():
            mine = self.ids.setdefault(device, [])
            mine.extend(i for i in ids if i not in mine)
        for device, progress in other.media.items():
            self.media.setdefault(device, {}).update(progress)
        self.events += other.events
        self.rejected += other.rejected
        self.chunks += other.chunks
        self.duplicate_chunks += other.duplicate_chunks
        self.complete += other.complete
        self.corrupt += other.corrupt
        self.unwritten += other.unwritten


@dataclass
class _Batch:
    """One commit's part files, and what it did to which media."""

    writer: PartWriter
    received_ms: int
    receipt: Receipt = field(default_factory=Receipt)
    touched: dict[MediaKey, None] = field(default_factory=dict)
    discarded: dict[MediaKey, None] = field(default_factory=dict)  # corrupt: have=0
    filed: list[filing.Filed] = field(default_factory=list)  # for the workstation


class StationStore:
    """Construct (no I/O), then :meth:`open`. Thread-safe: one transaction at a time.

    ``target``: the path of an SQLite file (media default to ``<file>.media/``)
    or a ``postgresql://`` URL (then ``media_root`` is required: a folder every
    receiver sharing the database reaches).
    """

    def __init__(self, target: Path | str, media_root: Path | None = None) -> None:
        self.backend: Backend = sql.backend(target)
        if isinstance(self.backend, SqliteBackend):
            self.path = self.backend.path
            media_root = media_root or self.path.with_name(self.path.name + ".media")
        elif media_root is None:
            raise StorageError("a PostgreSQL station store needs a media folder")
        self.media_root = media_root
        self.label = self.backend.label
        self.commits = 0  # transactions committed (group commit keeps this low)

    def open(self) -> None:
        self.backend.open(SCHEMA)
        with self._tx() as db:  # its DDL differs between the two back-ends
            courante.create(db, self.backend.dialect)
        if not isinstance(self.backend, SqliteBackend) or self.backend.conn is None:
            return
        try:
            dropped = media.upgrade(self.backend.conn)
        except sqlite3.Error as exc:
            self.backend.close()
            raise StorageError(f"cannot upgrade {self.label}: {exc}") from exc
        if dropped is not None:
            log.warning("station store upgraded: %d media chunks dropped, to be resent", dropped)

    def close(self) -> None:
        self.backend.close()  # waits for a commit running in another thread

    def commit(self, items: Sequence[Inbound], received_ms: int) -> Receipt:
        """Store ``items`` in one transaction, then finish any media they completed.

        StorageError: nothing of the batch is stored. A chunk whose header
        contradicts its media's earlier chunks is rejected (``receipt.rejected``)
        without failing the batch; so is one the media disk refuses (counted
        in ``receipt.unwritten``, not acknowledged).
        """
        try:
            with self._tx() as db, PartWriter(self.media_root) as writer:
                batch = _Batch(writer, received_ms)
                # every media lock up front, in one order: receivers sharing a store
                # whose batches hold chunks of the same media cannot deadlock
                for device, media_id in sorted(_media_of(items)):
                    media.lock(db, MediaKey(device, media_id))
                if _files(items):
                    db.lock(incidents.LOCK)  # before any event row, as the page's steps
                for item in items:
                    self._put(db, item, batch)
                filing.file(db, batch.filed, received_ms)
                writer.sync()  # the chunks' bytes are on disk before their rows commit
        except (OverflowError, ValueError) as exc:  # too big an integer, a lone surrogate
            raise StorageError(f"{self.label}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"{self.label}: cannot sync part files: {exc}") from exc
        self.commits += 1
        try:
            self._finish(batch.touched, received_ms, batch.receipt, batch)
        except StorageError:  # the batch is stored: ack its events, the box resends chunks
            log.exception("media of a stored batch not finished; its chunks are kept")
        return batch.receipt

    def finish_waiting(self, received_ms: int) -> Receipt:
        """Match part files and chunk rows, then finish media whose chunks were all in.

        For the receiver's start only: a part file no committed row owns yet is removed.
        """
        with self._tx() as db:
            dropped = assembly.sweep(db, self.media_root, shared=self.backend.shared)
            keys = media.waiting(db)
        if dropped:
            log.warning("%d media chunks lost from their part files, to be resent", dropped)
        receipt = Receipt()
        self._finish(keys, received_ms, receipt)
        return receipt

    def events(
        self,
        device: str | None = None,
        limit: int = 100,
        *,
        kind: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        event_id: str | None = None,
    ) -> list[StoredRow]:
        """Stored events, newest first; filters by device, kind and occurred time."""
        with self._tx() as db:
            return queries.events(db, device, limit, kind, since_ms, until_ms, event_id)

    def lost_media(self, event_id: str, device: str | None = None) -> list[dict[str, Any]]:
        """The media of an event the box said will never come, with its reasons."""
        with self._tx() as db:
            return queries.lost_media(db, event_id, device)

    def body(self, event_id: str) -> dict[str, Any] | None:
        """The stored event as the box sent it (JSON), or None."""
        with self._tx() as db:
            return queries.body(db, event_id)

    def media(
        self, event_id: str | None, device: str | None = None, media_id: str | None = None
    ) -> list[StoredMedia]:
        """The complete media files of an event (or one by device and id), oldest first."""
        with self._tx() as db:
            return queries.media(db, self.media_root, event_id, device, media_id)

    def devices(self) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT device, state, state_ms, heartbeat_ms, heartbeat_interval_s "
                "FROM devices ORDER BY device"
            ).fetchall()
        keys = ("device", "state", "state_ms", "heartbeat_ms", "heartbeat_interval_s")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def supervise(self, now_ms: int, since_ms: int) -> list[supervision.Change]:
        """Raise the "device lost" alarms and restores that are due, and file them at the
        workstation (one transaction)."""
        with self._tx() as db:
            changes = supervision.check(db, now_ms, since_ms)
            filed = [
                filing.of_station(c.id, c.device, c.kind == supervision.LOST, c.at_ms)
                for c in changes
            ]
            filing.file(db, filed, now_ms)
            return changes

    def device_status(self, now_ms: int, since_ms: int | None = None) -> list[dict[str, Any]]:
        with self._tx() as db:
            return supervision.status(db, now_ms, now_ms if since_ms is None else since_ms)

    def station_alarms(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._tx() as db:
            return supervision.alarms(db, limit)

    # -- inside the batch transaction --------------------------------------

    def _put(
        self,
        db: Db,
        item: Inbound,
        batch: _Batch,
    ) -> None:
        receipt, received_ms = batch.receipt, batch.received_ms
        if isinstance(item, EventReceived):
            try:
                new = _put_event(db, item.message, received_ms)
            except ProtocolError as exc:
                receipt.rejected.append(f"{item.device}: {exc}")
                return
            filed = filing.of_event(item.message) if new else None
            if filed is not None:
                batch.filed.append(filed)
            ids = receipt.ids.setdefault(item.device, [])
            if item.message.event.id not in ids:
                ids.append(item.message.event.id)
            receipt.events.append((item.message, new))
        elif isinstance(item, ChunkReceived):
            self._put_chunk(db, item, batch)
        elif isinstance(item, MediaLostReceived):
            if media.put_lost(db, item, received_ms):
                log.warning(
                    "%s %s of event %s from %s will never come: %s",
                    item.kind,
                    item.media_id,
                    item.event_id,
                    item.device,
                    item.reason,
                )
                incidents.media_arrived(db, item.device, item.media_id)
            key = MediaKey(item.device, item.media_id)
            batch.touched.pop(key, None)
            progress = MediaProgress(item.media_id, 0, complete=True)
            receipt.media.setdefault(item.device, {})[item.media_id] = progress
        elif isinstance(item, StateReceived):
            db.execute(
                "INSERT INTO devices (device, state, state_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (device) DO UPDATE SET state = excluded.state, "
                "state_ms = excluded.state_ms",
                (item.device, _route_state(db, item, received_ms), received_ms),
            )
            if item.heartbeat_s is not None and item.lost_s is not None:
                supervision.announce(db, item.device, item.heartbeat_s, item.lost_s)
            if item.site is not None:
                sites.put_box_site(db, item.device, item.site, received_ms)
        else:
            db.execute(
                "INSERT INTO devices (device, heartbeat_ms, heartbeat_interval_s) "
                "VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                "heartbeat_ms = excluded.heartbeat_ms, "
                "heartbeat_interval_s = excluded.heartbeat_interval_s",
                (item.device, received_ms, item.interval_s),
            )
            if item.outbox_depth is not None:
                supervision.health(db, item.device, item.outbox_depth, received_ms)

    def _put_chunk(self, db: Db, item: ChunkReceived, batch: _Batch) -> None:
        key, receipt = MediaKey(item.device, item.media_id), batch.receipt
        if key in batch.discarded:  # acked have=0: the box resends from chunk 0
            return
        try:
            put = media.put_chunk(db, batch.writer, item, batch.received_ms)
        except ProtocolError as exc:
            receipt.rejected.append(f"{item.device}: {exc}")
            return
        if put is Put.UNWRITTEN:
            receipt.unwritten += 1
            return
        batch.touched[key] = None
        if put is Put.NEW:
            receipt.chunks += 1
        elif put is Put.DUPLICATE:
            receipt.duplicate_chunks += 1
        else:
            receipt.corrupt += 1
            batch.discarded[key] = None

    # -- media files -------------------------------------------------------

    def _finish(
        self,
        keys: Iterable[MediaKey],
        received_ms: int,
        receipt: Receipt,
        batch: _Batch | None = None,
    ) -> None:
        """Write and record the files of ``keys`` whose chunks are all in; one transaction.

        After ``batch``'s commit: remove the part files of the media it
        discarded, and report what to acknowledge for the media it touched.
        """
        with self._tx() as db:
            if batch is not None:
                parts.remove(media.part_of(self.media_root, key) for key in batch.discarded)
            outcomes = assembly.finish(db, self.media_root, keys, received_ms)
            shown = [k for k, _, o in outcomes if o is Outcome.COMPLETE and incidents.shows(db, k)]
            for key in () if batch is None else batch.touched:
                receipt.media.setdefault(key.device, {})[key.media_id] = media.progress(db, key)
        if any(outcome is not Outcome.UNWRITTEN for *_, outcome in outcomes):
            self.commits += 1
        if shown:  # the incidents showing them show them now; after the files' commit, so
            # that this transaction never waits for the workstation's lock
            try:
                with self._tx() as db:
                    for key in shown:
                        incidents.media_arrived(db, key.device, key.media_id)
            except StorageError:  # the page shows them at its next change or reload
                log.exception("media stored, but the workstation was not told")
        for *_, outcome in outcomes:
            if outcome is Outcome.COMPLETE:
                receipt.complete += 1
            elif outcome is Outcome.CORRUPT:
                receipt.corrupt += 1
            else:
                receipt.unwritten += 1

    def transaction(self) -> contextlib.AbstractContextManager[Db]:
        """One transaction, for the station's other parts (bridge, operator page)."""
        return self.backend.transaction()

    def read(self) -> contextlib.AbstractContextManager[Db]:
        """One transaction that only reads (the operator page's views)."""
        return self.backend.read()

    def _tx(self) -> contextlib.AbstractContextManager[Db]:
        return self.backend.transaction()


def _files(items: Sequence[Inbound]) -> bool:
    """Whether the batch may change the workstation (an alarm, a restore, a lost media)."""
    return any(
        isinstance(i, MediaLostReceived)
        or (isinstance(i, EventReceived) and filing.of_event(i.message) is not None)
        for i in items
    )


def _route_state(db: Db, item: StateReceived, at_ms: int) -> str:
    """The box's state: with several routes, online while any route says so (the will of
    a cut primary is not the box going offline while its backup carries it)."""
    if item.route is None:
        return item.state
    db.execute(
        "INSERT INTO device_routes (device, route, state, state_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device, route) DO UPDATE SET state = excluded.state, "
        "state_ms = excluded.state_ms",
        (item.device, item.route, item.state, at_ms),
    )
    online = db.execute(
        "SELECT COUNT(*) FROM device_routes WHERE device = ? AND state = 'online'", (item.device,)
    ).fetchone()[0]
    return "online" if int(online) else item.state


def _media_of(items: Sequence[Inbound]) -> set[tuple[str, str]]:
    kinds = (ChunkReceived, MediaLostReceived)
    return {(i.device, i.media_id) for i in items if isinstance(i, kinds)}


def _put_event(db: Db, message: EventMessage, received_ms: int) -> bool:
    """Insert the event once; a retransmit only counts a delivery. True if new."""
    event = message.event
    body = {**event_record(event), "seq": message.seq, "device": message.device}
    row = (
        event.id,
        message.device,
        message.account,
        message.seq,
        event.kind.value,
        event.codes.cid,
        event.codes.sia,
        event.zone.id if event.zone else None,
        event.zone.name if event.zone else None,
        event.partition,
        None if event.armed is None else int(event.armed),
        event.occurred_at_ms,
        message.sent_at_ms,
        received_ms,
        int(message.historical),
        json.dumps(body, separators=(",", ":")),
    )
    cur = db.execute(
        "INSERT INTO events (id, device, account, seq, kind, cid, sia, zone_id, "
        "zone_name, partition, armed, occurred_ms, sent_ms, received_ms, historical, "
        "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        row,
    )
    if cur.rowcount == 1:
        return True
    cur = db.execute(
        "UPDATE events SET deliveries = deliveries + 1 WHERE id = ? AND device = ?",
        (event.id, message.device),
    )
    if cur.rowcount == 0:
        raise ProtocolError(f"event id {event.id} is already stored for another device")
    return False
