"""The workstation's live feed: what changed in the queue, pushed to every open page.

Whatever changes an incident moves the store's one version counter
(:mod:`edge.station.incidents`), whichever process made the change (a receiver
filing an alarm, another page's operator taking one). One task per page
process reads that counter every ``poll_s`` (a one-row read), and when it
moved, reads the incidents changed since and pushes them at once to every open
stream (Server-Sent Events): the browsers never poll. A stream opened with
``since`` first gets what changed after that version, so a page that read the
queue and then opened its stream misses nothing. The same task marks the
incidents nobody took within ``escalate_s`` (once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from edge.clock import Clock, ms
from edge.errors import StorageError
from edge.station import incidents, views
from edge.station.store import StationStore

log = logging.getLogger(__name__)

Push = dict[str, Any] | None  # None: the page is stopping


class Feed:
    """Construct (no I/O), ``start()`` with the store open, ``await stop()``."""

    def __init__(self, store: StationStore, clock: Clock, poll_s: float, escalate_s: float) -> None:
        self.store = store
        self.clock = clock
        self.poll_s = poll_s
        self.escalate_s = escalate_s
        self.escalate_every_s = 1.0
        self.listeners: set[asyncio.Queue[Push]] = set()
        self.version = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="workstation.feed")

    async def stop(self) -> None:
        for queue in list(self.listeners):
            with contextlib.suppress(asyncio.QueueFull):  # then cleanup's timeout ends it
                queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _now_ms(self) -> int:
        return ms(self.clock.time())

    async def _run(self) -> None:
        self.version = await asyncio.to_thread(self._version)
        escalated_at = self.clock.monotonic()
        while True:
            try:
                if self.clock.monotonic() - escalated_at >= self.escalate_every_s:
                    escalated_at = self.clock.monotonic()
                    await asyncio.to_thread(self._escalate)
                if await asyncio.to_thread(self._version) > self.version:
                    changes = await asyncio.to_thread(self.changes, self.version)
                    self.version = int(changes["v"])
                    self._push(changes)
            except StorageError:
                log.exception("workstation feed cannot read the store; retrying")
            await asyncio.sleep(self.poll_s)

    def _version(self) -> int:
        with self.store.read() as db:
            return incidents.version(db)

    def changes(self, since_v: int) -> dict[str, Any]:
        with self.store.read() as db:
            return views.changed(db, since_v, self._now_ms(), self.escalate_s)

    def _escalate(self) -> None:
        with self.store.transaction() as db:
            incidents.escalate_due(db, self._now_ms(), self.escalate_s)

    def _push(self, changes: dict[str, Any]) -> None:
        if not changes["rows"] and not changes.get("reload"):
            return
        for queue in list(self.listeners):
            try:
                queue.put_nowait(changes)
            except asyncio.QueueFull:  # a stalled page: it reloads the queue when it wakes
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait({"v": changes["v"], "rows": [], "reload": True})


async def write(response: web.StreamResponse, changes: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(changes, separators=(',', ':'))}\n\n".encode())
