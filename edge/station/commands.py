"""Operator commands from the station to a box (PROTOCOL.md 3.6).

A command goes out on the box's ``cmd`` topic with MQTT v5's request/response
properties: the Response Topic (the box's ``cmd/result``), the Correlation Data
(the command id), a Message Expiry Interval (the seconds until its
``expires_at``: the broker drops it rather than deliver it late) and the
Content Type ``application/json``. A box that predates them ignores them and
answers on ``cmd/result`` all the same, quoting the id in the payload.
"""

from __future__ import annotations

from edge.mqttio import Message
from edge.protocol import Command, Topics, command_envelope, encode_command


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
