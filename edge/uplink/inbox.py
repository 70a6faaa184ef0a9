"""Route what the station sends the box (acks, commands) to their handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from edge.mqttio import Message, MqttLink

log = logging.getLogger(__name__)
Handler = Callable[[bytes], Awaitable[None]]
# a handler that needs the whole message: its MQTT v5 properties (commands' Response Topic...)
MessageHandler = Callable[[Message], Awaitable[None]]


async def dispatch(
    link: MqttLink,
    routes: Mapping[str, Handler],
    message_routes: Mapping[str, MessageHandler] | None = None,
) -> None:
    """Forever: hand each message on a known topic to its handler; log the rest.

    A topic in ``message_routes`` gets the whole :class:`Message`; one in
    ``routes`` its payload only.
    """
    whole = message_routes or {}
    while True:
        message = await link.inbox.get()
        try:
            if message.topic in whole:
                await whole[message.topic](message)
            elif message.topic in routes:
                await routes[message.topic](message.payload)
            else:
                log.warning("ignored message on unexpected topic %s", message.topic)
        except Exception:
            log.exception("handler for %s failed", message.topic)
