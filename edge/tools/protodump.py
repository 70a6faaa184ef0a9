"""Protocol dump: the MQTT payload and the DC-09 frames an event would produce; decode a frame.

The event is built as the zones build it (:func:`zone_event`) or read from a
stored record (:func:`event_from_json`); the payload is the box's own
``encode_event``, and the DC-09 frames the bridge's own ``alarm_of`` +
``event_frame`` + ``encode``, in both formats, in clear and with a key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from edge import codes
from edge.codes import ZONE_CONDITION
from edge.config import EdgeConfig
from edge.dc09.codec import Frame, crc16, decode, encode
from edge.dc09.messages import Format, alarm_of, event_frame
from edge.errors import ConfigError, ProtocolError
from edge.model import Event, ZoneRef, new_event_id
from edge.protocol import Topics
from edge.protocol.events import EventMessage, encode_event, event_from_record

COLUMNS = ("what", "format", "encrypted", "topic", "text")


def zone_event(
    cfg: EdgeConfig, zone_id: str, restore: bool, at_ms: int, armed: bool | None
) -> Event:
    """The event the zones would send for ``zone_id`` (its alarm, or its restore)."""
    zone = next((z for z in cfg.zones if z.id == zone_id), None)
    if zone is None:
        known = ", ".join(z.id for z in cfg.zones)
        raise ConfigError("--zone", [f"--zone {zone_id!r}: not a zone of this config ({known})"])
    condition = ZONE_CONDITION[zone.type]
    kind = codes.kind(condition, restore)
    return Event(
        id=new_event_id(at_ms),
        kind=kind,
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=at_ms,
        partition=zone.partition,
        armed=armed,
        zone=ZoneRef(zone.id, zone.name, zone.type, zone.number),
        text=f"{zone.name}: {kind.value}",
    )


def event_from_json(text: str, name: str) -> Event:
    """An event record or a whole MQTT event payload (``edge station show``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{name}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{name}: an event is a JSON object")
    if isinstance(data.get("event"), dict):  # `edge station show` wraps it
        data = data["event"]
    return event_from_record(data)


def dump(
    cfg: EdgeConfig,
    event: Event,
    *,
    seq: int,
    key: bytes | None,
    line: str,
    receiver: str | None,
    video_base: str | None,
) -> Iterator[dict[str, Any]]:
    """Rows: the MQTT topic + payload, then each DC-09 frame (format x clear/encrypted)."""
    message = EventMessage(
        event, seq, cfg.device.id, cfg.station.account, event.occurred_at_ms, historical=False
    )
    payload = encode_event(message)
    topic = Topics(cfg.uplink.topic_prefix, cfg.device.id).events
    yield {"what": "mqtt", "topic": topic, "text": payload.decode()}
    body = json.loads(payload)
    alarm = alarm_of(event.id, body, cfg.station.account, video_base)
    at = datetime.fromtimestamp(event.occurred_at_ms / 1000, UTC)
    for fmt in Format:
        for encrypted in (False, True) if key is not None else (False,):
            frame = event_frame(
                alarm,
                fmt=fmt,
                seq=seq,
                account=alarm.account or cfg.station.account,
                line=line,
                receiver=receiver,
                at=at,
                encrypted=encrypted,
            )
            raw = encode(frame, key if encrypted else None)
            yield {
                "what": "dc09",
                "format": fmt.value,
                "encrypted": encrypted,
                "text": raw.decode("ascii").strip("\n\r"),
            }


def decode_frame(text: str, key: bytes | None) -> dict[str, Any]:
    """A DC-09 frame given as text (LF/CR optional), CRC and length checked."""
    raw = text.strip().encode("ascii", "replace")
    frame: Frame = decode(raw, key)
    body = raw.strip(b"\r\n")[8:]
    return {
        "crc": f"{crc16(body):04X}",
        "crc_ok": True,
        "ident": frame.ident,
        "seq": frame.seq,
        "receiver": frame.receiver,
        "line": frame.line,
        "account": frame.account,
        "encrypted": frame.encrypted,
        "data": frame.data,
        "extended": list(frame.extended),
        "timestamp": None if frame.timestamp is None else frame.timestamp.isoformat(),
    }
