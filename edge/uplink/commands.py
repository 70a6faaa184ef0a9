"""Operator commands from the station, answered on ``cmd/result``.

Every command is schema-checked by :mod:`edge.protocol.commands`; an expired,
malformed or unknown one is rejected with a reason, never crashes anything.
A test command puts a manual test event (601) through the whole chain. Clip
and snapshot go to the ``video`` callback given by the composition root (this
stage does not import the video stage): a clip is answered ``accepted`` first,
then ``done`` with the event id whose media topics carry the files, or
``failed`` with the reason (``HardwareError``). A box without cameras has no
callback and answers ``failed: unavailable``. Hold and release (incident holds
on recorded footage) go to the ``holds`` callback and are answered ``done`` with
its details or ``failed`` with the reason.

MQTT v5 request/response (PROTOCOL.md 3.6-3.7): every answer carries the
Content Type ``application/json`` and echoes the command's Correlation Data; it
goes to the command's Response Topic when that is the box's own ``cmd/result``
or a topic under it (anything else is refused as ``bad_response_topic``,
answered on ``cmd/result``); a command whose Message Expiry Interval ran out
while it waited here is refused as ``expired``. A command without these
properties is answered on ``cmd/result`` as by a box that predates them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge import protocol
from edge.clock import Clock, ms
from edge.codes import Condition
from edge.errors import HardwareError, PublishRefused, UplinkError
from edge.model import Event
from edge.mqttio import Message, MqttLink
from edge.protocol.commands import (
    CONTENT_TYPE,
    ClipArgs,
    Command,
    CommandRejected,
    Detail,
    HoldArgs,
    ReleaseArgs,
    SnapshotArgs,
    TestArgs,
    encode_result,
    parse_command,
    response_topic_problem,
)

log = logging.getLogger(__name__)
REMEMBERED = 1000  # command ids whose answers are kept for duplicates
RaiseEvent = Callable[[Condition, bool, str], Awaitable[Event]]
# (args, command id) -> (event id, media ids); HardwareError when it cannot be done
VideoCommand = Callable[[ClipArgs | SnapshotArgs, str], Awaitable[tuple[str, list[str]]]]
# (args, command id) -> the result's details; HardwareError when it cannot be done
HoldCommand = Callable[[HoldArgs | ReleaseArgs, str], Awaitable[dict[str, Detail]]]


@dataclass(frozen=True)
class Reply:
    """Where a command's answers go, and the Correlation Data they echo."""

    topic: str
    correlation_data: bytes | None = None


