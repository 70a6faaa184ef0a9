"""What the station hears, as typed facts: one pure parser from MQTT message to fact.

Everything malformed becomes a :class:`ProtocolError` here, before the store
sees it, so a bad message costs one log line and never a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge import protocol
from edge.errors import ProtocolError
from edge.mqttio import Message
from edge.protocol import Chunk, EventMessage

INT64 = range(-(2**63), 2**63)  # what an SQLite INTEGER holds


@dataclass(frozen=True)
class EventReceived:
    device: str
    message: EventMessage


@dataclass(frozen=True)
class ChunkReceived:
    device: str
    event_id: str
    media_id: str
    chunk: Chunk
    data: bytes


@dataclass(frozen=True)
class MediaLostReceived:
    """The box will never send this media (evicted, or not recorded before a power cut)."""

    device: str
    event_id: str
    media_id: str
    kind: str
    reason: str


@dataclass(frozen=True)
class StateReceived:
    device: str
    state: str
    heartbeat_s: int | None = None  # the box's supervision profile, from its birth
    lost_s: int | None = None
    site: protocol.BoxSite | None = None  # where the box is, from its birth
    route: int | None = None  # a box with several routes: the route this state is about


@dataclass(frozen=True)
class HeartbeatReceived:
    device: str
    interval_s: int
    outbox_depth: int | None = None  # events the box holds, not yet acknowledged


Inbound = EventReceived | ChunkReceived | MediaLostReceived | StateReceived | HeartbeatReceived


def parse(message: Message, prefix: str) -> Inbound | None:
    """The fact a message carries; None for topics heard but not stored (``cmd/result``)."""
    device = protocol.device_of(message.topic, prefix)
    rest = message.topic[len(prefix) + 1 + len(device) :]
    if rest == "/events":
        return _event(device, message.payload)
    if rest.startswith("/media/"):
        return _chunk(message, prefix)
    if rest == "/state":
        return _state(device, protocol.decode_object(message.payload))
    if rest == "/heartbeat":
        beat = protocol.decode_object(message.payload)
        depth = beat.get("outbox_depth")
        return HeartbeatReceived(
            device,
            _int64(beat.get("interval_s"), "interval_s"),
            None if depth is None else _int64(depth, "outbox_depth"),
        )
    if rest == "/cmd/result":
        return None
    raise ProtocolError(f"no such station topic: {message.topic!r}")


def _state(device: str, body: dict[str, object]) -> StateReceived:
    state = body.get("state")
    if not isinstance(state, str) or not state or "\x00" in state:
        raise ProtocolError(f"state must be a non-empty string, not {state!r}")
    site = None if body.get("site") is None else protocol.decode_site(body["site"])
    route = None if body.get("route") is None else _int64(body["route"], "route")
    if route is not None and not 1 <= route <= 99:
        raise ProtocolError(f"route must be 1 to 99, not {route}")
    profile = body.get("supervision")
    if profile is None:
        return StateReceived(device, state, site=site, route=route)
    if not isinstance(profile, dict):
        raise ProtocolError(f"supervision must be an object, not {profile!r}")
    heartbeat_s = _int64(profile.get("heartbeat_s"), "supervision.heartbeat_s")
    lost_s = _int64(profile.get("lost_s"), "supervision.lost_s")
    if not 0 < heartbeat_s <= lost_s <= 86_400:
        raise ProtocolError(f"supervision: need 0 < heartbeat_s <= lost_s <= 86400: {profile}")
    return StateReceived(device, state, heartbeat_s, lost_s, site, route)


def _event(device: str, payload: bytes) -> EventReceived:
    message = protocol.decode_event(payload)
    if message.device != device:
        raise ProtocolError(f"event names device {message.device!r} on {device!r}'s topic")
    _int64(message.seq, "seq")
    _int64(message.event.partition, "partition")
    _no_nul(payload)
    return EventReceived(device, message)


def _chunk(message: Message, prefix: str) -> ChunkReceived | MediaLostReceived:
    device, event_id, media_id = protocol.media_ids(message.topic, prefix)
    for name in (device, event_id, media_id):
        if name.startswith("."):  # ".." would climb out of the media directory
            raise ProtocolError(f"media topic part {name!r} may not start with a dot")
    lost = protocol.parse_lost(message.properties)
    if lost is not None:
        if message.payload:
            raise ProtocolError("a lost notice carries no payload")
        return MediaLostReceived(device, event_id, media_id, lost.kind, lost.reason)
    chunk = protocol.parse_chunk(message.properties)
    _int64(chunk.size, "size")
    if len(message.payload) > chunk.size:
        raise ProtocolError(
            f"chunk {chunk.index} carries {len(message.payload)} bytes of a {chunk.size}-byte file"
        )
    return ChunkReceived(device, event_id, media_id, chunk, message.payload)


def _int64(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name} must be an integer, not {value!r}")
    if value not in INT64:
        raise ProtocolError(f"{name} {value} is out of range")
    return value


def _no_nul(payload: bytes) -> None:
    """No NUL character in a JSON text (PostgreSQL's text cannot hold one)."""
    if b"\\u0000" in payload.replace(b"\\\\", b""):
        raise ProtocolError("a NUL character (\\u0000) in an event is not accepted")
