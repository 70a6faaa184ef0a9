"""The wire format between box and station: topics and payloads, versioned.

Pure: no I/O, no MQTT library. Both the box's uplink and the station's
receiver use it, so the two sides cannot drift apart. For integrators:
``edge/protocol/PROTOCOL.md``.
"""

from edge.protocol.acks import Ack, MediaProgress, decode_ack, encode_ack
from edge.protocol.commands import (
    MAX_CLIP_S,
    ClipArgs,
    Command,
    CommandRejected,
    CommandResult,
    Envelope,
    HoldArgs,
    ReleaseArgs,
    SnapshotArgs,
    TestArgs,
    command_envelope,
    decode_result,
    encode_command,
    encode_result,
    parse_command,
    response_topic_problem,
)
from edge.protocol.common import VERSION, dumps, iso_ms, load, parse_iso_ms
from edge.protocol.events import (
    BoxSite,
    EventMessage,
    decode_event,
    decode_object,
    decode_site,
    encode_event,
    encode_heartbeat,
    encode_state,
    event_from_record,
    event_record,
)
from edge.protocol.media import (
    Chunk,
    Lost,
    chunk_count,
    chunk_properties,
    lost_properties,
    media_ids,
    parse_chunk,
    parse_lost,
)
from edge.protocol.topics import Topics, device_of, station_filters

__all__ = [
    "MAX_CLIP_S",
    "VERSION",
    "Ack",
    "BoxSite",
    "Chunk",
    "ClipArgs",
    "Command",
    "CommandRejected",
    "CommandResult",
    "Envelope",
    "EventMessage",
    "HoldArgs",
    "Lost",
    "MediaProgress",
    "ReleaseArgs",
    "SnapshotArgs",
    "TestArgs",
    "Topics",
    "chunk_count",
    "chunk_properties",
    "command_envelope",
    "decode_ack",
    "decode_event",
    "decode_object",
    "decode_result",
    "decode_site",
    "device_of",
    "dumps",
    "encode_ack",
    "encode_command",
    "encode_event",
    "encode_heartbeat",
    "encode_result",
    "encode_state",
    "event_from_record",
    "event_record",
    "iso_ms",
    "load",
    "lost_properties",
    "media_ids",
    "parse_chunk",
    "parse_command",
    "parse_iso_ms",
    "parse_lost",
    "response_topic_problem",
    "station_filters",
]
