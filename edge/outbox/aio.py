"""The outbox for the event loop: every call runs on one dedicated thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from edge.model import Event, StoredEvent
from edge.outbox.store import Outbox

P = ParamSpec("P")
T = TypeVar("T")


class AsyncOutbox:
    """Async face of :class:`Outbox`; keeps a cached depth for status pages."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.depth = 0
        self.oldest_ms: int | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        await self._run(self.outbox.open)
        await self._refresh()

    async def close(self) -> None:
        if self._pool is None:
            return
        await self._run(self.outbox.close)
        self._pool.shutdown(wait=True)
        self._pool = None

    async def put(self, event: Event, now_ms: int) -> StoredEvent:
        stored = await self._run(self.outbox.put, event, now_ms)
        await self._refresh()
        return stored

    async def due(self, now_ms: int, limit: int) -> list[StoredEvent]:
        return await self._run(self.outbox.due, now_ms, limit)

    async def next_due_ms(self) -> int | None:
        return await self._run(self.outbox.next_due_ms)

    async def mark_sent(self, event_id: str, now_ms: int, retry_at_ms: int) -> None:
        await self._run(self.outbox.mark_sent, event_id, now_ms, retry_at_ms)

    async def ack(self, ids: list[str]) -> int:
        deleted = await self._run(self.outbox.ack, ids)
        await self._refresh()
        return deleted

    async def _refresh(self) -> None:
        self.depth = await self._run(self.outbox.depth)
        self.oldest_ms = await self._run(self.outbox.oldest_ms)

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            raise RuntimeError("outbox is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
