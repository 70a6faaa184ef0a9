"""Operator commands on ``cmd`` and the box's answers on ``cmd/result``.

A command: ``{"v":1, "id":..., "type":"clip"|"snapshot"|"test"|"hold"|"release",
"expires_at":"<ISO 8601 UTC, Z>", "args":{...}}``. The parser is strict: an
unknown key, a loosely typed value or a stale command is rejected with a
:class:`CommandRejected` that keeps the command id whenever the payload
carried a valid one, so the box can answer on ``cmd/result``. Pure: time is
an argument.

MQTT v5's request/response properties ride along (PROTOCOL.md 3.6-3.7): a
station sets :func:`command_envelope` on a command (Response Topic, Correlation
Data, Message Expiry Interval, Content Type); the box answers on the Response
Topic when :func:`response_topic_problem` allows it, echoes the Correlation
Data, and refuses a command whose message expiry ran out. Without them, a
command is answered on ``cmd/result`` as before.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from edge.errors import ProtocolError
from edge.protocol.common import VERSION, dumps, iso_ms, parse_iso_ms
from edge.protocol.topics import Topics

MAX_CLIP_S: Final = 300  # longest clip an operator may ask for
MAX_EXPIRY_S: Final = 3600  # how far ahead a command may expire
MAX_TEXT: Final = 200  # characters of a test event's text or a hold's reason
MAX_HOLD_SPAN_S: Final = 7 * 86_400  # longest footage range one hold covers
MAX_HOLD_DAYS: Final = 366  # how far ahead a hold may end (renewed by a new hold)
MIN_TIME_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z: earlier is a clock fault
CONTENT_TYPE: Final = "application/json"  # MQTT v5 Content Type of a command and a result
MAX_RESPONSE_LEVELS: Final = 4  # topic levels a Response Topic may add under cmd/result
TYPES: Final = ("clip", "snapshot", "test", "hold", "release")
STATUSES: Final = ("accepted", "done", "rejected", "failed")
# The first word of every rejection reason, before its colon.
REASONS: Final = (
    "malformed",
    "unsupported_version",
    "unknown_type",
    "expired",
    "expiry_too_far",
    "bad_args",
    "bad_response_topic",
)
ID_PATTERN: Final = r"[A-Za-z0-9_.:-]{1,80}"
CAMERA_PATTERN: Final = r"[a-z0-9][a-z0-9_-]{0,62}"  # the config's camera id slug
_ID = re.compile(ID_PATTERN)
_CAMERA = re.compile(CAMERA_PATTERN)
_KEYS = frozenset({"v", "id", "type", "expires_at", "args"})

Status = Literal["accepted", "done", "rejected", "failed"]
Detail = str | int | float | bool | None | list[str]


class CommandRejected(ProtocolError):
    """A command the box will not run; ``reason`` is ``"<code>: <detail>"``."""

    def __init__(self, command_id: str | None, reason: str) -> None:
        super().__init__(f"command {command_id or '(no valid id)'} rejected: {reason}")
        self.command_id = command_id
        self.reason = reason

    @property
    def code(self) -> str:
        """The reason's first word, one of :data:`REASONS`."""
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True)
class ClipArgs:
    """Recorded video of ``camera`` from ``from_ms`` to ``to_ms`` (UTC ms)."""

    TYPE: ClassVar[str] = "clip"
    camera: str
    from_ms: int
    to_ms: int


@dataclass(frozen=True)
class SnapshotArgs:
    """A still from ``camera``, now."""

    TYPE: ClassVar[str] = "snapshot"
    camera: str


@dataclass(frozen=True)
class TestArgs:
    """A test event through the whole chain, with an optional operator text."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    TYPE: ClassVar[str] = "test"
    text: str = ""


@dataclass(frozen=True)
class HoldArgs:
    """An incident hold: footage of ``camera`` from ``from_ms`` to ``to_ms`` is kept
    past the retention cap until ``until_ms`` or a release; ``reason`` is logged."""

    TYPE: ClassVar[str] = "hold"
    camera: str
    from_ms: int
    to_ms: int
    until_ms: int
    reason: str


@dataclass(frozen=True)
class ReleaseArgs:
    """The end of the hold placed by the command ``hold`` (its id), with a reason."""

    TYPE: ClassVar[str] = "release"
    hold: str
    reason: str


Args = ClipArgs | SnapshotArgs | TestArgs | HoldArgs | ReleaseArgs


@dataclass(frozen=True)
class Command:
    """One operator command; its kind is given by the type of ``args``."""

    id: str
    expires_at_ms: int
    args: Args

    @property
    def type(self) -> str:
        return self.args.TYPE


@dataclass(frozen=True)
class CommandResult:
    """What the box says about a command: accepted, done, rejected or failed."""

    command_id: str | None
    status: Status
    reason: str
    at_ms: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """The MQTT v5 properties a station sets on a command: where and how to answer it."""

    response_topic: str
    correlation_data: bytes
    expiry_s: int  # Message Expiry Interval
    content_type: str = CONTENT_TYPE


class _Invalid(Exception):
    """Internal: one rule broken, before the command id is attached."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


