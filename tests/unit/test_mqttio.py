"""The MQTT adapter's pure parts: reconnect backoff, the packet-size bound, our PUBLISH
decoder (and paho's private API it relies on), SUBACK checks."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import random
from typing import Any

import paho.mqtt as paho_mqtt
import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.clock import FakeClock
from edge.mqttio import LinkSettings, Message, MqttLink, _packet_size, _properties, _received
from edge.mqttio.client import _Client, _decode_publish, paho_private_api_problems


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
@pytest.mark.parametrize("standard", [False, True])
def test_packet_size_bounds_the_real_publish_packet(payload: bytes, standard: bool) -> None:
    message = Message("edge/gw/media/e1/m1", payload, properties=(("index", "3"), ("count", "9")))
    if standard:
        message = dataclasses.replace(message, **REQUEST)
    props = _properties(message)
    assert props is not None
    packed = props.pack()  # includes its own length prefix
    # topic (2 + len), packet id (2), properties, payload
    remaining = 2 + len(message.topic.encode()) + 2 + len(packed) + len(payload)
    real = 1 + _varint_len(remaining) + remaining
    assert real <= _packet_size(message) <= real + 16


# -- MQTT v5 standard properties (issue 15) -----------------------------------

REQUEST: dict[str, Any] = {
    "response_topic": "edge/gw/cmd/result",
    "correlation_data": b"op-7\x00\xff",
    "message_expiry_s": 59,
    "content_type": "application/json",
}


class PahoMessage:
    """What paho hands ``on_message``: its fields the link reads."""

    def __init__(self, properties: Properties | None) -> None:
        self.topic, self.payload, self.qos, self.retain = "edge/gw/cmd", b"{}", 1, False
        self.properties = properties


def on_the_wire(props: Properties | None) -> Properties | None:
    """``props`` packed by paho and read back, as the receiver's paho decodes them."""
    if props is None:
        return None
    received = Properties(PacketTypes.PUBLISH)
    received.unpack(props.pack())
    return received


def test_standard_properties_are_set_on_publish_and_read_on_receive() -> None:
    sent = Message("edge/gw/cmd", b"{}", properties=(("v", "2"),), **REQUEST)
    props = _properties(sent)
    assert props is not None
    assert props.ResponseTopic == "edge/gw/cmd/result"
    assert props.CorrelationData == b"op-7\x00\xff"
    assert props.MessageExpiryInterval == 59
    assert props.ContentType == "application/json"
    assert props.UserProperty == [("v", "2")]
    received = _received(PahoMessage(on_the_wire(props)), now_mono_s=12.5)
    assert received == dataclasses.replace(sent, received_mono_s=12.5)


@pytest.mark.parametrize("field", sorted(REQUEST))
def test_each_standard_property_travels_alone(field: str) -> None:
    sent = Message("edge/gw/cmd", b"{}", **{field: REQUEST[field]})
    received = _received(PahoMessage(on_the_wire(_properties(sent))), now_mono_s=1.0)
    assert received == dataclasses.replace(sent, received_mono_s=1.0)


def test_a_message_without_properties_has_none() -> None:
    assert _properties(Message("edge/gw/events", b"{}")) is None  # paho sends no properties
    received = _received(PahoMessage(None), now_mono_s=3.0)
    assert received == Message("edge/gw/cmd", b"{}", received_mono_s=3.0)
    assert received.response_topic is received.correlation_data is None
    assert received.message_expiry_s is received.content_type is None


def test_the_link_stamps_each_received_message_with_its_clock() -> None:
    async def receive_one() -> Message:
        clock = FakeClock()
        mqtt = MqttLink(LinkSettings("127.0.0.1", 1883, "t"), clock=clock)
        clock.advance(4.25)
        sent = Message("edge/gw/cmd", b"{}", **REQUEST)
        mqtt._on_message(None, None, PahoMessage(on_the_wire(_properties(sent))))
        return mqtt.inbox.get_nowait()

    message = asyncio.run(receive_one())
    assert message.received_mono_s == FakeClock().monotonic() + 4.25
    assert message.message_expiry_s == 59 and message.correlation_data == b"op-7\x00\xff"


# -- our PUBLISH decoder, used by our client only (issue 15) -------------------

MEDIA_TOPIC = "edge/gw/media/e1/m1"


def publish_packet(
    topic: str = MEDIA_TOPIC, payload: bytes = b"chunk", mid: int = 7, qos: int = 1
) -> tuple[int, bytearray]:
    """The fixed header's first byte and the rest of a v5 PUBLISH, as paho reads them."""
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("v", "2"), ("index", "3"), ("sha256", "ab" * 32)]
    body = len(topic).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    return 0x30 | qos << 1, bytearray(body + props.pack() + payload)


