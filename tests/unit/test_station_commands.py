"""The station's commands carry MQTT v5's request/response properties (PROTOCOL.md 3.6)."""

from __future__ import annotations

import pytest

from edge.protocol import Command, TestArgs, Topics, encode_command, parse_command
from edge.station.commands import command_message

NOW = 1_795_875_790_123  # 2026-11-28T14:23:10.123Z
TOPICS = Topics("edge", "box-1")


def test_a_command_goes_on_cmd_with_where_and_how_to_answer() -> None:
    command = Command("op-7", NOW + 45_500, TestArgs("monthly"))
    message = command_message(command, TOPICS, NOW)
    assert (message.topic, message.qos, message.retain) == ("edge/box-1/cmd", 1, False)
    assert message.payload == encode_command(command)  # what a box that predates them reads
    assert message.response_topic == "edge/box-1/cmd/result"
    assert message.correlation_data == b"op-7"
    assert message.message_expiry_s == 45  # rounded down: never delivered past expires_at
    assert message.content_type == "application/json"
    assert message.properties == ()
    assert parse_command(message.payload, NOW, content_type=message.content_type) == command


def test_a_command_about_to_expire_is_not_sent() -> None:
    with pytest.raises(ValueError, match="op-8 expires in under 1 s"):
        command_message(Command("op-8", NOW + 500, TestArgs()), TOPICS, NOW)
