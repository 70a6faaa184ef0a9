"""The MQTT adapter's pure parts: reconnect backoff, the packet-size bound, SUBACK checks."""

from __future__ import annotations

import logging
import random

import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

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
        if v5 and _properties_overrun(packet, qos):
            # paho reads past the end of a cut property as empty text: a malformed
            # packet it lets through; ours refuses it, as MQTT 5 (1.5.5, 2.2.2) asks
            with pytest.raises(MalformedPacket, match="properties longer than the packet"):
                ours_fn(header, packet, protocol)
            continue
        ours = ours_fn(header, packet, protocol)
        assert ours._replace(properties=None) == theirs._replace(properties=None)
        if v5:
            assert ours.properties.json() == theirs.properties.json()


def _properties_overrun(packet: bytes, qos: int) -> bool:
    """Whether a v5 PUBLISH declares more property bytes than it carries."""
    from paho.mqtt.properties import VariableByteIntegers

    pos = 2 + int.from_bytes(packet[:2], "big") + (2 if qos else 0)
    if pos >= len(packet):
        return False
    try:
        length, used = VariableByteIntegers.decode(packet[pos : pos + 4])
    except Exception:  # a cut length: not this case
        return False
    return pos + used + length > len(packet)


# -- SUBACK reason codes (issue 14) -------------------------------------------

ACK, CMD = "edge/gw/ack", "edge/gw/cmd"


class SubscribingClient:
    """Records each SUBSCRIBE as paho's ``Client.subscribe`` would number it."""

    def __init__(self) -> None:
        self.subscribed: dict[int, tuple[str, int]] = {}
        self.mid = 40

    def subscribe(self, topic: str, qos: int) -> tuple[int, int]:
        self.mid += 1
        self.subscribed[self.mid] = (topic, qos)
        return paho.MQTT_ERR_SUCCESS, self.mid


class Flags:
    session_present = False


def subscribing_link() -> MqttLink:
    settings = LinkSettings("127.0.0.1", 1883, "gw", subscriptions=((ACK, 1), (CMD, 1)))
    return MqttLink(settings)


CLIENT = SubscribingClient()  # paho keeps one client, and its mids, across reconnects


def connect(mqtt: MqttLink, client: SubscribingClient = CLIENT) -> dict[str, int]:
    """A CONNACK 0x00 on a fresh connection; the mid of each topic's SUBSCRIBE."""
    client.subscribed.clear()
    mqtt._on_connect(client, None, Flags(), ReasonCode(PacketTypes.CONNACK, identifier=0), None)
    return {topic: mid for mid, (topic, _qos) in client.subscribed.items()}


def suback(mqtt: MqttLink, mid: int, code: int) -> None:
    mqtt._on_subscribe(None, None, mid, [ReasonCode(PacketTypes.SUBACK, identifier=code)], None)


def test_a_refused_subscription_is_kept_in_the_status_and_logged_with_its_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mqtt = subscribing_link()
    mids = connect(mqtt)
    assert set(mids) == {ACK, CMD}
    with caplog.at_level(logging.INFO, logger="edge.mqttio"):
        suback(mqtt, mids[ACK], 0x87)
        suback(mqtt, mids[CMD], 0x01)
    assert mqtt.status.refused_subscriptions == {ACK: "Not authorized (0x87)"}
    assert mqtt.status.last_error == (
        f"subscription to {ACK} refused by the broker: Not authorized (0x87)"
    )
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert ACK in error.getMessage() and "Not authorized (0x87)" in error.getMessage()
    assert mqtt.status.connected  # the link is up; only this topic is refused


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (0x80, "Unspecified error (0x80)"),
        (0x8F, "Topic filter invalid (0x8F)"),
        (0x97, "Quota exceeded (0x97)"),
        (0xA2, "Wildcard subscription not supported (0xA2)"),
    ],
)
def test_every_failure_code_is_a_refusal(code: int, reason: str) -> None:
    mqtt = subscribing_link()
    suback(mqtt, connect(mqtt)[CMD], code)
    assert mqtt.status.refused_subscriptions == {CMD: reason}


def test_a_later_suback_that_grants_it_ends_the_refusal(caplog: pytest.LogCaptureFixture) -> None:
    mqtt = subscribing_link()
    first = connect(mqtt)
    suback(mqtt, first[ACK], 0x87)
    mqtt._on_disconnect(None, None, None, "link lost", None)
    assert mqtt.status.refused_subscriptions == {ACK: "Not authorized (0x87)"}  # until told
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edge.mqttio"):
        again = connect(mqtt)
        suback(mqtt, again[ACK], 0x87)  # still refused: no news, no second ERROR
        assert [r.levelname for r in caplog.records if ACK in r.getMessage()] == ["WARNING"]
        assert mqtt.status.last_error is not None and ACK in mqtt.status.last_error
        mqtt._on_disconnect(None, None, None, "link lost", None)
        third = connect(mqtt)
        suback(mqtt, third[ACK], 0x01)
    assert mqtt.status.refused_subscriptions == {}
    assert mqtt.status.last_error is None
    assert "granted again" in caplog.records[-1].getMessage()


def test_a_suback_of_an_earlier_connection_is_ignored() -> None:
    mqtt = subscribing_link()
    old = connect(mqtt)
    connect(mqtt)  # reconnected before the first SUBACKs came
    suback(mqtt, old[ACK], 0x87)
    assert mqtt.status.refused_subscriptions == {}


def test_a_lower_qos_than_asked_is_granted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mqtt = subscribing_link()
    with caplog.at_level(logging.WARNING, logger="edge.mqttio"):
        suback(mqtt, connect(mqtt)[ACK], 0x00)
    assert mqtt.status.refused_subscriptions == {}
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    assert f"{ACK} granted at QoS 0, not 1" in warning.getMessage()
