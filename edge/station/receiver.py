"""Reference central-station receiver: store what the boxes send, then acknowledge it.

Group commit: after the first message, everything already waiting in the
inbox (up to ``batch_max`` messages or ``batch_max_bytes``) is stored in ONE
transaction, then each device of the batch gets ONE ack with its event ids
and media progress. An ack is published only after the commit, so it always
means "durably stored here". A malformed message is logged and counted; a
batch the store cannot write is retried message by message, so one poison
message cannot hold back the others; what still fails is not acknowledged
(the box resends it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge import protocol
from edge.clock import Clock, SystemClock, ms
from edge.errors import ProtocolError, StorageError, UplinkError
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.station import inbound, supervision
from edge.station.inbound import Inbound
from edge.station.store import Receipt, StationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StationSettings:
    host: str
    port: int
    db: Path | str  # an SQLite file, or a postgresql:// URL
    prefix: str = "edge"
    media: Path | None = None  # default: <db>.media/ beside an SQLite file
    share_group: str | None = None  # receivers in one group split the boxes' messages
    client_id: str = "station-receiver"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # set with mqtts:// (TLS), as for the boxes
    cert_file: Path | None = None
    key_file: Path | None = None
    tls: bool = False
    # A persistent session: what boxes send while the receiver restarts waits
    # for it at the broker (with broker persistence, across broker restarts too).
    session_expiry_s: int = 86_400
    batch_max: int = 500
    batch_max_bytes: int = 8 * 1024 * 1024
    ack_timeout_s: float = 10.0
    supervise_period_s: float = 1.0  # how often the boxes' heartbeat ages are checked


@dataclass
class ReceiverStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    not_stored: int = 0
    batches: int = 0
    chunks: int = 0
    duplicate_chunks: int = 0
    media_complete: int = 0
    media_corrupt: int = 0
    acks: int = 0
    acks_failed: int = 0
    devices_lost: int = 0
    devices_restored: int = 0


class Link(Protocol):
    """What the receiver needs of an MQTT link (:class:`MqttLink`, or a fake in tests)."""

    inbox: asyncio.Queue[Message]

    async def start(self) -> None: ...

    async def stop(self, last_words: Message | None = None, timeout_s: float = 3.0) -> None: ...

    async def wait_connected(self, timeout_s: float | None = None) -> bool: ...

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None: ...


class Receiver:
    """Construct (no I/O), then ``await run()``."""

    def __init__(
        self, settings: StationSettings, link: Link | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.store = StationStore(settings.db, settings.media)
        self.link: Link = link or MqttLink(_link_settings(settings))
        self.clock: Clock = clock or SystemClock()
        self.stats = ReceiverStats()

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        await asyncio.to_thread(self.store.open)
        watch: asyncio.Task[None] | None = None
        try:
            recovered = await asyncio.to_thread(self.store.finish_waiting, self._now_ms())
            self._count(recovered)
            await self.link.start()
            watch = asyncio.create_task(self.run_supervision(), name="station-supervision")
            if await self.link.wait_connected(10) and ready is not None:
                ready()
            while True:
                await self.process(await self.next_batch())
        finally:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            await self.link.stop()
            await asyncio.to_thread(self.store.close)

    async def run_supervision(self) -> None:
        """Check every box's heartbeat age against its profile, every ``supervise_period_s``."""
        since_ms = self._now_ms()
        while True:
            try:
                await self.supervise(since_ms)
            except StorageError:
                log.exception("supervision could not use the store; retrying")
            await asyncio.sleep(self.settings.supervise_period_s)

    async def supervise(self, since_ms: int) -> list[supervision.Change]:
        changes = await asyncio.to_thread(self.store.supervise, self._now_ms(), since_ms)
        for change in changes:
            if change.kind == supervision.LOST:
                self.stats.devices_lost += 1
                log.error("DEVICE LOST: %s: %s", change.device, change.reason)
            else:
                self.stats.devices_restored += 1
                log.warning("device restored: %s: %s", change.device, change.reason)
        return changes

    async def next_batch(self) -> list[Message]:
        """Wait for one message, then take what is already waiting, within the limits."""
        inbox = self.link.inbox
        batch = [await inbox.get()]
        size = len(batch[0].payload)
        while len(batch) < self.settings.batch_max and size < self.settings.batch_max_bytes:
            try:
                message = inbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            batch.append(message)
            size += len(message.payload)
        return batch

    async def process(self, messages: Sequence[Message]) -> None:
        """Parse, store in one transaction, then acknowledge per device."""
        items = [item for m in messages if (item := self._parse(m)) is not None]
        if not items:
            return
        receipt = await self._commit(items)
        self._count(receipt)
        self._log(receipt)
        acks = receipt.acks()
        await asyncio.gather(*(self._ack(d, ids, media) for d, (ids, media) in acks.items()))

    def _parse(self, message: Message) -> Inbound | None:
        try:
            return inbound.parse(message, self.settings.prefix)
        except ProtocolError as exc:
            self.stats.rejected += 1
            log.error("rejected message on %s: %s", message.topic, exc)
        except Exception:  # a parser bug must not stop the station
            self.stats.rejected += 1
            log.exception("rejected message on %s: parser failed", message.topic)
        return None

    async def _commit(self, items: list[Inbound]) -> Receipt:
        now = self._now_ms()
        try:
            receipt = await asyncio.to_thread(self.store.commit, items, now)
        except StorageError:
            log.exception("batch of %d messages not stored", len(items))
            if len(items) == 1:
                self.stats.not_stored += 1
                return Receipt()
        else:
            self.stats.batches += 1
            return receipt
        # One message at a time, so a poison message costs only itself.
        receipt = Receipt()
        for item in items:
            try:
                receipt.merge(await asyncio.to_thread(self.store.commit, [item], now))
            except StorageError as exc:
                self.stats.not_stored += 1
                log.error(
                    "%s from %s not stored, so not acknowledged: %s", _what(item), item.device, exc
                )
        self.stats.batches += 1
        return receipt

    async def _ack(
        self, device: str, ids: list[str], media: tuple[protocol.MediaProgress, ...]
    ) -> None:
        topic = protocol.Topics(self.settings.prefix, device).ack
        message = Message(topic, protocol.encode_ack(ids, media))
        try:
            await self.link.publish(message, timeout_s=self.settings.ack_timeout_s)
        except UplinkError as exc:
            self.stats.acks_failed += 1
            log.warning("ack to %s not sent (%s); the box will resend", device, exc)
        else:
            self.stats.acks += 1

    def _count(self, receipt: Receipt) -> None:
        s = self.stats
        new = sum(1 for _, fresh in receipt.events if fresh)
        s.stored += new
        s.duplicates += len(receipt.events) - new
        s.rejected += len(receipt.rejected)
        s.chunks += receipt.chunks
        s.duplicate_chunks += receipt.duplicate_chunks
        s.media_complete += receipt.complete
        s.media_corrupt += receipt.corrupt

    def _log(self, receipt: Receipt) -> None:
        for reason in receipt.rejected:
            log.error("rejected: %s", reason)
        for message, new in receipt.events:
            event = message.event
            log.info(
                "%s event %s from %s seq %d: %s %s zone %s%s",
                "stored" if new else "duplicate of stored",
                event.id,
                message.device,
                message.seq,
                event.kind.value,
                event.codes.cid,
                event.zone.name if event.zone else "-",
                " (historical)" if message.historical else "",
            )

    def _now_ms(self) -> int:
        return ms(self.clock.time())


def _link_settings(s: StationSettings) -> LinkSettings:
    filters = protocol.station_filters(s.prefix)
    subscriptions = [(f, 1) for f in filters.values()]
    if s.share_group is not None:
        # A shared subscription gets no retained message (MQTT v5, 4.8.2), and
        # every receiver keeps its own view of the boxes' state: state stays
        # a plain subscription; all else is split among the group's receivers.
        subscriptions = [
            (f if f == filters["state"] else f"$share/{s.share_group}/{f}", 1)
            for f in filters.values()
        ]
    return LinkSettings(
        host=s.host,
        port=s.port,
        client_id=s.client_id,
        username=s.username,
        password=s.password,
        tls=s.tls,
        ca_file=s.ca_file,
        cert_file=s.cert_file,
        key_file=s.key_file,
        session_expiry_s=s.session_expiry_s,
        subscriptions=tuple(subscriptions),
    )


def _what(item: Inbound) -> str:
    if isinstance(item, inbound.EventReceived):
        return f"event {item.message.event.id}"
    if isinstance(item, inbound.ChunkReceived):
        return f"chunk {item.chunk.index} of media {item.media_id}"
    return type(item).__name__
