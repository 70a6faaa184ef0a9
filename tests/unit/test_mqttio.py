"""The MQTT adapter's pure parts: reconnect backoff and the packet-size bound."""

from __future__ import annotations

import random

import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.mqttio import LinkSettings, Message, MqttLink, _packet_size


def link(min_s: float, max_s: float) -> MqttLink:
    return MqttLink(
        LinkSettings("127.0.0.1", 1883, "t", reconnect_min_s=min_s, reconnect_max_s=max_s)
    )


def test_backoff_is_jittered_within_a_doubling_cap() -> None:
    random.seed(7)
    mqtt = link(1, 60)
    for failures in range(12):
        cap = min(60, 2**failures)
        waits = [mqtt._backoff_s(failures) for _ in range(400)]
        assert min(waits) >= 1 and max(waits) <= cap
        if cap >= 4:  # full jitter: the waits spread over the range, not bunched
            assert max(waits) - min(waits) > cap / 2


def test_backoff_never_exceeds_the_maximum_even_after_many_failures() -> None:
    mqtt = link(2, 30)
    assert all(2 <= mqtt._backoff_s(10_000) <= 30 for _ in range(1000))


def _varint_len(n: int) -> int:
    """Bytes of MQTT's variable-length integer for ``n``."""
    return 1 + (n > 127) + (n > 16_383) + (n > 2_097_151)


@pytest.mark.parametrize("payload", [b"", b"x" * 100, b"y" * 300_000])
def test_packet_size_bounds_the_real_publish_packet(payload: bytes) -> None:
    message = Message("edge/gw/media/e1/m1", payload, properties=(("index", "3"), ("count", "9")))
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = list(message.properties)
    packed = props.pack()  # includes its own length prefix
    # topic (2 + len), packet id (2), properties, payload
    remaining = 2 + len(message.topic.encode()) + 2 + len(packed) + len(payload)
    real = 1 + _varint_len(remaining) + remaining
    assert real <= _packet_size(message) <= real + 16


def test_trimmed_property_decoding_gives_paho_s_own_result() -> None:
    from edge.mqttio import _PAHO_UNPACK, _trim_properties_buffer

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("index", "3"), ("count", "9"), ("sha256", "ab" * 32)]
    rest = props.pack() + bytes(range(256)) * 1024  # properties, then a 256 KiB payload

    theirs, their_length = _PAHO_UNPACK(Properties(PacketTypes.PUBLISH), rest)
    _trim_properties_buffer()
    _trim_properties_buffer()  # twice is once
    ours, our_length = Properties(PacketTypes.PUBLISH).unpack(rest)
    assert Properties.unpack is not _PAHO_UNPACK  # the patch is in place
    assert our_length == their_length == len(props.pack())
    assert ours.UserProperty == theirs.UserProperty == props.UserProperty


@settings(max_examples=300, deadline=None)
@given(
    topic=st.binary(max_size=40),
    qos=st.integers(0, 2),
    flags=st.integers(0, 1),
    mid=st.integers(0, 65535),
    props=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4),
    payload=st.binary(max_size=2000),
    cut=st.integers(0, 3000),
    v5=st.booleans(),
)
def test_one_copy_publish_decoding_equals_paho_s(
    topic: bytes,
    qos: int,
    flags: int,
    mid: int,
    props: list[tuple[str, str]],
    payload: bytes,
    cut: int,
    v5: bool,
) -> None:
    """Same packet, same fields (or the same kind of error), for whole and cut packets."""
    from paho.mqtt import _packet
    from paho.mqtt.exception import MalformedPacket

    from edge.mqttio import _PAHO_DECODE_PUBLISH, _decode_publish

    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    if v5:
        p = Properties(PacketTypes.PUBLISH)
        if props:
            p.UserProperty = props
        body += p.pack()
    body += payload
    header = 0x30 | qos << 1 | flags | flags << 3
    protocol = paho.MQTTv5 if v5 else paho.MQTTv311
    for packet in (body, body[: min(cut, len(body))]):
        ours_fn = _packet.convert_exception(_decode_publish)
        try:
            theirs = _PAHO_DECODE_PUBLISH(header, packet, protocol)
        except MalformedPacket:
            with pytest.raises(MalformedPacket):
                ours_fn(header, packet, protocol)
            continue
        ours = ours_fn(header, packet, protocol)
        assert ours._replace(properties=None) == theirs._replace(properties=None)
        if v5:
            assert ours.properties.json() == theirs.properties.json()
