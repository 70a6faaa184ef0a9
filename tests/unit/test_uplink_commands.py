"""CommandHandler: operator commands in, one answer each on ``cmd/result``, never a crash."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from edge import codes, protocol
from edge.clock import FakeClock, ms
from edge.codes import Condition, Kind
from edge.errors import PublishRefused, UplinkError
from edge.model import Event
from edge.mqttio import Message
from edge.protocol import (
    ClipArgs,
    Command,
    CommandResult,
    SnapshotArgs,
    TestArgs,
    decode_result,
    encode_command,
    iso_ms,
)
from edge.uplink.commands import CommandHandler
from edge.uplink.inbox import dispatch

TOPICS = protocol.Topics("edge", "box-1")


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.fail: Exception | None = None

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(message)


class Raised:
    """A fake ``Box.raise_event``: records what it was asked, returns a real Event."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[Condition, bool, str]] = []
        self.events: list[Event] = []

    async def __call__(self, condition: Condition, restore: bool, text: str) -> Event:
        self.calls.append((condition, restore, text))
        now = ms(self.clock.time())
        event = Event(
            id=f"ev-{len(self.events) + 1}",
            kind=codes.kind(condition, restore),
            condition=condition,
            codes=codes.codes(condition, restore),
            occurred_at_ms=now,
            partition=0,
            armed=None,
            text=text,
        )
        self.events.append(event)
        return event


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def link() -> FakeLink:
    return FakeLink()


@pytest.fixture
def raised(clock: FakeClock) -> Raised:
    return Raised(clock)


@pytest.fixture
def handler(link: FakeLink, clock: FakeClock, raised: Raised) -> CommandHandler:
    return CommandHandler(link, TOPICS, clock, raised)  # type: ignore[arg-type]


def command(clock: FakeClock, args: Any, cid: str = "op-1", expires_in_s: float = 60) -> bytes:
    expires = ms(clock.time()) + round(expires_in_s * 1000)
    return encode_command(Command(cid, expires, args))


def answer(link: FakeLink) -> CommandResult:
    [message] = link.sent
    assert message.topic == "edge/box-1/cmd/result"
    assert message.qos == 1 and not message.retain
    return decode_result(message.payload)


async def test_test_command_raises_a_manual_test_and_answers_done(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    await handler.handle(command(clock, TestArgs("monthly test, operator 7")))
    assert raised.calls == [(Condition.MANUAL_TEST, False, "monthly test, operator 7")]
    event = raised.events[0]
    assert event.kind is Kind.TEST and event.codes.cid == "1601"
    result = answer(link)
    assert (result.command_id, result.status, result.reason) == ("op-1", "done", "")
    assert result.details == {"event_id": event.id}
    assert result.at_ms == ms(clock.time())
    assert (handler.handled, handler.rejected) == (1, 0)


async def test_test_command_without_text_gets_a_default_text(
    handler: CommandHandler, clock: FakeClock, raised: Raised
) -> None:
    await handler.handle(command(clock, TestArgs()))
    assert raised.calls == [(Condition.MANUAL_TEST, False, "test requested by the station")]


async def test_each_test_command_gets_its_own_event(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    await handler.handle(command(clock, TestArgs(), cid="op-1"))
    await handler.handle(command(clock, TestArgs(), cid="op-2"))
    results = [decode_result(m.payload) for m in link.sent]
    assert [(r.command_id, r.details["event_id"]) for r in results] == [
        ("op-1", raised.events[0].id),
        ("op-2", raised.events[1].id),
    ]


async def test_expired_command_is_rejected_with_its_id(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    stale = command(clock, TestArgs(), cid="op-late", expires_in_s=0)  # expires exactly now
    await handler.handle(stale)
    result = answer(link)
    assert (result.command_id, result.status) == ("op-late", "rejected")
    assert result.reason.startswith("expired: expires_at ")
    assert raised.calls == []
    assert (handler.handled, handler.rejected) == (0, 1)


async def test_command_that_expired_in_transit_is_rejected(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    payload = command(clock, TestArgs(), cid="op-slow", expires_in_s=5)
    clock.advance(5.001)  # the broker held it while the box was away
    await handler.handle(payload)
    assert answer(link).status == "rejected"
    assert answer(link).reason.startswith("expired")
    assert raised.calls == []


def _body(clock: FakeClock, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "id": "op-9",
        "type": "test",
        "expires_at": iso_ms(ms(clock.time()) + 60_000),
        "args": {},
    }
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "command_id", "code"),
    [
        ({"type": "reboot"}, "op-9", "unknown_type"),
        ({"type": 3}, "op-9", "malformed"),
        ({"args": {"nope": 1}}, "op-9", "bad_args"),
        ({"v": 99}, "op-9", "unsupported_version"),
        ({"expires_at": "yesterday"}, "op-9", "malformed"),
        ({"extra": True}, "op-9", "malformed"),
        ({"id": "bad id with spaces"}, None, "malformed"),
        ({"id": 42}, None, "malformed"),
    ],
)
async def test_invalid_command_is_rejected_with_reason_and_recoverable_id(
    handler: CommandHandler,
    link: FakeLink,
    clock: FakeClock,
    raised: Raised,
    changes: dict[str, Any],
    command_id: str | None,
    code: str,
) -> None:
    await handler.handle(_body(clock, **changes))
    result = answer(link)
    assert (result.command_id, result.status) == (command_id, "rejected")
    assert result.reason.split(":", 1)[0] == code
    assert raised.calls == []
    assert handler.rejected == 1


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"not json", b"[1, 2]", b"null"])
async def test_garbage_is_rejected_without_an_id(
    handler: CommandHandler, link: FakeLink, raised: Raised, payload: bytes
) -> None:
    await handler.handle(payload)
    result = answer(link)
    assert (result.command_id, result.status) == (None, "rejected")
    assert result.reason.startswith("malformed: ")
    assert raised.calls == []


