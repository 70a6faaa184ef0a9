"""Edges from gpiozero's thread to the event loop: bounded, one wake-up per batch.

Each edge is appended to a bounded buffer; the loop is woken only when the
buffer goes from empty to non-empty, so chatter costs one loop callback per
batch, not one per edge. When the buffer is full an edge is dropped and the
batch is flagged ``overflowed``: the receiver then re-reads the pins' real
levels once it has caught up, so a lost edge can delay a change but never
leave a zone in the wrong state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from edge.model import ZoneChanged

Deliver = Callable[[list[ZoneChanged], int], None]  # (edges, how many were dropped)


class EdgeRelay:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, deliver: Deliver, max_pending: int = 10_000
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._max = max_pending
        self._lock = threading.Lock()
        self._pending: list[ZoneChanged] = []
        self._dropped = 0
        self._scheduled = False

    def push(self, change: ZoneChanged) -> None:
        """From any thread: queue ``change`` (or count it dropped) and wake the loop once."""
        with self._lock:
            if len(self._pending) < self._max:
                self._pending.append(change)
            else:
                self._dropped += 1
            if self._scheduled:
                return
            self._scheduled = True
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            dropped, self._dropped = self._dropped, 0
            self._scheduled = False
        self._deliver(batch, dropped)