# --- command ----------------------------------------------------------------


def parse_command(
    payload: bytes,
    now_ms: int,
    *,
    content_type: str | None = None,
    expiry_left_s: float | None = None,
) -> Command:
    """The command in ``payload`` as of ``now_ms``; :class:`CommandRejected` otherwise.

    ``content_type`` is the message's MQTT v5 Content Type, if any (only
    ``application/json`` is understood); ``expiry_left_s`` what is left of its
    Message Expiry Interval now, if it had one: at 0 or less the command is
    expired whatever its ``expires_at`` says.
    """
    try:
        data = _object(payload)
    except _Invalid as exc:
        raise CommandRejected(None, str(exc)) from None
    raw_id = data.get("id")
    command_id = raw_id if isinstance(raw_id, str) and _ID.fullmatch(raw_id) else None
    try:
        if content_type is not None and content_type != CONTENT_TYPE:
            raise _Invalid("malformed", f"content type {_show(content_type)} is not {CONTENT_TYPE}")
        command = _command(data, command_id, now_ms)
        if expiry_left_s is not None and expiry_left_s <= 0:
            raise _Invalid("expired", f"its MQTT message expiry ran out {-expiry_left_s:.1f} s ago")
    except _Invalid as exc:
        raise CommandRejected(command_id, str(exc)) from None
    return command


def command_envelope(command: Command, topics: Topics, now_ms: int) -> Envelope:
    """The MQTT v5 properties a station sets on ``command``, published at ``now_ms``.

    The answer goes to the box's own ``cmd/result``, correlated by the command
    id; the broker drops the message when the command expires (whole seconds,
    rounded down, so never after ``expires_at``). ValueError if the command
    expires in under a second: the box would refuse it.
    """
    expiry_s = (command.expires_at_ms - now_ms) // 1000
    if expiry_s < 1:
        raise ValueError(f"command {command.id} expires in under 1 s: the box would refuse it")
    return Envelope(topics.cmd_result, command.id.encode(), expiry_s)


def response_topic_problem(topic: str, topics: Topics) -> str:
    """Why the box will not answer on ``topic`` (a Response Topic); "" when it will.

    Only the box's own ``cmd/result``, or a topic under it of at most
    :data:`MAX_RESPONSE_LEVELS` levels of command-id characters: a command must
    never make the box publish where its broker ACL does not expect it (another
    box's topics, the station's, or its own ``events``).
    """
    own = topics.cmd_result
    if topic == own:
        return ""
    if not topic.startswith(own + "/"):
        return f"bad_response_topic: {_show(topic)} is not {own} or a topic under it"
    levels = topic[len(own) + 1 :].split("/")
    if len(levels) > MAX_RESPONSE_LEVELS or not all(_ID.fullmatch(level) for level in levels):
        return (
            f"bad_response_topic: {_show(topic)}: at most {MAX_RESPONSE_LEVELS} levels "
            f"under {own}, each matching {ID_PATTERN}"
        )
    return ""


def encode_command(command: Command) -> bytes:
    """The wire form of ``command`` (what the station publishes on ``cmd``)."""
    args = command.args
    body: dict[str, object]
    if isinstance(args, ClipArgs):
        body = {"camera": args.camera, "from": iso_ms(args.from_ms), "to": iso_ms(args.to_ms)}
    elif isinstance(args, SnapshotArgs):
        body = {"camera": args.camera}
    elif isinstance(args, HoldArgs):
        body = {
            "camera": args.camera,
            "from": iso_ms(args.from_ms),
            "to": iso_ms(args.to_ms),
            "until": iso_ms(args.until_ms),
            "reason": args.reason,
        }
    elif isinstance(args, ReleaseArgs):
        body = {"hold": args.hold, "reason": args.reason}
    else:
        body = {"text": args.text} if args.text else {}
    return dumps(
        {
            "v": VERSION,
            "id": command.id,
            "type": command.type,
            "expires_at": iso_ms(command.expires_at_ms),
            "args": body,
        }
    )


