"""Forward the outbox to the station: lease, publish, wait for the station's ack, delete.

An event is offered again, with the same id and sequence number, until the
station acknowledges that it stored it. The broker's PUBACK only proves the
broker has it; only the station's ``ack`` deletes. Events always go before
media, and a media file goes only after its event was sent. After every
reconnect, everything unacknowledged is due again at once; media resume from
the first chunk the station has not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge import protocol
from edge.clock import Clock, ms
from edge.codes import Condition
from edge.errors import ProtocolError, PublishRefused, StorageError, UplinkError
from edge.model import (
    EventsQueued,
    EventStore,
    MediaLost,
    MediaQueued,
    OutboxFact,
    QueuedMedia,
    StoredEvent,
)
from edge.mqttio import Message, MqttLink

log = logging.getLogger(__name__)
MEDIA_WINDOW = 16  # chunks of one file read and sent at once (4 MiB at 256 KiB)
MAX_TAILS = 2  # files whose last window is still in flight while the next one starts
MAX_BATCHES = 4  # event batches handed to the link and not yet confirmed by the broker


@dataclass(frozen=True)
class ForwardSettings:
    device: str
    account: str
    ack_timeout_s: float = 20.0
    publish_timeout_s: float = 10.0
    historical_after_s: float = 60.0
    batch: int = 200
    max_unacked: int = 2000  # events sent and not yet acknowledged, at most


@dataclass
class ForwardStats:
    published: int = 0
    acked: int = 0
    refused: int = 0
    chunks: int = 0
    media_done: int = 0
    last_ack_ms: int | None = None


class Forwarder:
    def __init__(
        self,
        link: MqttLink,
        store: EventStore,
        topics: protocol.Topics,
        settings: ForwardSettings,
        clock: Clock,
    ) -> None:
        self.link = link
        self.store = store
        self.topics = topics
        self.settings = settings
        self.clock = clock
        self.stats = ForwardStats()
        self._wake = asyncio.Event()
        self._media: QueuedMedia | None = None
        self._next_chunk = 0
        self._connects_seen = 0
        self._unacked: set[str] = set()  # sent on this connection, not yet acknowledged
        self._tails: set[asyncio.Task[None]] = set()
        self._batches: set[asyncio.Task[None]] = set()
        self._send_failed: str | None = None  # a batch in the background could not be sent
        self._acks: list[str] = []  # acknowledged ids waiting for the next delete
        self._deleting: asyncio.Task[None] | None = None
        self.on_acked: Callable[[int], None] = lambda _count: None  # observers (bench, metrics)

    def kick(self) -> None:
        """Something new is in the outbox: look now."""
        self._wake.set()

    def observe(self, fact: OutboxFact) -> None:
        """An outbox observer: new events or media (or lost notices) are sent at once."""
        if isinstance(fact, EventsQueued | MediaQueued | MediaLost):
            self._wake.set()

    # -- sending -----------------------------------------------------------

    async def run_sender(self) -> None:
        while True:
            await self.link.wait_connected()
            await self._after_reconnect()
            try:
                if not await self._send_step():
                    await self._idle()
            except UplinkError as exc:
                log.warning("sending paused: %s", exc)
                await asyncio.sleep(0.5)  # then wait for the link again, at the top
            except StorageError:
                log.exception("outbox unreadable; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def _after_reconnect(self) -> None:
        if self.link.status.connects != self._connects_seen:
            self._connects_seen = self.link.status.connects
            self._media = None
            self._unacked.clear()
            await self.store.reset_leases()

    async def _send_step(self) -> bool:
        """Send what is due: a batch of events, else a window of media chunks."""
        if self._send_failed is not None:
            why, self._send_failed = self._send_failed, None
            raise UplinkError(why)
        now = ms(self.clock.time())
        s = self.settings
        room = s.max_unacked - len(self._unacked)
        if room <= 0:
            # A slow station: wait for acks rather than flood it (and, after the
            # ack timeout, resend the whole backlog). Leases expire as usual.
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), s.ack_timeout_s)
            except TimeoutError:
                self._unacked.clear()  # their leases have expired: they are due again
            return True
        batch = await self.store.lease(
            now,
            now - round(s.historical_after_s * 1000),
            round(s.ack_timeout_s * 1000),
            min(s.batch, room),
        )
        if batch:
            await self._send_events(batch, now)
            return True
        if self._media is None:
            self._media = await self.store.lease_media(now, round(s.ack_timeout_s * 1000))
            if self._media is not None:
                self._next_chunk = self._media.acked_chunks
        if self._media is not None and self._media.lost is not None:
            item, self._media = self._media, None
            await self._send_lost(item)
            return True
        if self._media is not None:
            await self._send_chunks(self._media)
            return True
        return False

    async def _send_lost(self, item: QueuedMedia) -> None:
        """A media that will never come: one notice on its topic, kept until acknowledged."""
        assert item.lost is not None
        props = protocol.lost_properties(item.kind, item.lost)
        message = Message(self.topics.media(item.event_id, item.id), b"", properties=props)
        try:
            await self.link.publish(message, timeout_s=self.settings.publish_timeout_s)
        except PublishRefused as exc:
            log.error("lost notice %s refused by the broker: %s", item.id, exc)
            await self.store.dead_letter_media(item.id, exc.reason, exc.code)
            return
        deadline = ms(self.clock.time()) + round(self.settings.ack_timeout_s * 1000)
        await self.store.hold_media(item.id, deadline)
        log.warning(
            "station told that %s %s of event %s is lost: %s",
            item.kind,
            item.id,
            item.event_id,
            item.lost,
        )

    async def _send_events(self, batch: list[StoredEvent], now: int) -> None:
        """Hand a leased batch to the link and return: the broker's PUBACKs are awaited
        in the background, so the next lease overlaps this batch's round trip. The link
        writes in call order, so the order of events on the wire is the lease order."""
        while len(self._batches) >= MAX_BATCHES:
            await asyncio.wait(self._batches, return_when=asyncio.FIRST_COMPLETED)
        self._unacked.update(item.event.id for item in batch)
        publishes = [asyncio.ensure_future(self._publish_event(item, now)) for item in batch]
        task = asyncio.create_task(self._confirm(batch, publishes), name="uplink.batch")
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)
        await asyncio.sleep(0)  # let the publishes take their window slots in order

    async def _confirm(
        self, batch: list[StoredEvent], publishes: Sequence[asyncio.Future[None]]
    ) -> None:
        results = await asyncio.gather(*publishes, return_exceptions=True)
        failed: list[str] = []
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, PublishRefused):
                self._unacked.discard(item.event.id)
                self.stats.refused += 1
                log.error(
                    "event %s seq %d refused by the broker: %s", item.event.id, item.seq, result
                )
                # A refused trouble about refusals raises no further trouble: no loop.
                notify = item.event.condition is not Condition.COMM_FAILED_EVENT
                try:
                    await self.store.dead_letter(item.event.id, result.reason, result.code, notify)
                except StorageError:
                    log.exception("dead letter of %s not stored; it stays queued", item.event.id)
            elif isinstance(result, BaseException):
                self._unacked.discard(item.event.id)
                failed.append(item.event.id)
            else:
                self.stats.published += 1
        if failed:
            self._send_failed = f"{len(failed)} event(s) not sent"
            try:
                await self.store.release(failed)
            except StorageError:
                log.exception("releasing unsent events failed; their leases expire")
            self.kick()

    async def _publish_event(self, item: StoredEvent, now: int) -> None:
        message = protocol.EventMessage(
            event=item.event,
            seq=item.seq,
            device=self.settings.device,
            account=self.settings.account,
            sent_at_ms=now,
            historical=now - item.event.occurred_at_ms > self.settings.historical_after_s * 1000,
        )
        await self.link.publish(
            Message(self.topics.events, protocol.encode_event(message)),
            timeout_s=self.settings.publish_timeout_s,
        )
        log.debug("sent event %s seq %d attempt %d", item.event.id, item.seq, item.attempts)

    async def _send_chunks(self, item: QueuedMedia) -> None:
        """Send the next window of ``item``; the last window goes on in the background
        while the next file is leased and read, so files follow each other closely."""
        first = self._next_chunk
        last = min(item.chunks, first + MEDIA_WINDOW)
        chunks = await self.store.media_chunks(item, first, last - first)
        self._next_chunk = last
        if last < item.chunks:
            await self._publish_chunks(item, first, chunks)
            return
        self._media = None
        while len(self._tails) >= MAX_TAILS:
            await asyncio.wait(self._tails, return_when=asyncio.FIRST_COMPLETED)
        tail = asyncio.create_task(self._finish_file(item, first, chunks), name="uplink.media")
        self._tails.add(tail)
        tail.add_done_callback(self._tails.discard)

    async def _finish_file(self, item: QueuedMedia, first: int, chunks: list[bytes]) -> None:
        try:
            if not await self._publish_chunks(item, first, chunks):
                return
            deadline = ms(self.clock.time()) + round(self.settings.ack_timeout_s * 1000)
            await self.store.hold_media(item.id, deadline)
        except (UplinkError, StorageError) as exc:
            # its lease expires (or is reset on reconnect): it is offered again
            log.warning("media %s not finished: %s", item.id, exc)

    async def _publish_chunks(self, item: QueuedMedia, first: int, chunks: list[bytes]) -> bool:
        """Publish chunks ``first``...; False if the broker refused them (dead letter)."""
        topic = self.topics.media(item.event_id, item.id)
        try:
            await asyncio.gather(
                *(
                    self.link.publish(
                        Message(topic, data, properties=_chunk_header(item, first + n)),
                        timeout_s=self.settings.publish_timeout_s,
                    )
                    for n, data in enumerate(chunks)
                )
            )
        except PublishRefused as exc:
            log.error("media %s refused by the broker: %s", item.id, exc)
            if self._media is not None and self._media.id == item.id:
                self._media = None
            await self.store.dead_letter_media(item.id, exc.reason, exc.code)
            return False
        self.stats.chunks += len(chunks)
        return True

    async def _idle(self) -> None:
        next_ms = await self.store.next_due_ms()
        wait_s = 1.0
        if next_ms is not None:
            wait_s = min(1.0, max(0.02, (next_ms - ms(self.clock.time())) / 1000))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait_s)

    # -- acknowledgements --------------------------------------------------

    async def on_ack(self, payload: bytes) -> None:
        try:
            ack = protocol.decode_ack(payload)
        except ProtocolError as exc:
            log.error("malformed ack from the station ignored: %s", exc)
            return
        if ack.ids:
            self._unacked.difference_update(ack.ids)
            self._acks.extend(ack.ids)
            if self._deleting is None or self._deleting.done():
                self._deleting = asyncio.create_task(self._delete_acked(), name="uplink.acked")
        for progress in ack.media:
            known = await self.store.media_progress(
                progress.media_id, progress.have, progress.complete
            )
            if known and progress.complete:
                self.stats.media_done += 1
            current = self._media
            if current is not None and current.id == progress.media_id and progress.have == 0:
                self._next_chunk = 0  # the station discarded it (bad checksum): start over
        self.stats.last_ack_ms = ms(self.clock.time())
        self.kick()

    async def _delete_acked(self) -> None:
        """Delete acknowledged events; acks that arrive during a delete share the next
        one (one transaction for many acks when the station acknowledges quickly)."""
        while self._acks:
            ids, self._acks = self._acks, []
            try:
                deleted = await self.store.ack(ids)
            except StorageError:
                # Not deleted: they are sent again when their lease expires, and the
                # station acknowledges a duplicate without storing it twice.
                log.exception("acknowledged events not deleted; they will be resent")
                continue
            self.stats.acked += deleted
            self.on_acked(deleted)
            self.kick()

    async def settle(self) -> None:
        """After the link stopped, before the outbox closes: let the background batches
        record their outcome and every acknowledgement received be applied."""
        while self._batches or self._tails:
            await asyncio.wait(self._batches | self._tails)
        while self._deleting is not None and not self._deleting.done():
            await asyncio.wait({self._deleting})


def _chunk_header(item: QueuedMedia, index: int) -> tuple[tuple[str, str], ...]:
    return protocol.chunk_properties(
        protocol.Chunk(
            index=index,
            count=item.chunks,
            size=item.size,
            sha256=item.sha256,
            content_type=item.content_type,
            kind=item.kind,
        )
    )
