"""The outbox as one route sees it: what the uplink's sender of that route leases, sends
and has acknowledged (the :class:`edge.model.EventStore` protocol).

Route 1 is the primary (``[uplink]``); with ``done_when = "first"`` it is the
outbox itself. A backup route (2, 3, ...) leases by its own state
(:mod:`edge.outbox.routes`): an event the routes before it have not had
acknowledged within the class's failover time, or every event at once while
the primary is down. Events the disk refused (held in memory) follow the same
rule, but the first acknowledgement ends them whatever ``done_when`` says: they
have no row to keep each route's answer in (the disk was full). A backup carries
media only while the primary is down (both routes lead to the same station,
which stores each chunk once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from edge.clock import ms
from edge.model import EventsAcknowledged, EventsSent, QueuedMedia, StoredEvent
from edge.outbox.aio import AsyncOutbox
from edge.outbox.routes import Failover


@dataclass(frozen=True)
class Policy:
    failover: Failover
    every: int | None  # routes that must each acknowledge an event; None: the first ends it


class RouteView:
    def __init__(
        self,
        outbox: AsyncOutbox,
        route: int,
        policy: Policy,
        primary_down: Callable[[], bool],
    ) -> None:
        self.outbox = outbox
        self.route = route
        self.policy = policy
        self.primary_down = primary_down
        self._held_next: dict[str, int] = {}  # held events' leases on this route

    def _at_once(self) -> bool:
        return self.policy.every is not None or (self.route > 1 and self.primary_down())

    # -- events --------------------------------------------------------------------

    async def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]:
        if self.route == 1:  # the primary keeps its own lease columns
            return await self.outbox.lease(now_ms, live_after_ms, lease_ms, limit)
        batch = self._lease_held(now_ms, lease_ms, limit)
        if len(batch) < limit:
            batch += await self.outbox.urgent(
                self.outbox.outbox.lease_route,
                self.route,
                now_ms,
                self._at_once(),
                self.policy.failover,
                lease_ms,
                limit - len(batch),
            )
        if batch:
            self.outbox.tell(EventsSent(tuple(batch), now_ms))
        return batch

    def _lease_held(self, now_ms: int, lease_ms: int, limit: int) -> list[StoredEvent]:
        rank = self.route - 1
        out = []
        for held in self.outbox.held.snapshot():
            stored = held.stored
            wait = 0 if self._at_once() else self.policy.failover.of(stored.priority) * rank
            event_id = stored.event.id
            if held.now_ms + wait > now_ms or self._held_next.get(event_id, 0) > now_ms:
                continue
            self._held_next[event_id] = now_ms + lease_ms
            out.append(replace(stored, attempts=stored.attempts + 1))
            if len(out) >= limit:
                break
        return out

    async def release(self, ids: list[str]) -> None:
        if self.route == 1:
            await self.outbox.release(ids)
            return
        for event_id in ids:
            self._held_next.pop(event_id, None)
        await self.outbox.run(self.outbox.outbox.release_route, self.route, ids)

    async def reset_leases(self) -> None:
        if self.route == 1:
            await self.outbox.reset_leases()
            return
        self._held_next.clear()
        await self.outbox.run(self.outbox.outbox.reset_route, self.route)

    async def next_due_ms(self) -> int | None:
        if self.route == 1:
            return await self.outbox.next_due_ms()
        now = ms(self.outbox.clock.time())
        due: int | None = await self.outbox.run(
            self.outbox.outbox.route_next_due_ms,
            self.route,
            now,
            self._at_once(),
            self.policy.failover,
        )
        if self.outbox.held:
            due = min(due if due is not None else now + 1000, now + 1000)
        return due

    async def ack(self, ids: list[str] | tuple[str, ...]) -> int:
        if self.route == 1 and self.policy.every is None:
            return await self.outbox.ack(ids)
        count, rest = self.outbox.held.ack(ids)  # held events: the station has them
        noted = 0
        if rest:
            noted = await self.outbox.urgent(
                self.outbox.outbox.ack_route, self.route, list(rest), self.policy.every
            )
        self.outbox.tell(EventsAcknowledged(tuple(ids), ms(self.outbox.clock.time())))
        self.outbox.figures_stale()
        return noted + count  # this route's acknowledgements of events still owed

    async def dead_letter(
        self, event_id: str, reason: str, code: int | None, notify: bool = True
    ) -> None:
        """Refused on this route: the other routes still carry it (the primary's refusal
        moves it to the dead letters, as with one route)."""
        if self.route == 1:
            await self.outbox.dead_letter(event_id, reason, code, notify)
            return
        await self.outbox.run(
            self.outbox.outbox.refuse_route, self.route, [event_id], self.policy.every
        )

    async def oldest_alarm_ms(self) -> int | None:
        return await self.outbox.oldest_alarm_ms()

    # -- media: over a backup only while the primary is down -------------------------

    async def lease_media(self, now_ms: int, lease_ms: int) -> QueuedMedia | None:
        if self.route > 1 and not self.primary_down():
            return None
        return await self.outbox.lease_media(now_ms, lease_ms)

    async def hold_media(self, media_id: str, until_ms: int) -> None:
        await self.outbox.hold_media(media_id, until_ms)

    async def media_chunks(self, item: QueuedMedia, first: int, count: int) -> list[bytes]:
        return await self.outbox.media_chunks(item, first, count)

    async def media_progress(self, media_id: str, have: int, complete: bool) -> bool:
        return await self.outbox.media_progress(media_id, have, complete)

    async def dead_letter_media(self, media_id: str, reason: str, code: int | None) -> None:
        await self.outbox.dead_letter_media(media_id, reason, code)

    # -- a DC-09 route's sequence numbers -------------------------------------------

    async def dc09_state(self) -> tuple[int, str | None, bytes | None]:
        state: tuple[int, str | None, bytes | None] = await self.outbox.run(
            self.outbox.outbox.dc09_state, self.route
        )
        return state

    async def dc09_take(self, seq: int, event_id: str | None, frame: bytes | None) -> None:
        await self.outbox.urgent(self.outbox.outbox.dc09_take, self.route, seq, event_id, frame)

    async def dc09_answered(self) -> None:
        await self.outbox.run(self.outbox.outbox.dc09_answered, self.route)
