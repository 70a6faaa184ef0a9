"""Reference central-station receiver: store each event once, then acknowledge it.

The acknowledgement goes to the box's ``ack`` topic only after the event is
committed, so an ack always means "durably stored here".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edge import protocol
from edge.errors import ProtocolError, StorageError, UplinkError
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.station.store import StationStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StationSettings:
    host: str
    port: int
    db: Path
    prefix: str = "edge"
    client_id: str = "station-receiver"
    username: str | None = None
    password: str | None = None


@dataclass
class ReceiverStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


class Receiver:
    def __init__(self, settings: StationSettings) -> None:
        self.settings = settings
        self.store = StationStore(settings.db)
        filters = protocol.station_filters(settings.prefix)
        self.link = MqttLink(
            LinkSettings(
                host=settings.host,
                port=settings.port,
                client_id=settings.client_id,
                username=settings.username,
                password=settings.password,
                subscriptions=tuple((f, 1) for f in filters.values()),
            )
        )
        self.stats = ReceiverStats()

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        await asyncio.to_thread(self.store.open)
        try:
            await self.link.start()
            if await self.link.wait_connected(10) and ready is not None:
                ready()
            while True:
                message = await self.link.inbox.get()
                await self.handle(message)
        finally:
            await self.link.stop()
            await asyncio.to_thread(self.store.close)

    async def handle(self, message: Message) -> None:
        try:
            device = protocol.device_of(message.topic, self.settings.prefix)
            kind = message.topic.rsplit("/", 1)[-1]
            if kind == "events":
                await self._event(device, message.payload)
            elif kind == "state":
                state = protocol.decode_object(message.payload).get("state")
                await self._db(self.store.device_state, device, str(state), _now_ms())
                log.info("device %s is %s", device, state)
            elif kind == "heartbeat":
                beat = protocol.decode_object(message.payload)
                await self._db(self.store.heartbeat, device, _now_ms(), int(beat["interval_s"]))
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            self.stats.rejected += 1
            log.error("rejected message on %s: %s", message.topic, exc)
        except StorageError:
            log.exception("message on %s not stored, so not acknowledged", message.topic)

    async def _event(self, device: str, payload: bytes) -> None:
        message = protocol.decode_event(payload)
        if message.device != device:
            raise ProtocolError(f"event names device {message.device!r} on {device!r}'s topic")
        new = await self._db(self.store.store, message, _now_ms())
        if new:
            self.stats.stored += 1
        else:
            self.stats.duplicates += 1
        event = message.event
        log.info(
            "%s event %s from %s seq %d: %s %s zone %s%s",
            "stored" if new else "duplicate of stored",
            event.id,
            device,
            message.seq,
            event.kind.value,
            event.codes.cid,
            event.zone.name if event.zone else "-",
            " (historical)" if message.historical else "",
        )
        ack = protocol.Topics(self.settings.prefix, device).ack
        try:
            await self.link.publish(Message(ack, protocol.encode_ack([event.id])))
        except UplinkError as exc:
            log.warning("ack for %s not sent (%s); the box will resend", event.id, exc)

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(fn, *args)


def _now_ms() -> int:
    return round(time.time() * 1000)
