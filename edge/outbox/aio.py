"""The outbox for the event loop: one dedicated thread, group commit, own troubles.

Every call runs on one worker thread; event commits, leases and acks go in
its urgent lane, before media files and figures (see ``worker``). Events put while a
commit is under way are committed together in the next one (group commit):
one fsync for many alarms when they come in bursts, one per alarm when they
do not.

The outbox reports its own troubles as events in itself: a corrupt database
moved aside (300, system trouble), evicted motion events or media and
messages the broker refused (354, failure to communicate an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import ParamSpec, TypeVar

from edge.clock import Clock, ms
from edge.codes import Condition, Kind
from edge.errors import StorageError
from edge.model import Event, QueuedMedia, StoredEvent, box_event
from edge.outbox.media import MediaPut
from edge.outbox.schema import priority
from edge.outbox.store import Outbox, PutResult
from edge.outbox.worker import LaneWorker

log = logging.getLogger(__name__)
FIGURES_PERIOD_S = 0.1  # the status figures lag commits by at most this, under load
P = ParamSpec("P")
T = TypeVar("T")
Pending = tuple[Event, int, "asyncio.Future[StoredEvent] | None"]


class AsyncOutbox:
    """Async face of :class:`Outbox`; keeps cached figures for status pages."""

    def __init__(self, outbox: Outbox, clock: Clock) -> None:
        self.outbox = outbox
        self.clock = clock
        self.depth = 0
        self.oldest_ms: int | None = None
        self.media_count = 0
        self.media_bytes = 0
        self.on_stored: Callable[[], None] = lambda: None
        self._pool: LaneWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Pending] = []
        self._flush_queued = False
        self._lock = threading.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        self._stale = False  # a commit since the figures were last read

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = LaneWorker("outbox")
        await self._run(self.outbox.open, ms(self.clock.time()))
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
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None and not refreshing.done():
            refreshing.cancel()  # figures of a closing outbox: nobody will read them
            with contextlib.suppress(asyncio.CancelledError, StorageError):
                await refreshing
        await self._run(self._flush)
        await self._run(self.outbox.close)
        self._pool.shutdown()
        self._pool = None

    # -- events ------------------------------------------------------------

    async def put(self, event: Event, now_ms: int) -> StoredEvent:
        """Commit ``event`` (grouped with any others waiting); returns once it is on disk."""
        if self._pool is None or self._loop is None:
            raise StorageError("outbox is not open")
        future: asyncio.Future[StoredEvent] = self._loop.create_future()
        self._enqueue((event, now_ms, future))
        return await future

    async def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        return await self._urgent(self.outbox.lease, now_ms, live_after_ms, lease_ms, limit)

    async def release(self, ids: list[str]) -> None:
        await self._run(self.outbox.release, ids)

    async def reset_leases(self) -> None:
        await self._run(self.outbox.reset_leases)

    async def next_due_ms(self) -> int | None:
        return await self._run(self.outbox.next_due_ms)

    async def ack(self, ids: list[str] | tuple[str, ...]) -> int:
        deleted = await self._urgent(self.outbox.ack, ids)
        if deleted:
            self._figures_stale()  # refreshed in the background, at most ~10 times/s
        return deleted

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
        now = ms(self.clock.time())
        put: MediaPut = await self._run(
            self.outbox.media.put,
            event.id,
            media_id,
            kind,
            content_type,
            data,
            priority(event),
            now,
        )
        if put.evicted:
            self._trouble(
                Condition.COMM_FAILED_EVENT,
                f"media quota reached: {put.evicted} older still(s)/clip(s) evicted",
            )
        await self._refresh()
        self.on_stored()
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
        """Worker thread: one transaction; if it fails, one per event, so one bad event
        fails alone. Every error goes to its caller: an unsettled future hangs ``put``."""
        own = sum(future is None for _event, _now, future in batch)  # need no room
        try:
            result = self.outbox.put_many(
                [(event, now) for event, now, _ in batch], room_for=len(batch) - own
            )
        except Exception as exc:  # noqa: BLE001 (handed to the caller's future)
            if len(batch) > 1:
                for item in batch:
                    self._commit([item])
            else:
                self._settle(batch[0][2], None, exc)
            return
        for (_event, _now, future), stored in zip(batch, result.stored, strict=True):
            self._settle(future, stored, None)
        self._after_put(result)

    def _after_put(self, result: PutResult) -> None:
        assert self._loop is not None
        if result.evicted_events:
            self._loop.call_soon_threadsafe(
                self._trouble,
                Condition.COMM_FAILED_EVENT,
                f"outbox full: {result.evicted_events} motion-only event(s) evicted",
            )
        self._loop.call_soon_threadsafe(self._stored)

    def _stored(self) -> None:
        self._figures_stale()
        self.on_stored()

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
        self._enqueue((event, now, None))

    async def _refresh(self) -> None:
        self.depth, self.oldest_ms, (self.media_count, self.media_bytes) = await self._run(
            lambda: (self.outbox.depth(), self.outbox.oldest_ms(), self.outbox.media.figures())
        )

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