def _command(data: dict[str, Any], command_id: str | None, now_ms: int) -> Command:
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Invalid("malformed", f"'v' must be a positive integer, not {_show(version)}")
    if version > VERSION:
        raise _Invalid("unsupported_version", f"version {version} is newer than {VERSION}")
    _keys(data, _KEYS, frozenset(), "malformed", "command")
    if command_id is None:
        raise _Invalid("malformed", f"'id' must match {ID_PATTERN}, not {_show(data['id'])}")
    kind = data["type"]
    if not isinstance(kind, str):
        raise _Invalid("malformed", f"'type' must be a string, not {_show(kind)}")
    if kind not in TYPES:
        raise _Invalid("unknown_type", f"{_show(kind)} is not one of {', '.join(TYPES)}")
    expires_ms = _time(data["expires_at"], "expires_at", "malformed")
    if expires_ms <= now_ms:
        raise _Invalid("expired", f"expires_at {iso_ms(expires_ms)} is not after {iso_ms(now_ms)}")
    if expires_ms > now_ms + MAX_EXPIRY_S * 1000:
        raise _Invalid(
            "expiry_too_far", f"expires_at {iso_ms(expires_ms)} is over {MAX_EXPIRY_S} s ahead"
        )
    args = data["args"]
    if not isinstance(args, dict):
        raise _Invalid("bad_args", f"'args' must be an object, not {_show(args)}")
    return Command(command_id, expires_ms, _args(kind, args, now_ms))


def _args(kind: str, args: dict[str, Any], now_ms: int) -> Args:
    if kind == "snapshot":
        _keys(args, frozenset({"camera"}), frozenset(), "bad_args", "snapshot args")
        return SnapshotArgs(_camera(args["camera"]))
    if kind == "test":
        _keys(args, frozenset(), frozenset({"text"}), "bad_args", "test args")
        return TestArgs(_text(args.get("text", "")))
    if kind == "hold":
        return _hold(args, now_ms)
    if kind == "release":
        _keys(args, frozenset({"hold", "reason"}), frozenset(), "bad_args", "release args")
        hold = args["hold"]
        if not isinstance(hold, str) or not _ID.fullmatch(hold):
            raise _Invalid("bad_args", f"args.hold must be a command id, not {_show(hold)}")
        return ReleaseArgs(hold, _reason(args["reason"]))
    _keys(args, frozenset({"camera", "from", "to"}), frozenset(), "bad_args", "clip args")
    camera = _camera(args["camera"])
    from_ms = _time(args["from"], "args.from", "bad_args")
    to_ms = _time(args["to"], "args.to", "bad_args")
    if from_ms >= to_ms:
        raise _Invalid("bad_args", "args.from must be before args.to")
    if to_ms - from_ms > MAX_CLIP_S * 1000:
        raise _Invalid("bad_args", f"clip of {(to_ms - from_ms) / 1000} s exceeds {MAX_CLIP_S} s")
    if to_ms > now_ms:
        raise _Invalid("bad_args", f"args.to {iso_ms(to_ms)} is after now {iso_ms(now_ms)}")
    return ClipArgs(camera, from_ms, to_ms)


def _hold(args: dict[str, Any], now_ms: int) -> HoldArgs:
    keys = frozenset({"camera", "from", "to", "until", "reason"})
    _keys(args, keys, frozenset(), "bad_args", "hold args")
    camera = _camera(args["camera"])
    from_ms = _time(args["from"], "args.from", "bad_args")
    to_ms = _time(args["to"], "args.to", "bad_args")
    until_ms = _time(args["until"], "args.until", "bad_args")
    if from_ms >= to_ms:
        raise _Invalid("bad_args", "args.from must be before args.to")
    if to_ms - from_ms > MAX_HOLD_SPAN_S * 1000:
        span = (to_ms - from_ms) / 1000
        raise _Invalid("bad_args", f"hold of {span} s exceeds {MAX_HOLD_SPAN_S} s")
    if to_ms > now_ms:
        raise _Invalid("bad_args", f"args.to {iso_ms(to_ms)} is after now {iso_ms(now_ms)}")
    if until_ms <= now_ms:
        raise _Invalid("bad_args", f"args.until {iso_ms(until_ms)} is not after now")
    if until_ms > now_ms + MAX_HOLD_DAYS * 86_400_000:
        raise _Invalid("bad_args", f"args.until is over {MAX_HOLD_DAYS} days ahead")
    return HoldArgs(camera, from_ms, to_ms, until_ms, _reason(args["reason"]))


