"""The pure DC-09 codec: CRC vector, round trips (fuzzed), what the decoder refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import codes
from edge.codes import Condition, ZoneType
from edge.dc09 import codec, messages
from edge.dc09.codec import Dc09Error, Frame
from edge.dc09.messages import Alarm, Format, alarm_of
from edge.model import Event, ZoneRef
from edge.protocol import event_record

AT = datetime(2026, 11, 28, 14, 23, 10, tzinfo=UTC)
KEY = bytes(range(16))


def test_crc16_arc_known_vector() -> None:
    assert codec.crc16(b"123456789") == 0xBB3D  # CRC-16/ARC check value
    assert codec.crc16(b"") == 0


def test_encode_matches_a_hand_built_message() -> None:
    frame = Frame("SIA-DCS", 2, "0", "1", "1234", "#1234|Nri1/BA003", (), AT)
    body = b'"SIA-DCS"0002R1L0#1234[#1234|Nri1/BA003]_14:23:10,11-28-2026'
    assert codec.encode(frame) == b"\n%04X%04X%s\r" % (codec.crc16(body), len(body), body)


HEX = st.text("0123456789ABCDEF", min_size=1, max_size=6)
PRINTABLE = st.text(
    st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="[]"), max_size=40
)
FRAMES = st.builds(
    Frame,
    ident=st.sampled_from(codec.IDENTS),
    seq=st.integers(0, 9999),
    line=HEX,
    receiver=st.none() | HEX,
    account=st.none() | st.text("0123456789ABCDEF", min_size=3, max_size=16),
    data=PRINTABLE,
    extended=st.lists(PRINTABLE, max_size=3).map(tuple),
    timestamp=st.none()
    | st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
        lambda d: d.replace(microsecond=0, tzinfo=UTC)
    ),
    encrypted=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(frame=FRAMES, key=st.sampled_from([bytes(range(16)), bytes(24), b"k" * 32]))
def test_decode_inverts_encode(frame: Frame, key: bytes) -> None:
    raw = codec.encode(frame, key)
    assert raw.startswith(b"\n") and raw.endswith(b"\r")
    assert codec.decode(raw, key) == frame


@settings(max_examples=100, deadline=None)
@given(frame=FRAMES, flip=st.integers(9, 200))
def test_any_changed_byte_fails_the_crc(frame: Frame, flip: int) -> None:
    raw = bytearray(codec.encode(frame, KEY))
    index = 9 + flip % (len(raw) - 10)  # inside the body, after the length
    raw[index] ^= 0x01
    with pytest.raises(Dc09Error):
        codec.decode(bytes(raw), KEY)


def test_encrypted_body_is_hex_of_whole_blocks_with_a_pad() -> None:
    frame = Frame("SIA-DCS", 1, "0", None, "1234", "#1234|Nri1/BA003", (), AT, encrypted=True)
    raw = codec.encode(frame, KEY, pad=lambda n: "x" * n)
    hexpart = raw.split(b"[", 1)[1].rstrip(b"\r")
    assert len(hexpart) % 32 == 0 and b"BA003" not in raw
    assert b'"*SIA-DCS"0001L0#1234[' in raw


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\n0000", "too short"),
        (b'\nZZZZ0010"ACK"0001L0[]\r', "no CRC"),
        (b'\n00000016"ACK"0001L0#1234[]\r', "CRC"),
    ],
)
def test_decode_refuses_what_is_not_a_message(raw: bytes, why: str) -> None:
    with pytest.raises(Dc09Error, match=why):
        codec.decode(raw)


def test_wrong_length_is_refused() -> None:
    body = b'"ACK"0001L0#1234[]'
    raw = b"\n%04X%04X%s\r" % (codec.crc16(body), len(body) + 1, body)
    with pytest.raises(Dc09Error, match="length"):
        codec.decode(raw)


def test_encrypted_message_needs_the_right_key() -> None:
    frame = Frame("SIA-DCS", 1, "0", None, "1234", "#1234|Nri1/BA003", (), AT, encrypted=True)
    raw = codec.encode(frame, KEY)
    with pytest.raises(Dc09Error, match="no key"):
        codec.decode(raw)
    with pytest.raises(Dc09Error):
        codec.decode(raw, bytes(16))


@pytest.mark.parametrize(
    "frame",
    [
        Frame("BOGUS", 1),
        Frame("ACK", 10_000),
        Frame("ACK", 1, line="g"),
        Frame("ACK", 1, account="12"),
        Frame("SIA-DCS", 1, data="a]b"),
        Frame("ACK", 1, timestamp=AT.replace(microsecond=5)),
    ],
)
def test_encode_refuses_a_bad_frame(frame: Frame) -> None:
    with pytest.raises(Dc09Error):
        codec.encode(frame)


def test_encrypted_frame_needs_a_key_of_aes_size() -> None:
    frame = Frame("NULL", 1, account="1234", encrypted=True)
    with pytest.raises(Dc09Error, match="needs a key"):
        codec.encode(frame)
    with pytest.raises(Dc09Error, match="16, 24 or 32"):
        codec.encode(frame, b"short")


def test_decode_reads_a_standard_nak_with_the_receivers_time() -> None:
    body = b'"NAK"0000R0L0A0[]_14:23:10,11-28-2026'
    nak = codec.decode(b"\n%04X%04X%s\r" % (codec.crc16(body), len(body), body))
    assert (nak.ident, nak.seq, nak.timestamp) == ("NAK", 0, AT)


def test_decode_tolerates_pysiaalarms_none_receiver_and_zero_fill() -> None:
    body = b'"ACK"0001NoneL0#1234[]'
    ack = codec.decode(b"\n%04X%04X%s\r" % (codec.crc16(body), len(body), body))
    assert (ack.ident, ack.seq, ack.receiver, ack.account) == ("ACK", 1, None, "1234")
    clear = "]_14:23:10,11-28-2026".zfill(32).encode()  # its pad: zeros, no "|"
    hexed = codec._aes(KEY, encrypt=True, data=clear).hex().upper().encode()
    body = b'"*ACK"0001L0#1234[' + hexed
    ack = codec.decode(b"\n%04X%04X%s\r" % (codec.crc16(body), len(body), body), KEY)
    assert (ack.ident, ack.data, ack.timestamp) == ("ACK", "", AT)


def test_split_finds_whole_messages_and_keeps_the_rest() -> None:
    one = codec.encode(Frame("ACK", 1, account="1234"))
    two = codec.encode(Frame("ACK", 2, account="1234"))
    found, rest = codec.split(b"\n\r" + one + two + two[:5])
    assert found == [one, two] and rest == two[:5]


@pytest.mark.parametrize(
    ("fmt", "alarm", "data"),
    [
        (Format.SIA_DCS, Alarm("e", "1130", "BA", 1, 3), "#1234|Nri1/BA003"),
        (Format.SIA_DCS, Alarm("e", "1602", "RP", 0, None), "#1234|Nri0/RP"),
        (Format.ADM_CID, Alarm("e", "1130", "BA", 1, 3), "#1234|1130 01 003"),
        (Format.ADM_CID, Alarm("e", "3110", "FR", 2, None), "#1234|3110 02 000"),
    ],
)
def test_event_data_in_each_format(fmt: Format, alarm: Alarm, data: str) -> None:
    assert messages.data(alarm, "1234", fmt) == data


def test_event_frame_carries_the_video_reference() -> None:
    alarm = Alarm("e", "1130", "BA", 1, 3, "https://station/events/e")
    frame = messages.event_frame(
        alarm,
        fmt=Format.SIA_DCS,
        seq=7,
        account="1234",
        line="0",
        receiver=None,
        at=AT,
        encrypted=False,
    )
    assert frame.extended == ("Vhttps://station/events/e",)
    assert b"[Vhttps://station/events/e]_14:23:10,11-28-2026\r" in codec.encode(frame)


def _sized(body_bytes: int, *, encrypted: bool = False) -> Frame:
    """A frame whose body (what the length field counts) is ``body_bytes`` long in clear."""
    frame = Frame("SIA-DCS", 1, account="1234", data="#1234|Nri1/BA003", timestamp=AT)
    base = len(codec.encode(frame)) - 10  # LF, CRC, length, CR
    url = "Vhttps://station.example/" + "a" * (body_bytes - base - 2 - 25)
    return Frame("SIA-DCS", 1, "0", None, "1234", frame.data, (url,), AT, encrypted)


def test_the_longest_message_has_length_0fff() -> None:
    raw = codec.encode(_sized(4095))
    assert raw[5:9] == b"0FFF" and len(raw) == 4095 + 10
    assert codec.decode(raw) == _sized(4095)


@pytest.mark.parametrize(("size", "encrypted"), [(4096, False), (6000, False), (2100, True)])
def test_a_message_too_long_for_the_length_field_is_refused(size: int, encrypted: bool) -> None:
    # DC-09's length is "0" and three hex digits: 4095 bytes at most, never a 4-digit field.
    with pytest.raises(codec.FrameTooLong, match=r"\d{4} bytes.*at most 4095") as caught:
        codec.encode(_sized(size, encrypted=encrypted), KEY)
    assert isinstance(caught.value, Dc09Error) and caught.value.length > 4095


@pytest.mark.parametrize(
    ("fmt", "alarm", "data"),
    [  # open/close (401): the address is the user number, not a zone
        (Format.SIA_DCS, Alarm("e", "1401", "OP", 1, 9, user=7), "#1234|Nri1/OP007"),
        (Format.SIA_DCS, Alarm("e", "3401", "CL", 1, None, user=0), "#1234|Nri1/CL000"),
        (Format.ADM_CID, Alarm("e", "3401", "CL", 2, 9, user=12), "#1234|3401 02 012"),
    ],
)
def test_open_close_data_carries_the_user(fmt: Format, alarm: Alarm, data: str) -> None:
    assert messages.data(alarm, "1234", fmt) == data


def _arming(restore: bool, extra: dict[str, str]) -> dict[str, object]:
    """A stored open/close body: the box reports it on its armed-state output, zone 9."""
    event = Event(
        id="e",
        kind=codes.kind(Condition.OPEN_CLOSE, restore),
        condition=Condition.OPEN_CLOSE,
        codes=codes.codes(Condition.OPEN_CLOSE, restore),
        occurred_at_ms=0,
        partition=1,
        armed=restore,
        zone=ZoneRef("armed", "Armed output", ZoneType.ARMED_STATE, 9),
        extra=extra,
    )
    return event_record(event)


@pytest.mark.parametrize(
    ("restore", "extra", "sia", "adm"),
    [
        (True, {}, "#1234|Nri1/CL000", "#1234|3401 01 000"),  # no user known: 000
        (False, {"user": "7"}, "#1234|Nri1/OP007", "#1234|1401 01 007"),  # the event's user
        (True, {"user": "123"}, "#1234|Nri1/CL123", "#1234|3401 01 123"),
        (True, {"user": "1000"}, "#1234|Nri1/CL000", "#1234|3401 01 000"),  # not 3 digits
        (True, {"user": "x7"}, "#1234|Nri1/CL000", "#1234|3401 01 000"),
    ],
)
def test_open_close_never_sends_the_armed_output_zone(
    restore: bool, extra: dict[str, str], sia: str, adm: str
) -> None:
    alarm = alarm_of("e", _arming(restore, extra), "1234", None)
    assert messages.data(alarm, "1234", Format.SIA_DCS) == sia
    assert messages.data(alarm, "1234", Format.ADM_CID) == adm
