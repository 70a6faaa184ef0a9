"""A DC-09 route: the box's events straight to a monitoring centre's alarm receiver.

One message at a time (:class:`edge.dc09.link.Dc09Link`: resent with the same
sequence number until ACKed, NAK clock correction, DUH). The sequence number and
the message awaiting its answer are stored in the outbox before the message goes,
so a box restarted while it waits sends the same bytes under the same number
first. A NULL (link test) message goes after ``null_s`` without traffic. The
route is lost after ``path_loss_s`` without an answered message: one
communication trouble (and its restore), and its part in the path-fault output.
A DC-09 route carries no media: the event's video reference
(``<video_base>/events/<id>``) says where the operator finds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from edge.clock import Clock, ms
from edge.dc09.codec import Dc09Error, FrameTooLong
from edge.dc09.link import Dc09Link, Outcome, Outgoing
from edge.dc09.messages import Alarm, alarm_of
from edge.errors import StorageError
from edge.model import EventStore, StoredEvent
from edge.protocol import event_record

log = logging.getLogger(__name__)
LEASE_MS = 3_600_000  # one event at a time, answered or refused: the lease never matters
POLL_S = 0.5  # at most this long between looks without a kick (failover times)

PathTrouble = Callable[[bool, str], Awaitable[None]]
PathState = Callable[[bool], None]


class Dc09Store(EventStore, Protocol):
    """The outbox as a DC-09 route sees it: its events, and its sequence state."""

    async def dc09_state(self) -> tuple[int, str | None, bytes | None]: ...

    async def dc09_take(self, seq: int, event_id: str | None, frame: bytes | None) -> None: ...

    async def dc09_answered(self) -> None: ...


@dataclass
class Dc09RouteStatus:
    connected: bool = False  # the last exchange was answered
    sent: int = 0
    acked: int = 0
    refused: int = 0
    nulls: int = 0
    last_ok_s: float | None = None  # monotonic: the last answered message
    lost: bool = False


class Dc09Route:
    """Construct (no I/O), then ``await run()`` as a task; cancel it to stop."""

    def __init__(
        self,
        number: int,
        name: str,
        link: Dc09Link,
        view: Dc09Store,
        clock: Clock,
        *,
        account: str,
        video_base: str | None,
        null_s: float,
        path_loss_s: float,
        trouble: PathTrouble,
        path_state: PathState,
    ) -> None:
        self.number = number
        self.name = name
        self.link = link
        self.view = view
        self.clock = clock
        self.account = account
        self.video_base = video_base
        self.null_s = null_s
        self.path_loss_s = path_loss_s
        self.trouble = trouble
        self.path_state = path_state
        self.status = Dc09RouteStatus()
        self._started_s = clock.monotonic()
        self._last_traffic_s = clock.monotonic()
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """A new event in the outbox: look now."""
        self._wake.set()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch(), name=f"route{self.number}.watch")
                tg.create_task(self._send(), name=f"route{self.number}.send")
        finally:
            await self.link.close()

    # -- sending ---------------------------------------------------------------------

    async def _send(self) -> None:
        await self._resume()
        while True:
            self._wake.clear()  # before looking: a kick while it looks is kept
            try:
                sent = await self.step()
            except StorageError:
                log.exception("DC-09 route %s: the outbox cannot be read; retrying", self.name)
                sent = False
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def step(self) -> bool:
        """Send one due event, or a NULL message when one is due; True if one went."""
        now = ms(self.clock.time())
        batch = await self.view.lease(now, now, LEASE_MS, 1)
        if batch:
            await self._event(batch[0])
            return True
        if self.clock.monotonic() - self._last_traffic_s >= self.null_s:
            await self._null()
            return True
        return False

    async def _null(self) -> None:
        """A link test: tried once (with the link's own resends) for a while, never in the
        way of an alarm: unanswered, it is given up and the due events go first."""
        message = self.link.null()
        await self.view.dc09_take(message.seq, None, None)
        try:
            await asyncio.wait_for(self._deliver(message), self.link.settings.ack_timeout_s * 2)
        except TimeoutError:
            await self.link.close()  # what the receiver still owes us is of no use
            self.status.connected = False
            self._last_traffic_s = self.clock.monotonic()  # the next NULL after null_s
            log.warning("DC-09 route %s: NULL seq %04d unanswered", self.name, message.seq)
            return
        self.status.nulls += 1

    async def _resume(self) -> None:
        """Continue the stored numbering; send again the message left waiting, if any.

        Every other lease a run before this one took is void: it may have been killed
        between leasing an event and writing its message, and that event is due now."""
        seq, event_id, frame = await self.view.dc09_state()
        self.link.resume(seq)
        await self.view.reset_leases()
        if event_id is None or frame is None:
            return
        try:
            message = self.link.again(frame)
        except Dc09Error as exc:  # another key now: the event goes again as a new message
            log.error("DC-09 route %s: message of %s unreadable: %s", self.name, event_id, exc)
            return
        log.info("DC-09 route %s: %s sent again as seq %04d", self.name, event_id, message.seq)
        outcome = await self._deliver(message)
        await self._answered(event_id, outcome)

    async def _event(self, stored: StoredEvent) -> None:
        event = stored.event
        alarm = alarm_of(event.id, event_record(event), self.account, self.video_base)
        try:
            message = self._message(alarm)
        except Dc09Error as exc:  # no DC-09 message can say it: refused on this route
            log.error("DC-09 route %s: event %s cannot go: %s", self.name, event.id, exc)
            await self.view.dead_letter(event.id, str(exc), None)
            return
        await self.view.dc09_take(message.seq, event.id, message.raw)
        self.status.sent += 1
        outcome = await self._deliver(message)
        await self._answered(event.id, outcome)

    def _message(self, alarm: Alarm) -> Outgoing:
        try:
            return self.link.event(alarm)
        except FrameTooLong:
            if alarm.video is None:
                raise
            log.warning("DC-09 route %s: event sent without its video reference", self.name)
        return self.link.event(replace(alarm, video=None))

    async def _deliver(self, message: Outgoing) -> Outcome:
        outcome = await self.link.deliver(message)  # until answered (resends, reconnects)
        self._last_traffic_s = self.clock.monotonic()
        self.status.last_ok_s = self._last_traffic_s
        self.status.connected = True
        return outcome

    async def _answered(self, event_id: str, outcome: Outcome) -> None:
        # shielded: once answered, the outcome is written even if the route is stopping
        await asyncio.shield(self._note(event_id, outcome))

    async def _note(self, event_id: str, outcome: Outcome) -> None:
        if outcome is Outcome.ACKED:
            self.status.acked += 1
            await self.view.ack([event_id])
        else:
            self.status.refused += 1
            log.error("DC-09 route %s: the receiver refused event %s (DUH)", self.name, event_id)
            await self.view.dead_letter(event_id, "DUH", None)
        with contextlib.suppress(StorageError):
            await self.view.dc09_answered()

    # -- supervision -----------------------------------------------------------------

    async def _watch(self, period_s: float = 1.0) -> None:
        while True:
            await self.check()
            await asyncio.sleep(period_s)

    async def check(self) -> None:
        now = self.clock.monotonic()
        since = self.status.last_ok_s if self.status.last_ok_s is not None else self._started_s
        silent_s = now - since
        if self.status.connected and now - self._last_traffic_s > self.null_s + 2 * (
            self.link.settings.ack_timeout_s
        ):
            self.status.connected = False  # a NULL was due and is still unanswered
        lost = silent_s >= self.path_loss_s
        if lost == self.status.lost:
            return
        self.status.lost = lost
        self.path_state(lost)
        text = (
            f"route {self.number} ({self.name}): no answer from the alarm receiver for "
            f"{self.path_loss_s:.0f} s"
            if lost
            else f"route {self.number} ({self.name}): alarm receiver answering again"
        )
        log.log(logging.ERROR if lost else logging.INFO, "%s", text)
        await self.trouble(lost, text)
