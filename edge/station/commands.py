"""Operator commands from the station to a box (PROTOCOL.md 3.6).

A command goes out on the box's ``cmd`` topic with MQTT v5's request/response
properties: the Response Topic (the box's ``cmd/result``), the Correlation Data
(the command id), a Message Expiry Interval (the seconds until its
``expires_at``: the broker drops it rather than deliver it late) and the
Content Type ``application/json``. A box that predates them ignores them and
answers on ``cmd/result`` all the same, quoting the id in the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from edge.clock import Clock, ms
from edge.errors import ProtocolError, StorageError
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.protocol import (
    Command,
    CommandResult,
    Topics,
    command_envelope,
    decode_result,
    encode_command,
    station_filters,
)
from edge.station import videoreq
from edge.station.store import StationStore

log = logging.getLogger(__name__)


def command_message(command: Command, topics: Topics, now_ms: int) -> Message:
    """``command`` for the box of ``topics``, published at ``now_ms``.

    ValueError if it expires in under a second (the box would refuse it).
    """
    envelope = command_envelope(command, topics, now_ms)
    return Message(
        topics.cmd,
        encode_command(command),
        response_topic=envelope.response_topic,
        correlation_data=envelope.correlation_data,
        message_expiry_s=envelope.expiry_s,
        content_type=envelope.content_type,
    )


class CommandLink:
    """The workstation's own MQTT link: sends operators' commands to the boxes and hears
    their answers on every box's ``cmd/result`` (a plain subscription: receivers in a
    share group do not take them from it). Answers to commands this station did not
    record (another console's) are ignored. Construct (no I/O), ``await start()``."""

    def __init__(
        self, settings: LinkSettings, prefix: str, store: StationStore, clock: Clock
    ) -> None:
        results = station_filters(prefix)["cmd_result"]
        self.link = MqttLink(replace(settings, subscriptions=((results, 1),)))
        self.prefix = prefix
        self.store = store
        self.clock = clock
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.link.start()
        self._reader = asyncio.create_task(self._read(), name="workstation.cmd-results")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.link.stop()

    async def send(self, command: Command, device: str) -> None:
        """Publish ``command`` to ``device``'s ``cmd``; UplinkError when the broker did
        not take it, ValueError when it expires too soon."""
        message = command_message(command, Topics(self.prefix, device), ms(self.clock.time()))
        await self.link.publish(message, timeout_s=5.0)

    async def _read(self) -> None:
        while True:
            message = await self.link.inbox.get()
            try:
                result = decode_result(message.payload)
            except ProtocolError as exc:
                log.warning("command result on %s not understood: %s", message.topic, exc)
                continue
            if result.command_id is None:
                continue
            try:
                changed = await asyncio.to_thread(self._store, result)
            except StorageError:
                log.exception("command result %s not stored", result.command_id)
                continue
            if changed is not None:
                log.info("command %s: %s %s", result.command_id, result.status, result.reason)

    def _store(self, result: CommandResult) -> str | None:
        with self.store.transaction() as db:
            return videoreq.answer(db, result, ms(self.clock.time()))
