"""CommandHandler: operator commands in, one answer each on ``cmd/result``, never a crash."""

from __future__ import annotations

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