async def test_rejection_is_logged_as_a_warning(
    handler: CommandHandler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.uplink.commands"):
        await handler.handle(_body(clock, type="reboot"))
    assert "command op-9 rejected: unknown_type" in caplog.text


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (SnapshotArgs("entrance"), "snapshot"),
        (ClipArgs("entrance", 1_799_999_000_000, 1_799_999_030_000), "clip"),
    ],
)
async def test_video_commands_fail_as_unavailable(
    handler: CommandHandler,
    link: FakeLink,
    clock: FakeClock,
    raised: Raised,
    args: Any,
    kind: str,
) -> None:
    await handler.handle(command(clock, args, cid=f"op-{kind}"))
    result = answer(link)
    assert (result.command_id, result.status) == (f"op-{kind}", "failed")
    assert result.reason.startswith("unavailable: ")
    assert f"({kind})" in result.reason
    assert raised.calls == []
    assert handler.handled == 1  # accepted by the parser, then failed honestly


@pytest.mark.parametrize(
    "error", [UplinkError("not connected"), PublishRefused("Not authorized", 0x87)]
)
async def test_result_publish_failure_is_logged_not_raised(
    handler: CommandHandler,
    link: FakeLink,
    clock: FakeClock,
    raised: Raised,
    caplog: pytest.LogCaptureFixture,
    error: UplinkError,
) -> None:
    link.fail = error
    with caplog.at_level(logging.WARNING, logger="edge.uplink.commands"):
        await handler.handle(command(clock, TestArgs()))
        await handler.handle(b"garbage")
    assert len(raised.calls) == 1  # the test event is raised (and durable) all the same
    messages = [r.getMessage() for r in caplog.records if "result not sent" in r.getMessage()]
    assert messages == [f"command result not sent: {error}"] * 2


# -- MQTT v5 request/response properties (issue 15) ----------------------------

RESULT = "edge/box-1/cmd/result"


def request(
    clock: FakeClock, args: Any, cid: str = "op-1", expires_in_s: float = 60, **props: Any
) -> Message:
    """A command as the link hands it over: received now, with MQTT v5 properties."""
    props.setdefault("response_topic", RESULT)
    props.setdefault("correlation_data", cid.encode())
    props.setdefault("message_expiry_s", 60)
    props.setdefault("content_type", "application/json")
    payload = command(clock, args, cid, expires_in_s)
    return Message(TOPICS.cmd, payload, received_mono_s=clock.monotonic(), **props)


def replies(link: FakeLink) -> list[tuple[str, bytes | None, str | None, str, str]]:
    """(topic, correlation data, content type, command id, status) of each answer."""
    out = []
    for m in link.sent:
        result = decode_result(m.payload)
        out.append((m.topic, m.correlation_data, m.content_type, result.command_id, result.status))
    return out


