"""Commands with MQTT v5's request/response properties through a real mosquitto.

The box's command stage (its MQTT link, the command handler and the inbox
dispatcher, wired as in ``edge.app``) against an operator that sends commands
as the station does (:func:`edge.station.commands.command_message`): the answer
comes on the Response Topic with the Correlation Data, a command whose Message
Expiry ran out while it waited on the box is refused, and a command without the
properties is answered on ``cmd/result`` as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edge import codes, protocol
from edge.clock import SystemClock, ms
from edge.codes import Condition
from edge.config import parse
from edge.model import Event
from edge.mqttio import LinkSettings, Message, MqttLink
from edge.protocol import Command, SnapshotArgs, TestArgs, decode_result, encode_command
from edge.station.commands import command_message
from edge.uplink.commands import CommandHandler
from edge.uplink.inbox import dispatch
from tests.conftest import Broker, free_port, wait_for
from tests.integration.test_end_to_end import RunningBox, demo_text

pytestmark = pytest.mark.broker

TOPICS = protocol.Topics("edge", "box-1")
RESULT = TOPICS.cmd_result
CLOCK = SystemClock()
Ask = Callable[[Message | None], Awaitable[Message]]
Publish = Callable[..., Awaitable[None]]


async def raise_event(condition: Condition, restore: bool, text: str) -> Event:
    return Event(
        id=f"ev-{time.monotonic_ns()}",
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=ms(CLOCK.time()),
        partition=0,
        armed=None,
        text=text,
    )


async def slow_snapshot(args: Any, command_id: str) -> tuple[str, list[str]]:
    await asyncio.sleep(2.5)  # a camera slow to give its still: the next command waits
    return "ev-snap", ["still-1"]


async def subscribed(link: MqttLink) -> None:
    assert await link.wait_connected(5)
    for _ in range(500):  # every SUBACK in
        if not link._subscribing:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{link.settings.client_id} is not subscribed")


@contextlib.asynccontextmanager
async def box_and_operator(broker: Broker) -> AsyncIterator[tuple[Ask, Publish]]:
    """The box's command stage and an operator link; yields the operator's ask and publish."""
    box = MqttLink(
        LinkSettings(broker.host, broker.port, "box-1", subscriptions=((TOPICS.cmd, 1),)),
        clock=CLOCK,
    )
    handler = CommandHandler(box, TOPICS, CLOCK, raise_event, slow_snapshot, ("porch",))
    operator = MqttLink(
        LinkSettings(broker.host, broker.port, "operator", subscriptions=((RESULT + "/#", 1),))
    )
    await box.start()
    await operator.start()
    inbox = asyncio.create_task(
        dispatch(box, {}, {TOPICS.cmd: handler.handle_message}), name="box.inbox"
    )
    try:
        await subscribed(box)
        await subscribed(operator)

        async def ask(message: Message | None) -> Message:
            """Publish ``message`` (if any), then the next answer."""
            if message is not None:
                await operator.publish(message)
            return await asyncio.wait_for(operator.inbox.get(), 10)

        yield ask, operator.publish
    finally:
        inbox.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inbox
        await operator.stop()
        await box.stop()


def command(cid: str, args: Any = None, expires_in_s: float = 60) -> Command:
    expires = ms(CLOCK.time()) + round(expires_in_s * 1000)
    return Command(cid, expires, args or TestArgs())


async def test_the_answer_comes_on_the_response_topic_with_the_correlation_data(
    broker: Broker,
) -> None:
    async with box_and_operator(broker) as (ask, _publish):
        sent = command_message(command("op-1"), TOPICS, ms(CLOCK.time()))
        answer = await ask(sent)
        assert (answer.topic, answer.correlation_data) == (RESULT, b"op-1")
        assert answer.content_type == "application/json"
        result = decode_result(answer.payload)
        assert (result.command_id, result.status) == ("op-1", "done")

        # a requester's own topic under cmd/result, with its own correlation data
        mine = dataclasses.replace(
            sent,
            payload=encode_command(command("op-2")),
            response_topic=RESULT + "/console-2",
            correlation_data=b"\x00req-9\xff",
        )
        answer = await ask(mine)
        assert (answer.topic, answer.correlation_data) == (RESULT + "/console-2", b"\x00req-9\xff")
        assert decode_result(answer.payload).command_id == "op-2"


async def test_a_command_whose_message_expiry_ran_out_on_the_box_is_refused(
    broker: Broker,
) -> None:
    async with box_and_operator(broker) as (ask, publish):
        now = ms(CLOCK.time())
        snapshot = command_message(command("op-snap", SnapshotArgs("porch")), TOPICS, now)
        await publish(snapshot)  # the box takes 2.5 s over it; what follows waits in its inbox
        # expires_at is a minute away, the Message Expiry Interval 1 s
        late = command_message(command("op-late"), TOPICS, ms(CLOCK.time()))
        first = await ask(dataclasses.replace(late, message_expiry_s=1))
        answers = {decode_result(a.payload).command_id: a for a in (first, await ask(None))}
        assert decode_result(answers["op-snap"].payload).status == "done"
        answer = answers["op-late"]
        result = decode_result(answer.payload)
        assert result.status == "rejected"
        assert result.reason.startswith("expired: its MQTT message expiry ran out")
        assert answer.correlation_data == b"op-late"


async def test_a_command_without_properties_is_answered_on_cmd_result_as_before(
    broker: Broker,
) -> None:
    async with box_and_operator(broker) as (ask, _publish):
        answer = await ask(Message(TOPICS.cmd, encode_command(command("op-old"))))
        assert answer.topic == RESULT
        assert answer.correlation_data is None and answer.response_topic is None
        result = decode_result(answer.payload)
        assert (result.command_id, result.status) == ("op-old", "done")


async def test_a_response_topic_the_broker_refuses_falls_back_to_cmd_result(
    tmp_path: Path,
) -> None:
    """A broker ACL as in PROTOCOL.md section 2: the box may write its cmd/result only."""
    acl = tmp_path / "acl"
    acl.write_text(
        f"topic read {TOPICS.cmd}\ntopic write {TOPICS.cmd}\n"
        f"topic readwrite {RESULT}\ntopic read {RESULT}/#\n"
    )
    broker = start_acl_broker(tmp_path, acl)
    try:
        async with box_and_operator(broker) as (ask, _publish):
            sent = command_message(command("op-acl"), TOPICS, ms(CLOCK.time()))
            answer = await ask(dataclasses.replace(sent, response_topic=RESULT + "/console"))
            assert (answer.topic, answer.correlation_data) == (RESULT, b"op-acl")
            assert decode_result(answer.payload).status == "done"
    finally:
        broker.stop()


def start_acl_broker(tmp: Path, acl: Path) -> Broker:
    port = free_port()
    conf = tmp / "mosquitto-acl.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        # as root mosquitto would switch to its own user, who cannot read our tmp files
        f"{'user root' if os.geteuid() == 0 else ''}\n"
        f"acl_file {acl}\nlog_dest stderr\nlog_type error\nlog_type warning\n"
    )
    log = tmp / "mosquitto-acl.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=out)
    broker = Broker("127.0.0.1", port, proc, log)
    wait_for(lambda: _listening(port), 10, "mosquitto with an ACL to listen")
    return broker


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


async def test_a_running_box_answers_with_the_properties(broker: Broker, tmp_path: Path) -> None:
    """The Box wires its link and inbox to the properties: a real box (edge.app) answers
    a station's command on its Response Topic with the Correlation Data."""
    cfg = parse(demo_text(broker.port, free_port()), "box.toml")
    topics = protocol.Topics("edge", cfg.device.id)
    operator = MqttLink(
        LinkSettings(broker.host, broker.port, "operator", subscriptions=((topics.cmd_result, 1),))
    )
    await operator.start()
    try:
        await subscribed(operator)
        async with RunningBox(cfg, tmp_path / "box") as box:
            await subscribed(box.link)
            sent = command_message(command("op-box"), topics, ms(CLOCK.time()))
            await operator.publish(sent)
            answer = await asyncio.wait_for(operator.inbox.get(), 10)
            assert (answer.topic, answer.correlation_data) == (topics.cmd_result, b"op-box")
            assert answer.content_type == "application/json"
            assert decode_result(answer.payload).status == "done"
    finally:
        await operator.stop()
