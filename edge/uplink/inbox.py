"""Route what the station sends the box (acks, commands) to their handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from edge.mqttio import MqttLink

log = logging.getLogger(__name__)
Handler = Callable[[bytes], Awaitable[None]]


async def dispatch(link: MqttLink, routes: Mapping[str, Handler]) -> None:
    """Forever: hand each message on a known topic to its handler; log the rest."""
    while True:
        message = await link.inbox.get()
        handler = routes.get(message.topic)
        if handler is None:
            log.warning("ignored message on unexpected topic %s", message.topic)
            continue
        try:
            await handler(message.payload)
        except Exception:
            log.exception("handler for %s failed", message.topic)
