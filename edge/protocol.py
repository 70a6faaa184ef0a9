"""The wire format between box and station: topics and JSON payloads, versioned.

Pure: no I/O, no MQTT library. Both the box's uplink and the station's
receiver use these functions, so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge import codes
from edge.codes import Codes, Condition, Kind, ZoneType
from edge.errors import ProtocolError
from edge.model import Event, ZoneRef

VERSION = 1


@dataclass(frozen=True)
class Topics:
    """The topics of one device under ``prefix``."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def heartbeat(self) -> str:
        return f"{self.base}/heartbeat"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    def media(self, event_id: str, media_id: str) -> str:
        return f"{self.base}/media/{event_id}/{media_id}"


def station_filters(prefix: str) -> dict[str, str]:
    """Subscription filters a station uses to hear every device under ``prefix``."""
    return {
        "events": f"{prefix}/+/events",
        "state": f"{prefix}/+/state",
        "heartbeat": f"{prefix}/+/heartbeat",
    }


def device_of(topic: str, prefix: str) -> str:
    """The device id in ``<prefix>/<device>/...``; ProtocolError if the topic is foreign."""
    head = prefix + "/"
    if not topic.startswith(head):
        raise ProtocolError(f"topic {topic!r} is not under {prefix!r}")
    device = topic[len(head) :].split("/", 1)[0]
    if not device:
        raise ProtocolError(f"topic {topic!r} names no device")
    return device


def iso_ms(epoch_ms: int) -> str:
    """UTC ISO 8601 with milliseconds: ``2026-11-28T14:23:10.123Z``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_iso_ms(text: object) -> int:
    """Inverse of :func:`iso_ms`; ProtocolError unless an ISO 8601 string with a zone."""
    if not isinstance(text, str):
        raise ProtocolError(f"timestamp must be a string, not {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad timestamp {text!r}") from exc
    if moment.tzinfo is None:
        raise ProtocolError(f"timestamp {text!r} has no time zone")
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class EventMessage:
    """An event as it travels: the fact plus its delivery envelope."""

    event: Event
    seq: int
    device: str
    account: str
    sent_at_ms: int
    historical: bool


def event_record(event: Event) -> dict[str, Any]:
    """The event's own fields as JSON-ready data (what the outbox stores)."""
    zone = event.zone
    return {
        "id": event.id,
        "kind": event.kind.value,
        "condition": event.condition.value,
        "cid": event.codes.cid,
        "sia": event.codes.sia,
        "occurred_at": iso_ms(event.occurred_at_ms),
        "partition": event.partition,
        "armed": event.armed,
        "zone": None
        if zone is None
        else {"id": zone.id, "name": zone.name, "type": zone.type.value, "number": zone.number},
        "text": event.text,
        "extra": dict(event.extra),
    }


def event_from_record(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_record`; ProtocolError on anything malformed.

    Strict: booleans must be JSON booleans, numbers JSON integers, and the
    Contact ID and SIA codes must be the ones the code table gives the
    condition and kind (so a fire cannot arrive labelled 1130).
    """
    try:
        condition = Condition(data["condition"])
        kind = Kind(data["kind"])
        cid = str(data["cid"])
        if len(cid) != 4 or cid[0] not in "13" or not cid.isdigit():
            raise ProtocolError(f"bad Contact ID code {cid!r}")
        got = Codes(int(cid[0]), int(cid[1:]), str(data["sia"]))
        restore = got.cid_qualifier == 3
        if got != codes.codes(condition, restore) or kind != codes.kind(condition, restore):
            raise ProtocolError(
                f"codes {got.cid}/{got.sia} and kind {kind.value!r} do not match "
                f"condition {condition.value!r}"
            )
        zone = data.get("zone")
        ref = (
            None
            if zone is None
            else ZoneRef(
                id=str(zone["id"]),
                name=str(zone["name"]),
                type=ZoneType(zone["type"]),
                number=_int(zone["number"], "zone.number"),
            )
        )
        return Event(
            id=str(data["id"]),
            kind=kind,
            condition=condition,
            codes=got,
            occurred_at_ms=parse_iso_ms(data["occurred_at"]),
            partition=_int(data["partition"], "partition"),
            armed=_bool(data.get("armed"), "armed", optional=True),
            zone=ref,
            text=str(data.get("text", "")),
            extra={str(k): str(v) for k, v in dict(data.get("extra") or {}).items()},
        )
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"malformed event: {exc!r}") from exc


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name} must be an integer, not {value!r}")
    return value


def _bool(value: object, name: str, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} must be true or false, not {value!r}")
    return value


def encode_event(message: EventMessage) -> bytes:
    body = {
        "v": VERSION,
        **event_record(message.event),
        "seq": message.seq,
        "device": message.device,
        "account": message.account,
        "sent_at": iso_ms(message.sent_at_ms),
        "historical": message.historical,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_event(payload: bytes) -> EventMessage:
    data = _load(payload)
    try:
        return EventMessage(
            event=event_from_record(data),
            seq=_int(data["seq"], "seq"),
            device=str(data["device"]),
            account=str(data["account"]),
            sent_at_ms=parse_iso_ms(data["sent_at"]),
            historical=bool(_bool(data["historical"], "historical")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed event envelope: {exc!r}") from exc


def encode_ack(ids: list[str]) -> bytes:
    return json.dumps({"v": VERSION, "ids": ids}, separators=(",", ":")).encode()


def decode_ack(payload: bytes) -> list[str]:
    data = _load(payload)
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ProtocolError("ack must carry a list of event id strings in 'ids'")
    return ids


def encode_state(state: str, *, boot_id: str, version: str, at_ms: int) -> bytes:
    body = {"v": VERSION, "state": state, "boot_id": boot_id, "version": version}
    body["at"] = iso_ms(at_ms)
    return json.dumps(body, separators=(",", ":")).encode()


def encode_heartbeat(*, seq: int, at_ms: int, interval_s: int, outbox_depth: int) -> bytes:
    body = {
        "v": VERSION,
        "seq": seq,
        "at": iso_ms(at_ms),
        "interval_s": interval_s,
        "outbox_depth": outbox_depth,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_object(payload: bytes) -> dict[str, Any]:
    """A versioned JSON object (state, heartbeat); ProtocolError otherwise."""
    return _load(payload)


def _load(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("payload must be a JSON object")
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("payload has no integer protocol version 'v'")
    if version > VERSION:
        raise ProtocolError(f"protocol version {version} is newer than {VERSION}")
    return data
