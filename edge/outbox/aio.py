"""The outbox for the event loop: one dedicated thread, group commit, own troubles.

Every call runs on one worker thread; event commits, leases and acks go in
its urgent lane, before media files and figures (see ``worker``). Events put while a
commit is under way are committed together in the next one (group commit):
one fsync for many alarms when they come in bursts, one per alarm when they
do not.

The outbox reports its own troubles as events in itself: a corrupt database
moved aside (300, system trouble), evicted motion events or media and
messages the broker refused (354, failure to communicate an event).

A full disk never holds an alarm back: the commit is tried again at once
with the reserve's bytes (``reserve``), then room is made in the policy's
order (motion media, then footage through ``free_disk``, then clips, then
stills) and the reserve taken back; an event the disk still refuses is held
in memory and sent all the same (``held``), and committed once the disk
takes it (one 300 trouble for the episode, and its restore).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import ParamSpec, TypeVar

from edge.clock import Clock, ms
from edge.codes import Condition, Kind
from edge.errors import DiskFull, StorageError
from edge.model import (
    Event,
    EventsAcknowledged,
    EventsQueued,
    EventsSent,
    MediaDue,
    MediaLost,
    MediaQueued,
    OutboxFact,
    OutboxObserver,
    QueuedMedia,
    StoredEvent,
    box_event,
)
from edge.outbox.held import Held, HeldEvents
from edge.outbox.media import MediaPut
from edge.outbox.reserve import Reserve
from edge.outbox.room import FreeDisk, Room
from edge.outbox.schema import priority
from edge.outbox.store import Outbox, PutResult
from edge.outbox.worker import LaneWorker

log = logging.getLogger(__name__)
FIGURES_PERIOD_S = 0.1  # the status figures lag commits by at most this, under load
RETRY_MIN_S = 0.5  # held events: the first retry of their commit, doubling
RETRY_MAX_S = 5.0
P = ParamSpec("P")
T = TypeVar("T")
Pending = tuple[Event, int, "asyncio.Future[StoredEvent] | None", tuple[MediaDue, ...]]


class AsyncOutbox:
    """Async face of :class:`Outbox`; keeps cached figures for status pages."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Clock,
        reserve: Reserve | None = None,
        free_disk: FreeDisk | None = None,
        observers: Sequence[OutboxObserver] = (),
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.reserve = reserve
        self.room = Room(outbox, reserve, free_disk, self._evicted_threadsafe)
        self.held = HeldEvents()
        self.stored_depth = 0
        self.oldest_ms: int | None = None
        self.media_count = 0
        self.media_bytes = 0
        self.observers = list(observers)  # told every fact, on the loop (journal, sender)
        self._pool: LaneWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Pending] = []
        self._flush_queued = False
        self._lock = threading.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        self._stale = False  # a commit since the figures were last read
        self._retrying: asyncio.Task[None] | None = None
        self._media_put: set[str] = set()  # media queued while events were held
        self.troubled: str | None = None  # the storage trouble sent, until its restore

    @property
    def depth(self) -> int:
        """Events not yet acknowledged: on disk and held in memory."""
        return self.stored_depth + len(self.held)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = LaneWorker("outbox")
        await self._run(self.outbox.open, ms(self.clock.time()))
        if self.reserve is not None and not await self._run(self.room.take_reserve):
            log.error(
                "disk too full for the outbox reserve (%d bytes): retrying in the background",
                self.reserve.size_bytes,
            )
            self._retry_soon()
        if self.outbox.moved_aside is not None:
            self._trouble(
                Condition.SYSTEM_TROUBLE,
                f"outbox database was corrupt ({self.outbox.corruption}); "
                f"kept as {self.outbox.moved_aside.name}, started a new one",
            )
        await self._refresh()

    async def close(self) -> None:
        if self._pool is None:
            return
        for task in (self._refreshing, self._retrying):
            if task is not None and not task.done():
                task.cancel()  # a closing outbox: nobody will read its figures
                with contextlib.suppress(asyncio.CancelledError, StorageError):
                    await task
        self._refreshing = self._retrying = None
        await self._run(self._flush)
        if self.held:  # a last try; what still fails is in the log, not lost silently
            with contextlib.suppress(StorageError):
                await self._commit_held()
            for held in self.held.snapshot():
                log.critical(
                    "event %s seq %d NOT stored at stop (%s), not acknowledged: %s",
                    held.stored.event.id,
                    held.stored.seq,
                    self.held.error,
                    held.stored.event,
                )
        await self._run(self.outbox.close)
        self._pool.shutdown()
        self._pool = None

    # -- events ------------------------------------------------------------

    async def put(self, event: Event, now_ms: int, due: tuple[MediaDue, ...] = ()) -> StoredEvent:
        """Commit ``event`` (grouped with any others waiting) with the media it announced;
        returns once it is on disk, or held in memory (``durable`` False) if the disk
        refuses it: it is sent all the same."""
        if self._pool is None or self._loop is None:
            raise StorageError("outbox is not open")
        future: asyncio.Future[StoredEvent] = self._loop.create_future()
        self._enqueue((event, now_ms, future, due))
        return await future

    async def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        batch = await self._lease(now_ms, live_after_ms, lease_ms, limit)
        if batch:
            self._tell(EventsSent(tuple(batch), now_ms))
        return batch

    async def _lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        held = self.held.lease(now_ms, lease_ms, limit)  # they go first: the disk failed them
        if len(held) >= limit:
            return held
        try:
            stored = await self._urgent(
                self.outbox.lease, now_ms, live_after_ms, lease_ms, limit - len(held)
            )
        except StorageError:
            if not held:
                raise
            log.warning("outbox not readable: sending the %d event(s) held in memory", len(held))
            return held
        return held + stored

    async def release(self, ids: list[str]) -> None:
        rest = self.held.release(ids)
        if rest:
            await self._run(self.outbox.release, rest)

    async def reset_leases(self) -> None:
        self.held.reset()
        await self._run(self.outbox.reset_leases)

    async def next_due_ms(self) -> int | None:
        held = self.held.next_due_ms()
        try:
            stored = await self._run(self.outbox.next_due_ms)
        except StorageError:
            if held is None:
                raise
            return held
        return min((t for t in (held, stored) if t is not None), default=None)

    async def ack(self, ids: list[str] | tuple[str, ...]) -> int:
        count, rest = self.held.ack(ids)
        deleted = await self._urgent(self.outbox.ack, rest) if rest else 0
        if deleted or count:
            self._figures_stale()  # refreshed in the background, at most ~10 times/s
        self._tell(EventsAcknowledged(tuple(ids), self._now()))
        return deleted + count

    async def zone_kinds(self) -> dict[str, Kind]:
        return await self._run(self.outbox.zone_kinds)

    async def oldest_alarm_ms(self) -> int | None:
        return await self._run(self.outbox.oldest_alarm_ms)

    async def dead_letter(
        self, event_id: str, reason: str, code: int | None, notify: bool = True
    ) -> None:
        """Move a refused event aside; say so with a 354 trouble unless ``notify`` is
        False (the refused event was itself such a trouble: no loop of troubles)."""
        now = ms(self.clock.time())
        if self.held.take(event_id) is not None:  # never on disk: the log keeps it
            log.error("event %s (held in memory) refused by the broker: dropped", event_id)
            moved = True
        else:
            moved = await self._run(self.outbox.dead_letter, event_id, reason, code, now)
        if moved and notify:
            self._trouble(
                Condition.COMM_FAILED_EVENT, f"event {event_id} refused by the broker: {reason}"
            )
        await self._refresh()

    # -- media -------------------------------------------------------------

    async def put_media(
        self, event: Event, media_id: str, kind: str, content_type: str, data: bytes
    ) -> QueuedMedia:
        """Queue a still or clip durably. On a full disk, motion media and footage make
        room first (never events, nor other alarms' media); DiskFull if still too full:
        the caller tries again while the media is still wanted."""
        now = ms(self.clock.time())
        args = (event.id, media_id, kind, content_type, data, priority(event), now)
        put: MediaPut = await self._run(self.room.put_media, args)
        if self.held:
            self._media_put.add(media_id)
        if put.evicted:
            self._trouble(
                Condition.COMM_FAILED_EVENT,
                f"media quota reached: {put.evicted} older still(s)/clip(s) evicted",
            )
        await self._refresh()
        self._tell(MediaQueued(put.item, now))
        return put.item

    async def lease_media(self, now_ms: int, lease_ms: int) -> QueuedMedia | None:
        return await self._run(self.outbox.media.lease, now_ms, lease_ms)

    async def hold_media(self, media_id: str, until_ms: int) -> None:
        await self._run(self.outbox.media.hold, media_id, until_ms)

    async def media_progress(self, media_id: str, have: int, complete: bool) -> bool:
        known = await self._run(self.outbox.media.progress, media_id, have, complete)
        if complete:
            await self._refresh()
        return known

    async def put_lost(self, event: Event, media_id: str, kind: str, reason: str) -> bool:
        """Tell the station that a media ``event`` announced will never come, and why."""
        now = ms(self.clock.time())
        args = (event.id, media_id, kind, reason, priority(event), now)
        done: bool = await self._run(self.outbox.media.put_lost, *args)
        await self._refresh()
        if done:
            self._tell(MediaLost(media_id, event.id, kind, reason, now))
        return done

    async def put_due_media(self, due: MediaDue, content_type: str, data: bytes) -> None:
        """Queue a media an event announced, made after a restart (cut from footage)."""
        now = ms(self.clock.time())
        put: MediaPut = await self._run(self.outbox.media.put_due, due, content_type, data, now)
        await self._refresh()
        self._tell(MediaQueued(put.item, now))

    async def lose_due(self, due: MediaDue, reason: str) -> None:
        """Tell the station that a media an event announced will never come, and why."""
        now = ms(self.clock.time())
        if await self._run(self.outbox.media.lose_due, due, reason, now):
            self._tell(MediaLost(due.id, due.event_id, due.kind, reason, now))
        await self._refresh()

    async def media_due(self) -> list[MediaDue]:
        """Media announced by stored events and never queued (a stop or power cut)."""
        return await self._run(self.outbox.media.due)

    async def media_chunk(self, item: QueuedMedia, index: int) -> bytes:
        return await self._run(self.outbox.media.chunk, item, index)

    async def media_chunks(self, item: QueuedMedia, first: int, count: int) -> list[bytes]:
        return await self._run(self.outbox.media.chunks, item, first, count)

    async def dead_letter_media(self, media_id: str, reason: str, code: int | None) -> None:
        now = ms(self.clock.time())
        if await self._run(self.outbox.media.dead_letter, media_id, reason, code, now):
            self._trouble(Condition.COMM_FAILED_EVENT, f"media {media_id} refused: {reason}")
            await self._refresh()

    # -- group commit ------------------------------------------------------

    def _enqueue(self, item: Pending) -> None:
        if self._pool is None or self._loop is None:  # before queueing: nothing would flush it
            raise StorageError("outbox is not open")
        with self._lock:
            self._pending.append(item)
            queue_flush = not self._flush_queued
            self._flush_queued = True
        if queue_flush:
            self._pool.submit(self._flush, urgent=True).add_done_callback(_log_failure)

    def _flush(self) -> None:
        """Worker thread: commit everything waiting in one transaction."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._flush_queued = False
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[Pending]) -> None:
        """Worker thread: one transaction. A full disk: again at once with the reserve's
        bytes, then the batch is held in memory (sent all the same). Another failure:
        one transaction per event, so one bad event fails alone (and is held)."""
        try:
            result = self._put(batch)
        except DiskFull as exc:
            if not (self.reserve is not None and self.reserve.release()):
                self._hold(batch, exc)
                return
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._storage_trouble, str(exc))
            try:
                result = self._put(batch)
            except Exception as again:  # noqa: BLE001 (the events are held, not lost)
                self._hold(batch, again)
                return
            finally:
                self._retry_soon_threadsafe()  # make room, take the reserve back
        except Exception as exc:  # noqa: BLE001 (held, or handed to the caller's future)
            if len(batch) > 1:
                for item in batch:
                    self._commit([item])
            elif _disk_fault(exc):
                self._hold(batch, exc)
            else:  # the event itself cannot be stored (a duplicate id, unencodable)
                self._settle(batch[0][2], None, exc)
            return
        for (_event, _now, future, _due), stored in zip(batch, result.stored, strict=True):
            self._settle(future, stored, None)
        self._after_put(result)

    def _put(self, batch: list[Pending]) -> PutResult:
        own = sum(future is None for _event, _now, future, _due in batch)  # need no room
        return self.outbox.put_many(
            [(event, now) for event, now, _f, _d in batch],
            room_for=len(batch) - own,
            due=[d for *_rest, due in batch for d in due],
        )

    def _hold(self, batch: list[Pending], error: BaseException) -> None:
        """Worker thread: the disk refused ``batch``: numbered now, held in memory."""
        assert self._loop is not None
        seqs = self.outbox.reserve_seqs(len(batch))
        held = [
            Held(StoredEvent(e, seq, priority(e), 0, None, durable=False), now, due)
            for (e, now, _f, due), seq in zip(batch, seqs, strict=True)
        ]
        self._loop.call_soon_threadsafe(self._held, held, [f for _e, _n, f, _d in batch], error)

    def _held(
        self,
        held: list[Held],
        futures: list[asyncio.Future[StoredEvent] | None],
        error: BaseException,
    ) -> None:
        """On the loop: the events go out from memory; their commit is retried."""
        first = not self.held
        for item, future in zip(held, futures, strict=True):
            self.held.add(item)
            stored = item.stored
            log.error(
                "event %s seq %d NOT on disk (%s): held in memory and sent; retrying its commit",
                stored.event.id,
                stored.seq,
                error,
            )
            if future is not None and not future.done():
                future.set_result(stored)
        self.held.error = str(error)
        if first:
            self._storage_trouble(f"events cannot be stored ({error}): sent from memory")
        self._retry_soon()
        self._tell(EventsQueued(tuple(item.stored for item in held), self._now()))

    def _storage_trouble(self, what: str) -> None:
        """On the loop: one system trouble (300) per episode of a full or failing disk;
        its restore once every event is on disk and the reserve taken back."""
        if self.troubled is not None:
            return
        self.troubled = what
        self._trouble(
            Condition.SYSTEM_TROUBLE,
            f"outbox: disk full or failing ({what}); alarms are still stored and sent, "
            "the box makes room (motion media, then the oldest recordings)",
        )

    def _retry_soon_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._retry_soon)

    def _retry_soon(self) -> None:
        if self._pool is None:
            return
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._run_retries(), name="outbox.retry")

    async def _run_retries(self) -> None:
        """Until nothing is held and the reserve is back: make room, commit what is held,
        take the reserve back; 0.5 s apart, doubling to 5 s."""
        delay = RETRY_MIN_S
        while True:
            try:
                if self.held or self.held.acked:
                    await self._commit_held()
                if self.reserve is not None:
                    await self._run(self.room.take_reserve)
            except StorageError as exc:
                self.held.error = str(exc)
                log.debug("outbox retry failed: %s", exc)
            if not self.held and not self.held.acked and self._reserve_held():
                break
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
        self._media_put.clear()
        with contextlib.suppress(StorageError):
            await self._refresh()
        if self.troubled is not None:
            text = f"outbox: every event is stored on disk again (was: {self.troubled})"
            self.troubled = None
            log.warning("%s", text)
            self._enqueue(
                (
                    box_event(Condition.SYSTEM_TROUBLE, True, text, self._now()),
                    self._now(),
                    None,
                    (),
                )
            )

    def _reserve_held(self) -> bool:
        return self.room.reserve_held

    def _evicted_threadsafe(self, count: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                self._trouble,
                Condition.COMM_FAILED_EVENT,
                f"disk full: {count} alarm still(s)/clip(s) evicted so that events are stored",
            )

    async def _commit_held(self) -> None:
        """Commit the held events with their numbers (room made first); those the station
        acknowledged meanwhile only update their zone's last event."""
        held = self.held.snapshot()
        acked, self.held.acked = self.held.acked, []
        media_put = set(self._media_put)
        try:
            await self._urgent(self._commit_held_sync, held, acked, media_put)
        except BaseException:
            self.held.acked[:0] = acked
            raise
        late = []
        for item in held:
            if self.held.take(item.stored.event.id) is None:
                late.append(item.stored.event.id)  # acknowledged while being committed
        if late:
            await self._urgent(self.outbox.ack, late)
        if held:
            log.warning("%d event(s) held in memory are now stored on disk", len(held))
        self._stored()

    def _commit_held_sync(
        self, held: list[Held], acked: list[tuple[Event, int]], media_put: set[str]
    ) -> None:
        """Worker thread."""
        if held:
            need = 64 * 1024 * len(held)
            with contextlib.suppress(StorageError):
                self.room.make(need, True)
            due = [d for h in held for d in h.due if d.id not in media_put]
            self.outbox.put_many(
                [(h.stored.event, h.now_ms) for h in held],
                room_for=0,
                seqs=[h.stored.seq for h in held],
                due=due,
            )
        if acked:
            self.outbox.note_zones(acked)

    def _now(self) -> int:
        return ms(self.clock.time())

    def _after_put(self, result: PutResult) -> None:
        assert self._loop is not None
        if result.evicted_events:
            self._loop.call_soon_threadsafe(
                self._trouble,
                Condition.COMM_FAILED_EVENT,
                f"outbox full: {result.evicted_events} motion-only event(s) evicted",
            )
        self._loop.call_soon_threadsafe(self._stored, tuple(result.stored))

    def _stored(self, events: tuple[StoredEvent, ...] = ()) -> None:
        self._figures_stale()
        if events:
            self._tell(EventsQueued(events, self._now()))

    def _tell(self, fact: OutboxFact) -> None:
        """Every observer hears every fact; one that fails is logged, never the caller's."""
        for observer in self.observers:
            try:
                observer(fact)
            except Exception:
                log.exception("outbox observer %r failed on %s", observer, type(fact).__name__)

    def _figures_stale(self) -> None:
        if self._pool is None:
            return  # closed (or closing): no figures to refresh
        self._stale = True
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_stale(), name="outbox.figures")

    async def _refresh_stale(self) -> None:
        """Refresh until no commit came in meanwhile (its figures might be missed);
        under a stream of commits, at most every FIGURES_PERIOD_S."""
        while self._stale:
            self._stale = False
            try:
                await self._refresh()
            except StorageError as exc:  # closed meanwhile, or the disk: figures wait
                log.debug("outbox figures not refreshed: %s", exc)
                return
            if self._stale:
                await asyncio.sleep(FIGURES_PERIOD_S)

    def _settle(
        self,
        future: asyncio.Future[StoredEvent] | None,
        stored: StoredEvent | None,
        error: BaseException | None,
    ) -> None:
        if future is None or self._loop is None:
            if error is not None:
                log.error("outbox could not store the box's own trouble event: %s", error)
            return
        self._loop.call_soon_threadsafe(_resolve, future, stored, error)

    def _trouble(self, condition: Condition, text: str) -> None:
        """Queue a trouble event about the outbox itself (never evicted)."""
        now = ms(self.clock.time())
        event = box_event(condition, False, text, now)
        log.error("trouble: %s", text)
        self._enqueue((event, now, None, ()))

    async def _refresh(self) -> None:
        self.stored_depth, self.oldest_ms, (self.media_count, self.media_bytes) = await self._run(
            lambda: (self.outbox.depth(), self.outbox.oldest_ms(), self.outbox.media.figures())
        )

    # -- for the routes' views (edge/outbox/routeview.py) --------------------------------

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` on the outbox's thread, in the normal lane."""
        return await self._run(fn, *args, **kwargs)

    async def urgent(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` on the outbox's thread, in the events' lane."""
        return await self._urgent(fn, *args, **kwargs)

    def tell(self, fact: OutboxFact) -> None:
        self._tell(fact)

    def figures_stale(self) -> None:
        self._figures_stale()

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None or self._loop is None:
            raise StorageError("outbox is not open")
        return await asyncio.wrap_future(self._pool.submit(lambda: fn(*args, **kwargs)))

    async def _urgent(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The events' own path (lease, ack): ahead of media files and figures."""
        if self._pool is None or self._loop is None:
            raise StorageError("outbox is not open")
        job = self._pool.submit(lambda: fn(*args, **kwargs), urgent=True)
        return await asyncio.wrap_future(job)


def _disk_fault(exc: BaseException) -> bool:
    """A failure of the disk (full, I/O, locked), not of the event being stored."""
    return isinstance(exc, StorageError) and not isinstance(exc.__cause__, sqlite3.IntegrityError)


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("outbox commit failed outside any caller", exc_info=exc)


def _resolve(
    future: asyncio.Future[StoredEvent], stored: StoredEvent | None, error: BaseException | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert stored is not None
        future.set_result(stored)