class Received:
    def __init__(self) -> None:
        self.messages: list[paho.MQTTMessage] = []

    def __call__(self, _client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        self.messages.append(message)


def receive(client: paho.Client, header: int, packet: bytearray) -> Received:
    """Hand ``client`` one whole incoming packet, as its socket reader does."""
    received = Received()
    client.on_message = received
    client._in_packet["command"] = header
    client._in_packet["packet"] = packet
    client._packet_handle()
    return received


def new_client(cls: type[paho.Client] = paho.Client) -> paho.Client:
    return cls(CallbackAPIVersion.VERSION2, client_id="t", protocol=paho.MQTTv5)


def test_paho_s_private_api_is_what_our_client_relies_on() -> None:
    """Fails loudly when an upgrade of paho-mqtt (pinned at 2.2.0) changes it."""
    version = paho_mqtt.__version__
    problems = paho_private_api_problems(new_client())
    assert problems == [], (
        f"paho-mqtt {version} changed the private API of edge/mqttio/client.py's _Client "
        f"(written for 2.2.0): {problems}. Re-check _Client._handle_publish against "
        "paho's own, or drop _Client if paho now decodes a PUBLISH with one copy."
    )
    # paho still decodes a PUBLISH in _handle_publish, reached from _packet_handle: the
    # method _Client overrides is the one that does the copying
    handle = inspect.getsource(paho.Client._handle_publish)
    assert "_packet.decode_publish(" in handle, f"paho-mqtt {version}: _handle_publish changed"
    assert "self._handle_publish()" in inspect.getsource(paho.Client._packet_handle), (
        f"paho-mqtt {version}: _packet_handle no longer calls _handle_publish"
    )


def test_our_client_decodes_with_ours_and_paho_s_client_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from paho.mqtt import _packet

    def refuse(*_args: object) -> None:
        raise AssertionError("paho's decode_publish was used")

    monkeypatch.setattr(_packet, "decode_publish", refuse)
    header, packet = publish_packet(payload=b"x" * 300_000)
    [message] = receive(new_client(_Client), header, packet).messages
    assert (message.topic, message.mid, message.qos) == (MEDIA_TOPIC, 7, 1)
    assert message.payload == b"x" * 300_000
    assert message.properties.UserProperty == [("v", "2"), ("index", "3"), ("sha256", "ab" * 32)]
    with pytest.raises(AssertionError, match="paho's decode_publish was used"):
        receive(new_client(), *publish_packet())  # any other paho client decodes as paho does


def test_our_client_acknowledges_qos_1_and_leaves_qos_2_to_paho() -> None:
    client = new_client(_Client)
    acked: list[int] = []
    client._send_puback = acked.append  # type: ignore[method-assign]
    assert len(receive(client, *publish_packet(mid=9)).messages) == 1
    assert len(receive(client, *publish_packet(qos=0)).messages) == 1
    assert acked == [9]  # QoS 0 is not acknowledged
    # QoS 2 goes to paho's own path: PUBREC first, the message only after PUBREL
    received = receive(client, *publish_packet(mid=11, qos=2))
    assert received.messages == [] and 11 in client._in_messages


def test_a_malformed_publish_is_paho_s_protocol_error() -> None:
    header, packet = publish_packet()
    client = new_client(_Client)
    client._in_packet["command"], client._in_packet["packet"] = header, packet[:-40]  # cut
    with pytest.raises(MalformedPacket):
        client._packet_handle()  # _packet_read turns it into MQTT_ERR_PROTOCOL, as for paho's own


def test_starting_a_link_patches_nothing_of_paho() -> None:
    from paho.mqtt import _packet

    decode, unpack = _packet.decode_publish, Properties.unpack

    async def start_and_stop() -> paho.Client | None:
        mqtt = MqttLink(LinkSettings("127.0.0.1", 9, "t", connect_timeout_s=0.2))
        await mqtt.start()
        client = mqtt._client
        await mqtt.stop(timeout_s=0.2)
        return client

    client = asyncio.run(start_and_stop())
    assert type(client) is _Client
    assert _packet.decode_publish is decode and Properties.unpack is unpack


def test_a_changed_paho_falls_back_to_paho_s_own_decoding(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(paho.Client, "_send_puback", lambda self, mid, reason=0: None)
    with caplog.at_level(logging.WARNING, logger="edge.mqttio"):
        client = link(1, 60)._make_client()
    assert type(client) is paho.Client
    [warning] = caplog.records
    assert f"paho-mqtt {paho_mqtt.__version__} changed" in warning.getMessage()
    assert "_send_puback" in warning.getMessage()


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
        ours_fn = _decode_publish
        try:
            theirs = _packet.decode_publish(header, packet, protocol)
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
