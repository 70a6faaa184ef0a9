"""The wire format: round trips, topics, and strict rejection of malformed payloads."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from edge import codes
from edge.codes import Codes, Condition, Kind, ZoneType
from edge.errors import ProtocolError
from edge.model import Event, ZoneRef
from edge.protocol import (
    VERSION,
    Ack,
    EventMessage,
    MediaProgress,
    Topics,
    decode_ack,
    decode_event,
    device_of,
    encode_ack,
    encode_event,
    iso_ms,
    parse_iso_ms,
    station_filters,
)

T0 = 1_795_875_790_123  # 2026-11-28T14:23:10.123Z
EVENT_ID = "019ad0e1-2a2b-7c3d-8e4f-5a6b7c8d9e0f"


def _alarm(zone: ZoneRef | None = None, armed: bool | None = True) -> Event:
    return Event(
        id=EVENT_ID,
        kind=codes.kind(Condition.BURGLARY, restore=False),
        condition=Condition.BURGLARY,
        codes=codes.codes(Condition.BURGLARY, restore=False),
        occurred_at_ms=T0,
        partition=2,
        armed=armed,
        zone=zone,
        text="Hall PIR: alarm",
        extra={"pin": "17", "note": "ünïcode ok"},
    )


HALL = ZoneRef(id="hall", name="Hall PIR", type=ZoneType.INTRUSION, number=3)


def _message(event: Event, **overrides: Any) -> EventMessage:
    fields: dict[str, Any] = {
        "event": event,
        "seq": 42,
        "device": "gw-0001",
        "account": "A1B2",
        "sent_at_ms": T0 + 250,
        "historical": False,
    }
    fields.update(overrides)
    return EventMessage(**fields)


_DELETE = object()


def _body(**changes: Any) -> dict[str, Any]:
    """A valid encoded event as a dict, with ``changes`` applied (``_DELETE`` deletes)."""
    data: dict[str, Any] = json.loads(encode_event(_message(_alarm(HALL))))
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return data


# --- event round trip -------------------------------------------------------


def test_event_round_trip_with_zone() -> None:
    message = _message(_alarm(HALL))
    assert decode_event(encode_event(message)) == message


def test_event_round_trip_without_zone_and_unknown_armed_state() -> None:
    event = Event(
        id=EVENT_ID,
        kind=Kind.TROUBLE,
        condition=Condition.COMM_TROUBLE,
        codes=codes.codes(Condition.COMM_TROUBLE, restore=False),
        occurred_at_ms=T0,
        partition=1,
        armed=None,
    )
    message = _message(event, historical=True, seq=1)
    decoded = decode_event(encode_event(message))
    assert decoded == message
    assert decoded.event.zone is None
    assert decoded.event.armed is None
    assert decoded.historical is True


@pytest.mark.parametrize("restore", [False, True])
def test_round_trip_keeps_codes(restore: bool) -> None:
    event = Event(
        id=EVENT_ID,
        kind=codes.kind(Condition.OPEN_CLOSE, restore),
        condition=Condition.OPEN_CLOSE,
        codes=codes.codes(Condition.OPEN_CLOSE, restore),
        occurred_at_ms=T0,
        partition=1,
        armed=restore,
    )
    decoded = decode_event(encode_event(_message(event))).event
    assert decoded.codes == event.codes
    assert decoded.kind is event.kind


def test_encoded_event_fields() -> None:
    data = json.loads(encode_event(_message(_alarm(HALL))))
    assert data["v"] == VERSION
    assert data["id"] == EVENT_ID
    assert data["kind"] == "alarm"
    assert data["condition"] == "burglary"
    assert data["cid"] == "1130"
    assert data["sia"] == "BA"
    assert data["occurred_at"] == "2026-11-28T14:23:10.123Z"
    assert data["sent_at"] == "2026-11-28T14:23:10.373Z"
    assert data["seq"] == 42
    assert data["device"] == "gw-0001"
    assert data["account"] == "A1B2"
    assert data["partition"] == 2
    assert data["armed"] is True
    assert data["historical"] is False
    assert data["zone"] == {"id": "hall", "name": "Hall PIR", "type": "intrusion", "number": 3}


# --- timestamps ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (T0, "2026-11-28T14:23:10.123Z"),
        (946_684_799_999, "1999-12-31T23:59:59.999Z"),
        (946_684_800_000, "2000-01-01T00:00:00.000Z"),
    ],
)
def test_iso_ms_known_values(epoch_ms: int, text: str) -> None:
    assert iso_ms(epoch_ms) == text
    assert parse_iso_ms(text) == epoch_ms


def test_iso_ms_round_trip() -> None:
    rng = random.Random(1234)
    samples = [rng.randrange(0, 4_102_444_800_000) for _ in range(2_000)]
    samples += [T0 + n for n in range(-1_000, 1_000)]
    for epoch_ms in samples:
        text = iso_ms(epoch_ms)
        assert text.endswith("Z")
        assert len(text) == 24
        assert parse_iso_ms(text) == epoch_ms


def test_parse_iso_ms_accepts_offsets() -> None:
    assert parse_iso_ms("2026-11-28T14:23:10.123+00:00") == T0
    assert parse_iso_ms("2026-11-28T16:23:10.123+02:00") == T0
    assert parse_iso_ms("2026-11-28T14:23:10.123Z") == T0


@pytest.mark.parametrize(
    "text",
    ["2026-11-28T14:23:10.123", "yesterday", "", "2026-13-40T00:00:00Z", None, 12345, 1.5],
)
def test_parse_iso_ms_rejects(text: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_iso_ms(text)


# --- topics -------------------------------------------------------------------


def test_topics() -> None:
    topics = Topics("edge", "gw-0001")
    assert topics.base == "edge/gw-0001"
    assert topics.state == "edge/gw-0001/state"
    assert topics.events == "edge/gw-0001/events"
    assert topics.heartbeat == "edge/gw-0001/heartbeat"
    assert topics.ack == "edge/gw-0001/ack"
    assert topics.media(EVENT_ID, "still-1") == f"edge/gw-0001/media/{EVENT_ID}/still-1"


def test_topics_with_nested_prefix() -> None:
    topics = Topics("acme/alarm", "gw-0001")
    assert topics.events == "acme/alarm/gw-0001/events"
    assert device_of(topics.events, "acme/alarm") == "gw-0001"


def test_station_filters() -> None:
    assert station_filters("edge") == {
        "events": "edge/+/events",
        "state": "edge/+/state",
        "heartbeat": "edge/+/heartbeat",
        "media": "edge/+/media/+/+",
        "cmd_result": "edge/+/cmd/result",
    }


@pytest.mark.parametrize("kind", ["state", "events", "heartbeat", "ack"])
def test_device_of_every_topic(kind: str) -> None:
    topic = getattr(Topics("edge", "gw-0001"), kind)
    assert device_of(topic, "edge") == "gw-0001"


def test_device_of_media_topic() -> None:
    assert device_of(Topics("edge", "gw-7").media(EVENT_ID, "m"), "edge") == "gw-7"


@pytest.mark.parametrize(
    "topic",
    [
        "other/gw-0001/events",
        "edgex/gw-0001/events",  # shares the prefix's letters but not its level
        "edg/gw-0001/events",
        "gw-0001/events",
        "edge",
    ],
)
def test_device_of_rejects_foreign_prefix(topic: str) -> None:
    with pytest.raises(ProtocolError):
        device_of(topic, "edge")


@pytest.mark.parametrize("topic", ["edge//events", "edge/", "edge//"])
def test_device_of_rejects_empty_device(topic: str) -> None:
    with pytest.raises(ProtocolError):
        device_of(topic, "edge")


# --- ack ----------------------------------------------------------------------


@pytest.mark.parametrize("ids", [[EVENT_ID], ["a", "b", "c"]])
def test_ack_round_trip(ids: list[str]) -> None:
    assert decode_ack(encode_ack(ids)) == Ack(tuple(ids))


def test_ack_with_media_progress_round_trip() -> None:
    media = (MediaProgress("m1", 3), MediaProgress("m2", 7, complete=True))
    assert decode_ack(encode_ack([EVENT_ID], media)) == Ack((EVENT_ID,), media)
    assert decode_ack(encode_ack([], media)) == Ack((), media)


def test_ack_from_an_older_version_is_accepted() -> None:
    assert decode_ack(b'{"v":0,"ids":["x"]}') == Ack(("x",))


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"",
        b"\x80\x81\x82",
        b'{"v":1,"ids":["a"]',  # truncated
        b"[1, 2]",
        b'"ids"',
        b"42",
        b"null",
        b'{"ids":["a"]}',  # no version
        b'{"v":"1","ids":["a"]}',
        b'{"v":true,"ids":["a"]}',
        b'{"v":1.0,"ids":["a"]}',
        b'{"v":null,"ids":["a"]}',
        b'{"v":3,"ids":["a"]}',  # newer than we speak
        b'{"v":1}',
        b'{"v":1,"ids":null}',
        b'{"v":1,"ids":"a"}',
        b'{"v":1,"ids":{"a":1}}',
        b'{"v":1,"ids":[1,2]}',
        b'{"v":1,"ids":["a",null]}',
        b'{"v":1,"ids":[["a"]]}',
        b'{"v":1,"ids":[]}',  # acknowledges nothing
        b'{"v":1,"media":{}}',
        b'{"v":1,"media":[{"have":1}]}',
        b'{"v":1,"media":[{"id":"m","have":-1}]}',
        b'{"v":1,"media":[{"id":"m","have":"1"}]}',
        b'{"v":1,"media":[{"id":"m","have":1,"complete":"yes"}]}',
        b'{"v":1,"media":["m"]}',
    ],
)
def test_decode_ack_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_ack(payload)


# --- decode_event rejects -------------------------------------------------------

REQUIRED = [
    "v",
    "id",
    "kind",
    "condition",
    "cid",
    "sia",
    "occurred_at",
    "partition",
    "seq",
    "device",
    "account",
    "sent_at",
    "historical",
]


@pytest.mark.parametrize("key", REQUIRED)
def test_decode_event_rejects_missing_field(key: str) -> None:
    payload = json.dumps(_body(**{key: _DELETE})).encode()
    with pytest.raises(ProtocolError):
        decode_event(payload)


@pytest.mark.parametrize("key", ["zone", "text", "extra", "armed"])
def test_decode_event_optional_fields(key: str) -> None:
    decoded = decode_event(json.dumps(_body(**{key: _DELETE})).encode())
    assert decoded.event.id == EVENT_ID


@pytest.mark.parametrize(
    "changes",
    [
        {"cid": "11a0"},
        {"cid": "113"},
        {"cid": "11300"},
        {"cid": ""},
        {"cid": None},
        {"cid": "-130"},
        {"cid": " 130"},
        {"cid": "1²30"},  # a digit to str.isdigit(), not to int()
        {"kind": "bogus"},
        {"kind": None},
        {"condition": "bogus"},
        {"condition": ["burglary"]},
        {"occurred_at": "yesterday"},
        {"occurred_at": "2026-11-28T14:23:10.123"},  # no time zone
        {"occurred_at": 1795875790123},
        {"occurred_at": None},
        {"sent_at": "yesterday"},
        {"sent_at": 1795875790123},
        {"sent_at": None},
        {"partition": "two"},
        {"partition": None},
        {"partition": [2]},
        {"seq": "x"},
        {"seq": None},
        {"seq": {}},
        {"zone": "hall"},
        {"zone": ["hall"]},
        {"zone": 3},
        {"zone": {"id": "hall"}},
        {"zone": {"id": "hall", "name": "Hall", "type": "bogus", "number": 3}},
        {"zone": {"id": "hall", "name": "Hall", "type": "intrusion", "number": "three"}},
        {"extra": "abc"},
        {"extra": 5},
        {"extra": [1, 2]},
        {"v": 99},
        {"v": "1"},
    ],
    ids=repr,
)
def test_decode_event_rejects_bad_values(changes: dict[str, Any]) -> None:
    payload = json.dumps(_body(**changes)).encode()
    with pytest.raises(ProtocolError):
        decode_event(payload)


@pytest.mark.parametrize(
    "payload", [b"", b"nope", b"[]", b"{}", b'{"v":1}', b"\xff\xfe\xfd", b"null"]
)
def test_decode_event_rejects_non_events(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_event(payload)


@pytest.mark.parametrize(
    ("condition", "kind", "cid", "old", "new"),
    [
        ("comm_trouble", "trouble", "1350", "YC", "YS"),
        ("enclosure_tamper", "tamper", "1145", "TA", "ES"),
        ("enclosure_tamper", "tamper_restore", "3145", "TR", "EJ"),
    ],
)
def test_an_older_box_s_sia_codes_are_accepted_and_stored_as_they_are_now(
    condition: str, kind: str, cid: str, old: str, new: str
) -> None:
    """A box not yet updated still sends 1350/YC and 1145/TA: the station must store
    them (not refuse them, which would have the box resend them forever), corrected."""
    body = _body(condition=condition, kind=kind, cid=cid, sia=old, zone=None)
    decoded = decode_event(json.dumps(body).encode())
    assert decoded.event.codes.sia == new and decoded.event.codes.cid == cid
    with pytest.raises(ProtocolError, match="do not match"):  # only those pairs
        decode_event(json.dumps({**body, "sia": "BA"}).encode())


def test_decoded_codes_come_from_the_cid_string() -> None:
    decoded = decode_event(json.dumps(_body(cid="3130", sia="BR", kind="restore")).encode())
    assert decoded.event.codes == Codes(3, 130, "BR")
    assert decoded.event.codes.cid == "3130"
    assert decoded.event.kind is Kind.RESTORE


@pytest.mark.parametrize(
    "changes",
    [
        {"cid": "3130", "sia": "BR"},  # a restore's codes on an alarm
        {"cid": "1110", "sia": "FA"},  # fire codes on a burglary
        {"cid": "1130", "sia": "FA"},  # SIA code of another condition
        {"cid": "9130"},  # qualifier neither 1 nor 3
        {"kind": "tamper"},  # kind of another condition
        {"armed": "false"},  # a string is not a boolean
        {"armed": 0},
        {"historical": "false"},
        {"seq": 1.9},
        {"seq": True},
        {"partition": "1"},
    ],
    ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()),
)
def test_inconsistent_or_loosely_typed_event_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        decode_event(json.dumps(_body(**changes)).encode())