def _reason(value: object) -> str:
    text = _text(value, "args.reason")
    if not text.strip():
        raise _Invalid("bad_args", "args.reason must say why (it goes to the access log)")
    return text


def _keys(
    obj: dict[str, Any], required: frozenset[str], optional: frozenset[str], code: str, what: str
) -> None:
    missing = required - obj.keys()
    if missing:
        raise _Invalid(code, f"{what}: missing key(s) {', '.join(sorted(missing))}")
    unknown = obj.keys() - required - optional
    if unknown:
        names = ", ".join(_show(k) for k in sorted(unknown))
        raise _Invalid(code, f"{what}: unknown key(s) {names}")


def _camera(value: object) -> str:
    if not isinstance(value, str) or not _CAMERA.fullmatch(value):
        raise _Invalid("bad_args", f"args.camera must be a camera id slug, not {_show(value)}")
    return value


def _text(value: object, name: str = "args.text") -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _Invalid("bad_args", f"{name} must be a string of at most {MAX_TEXT} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise _Invalid("bad_args", f"{name} must not hold control characters or surrogates")
    return value


def _time(value: object, name: str, code: str) -> int:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise _Invalid(code, f"{name} must be an ISO 8601 UTC time ending in Z, not {_show(value)}")
    try:
        at_ms = parse_iso_ms(value)
    except (ProtocolError, ValueError, OverflowError):
        raise _Invalid(code, f"{name} is not an ISO 8601 time: {_show(value)}") from None
    if at_ms < MIN_TIME_MS:
        raise _Invalid(code, f"{name} {_show(value)} is before 2000")
    return at_ms


# --- result -----------------------------------------------------------------


def encode_result(
    command_id: str | None,
    status: Status,
    reason: str = "",
    *,
    at_ms: int,
    **details: Detail,
) -> bytes:
    """The box's answer on ``cmd/result``; ValueError if the answer breaks the rules.

    ``command_id`` is None only for a rejection of a payload without a valid
    id; a rejection or failure must say why in ``reason``.
    """
    problem = _result_problem(command_id, status, reason)
    if problem:
        raise ValueError(problem)
    for key, value in details.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"detail {key!r} must be a finite number")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ValueError(f"detail {key!r} must be a list of strings")
    return dumps(
        {
            "v": VERSION,
            "id": command_id,
            "status": status,
            "reason": reason,
            "at": iso_ms(at_ms),
            "details": details,
        }
    )


def decode_result(payload: bytes) -> CommandResult:
    """A ``cmd/result`` payload (station side); ProtocolError on anything malformed.

    Unknown top-level fields are ignored, as for events and acks.
    """
    try:
        data = _object(payload)
    except _Invalid as exc:
        raise ProtocolError(f"command result {exc}") from None
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("command result has no integer protocol version 'v'")
    if version > VERSION:
        raise ProtocolError(f"command result version {version} is newer than {VERSION}")
    command_id, status, reason = data.get("id"), data.get("status"), data.get("reason", "")
    if command_id is not None and not (isinstance(command_id, str) and _ID.fullmatch(command_id)):
        raise ProtocolError(f"command result id must match {ID_PATTERN} or be null")
    if status not in STATUSES or not isinstance(reason, str):
        raise ProtocolError(f"command result status {_show(status)} / reason {_show(reason)}")
    problem = _result_problem(command_id, status, reason)
    if problem:
        raise ProtocolError(problem)
    details = data.get("details", {})
    if not isinstance(details, dict):
        raise ProtocolError("command result 'details' must be an object")
    return CommandResult(command_id, status, reason, parse_iso_ms(data.get("at")), details)


def _result_problem(command_id: str | None, status: str, reason: str) -> str:
    if status not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}, not {status!r}"
    if command_id is None and status != "rejected":
        return "only a rejection may lack a command id"
    if command_id is not None and not _ID.fullmatch(command_id):
        return f"command id must match {ID_PATTERN}, not {_show(command_id)}"
    if status in ("rejected", "failed") and not reason:
        return f"a {status} result must give a reason"
    return ""


# --- shared -----------------------------------------------------------------


def _object(payload: bytes) -> dict[str, Any]:
    """A JSON object with no duplicate keys; _Invalid('malformed') otherwise."""
    try:
        data = json.loads(payload, object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:  # incl. bad UTF-8, huge integers
        raise _Invalid("malformed", f"not JSON: {_show(str(exc))}") from None
    if not isinstance(data, dict):
        raise _Invalid("malformed", f"payload must be a JSON object, not {type(data).__name__}")
    return data


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return data


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