async def test_the_answer_goes_to_the_response_topic_with_the_correlation_data(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    topic = RESULT + "/console-2"
    await handler.handle_message(
        request(clock, TestArgs(), "op-5", response_topic=topic, correlation_data=b"\x00\x07")
    )
    assert replies(link) == [(topic, b"\x00\x07", "application/json", "op-5", "done")]
    assert len(raised.calls) == 1


async def test_a_command_without_properties_is_answered_on_cmd_result_as_before(
    handler: CommandHandler, link: FakeLink, clock: FakeClock
) -> None:
    await handler.handle_message(Message(TOPICS.cmd, command(clock, TestArgs(), "op-6")))
    await handler.handle(command(clock, TestArgs(), "op-7"))  # the route of a bytes handler
    assert replies(link) == [
        (RESULT, None, "application/json", "op-6", "done"),
        (RESULT, None, "application/json", "op-7", "done"),
    ]


async def test_a_clip_s_accepted_and_done_both_go_to_the_response_topic(
    link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    async def video(args: Any, command_id: str) -> tuple[str, list[str]]:
        return "ev-9", ["m-1"]

    handler = CommandHandler(link, TOPICS, clock, raised, video, ("porch",))  # type: ignore[arg-type]
    now = ms(clock.time())
    clip = ClipArgs("porch", now - 60_000, now - 30_000)
    topic = RESULT + "/op-c"
    await handler.handle_message(request(clock, clip, "op-c", response_topic=topic))
    assert replies(link) == [
        (topic, b"op-c", "application/json", "op-c", "accepted"),
        (topic, b"op-c", "application/json", "op-c", "done"),
    ]


async def test_a_duplicate_gets_its_first_answer_on_its_own_response_topic(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    await handler.handle_message(request(clock, TestArgs(), "op-d"))
    await handler.handle_message(
        request(clock, TestArgs(), "op-d", response_topic=RESULT + "/again", correlation_data=b"2")
    )
    assert [r[:2] for r in replies(link)] == [(RESULT, b"op-d"), (RESULT + "/again", b"2")]
    assert link.sent[0].payload == link.sent[1].payload
    assert len(raised.calls) == 1


@pytest.mark.parametrize(
    "topic",
    ["edge/box-1/events", "edge/box-2/cmd/result", "edge/station/x", "edge/box-1/cmd/result/#"],
)
async def test_a_foreign_response_topic_is_refused_on_cmd_result(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised, topic: str
) -> None:
    await handler.handle_message(request(clock, TestArgs(), "op-x", response_topic=topic))
    assert replies(link) == [(RESULT, b"op-x", "application/json", "op-x", "rejected")]
    assert answer(link).reason.startswith("bad_response_topic: ")
    assert raised.calls == []  # nothing runs that its requester would not hear of


async def test_a_command_whose_message_expiry_ran_out_while_waiting_is_expired(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    waiting = request(clock, TestArgs(), "op-w", expires_in_s=600, message_expiry_s=2)
    clock.advance(1.9)
    await handler.handle_message(waiting)  # 0.1 s left: runs
    assert replies(link)[-1][3:] == ("op-w", "done")
    late = request(clock, TestArgs(), "op-l", expires_in_s=600, message_expiry_s=2)
    clock.advance(2.0)  # queued behind a slow command: its expiry ran out, expires_at did not
    await handler.handle_message(late)
    result = decode_result(link.sent[-1].payload)
    assert (result.command_id, result.status) == ("op-l", "rejected")
    assert result.reason.startswith("expired: its MQTT message expiry ran out")
    assert len(raised.calls) == 1


async def test_a_command_of_another_content_type_is_refused(
    handler: CommandHandler, link: FakeLink, clock: FakeClock, raised: Raised
) -> None:
    await handler.handle_message(request(clock, TestArgs(), "op-t", content_type="text/plain"))
    assert replies(link) == [(RESULT, b"op-t", "application/json", "op-t", "rejected")]
    assert answer(link).reason.startswith("malformed: content type 'text/plain'")
    assert raised.calls == []


class Acl(FakeLink):
    """A broker whose ACL grants the box its cmd/result only."""

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        if message.topic != RESULT:
            raise PublishRefused("Not authorized", 0x87)
        await super().publish(message, timeout_s)


async def test_an_answer_the_broker_refuses_on_the_response_topic_goes_to_cmd_result(
    clock: FakeClock, raised: Raised, caplog: pytest.LogCaptureFixture
) -> None:
    link = Acl()
    handler = CommandHandler(link, TOPICS, clock, raised)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="edge.uplink.commands"):
        await handler.handle_message(
            request(clock, TestArgs(), "op-a", response_topic=RESULT + "/console")
        )
    assert replies(link) == [(RESULT, b"op-a", "application/json", "op-a", "done")]
    assert "refused on edge/box-1/cmd/result/console" in caplog.text


async def test_dispatch_hands_the_whole_message_to_a_message_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Inbox:
        def __init__(self) -> None:
            self.inbox: asyncio.Queue[Message] = asyncio.Queue()

    link = Inbox()
    got: list[object] = []
    last = asyncio.Event()

    async def whole(message: Message) -> None:
        got.append(message)

    async def payload_only(payload: bytes) -> None:
        got.append(payload)
        last.set()

    cmd = Message(TOPICS.cmd, b"{}", response_topic=RESULT, correlation_data=b"c")
    for message in (Message("edge/box-1/other", b""), cmd, Message(TOPICS.ack, b"[]")):
        link.inbox.put_nowait(message)
    routes = {TOPICS.ack: payload_only}
    with caplog.at_level(logging.WARNING, logger="edge.uplink.inbox"):
        task = asyncio.create_task(dispatch(link, routes, {TOPICS.cmd: whole}))  # type: ignore[arg-type]
        await asyncio.wait_for(last.wait(), 5)
        task.cancel()
    assert got == [cmd, b"[]"]
    assert "ignored message on unexpected topic edge/box-1/other" in caplog.text
