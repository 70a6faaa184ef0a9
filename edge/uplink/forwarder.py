"""Forward the outbox to the station: publish, wait for the station's ack, delete.

An event is offered again, with the same id and sequence number, until the
station acknowledges that it stored it. The broker's PUBACK only moves the
retry time; only the station's ``ack`` deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge import protocol
from edge.clock import Clock, ms
from edge.errors import ProtocolError, PublishRefused, StorageError, UplinkError
from edge.model import EventStore, StoredEvent
from edge.mqttio import Message, MqttLink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwardSettings:
    device: str
    account: str
    ack_timeout_s: float = 20.0
    publish_timeout_s: float = 10.0
    historical_after_s: float = 60.0
    batch: int = 50


@dataclass
class ForwardStats:
    published: int = 0
    acked: int = 0
    refused: int = 0
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

    def kick(self) -> None:
        """Something new is in the outbox: look now."""
        self._wake.set()

    async def run_sender(self) -> None:
        while True:
            await self.link.wait_connected()
            batch = await self.store.due(ms(self.clock.time()), self.settings.batch)
            if not batch:
                await self._idle()
                continue
            for item in batch:
                if not await self._send(item):
                    break

    async def run_acks(self) -> None:
        while True:
            message = await self.link.inbox.get()
            if message.topic != self.topics.ack:
                log.warning("ignored message on unexpected topic %s", message.topic)
                continue
            try:
                ids = list(protocol.decode_ack(message.payload).ids)
            except ProtocolError as exc:
                log.error("malformed ack from the station ignored: %s", exc)
                continue
            deleted = await self.store.ack(ids)
            self.stats.acked += deleted
            self.stats.last_ack_ms = ms(self.clock.time())
            log.info(
                "station acknowledged %d event(s), %d removed from the outbox", len(ids), deleted
            )

    async def _send(self, item: StoredEvent) -> bool:
        """Publish one event; False when the link failed and the batch should stop."""
        now_ms = ms(self.clock.time())
        message = protocol.EventMessage(
            event=item.event,
            seq=item.seq,
            device=self.settings.device,
            account=self.settings.account,
            sent_at_ms=now_ms,
            historical=now_ms - item.event.occurred_at_ms > self.settings.historical_after_s * 1000,
        )
        try:
            await self.link.publish(
                Message(self.topics.events, protocol.encode_event(message)),
                timeout_s=self.settings.publish_timeout_s,
            )
        except PublishRefused as exc:
            self.stats.refused += 1
            log.error("event %s seq %d refused by the broker: %s", item.event.id, item.seq, exc)
        except UplinkError as exc:
            log.warning("event %s seq %d not sent: %s", item.event.id, item.seq, exc)
            return False
        else:
            self.stats.published += 1
            log.info(
                "sent event %s seq %d (%s %s) attempt %d",
                item.event.id,
                item.seq,
                item.event.kind.value,
                item.event.codes.cid,
                item.attempts + 1,
            )
        retry_ms = now_ms + round(self.settings.ack_timeout_s * 1000)
        try:
            await self.store.mark_sent(item.event.id, now_ms, retry_ms)
        except StorageError:
            log.exception("could not record the send of %s; it will be sent again", item.event.id)
        return True

    async def _idle(self) -> None:
        next_ms = await self.store.next_due_ms()
        wait_s = 1.0
        if next_ms is not None:
            wait_s = min(1.0, max(0.05, (next_ms - ms(self.clock.time())) / 1000))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait_s)


async def heartbeat(
    link: MqttLink,
    topics: protocol.Topics,
    interval_s: int,
    clock: Clock,
    depth: Callable[[], int],
) -> None:
    """Publish the supervision heartbeat every ``interval_s`` while connected."""
    seq = 0
    while True:
        await link.wait_connected()
        seq += 1
        payload = protocol.encode_heartbeat(
            seq=seq,
            at_ms=ms(clock.time()),
            interval_s=interval_s,
            outbox_depth=depth(),
        )
        try:
            await link.publish(Message(topics.heartbeat, payload), timeout_s=interval_s)
        except UplinkError as exc:
            log.warning("heartbeat %d not sent: %s", seq, exc)
        await asyncio.sleep(interval_s)