class CommandHandler:
    def __init__(
        self,
        link: MqttLink,
        topics: protocol.Topics,
        clock: Clock,
        raise_event: RaiseEvent,
        video: VideoCommand | None = None,
        cameras: tuple[str, ...] = (),
        holds: HoldCommand | None = None,
    ) -> None:
        self.link = link
        self.video = video
        self.holds = holds
        self.cameras = cameras
        self.topics = topics
        self.clock = clock
        self.raise_event = raise_event
        self.handled = 0
        self.rejected = 0
        # QoS 1 may deliver a command twice (and a persistent session replays):
        # a command id already run gets its first answer again, not a second run.
        self._answers: OrderedDict[str, bytes] = OrderedDict()

    async def handle(self, payload: bytes) -> None:
        """A command without MQTT v5 properties, as a station that predates them sends it."""
        await self.handle_message(Message(self.topics.cmd, payload))

    async def handle_message(self, message: Message) -> None:
        """A command as received, with its MQTT v5 properties; answered, never raised."""
        now = ms(self.clock.time())
        reply = self._reply(message)
        try:
            command = self._parse(message, now)
        except CommandRejected as exc:
            self.rejected += 1
            log.warning("%s", exc)
            result = encode_result(exc.command_id, "rejected", exc.reason, at_ms=now)
            await self._answer(result, reply)
            return
        earlier = self._answers.get(command.id)
        if earlier is not None:
            log.info("command %s already handled: answering again", command.id)
            await self._answer(earlier, reply)
            return
        self.handled += 1
        args = command.args
        if isinstance(args, TestArgs):
            text = args.text or "test requested by the station"
            event = await self.raise_event(Condition.MANUAL_TEST, False, text)
            result = encode_result(
                command.id, "done", at_ms=ms(self.clock.time()), event_id=event.id
            )
        elif isinstance(args, ClipArgs | SnapshotArgs):
            result = await self._video(command.id, args, now, reply)
        elif isinstance(args, HoldArgs | ReleaseArgs):
            result = await self._hold(command.id, args, now)
        self._answers[command.id] = result
        while len(self._answers) > REMEMBERED:
            self._answers.popitem(last=False)
        await self._answer(result, reply)

    def _parse(self, message: Message, now: int) -> Command:
        """The command, if this box will run it; CommandRejected otherwise."""
        command = parse_command(
            message.payload,
            now,
            content_type=message.content_type,
            expiry_left_s=self._expiry_left_s(message),
        )
        if message.response_topic is not None:
            problem = response_topic_problem(message.response_topic, self.topics)
            if problem:
                raise CommandRejected(command.id, problem)
        camera = getattr(command.args, "camera", None)
        if camera is not None and self.video is not None and camera not in self.cameras:
            known = ", ".join(self.cameras)
            raise CommandRejected(
                command.id, f"bad_args: no camera {camera!r} on this box (cameras: {known})"
            )
        return command

    def _reply(self, message: Message) -> Reply:
        """The Response Topic when the box may use it, else its own ``cmd/result``."""
        topic = message.response_topic
        if topic is None or response_topic_problem(topic, self.topics):
            topic = self.topics.cmd_result
        return Reply(topic, message.correlation_data)

    def _expiry_left_s(self, message: Message) -> float | None:
        """What is left now of the message's expiry interval (the link stamped its arrival)."""
        if message.message_expiry_s is None:
            return None
        if message.received_mono_s is None:
            return float(message.message_expiry_s)
        waited_s = self.clock.monotonic() - message.received_mono_s
        return message.message_expiry_s - waited_s

    async def _video(
        self, command_id: str, args: ClipArgs | SnapshotArgs, now: int, reply: Reply
    ) -> bytes:
        if self.video is None:
            reason = f"unavailable: no video recorder on this box ({args.TYPE})"
            return encode_result(command_id, "failed", reason, at_ms=now)
        if isinstance(args, ClipArgs):  # takes a while: say so first
            await self._answer(encode_result(command_id, "accepted", at_ms=now), reply)
        try:
            event_id, media_ids = await self.video(args, command_id)
        except HardwareError as exc:
            log.warning("command %s failed: %s", command_id, exc)
            return encode_result(command_id, "failed", str(exc), at_ms=ms(self.clock.time()))
        at = ms(self.clock.time())
        return encode_result(command_id, "done", at_ms=at, event_id=event_id, media_ids=media_ids)

    async def _hold(self, command_id: str, args: HoldArgs | ReleaseArgs, now: int) -> bytes:
        if self.holds is None:
            reason = f"unavailable: no video recorder on this box ({args.TYPE})"
            return encode_result(command_id, "failed", reason, at_ms=now)
        try:
            details = await self.holds(args, command_id)
        except HardwareError as exc:
            log.warning("command %s failed: %s", command_id, exc)
            return encode_result(command_id, "failed", str(exc), at_ms=ms(self.clock.time()))
        return encode_result(command_id, "done", "", at_ms=ms(self.clock.time()), **details)

    async def _answer(self, payload: bytes, reply: Reply) -> None:
        message = Message(
            reply.topic,
            payload,
            correlation_data=reply.correlation_data,
            content_type=CONTENT_TYPE,
        )
        try:
            await self.link.publish(message)
        except PublishRefused as exc:
            if reply.topic == self.topics.cmd_result:
                log.warning("command result not sent: %s", exc)
                return
            # the broker's ACL does not grant this box its Response Topic: say it where it may
            log.warning("command result refused on %s (%s): sent on cmd/result", reply.topic, exc)
            await self._answer(payload, Reply(self.topics.cmd_result, reply.correlation_data))
        except UplinkError as exc:
            log.warning("command result not sent: %s", exc)
