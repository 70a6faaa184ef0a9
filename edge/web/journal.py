"""The local event journal: every event of this box and how far each got.

Fed by the outbox (queued, handed to the link, acknowledged). The outbox forgets
an event once the station has it; the technician still wants to see it, with its
times, after a restart too: the journal keeps every event of the last
``days`` (at most ``max_rows``) in its own SQLite file (journal_store.py).

The alarm path never waits for it: the outbox's calls only note the change in a
small ring in memory (the last ``size`` events) and append a statement to a
list; one writer thread commits the list as one transaction per batch. Reads run
on the same thread, after the writes noted before them. A file SQLite finds
corrupt at open is moved aside (kept as ``journal.sqlite.corrupt-<ms>``) and a
new one begun (``started_afresh`` in the status). If the file cannot be opened
or written otherwise (read-only, disk full, locked) the journal goes on in
memory only: one error in the log, ``durable: false`` and the reason in its
status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from edge.errors import StorageError
from edge.model import (
    EventsAcknowledged,
    EventsQueued,
    EventsSent,
    MediaLost,
    MediaQueued,
    OutboxFact,
    StoredEvent,
)
from edge.protocol import iso_ms
from edge.web import journal_media as media
from edge.web.journal_store import (
    ACKED_SQL,
    MEDIA_SQL,
    QUEUED_SQL,
    SENT_SQL,
    Filter,
    JournalFile,
    MediaRow,
    Op,
    Row,
)

log = logging.getLogger(__name__)
STATES = ("queued", "sent", "acked")
# Statements waiting for the writer before the file is given up as stalled: about
# 230 bytes each, 12 MB at most; draining 10,000 events after an outage notes 20,000.
MAX_PENDING = 50_000
READ_WAIT_S = 3.0  # a page waits this long for the file, then shows the events in memory
MEDIA_NOTES = 5000  # what the outbox said of the newest media, kept in memory
T = TypeVar("T")

__all__ = ["STATES", "Entry", "Filter", "Journal"]


@dataclass
class Entry:
    id: str
    seq: int
    kind: str
    cid: str
    sia: str
    zone: str | None
    text: str
    occurred_ms: int
    queued_ms: int | None = None
    sent_ms: int | None = None
    attempts: int = 0
    acked_ms: int | None = None
    media: tuple[media.Announced, ...] = ()  # the stills and clips it announced
    n: int = 0  # the journal's own order, for paging

    @property
    def state(self) -> str:
        if self.acked_ms is not None:
            return "acked"
        return "sent" if self.sent_ms is not None else "queued"

    def matches(self, f: Filter) -> bool:
        return not (
            (f.kind and self.kind != f.kind)
            or (f.zone and self.zone != f.zone)
            or (f.state and self.state != f.state)
            or (f.since_ms is not None and self.occurred_ms < f.since_ms)
            or (f.until_ms is not None and self.occurred_ms >= f.until_ms)
            or (f.before is not None and self.n >= f.before)
        )

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = asdict(self)
        del body["n"], body["media"]
        body["state"] = self.state
        times = {"occurred": self.occurred_ms, "queued": self.queued_ms}
        times |= {"sent": self.sent_ms, "acked": self.acked_ms}
        for name, value in times.items():
            del body[f"{name}_ms"]
            body[f"{name}_at"] = None if value is None else iso_ms(value)
        return body


def _from_row(row: Row) -> Entry:
    n, *rest, announced = row
    entry = Entry(*rest)  # type: ignore[arg-type]
    entry.media = media.loads(announced)
    entry.n = int(n)  # type: ignore[call-overload]
    return entry


class Journal:
    """The events of the last ``days`` days (at most ``max_rows``), newest first.

    Constructing does no I/O; :meth:`open` starts the file and its writer. A journal
    never opened (or whose file failed) keeps the last ``size`` events in memory."""

    def __init__(self, size: int = 1000, days: int = 30, max_rows: int = 100_000) -> None:
        self.size = size
        self.days = days
        self.max_rows = max_rows
        self.durable = False
        self.problem: str | None = None
        self.started_afresh: str | None = None  # the file was damaged: moved aside at open
        self.path: Path | None = None
        self.written = 0  # statements committed to the file
        self.batches = 0
        self._by_id: OrderedDict[str, Entry] = OrderedDict()
        self._next_n = 1
        self._file: JournalFile | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Op] = []
        self._flush_queued = False
        self._lock = threading.Lock()
        self._last_ms = 0  # the newest time seen: "now" for pruning
        self._media: OrderedDict[str, media.Note] = OrderedDict()
        self.changes = 0  # events and media noted: the page looks again when it moves

    # -- lifecycle (on the loop) ---------------------------------------------------

    async def open(self, path: Path, now_ms: int) -> None:
        """Open ``path`` (creating it); on any problem go on in memory only."""
        self.path = path
        self._last_ms = max(self._last_ms, now_ms)
        self._file = JournalFile(path, self.days, self.max_rows, self.size)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="web.journal")
        self.durable = True
        try:
            rows, next_n = await self._run(self._file.open, now_ms, self.size)
        except StorageError as exc:
            self._degrade(str(exc))
            return
        self._seed(rows, next_n)
        aside = self._file.moved_aside
        if aside is not None:
            self.started_afresh = f"damaged file ({self._file.damage}) kept as {aside.name}"
        log.info("event journal %s: %d recent event(s) loaded", path, len(rows))
        self._schedule()

    async def flush(self) -> None:
        """Wait until every change noted so far is in the file (or the file is given up)."""
        if self._pool is not None and self.durable:
            await self._run(self._write)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        file = self._file
        try:
            await asyncio.wrap_future(pool.submit(self._write))
            if file is not None:
                await asyncio.wrap_future(pool.submit(file.close))
        finally:
            pool.shutdown(wait=False)
        self.durable = False

    # -- the outbox's notes (on the loop, never blocking) ---------------------------

    def observe(self, fact: OutboxFact) -> None:
        """The outbox's facts, as the journal records them (an outbox observer)."""
        if isinstance(fact, EventsQueued):
            for stored in fact.events:
                self.queued(stored, fact.at_ms)
        elif isinstance(fact, EventsSent):
            self.sent(fact.events, fact.at_ms)
        elif isinstance(fact, EventsAcknowledged):
            self.acked(fact.ids, fact.at_ms)
        elif isinstance(fact, MediaQueued):
            item = fact.media
            file = "" if item.lost is not None else str(item.file)
            note = media.Note(
                item.id, item.kind, item.content_type, file, item.size, item.lost, fact.at_ms
            )
            self.media_noted(note)
        elif isinstance(fact, MediaLost):
            self.media_noted(
                media.Note(fact.media_id, fact.kind, "", "", 0, fact.reason, fact.at_ms)
            )

    def queued(self, stored: StoredEvent, at_ms: int) -> None:
        self._entry(stored).queued_ms = at_ms
        self._note(QUEUED_SQL, (*_fields(stored), _announced(stored), at_ms, 0), at_ms)

    def sent(self, batch: Iterable[StoredEvent], at_ms: int) -> None:
        for stored in batch:
            entry = self._entry(stored)
            entry.sent_ms = at_ms
            entry.attempts += 1
            self._note(SENT_SQL, (*_fields(stored), _announced(stored), at_ms, 1), at_ms)

    def acked(self, ids: Iterable[str], at_ms: int) -> None:
        for event_id in ids:
            entry = self._by_id.get(event_id)
            if entry is not None and entry.acked_ms is None:
                entry.acked_ms = at_ms
            self._note(ACKED_SQL, (at_ms, event_id), at_ms)

    def media_noted(self, note: media.Note) -> None:
        """A still or clip queued in the outbox (its file there), or told lost."""
        self._media[note.id] = note
        self._media.move_to_end(note.id)
        while len(self._media) > MEDIA_NOTES:
            self._media.popitem(last=False)
        row = (note.id, note.kind, note.content_type, note.file, note.size, note.lost, note.at_ms)
        self._note(MEDIA_SQL, row, note.at_ms)

    async def media_file(self, media_id: str) -> tuple[str, str] | None:
        """The file of a media still in the outbox, and its type; None when it is not
        (or no longer) on the box."""
        note = self._media.get(media_id)
        if note is None and self._pool is not None and self.durable:
            try:
                rows = await asyncio.wait_for(self._run(self._read_media, [media_id]), READ_WAIT_S)
            except (StorageError, TimeoutError):
                rows = []
            note = _note(rows[0]) if rows else None
        if note is None or media.state(note) != "here" or note.content_type not in media.TYPES:
            return None
        return note.file, note.content_type

    # -- reading ---------------------------------------------------------------------

    async def query(self, f: Filter | None = None, limit: int = 200) -> dict[str, Any]:
        """``{"events": [...] newest first, "counts": {state: n}, "next_before": n|None,
        "source": "file"|"memory"}``; ``next_before`` pages on to older events, None when
        there are none. A file slower than ``READ_WAIT_S`` is answered from memory."""
        f = f or Filter()
        if self._pool is not None and self.durable:
            try:
                rows, counts, notes = await asyncio.wait_for(
                    self._run(self._read, f, limit), READ_WAIT_S
                )
            except StorageError as exc:
                self._degrade(f"cannot read the event journal: {exc}")
            except TimeoutError:
                log.warning("event journal file slow to answer: the page shows what is in memory")
            else:
                return _page([_from_row(r) for r in rows], counts, limit, "file", notes)
        found = []
        for entry in reversed(self._by_id.values()):
            if entry.matches(f):
                found.append(entry)
                if len(found) > limit:
                    break
        return _page(found, self.counts(), limit, "memory", self._media)

    def counts(self) -> dict[str, int]:
        """Of the events in memory."""
        counts = dict.fromkeys(STATES, 0)
        for entry in self._by_id.values():
            counts[entry.state] += 1
        return counts

    def status(self) -> dict[str, Any]:
        return {
            "durable": self.durable,
            "file": None if self.path is None else str(self.path),
            "problem": self.problem,
            "started_afresh": self.started_afresh,
            "days": self.days,
            "max_rows": self.max_rows,
            "pending": len(self._pending),
            "written": self.written,
            "batches": self.batches,
            "changes": self.changes,
        }

    # -- inside ----------------------------------------------------------------------

    def _entry(self, stored: StoredEvent) -> Entry:
        event = stored.event
        entry = self._by_id.get(event.id)
        if entry is None:
            entry = Entry(*_fields(stored), media=media.announced(event.extra), n=self._next_n)
            self._next_n += 1
            self._by_id[event.id] = entry
            while len(self._by_id) > self.size:
                self._by_id.popitem(last=False)
        return entry

    def _seed(self, rows: list[Row], next_n: int) -> None:
        """The file's newest events, then those noted while it was opening."""
        ring: OrderedDict[str, Entry] = OrderedDict((str(r[1]), _from_row(r)) for r in rows)
        self._next_n = next_n
        for event_id, entry in self._by_id.items():
            if event_id not in ring:
                entry.n = self._next_n
                self._next_n += 1
            ring[event_id] = entry
        while len(ring) > self.size:
            ring.popitem(last=False)
        self._by_id = ring

    def _note(self, sql: str, params: tuple[object, ...], at_ms: int) -> None:
        self._last_ms = max(self._last_ms, at_ms)
        self.changes += 1
        if self.problem is not None or self._pool is None:
            return  # memory only, or never opened
        with self._lock:
            self._pending.append((sql, params))
            waiting = len(self._pending)
            start = not self._flush_queued  # else the writer's next batch takes it
            self._flush_queued = True
        if waiting > MAX_PENDING:
            self._degrade(f"event journal writes stalled: {waiting} changes waiting")
        elif start:
            with contextlib.suppress(RuntimeError):  # shut down: close() wrote what was left
                self._pool.submit(self._write)

    def _schedule(self) -> None:
        with self._lock:
            if self._flush_queued or not self._pending or self._pool is None:
                return
            self._flush_queued = True
            pool = self._pool
        with contextlib.suppress(RuntimeError):  # shut down: close() wrote what was left
            pool.submit(self._write)

    def _write(self) -> None:
        """On the writer thread: everything noted so far, in one transaction."""
        with self._lock:
            ops, self._pending = self._pending, []
            self._flush_queued = False
        file = self._file
        if file is None or not self.durable:
            return
        try:
            self.written += file.write(ops, self._last_ms)
            self.batches += 1
        except StorageError as exc:
            self._degrade(f"cannot write the event journal: {exc}")
        except Exception as exc:  # a bug must not leave the journal silently stuck
            log.exception("event journal writer failed")
            self._degrade(f"event journal writer failed: {exc!r}")
        if self.problem is not None:
            file.close()

    def _read(
        self, f: Filter, limit: int
    ) -> tuple[list[Row], dict[str, int], dict[str, media.Note]]:
        self._write()
        if self._file is None or not self.durable:
            raise StorageError("the event journal file was given up")
        rows, counts = self._file.query(f, limit + 1)
        ids = [m.id for r in rows for m in media.loads(r[-1])]
        notes = {n.id: n for n in map(_note, self._file.media(ids))} if ids else {}
        return rows, counts, notes

    def _read_media(self, ids: list[str]) -> list[MediaRow]:
        self._write()
        if self._file is None or not self.durable:
            raise StorageError("the event journal file was given up")
        return self._file.media(ids)

    def _degrade(self, problem: str) -> None:
        """Memory only from now on (either thread); said once."""
        with self._lock:
            if self.problem is not None:
                return
            self.problem = problem
            self.durable = False
            self._pending = []
        log.error("%s; the journal keeps only the last %d events in memory", problem, self.size)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        assert self._pool is not None
        return await asyncio.wrap_future(self._pool.submit(fn, *args))


def _fields(stored: StoredEvent) -> tuple[str, int, str, str, str, str | None, str, int]:
    event = stored.event
    zone = event.zone.id if event.zone is not None else None
    kind, codes = event.kind.value, event.codes
    return (
        event.id,
        stored.seq,
        kind,
        codes.cid,
        codes.sia,
        zone,
        event.text,
        event.occurred_at_ms,
    )


def _announced(stored: StoredEvent) -> str:
    return media.dumps(media.announced(stored.event.extra))


def _note(row: MediaRow) -> media.Note:
    return media.Note(*row)


def _page(
    found: list[Entry],
    counts: dict[str, int],
    limit: int,
    source: str,
    notes: Mapping[str, media.Note],
) -> dict[str, Any]:
    """A page of events, each with its media as the page shows them (journal_media)."""
    more = len(found) > limit
    found = found[:limit]
    events = []
    for e in found:
        body = e.as_json()
        body["media"] = [media.as_json(m, notes.get(m.id)) for m in e.media]
        events.append(body)
    return {
        "events": events,
        "counts": counts,
        "next_before": found[-1].n if more and found else None,
        "source": source,
    }
