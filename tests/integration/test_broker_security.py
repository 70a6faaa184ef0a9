"""The production broker configuration (config/mosquitto/) enforces who may say what.

Mosquitto runs with config/mosquitto/broker.conf and acl as shipped (only ports
and paths replaced, see tests/integration/tls.py); gateways gw-a and gw-b and the
station connect with client certificates whose CN is their identity.

What mosquitto 2.0.11 answers is pinned exactly, because the gateway's uplink
decides from it whether a message can ever be delivered (dead letter) or must be
retried. Observed and asserted here:

- PUBACK 0x00 Success: accepted and routed to at least one subscriber.
- PUBACK 0x10 No matching subscribers: accepted, nobody subscribed (a success).
- PUBACK 0x87 Not authorized: the ACL forbids the topic; nothing is delivered
  and the connection stays up.
- SUBACK 0x01 Granted QoS 1 even for a filter the ACL does not allow: mosquitto
  filters at delivery time, so the subscriber just never receives anything.
- A packet over max_packet_size: mosquitto sends DISCONNECT 0x95 Packet too large
  and closes the connection; no PUBACK, nothing delivered.
- A payload over message_size_limit (not set in broker.conf; tested by adding
  it): PUBACK 0x95, which MQTT v5 does not allow in a PUBACK, so paho-mqtt 2.2
  calls it a malformed packet and drops the connection (reason 0x82).
- A message dropped because a subscriber's queue is full (max_queued_messages):
  PUBACK 0x00 all the same. A PUBACK never means "delivered"; only the
  station's `ack` does.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.conftest import wait_for
from tests.integration.tls import (
    BROKER_TEMPLATE,
    CA,
    CertKey,
    TlsBroker,
    make_ca,
    make_client_cert,
    make_server_cert,
    start_tls_broker,
    template_setting,
)

pytestmark = pytest.mark.broker

T = 3.0  # seconds to wait for anything that should happen

# MQTT v5 reason codes seen in these tests
SUCCESS = 0x00
GRANTED_QOS_1 = 0x01
NO_MATCHING_SUBSCRIBERS = 0x10
UNSPECIFIED_ERROR = 0x80
PROTOCOL_ERROR = 0x82
NOT_AUTHORIZED = 0x87
PACKET_TOO_LARGE = 0x95

MAX_PACKET_SIZE = int(template_setting("max_packet_size"))
# broker.conf leaves message_size_limit commented out; the tests that add it use its value.
_LIMIT = re.search(r"^#?message_size_limit (\d+)$", BROKER_TEMPLATE.read_text(), re.MULTILINE)
assert _LIMIT is not None
MESSAGE_SIZE_LIMIT = int(_LIMIT.group(1))


@dataclass(frozen=True)
class Pki:
    ca: CA
    server: CertKey
    gw_a: CertKey
    gw_b: CertKey
    station: CertKey
    rogue_gw_a: CertKey  # CN gw-a, signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    ca = make_ca(base / "ca")
    rogue = make_ca(base / "rogue", "Rogue CA")
    return Pki(
        ca=ca,
        server=make_server_cert(ca),
        gw_a=make_client_cert(ca, "gw-a"),
        gw_b=make_client_cert(ca, "gw-b"),
        station=make_client_cert(ca, "station"),
        rogue_gw_a=make_client_cert(rogue, "gw-a"),
    )


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[TlsBroker]:
    b = start_tls_broker(tmp_path / "broker", pki.ca, pki.server)
    yield b
    b.stop()


class Probe:
    """A raw paho MQTT v5 client over TLS that records what the broker answers."""

    def __init__(
        self,
        broker: TlsBroker,
        ca: CA,
        identity: CertKey | None,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.name = client_id or (identity.cn if identity else "anonymous")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.name,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.tls_set(
            ca_certs=str(ca.cert),
            certfile=str(identity.cert) if identity else None,
            keyfile=str(identity.key) if identity else None,
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.connack: Future[int] = Future()
        self.disconnected: Future[int] = Future()
        self.messages: Queue[MQTTMessage] = Queue()
        self._acks: dict[int, Future[list[int]]] = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self._broker = broker

    # paho callbacks, on paho's thread
    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if not self.connack.done():
            self.connack.set_result(rc.value)

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(rc.value)

    def _ack(self, mid: int) -> Future[list[int]]:
        with self._lock:
            return self._acks.setdefault(mid, Future())

    def acked(self, mid: int) -> bool:
        """Whether a PUBACK or SUBACK for ``mid`` has arrived."""
        return self._ack(mid).done()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self._ack(mid).set_result([rc.value])

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        self._ack(mid).set_result([rc.value for rc in rcs])

    # test side
    def start(self) -> Probe:
        """Connect and run the network loop; does not wait for the CONNACK."""
        self.client.connect(self._broker.host, self._broker.port, keepalive=30)
        self.client.loop_start()
        return self

    def connect(self) -> Probe:
        """Connect and wait for a successful CONNACK."""
        self.start()
        assert self.connack.result(T) == SUCCESS
        return self

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> Future[list[int]]:
        """QoS 1 publish; the future gives the PUBACK's reason code (in a list)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        return self._ack(info.mid)

    def puback(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        return self.publish(topic, payload, retain=retain).result(T)[0]

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe at QoS 1; the SUBACK's reason codes, one per filter."""
        rc, mid = self.client.subscribe([(f, 1) for f in filters])
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        return self._ack(mid).result(T)

    def next_message(self) -> MQTTMessage:
        try:
            return self.messages.get(timeout=T)
        except Empty:
            pytest.fail(f"{self.name}: no message within {T} s")

    def no_more_messages(self) -> None:
        assert self.messages.empty(), [m.topic for m in list(self.messages.queue)]

    def kill_socket(self) -> None:
        """Drop the TCP connection without an MQTT DISCONNECT, as a power cut would."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(broker: TlsBroker, pki: Pki) -> Iterator[dict[str, Probe]]:
    """Probes for gw-a, gw-b and the station, not connected yet."""
    probes = {
        "gw-a": Probe(broker, pki.ca, pki.gw_a),
        "gw-b": Probe(broker, pki.ca, pki.gw_b),
        "station": Probe(broker, pki.ca, pki.station),
    }
    yield probes
    for probe in probes.values():
        probe.close()


class RawMqtt5:
    """Just enough MQTT v5 over TLS to see the exact bytes mosquitto answers,
    including answers that paho refuses to parse."""

    def __init__(self, broker: TlsBroker, ca: CA, identity: CertKey) -> None:
        ctx = ssl.create_default_context(cafile=str(ca.cert))
        ctx.load_cert_chain(identity.cert, identity.key)
        raw = socket.create_connection((broker.host, broker.port), timeout=T)
        self.sock = ctx.wrap_socket(raw, server_hostname=broker.host)
        client_id = identity.cn.encode()
        # CONNECT: "MQTT", v5, clean start, keepalive 30 s, no properties
        connect = b"\x00\x04MQTT\x05\x02\x00\x1e\x00" + len(client_id).to_bytes(2) + client_id
        self.sock.sendall(b"\x10" + varint(len(connect)) + connect)
        first, body = self.read()
        assert (first, body[:2]) == (0x20, b"\x00\x00"), (first, body)  # CONNACK, Success

    def publish_qos1(self, topic: str, payload: bytes, mid: int) -> None:
        self.sock.sendall(publish_qos1_packet(topic, payload, mid))

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def read(self) -> tuple[int, bytes]:
        """The next packet: its first byte and the rest after the remaining length."""
        first = self._exactly(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._exactly(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first, self._exactly(length)

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_qos1_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """PUBLISH QoS 1, no properties."""
    name = topic.encode()
    rest = len(name).to_bytes(2) + name + mid.to_bytes(2) + b"\x00" + payload
    return b"\x32" + varint(len(rest)) + rest


def publish_remaining_length(topic: str, payload_len: int) -> int:
    return len(publish_qos1_packet(topic, b"", 1)) - 2 + payload_len  # minus header, varint(0)


# -- (a) mutual TLS -------------------------------------------------------------------


def test_a_valid_client_certificate_connects(broker: TlsBroker, pki: Pki) -> None:
    probe = Probe(broker, pki.ca, pki.gw_a).connect()
    try:
        assert probe.connack.result(T) == SUCCESS
    finally:
        probe.close()


@pytest.mark.parametrize(
    ("which", "broker_says"),
    [
        ("no client certificate", "peer did not return a certificate"),
        ("certificate from another CA", "certificate verify failed"),
    ],
)
def test_a_connection_without_a_valid_client_certificate_fails(
    broker: TlsBroker, pki: Pki, which: str, broker_says: str
) -> None:
    identity = None if which == "no client certificate" else pki.rogue_gw_a
    probe = Probe(broker, pki.ca, identity, client_id="gw-a")
    try:
        # TLS 1.3: the client's side of the handshake completes, then the broker
        # rejects the certificate and closes: no CONNACK, only a disconnect.
        probe.start()
        assert probe.disconnected.result(T) == UNSPECIFIED_ERROR
        assert not probe.connack.done()
        wait_for(lambda: broker_says in broker.log_text(), T, f"{broker_says!r} in the log")
    finally:
        probe.close()


# -- (b) a device publishes only under its own id ------------------------------------------


@pytest.mark.parametrize("events_filter", ["edge/+/events", "$share/stations/edge/+/events"])
def test_b_device_event_reaches_station(clients: dict[str, Probe], events_filter: str) -> None:
    station, gw_a = clients["station"].connect(), clients["gw-a"].connect()
    assert station.subscribe(events_filter) == [GRANTED_QOS_1]
    assert gw_a.puback("edge/gw-a/events", b"alarm") == SUCCESS
    msg = station.next_message()
    assert (msg.topic, msg.payload) == ("edge/gw-a/events", b"alarm")


def test_b_publish_without_subscriber_is_acked_no_matching_subscribers(
    clients: dict[str, Probe],
) -> None:
    gw_a = clients["gw-a"].connect()
    assert gw_a.puback("edge/gw-a/events", b"alarm") == NO_MATCHING_SUBSCRIBERS


def test_b_device_cannot_publish_as_another_device(clients: dict[str, Probe]) -> None:
    station, gw_a = clients["station"].connect(), clients["gw-a"].connect()
    assert station.subscribe("edge/#") == [GRANTED_QOS_1]
    for topic in ("edge/gw-b/events", "edge/gw-b/state", "edge/gw-b/media/e1/m1"):
        assert gw_a.puback(topic, b"forged") == NOT_AUTHORIZED, topic
    # The refusal does not cost the connection; the next message from the same
    # publisher arrives, and nothing forged arrived before it.
    assert gw_a.puback("edge/gw-a/events", b"genuine") == SUCCESS
    msg = station.next_message()
    assert (msg.topic, msg.payload) == ("edge/gw-a/events", b"genuine")
    station.no_more_messages()
    assert gw_a.client.is_connected()


# -- (c) a device reads only its own ack and cmd ------------------------------------------------


def test_c_device_cannot_receive_another_devices_cmd_or_ack(clients: dict[str, Probe]) -> None:
    station, gw_a, gw_b = (clients[n].connect() for n in ("station", "gw-a", "gw-b"))
    # Not refused in the SUBACK: mosquitto grants the subscription and filters
    # every message at delivery time instead.
    assert (
        gw_a.subscribe("edge/gw-b/cmd", "edge/gw-b/ack", "edge/+/cmd", "#") == [GRANTED_QOS_1] * 4
    )
    assert gw_b.subscribe("edge/gw-b/cmd", "edge/gw-b/ack") == [GRANTED_QOS_1] * 2
    assert station.puback("edge/gw-b/cmd", b"cmd for b") == SUCCESS
    assert station.puback("edge/gw-b/ack", b"ack for b") == SUCCESS
    assert [(m.topic, m.payload) for m in (gw_b.next_message(), gw_b.next_message())] == [
        ("edge/gw-b/cmd", b"cmd for b"),
        ("edge/gw-b/ack", b"ack for b"),
    ]
    # Same publisher, so anything for gw-b would have reached gw-a before this.
    assert station.puback("edge/gw-a/cmd", b"cmd for a") == SUCCESS
    got = [gw_a.next_message(), gw_a.next_message()]  # via edge/+/cmd and via #
    assert {(m.topic, m.payload) for m in got} == {("edge/gw-a/cmd", b"cmd for a")}
    gw_a.no_more_messages()


# -- (d) size limits ---------------------------------------------------------------------


def test_d_packet_at_max_packet_size_is_accepted(clients: dict[str, Probe]) -> None:
    # mosquitto 2.0.11 compares remaining length + 1 with max_packet_size (it
    # does not count the 1-4 length bytes): this is the largest PUBLISH it takes.
    station, gw_a = clients["station"].connect(), clients["gw-a"].connect()
    assert station.subscribe("edge/+/media/+/+") == [GRANTED_QOS_1]
    topic = "edge/gw-a/media/e1/m1"
    size = MAX_PACKET_SIZE - 1 - publish_remaining_length(topic, 0)
    assert size > 256 * 1024 + 32 * 1024  # a 256 KiB chunk has room to spare
    assert gw_a.puback(topic, b"x" * size) == SUCCESS
    assert len(station.next_message().payload) == size


def test_d_packet_over_max_packet_size_disconnects_the_publisher(
    clients: dict[str, Probe], broker: TlsBroker
) -> None:
    station, gw_a = clients["station"].connect(), clients["gw-a"].connect()
    assert station.subscribe("edge/#") == [GRANTED_QOS_1]
    topic = "edge/gw-a/media/e1/m1"
    size = MAX_PACKET_SIZE - publish_remaining_length(topic, 0)  # one byte too many
    # paho writes at once from publish(): when the broker has already closed the
    # connection during that write, publish() itself reports MQTT_ERR_NO_CONN.
    info = gw_a.client.publish(topic, b"x" * size, qos=1)
    assert info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
    # mosquitto sends DISCONNECT 0x95 and closes at once; paho reports 0x95 when
    # it reads that packet first, 0x80 when the socket error wins the race.
    assert gw_a.disconnected.result(T) in (PACKET_TOO_LARGE, UNSPECIFIED_ERROR)
    assert not gw_a.acked(info.mid)
    wait_for(lambda: "disconnected due to oversize packet" in broker.log_text(), T, "the log")
    # Nothing was delivered: the station's next message is a later one.
    gw_b = clients["gw-b"].connect()
    assert gw_b.puback("edge/gw-b/events", b"later") == SUCCESS
    assert station.next_message().topic == "edge/gw-b/events"


def test_d_over_max_packet_size_on_the_wire(broker: TlsBroker, pki: Pki) -> None:
    # Only the fixed header of a too-large PUBLISH: the broker decides on the
    # remaining length alone, so its answer is deterministic.
    raw = RawMqtt5(broker, pki.ca, pki.gw_a)
    try:
        raw.sock.sendall(b"\x32" + varint(MAX_PACKET_SIZE))
        assert raw.read() == (0xE0, bytes([PACKET_TOO_LARGE]))  # DISCONNECT 0x95
        assert raw.closed()
    finally:
        raw.close()


@pytest.fixture
def broker_with_message_size_limit(tmp_path: Path, pki: Pki) -> Iterator[TlsBroker]:
    b = start_tls_broker(
        tmp_path / "broker",
        pki.ca,
        pki.server,
        extra_lines=(f"message_size_limit {MESSAGE_SIZE_LIMIT}",),
    )
    yield b
    b.stop()


def test_d_message_size_limit_answers_puback_0x95_on_the_wire(
    broker_with_message_size_limit: TlsBroker, pki: Pki
) -> None:
    broker = broker_with_message_size_limit
    raw = RawMqtt5(broker, pki.ca, pki.gw_a)
    try:
        raw.publish_qos1("edge/gw-a/media/e1/m1", b"x" * (MESSAGE_SIZE_LIMIT + 1), mid=1)
        assert raw.read() == (0x40, b"\x00\x01" + bytes([PACKET_TOO_LARGE]))  # PUBACK m1 0x95
        # The connection stays up and the next message goes through.
        raw.publish_qos1("edge/gw-a/events", b"next", mid=2)
        assert raw.read() == (0x40, b"\x00\x02" + bytes([NO_MATCHING_SUBSCRIBERS]))
    finally:
        raw.close()


def test_d_paho_drops_the_connection_on_message_size_limit_puback(
    broker_with_message_size_limit: TlsBroker, pki: Pki
) -> None:
    # 0x95 is not a valid PUBACK reason code in MQTT v5: paho-mqtt 2.2 calls the
    # packet malformed and closes the connection itself with "Protocol error".
    broker = broker_with_message_size_limit
    station = Probe(broker, pki.ca, pki.station).connect()
    gw_a = Probe(broker, pki.ca, pki.gw_a).connect()
    try:
        assert station.subscribe("edge/#") == [GRANTED_QOS_1]
        mid = gw_a.client.publish("edge/gw-a/media/e1/m1", b"x" * (MESSAGE_SIZE_LIMIT + 1), 1).mid
        assert gw_a.disconnected.result(T) == PROTOCOL_ERROR
        assert not gw_a.acked(mid)  # paho never reports that PUBACK
        # A payload of exactly message_size_limit still goes through.
        gw_b = Probe(broker, pki.ca, pki.gw_b).connect()
        try:
            assert gw_b.puback("edge/gw-b/media/e1/m1", b"x" * MESSAGE_SIZE_LIMIT) == SUCCESS
            msg = station.next_message()
            assert (msg.topic, len(msg.payload)) == ("edge/gw-b/media/e1/m1", MESSAGE_SIZE_LIMIT)
        finally:
            gw_b.close()
    finally:
        gw_a.close()
        station.close()


# -- (e) a device cannot forge acks or commands ---------------------------------------------


@pytest.mark.parametrize(
    "topic", ["edge/gw-a/ack", "edge/gw-a/cmd", "edge/gw-b/ack", "edge/gw-b/cmd"]
)
def test_e_device_cannot_publish_ack_or_cmd(clients: dict[str, Probe], topic: str) -> None:
    station, gw_a, gw_b = (clients[n].connect() for n in ("station", "gw-a", "gw-b"))
    assert gw_a.subscribe("edge/gw-a/ack", "edge/gw-a/cmd") == [GRANTED_QOS_1] * 2
    assert gw_b.subscribe("edge/gw-b/ack", "edge/gw-b/cmd") == [GRANTED_QOS_1] * 2
    assert gw_a.puback(topic, b"forged") == NOT_AUTHORIZED
    # The PUBACK came after mosquitto routed (here: dropped) the message, so a
    # forged delivery would be queued before the station's genuine one.
    target = clients[topic.split("/")[1]]
    assert station.puback(topic, b"genuine") == SUCCESS
    msg = target.next_message()
    assert (msg.topic, msg.payload) == (topic, b"genuine")
    gw_a.no_more_messages()
    gw_b.no_more_messages()


# -- (f) retained state and Will -----------------------------------------------------------------


def test_f_retained_state_and_will_under_the_acl(
    broker: TlsBroker, pki: Pki, clients: dict[str, Probe]
) -> None:
    gw_a = Probe(broker, pki.ca, pki.gw_a, will=("edge/gw-a/state", b"offline")).connect()
    try:
        assert gw_a.puback("edge/gw-a/state", b"online", retain=True) == NO_MATCHING_SUBSCRIBERS
        # A station that subscribes later gets the retained birth message.
        station = clients["station"].connect()
        assert station.subscribe("edge/+/state") == [GRANTED_QOS_1]
        msg = station.next_message()
        assert (msg.topic, msg.payload, msg.retain) == ("edge/gw-a/state", b"online", True)
        # Power cut: the Will replaces it, live and retained.
        gw_a.kill_socket()
        msg = station.next_message()
        assert (msg.topic, msg.payload) == ("edge/gw-a/state", b"offline")
    finally:
        gw_a.close()
    # A station that connects after the power cut gets the Will as the retained state.
    station.close()
    again = Probe(broker, pki.ca, pki.station)
    clients["station again"] = again  # closed by the fixture
    assert again.connect().subscribe("edge/+/state") == [GRANTED_QOS_1]
    msg = again.next_message()
    assert (msg.topic, msg.payload, msg.retain) == ("edge/gw-a/state", b"offline", True)


# -- client ids ----------------------------------------------------------------------------------


def test_device_cannot_take_over_another_devices_client_id(
    broker: TlsBroker, pki: Pki, clients: dict[str, Probe]
) -> None:
    # use_username_as_clientid: whatever client id gw-a asks for, its session is
    # "gw-a", so it neither disconnects gw-b nor inherits gw-b's session.
    station, gw_b = clients["station"].connect(), clients["gw-b"].connect()
    assert gw_b.subscribe("edge/gw-b/cmd") == [GRANTED_QOS_1]
    impostor = Probe(broker, pki.ca, pki.gw_a, client_id="gw-b")
    clients["impostor"] = impostor  # closed by the fixture
    assert impostor.connect().subscribe("edge/gw-b/cmd", "edge/gw-a/cmd") == [GRANTED_QOS_1] * 2
    wait_for(lambda: "as gw-a (p5" in broker.log_text(), T, "the impostor to be named gw-a")
    assert station.puback("edge/gw-b/cmd", b"cmd for b") == SUCCESS
    assert gw_b.next_message().payload == b"cmd for b"
    assert not gw_b.disconnected.done()
    assert station.puback("edge/gw-a/cmd", b"cmd for a") == SUCCESS
    assert impostor.next_message().payload == b"cmd for a"
    impostor.no_more_messages()


# -- queues ----------------------------------------------------------------------------------------


@pytest.fixture
def broker_with_tiny_queue(tmp_path: Path, pki: Pki) -> Iterator[TlsBroker]:
    b = start_tls_broker(
        tmp_path / "broker", pki.ca, pki.server, extra_lines=("max_queued_messages 2",)
    )
    yield b
    b.stop()


def test_message_dropped_from_a_full_queue_is_still_acked_success(
    broker_with_tiny_queue: TlsBroker, pki: Pki
) -> None:
    broker = broker_with_tiny_queue
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = 60
    station = Probe(broker, pki.ca, pki.station)
    station.client.connect(broker.host, broker.port, clean_start=False, properties=session)
    station.client.loop_start()
    assert station.connack.result(T) == SUCCESS
    assert station.subscribe("edge/+/events") == [GRANTED_QOS_1]
    station.close()  # the session, and its subscription, stay on the broker
    gw_a = Probe(broker, pki.ca, pki.gw_a).connect()
    try:
        assert [gw_a.puback("edge/gw-a/events", b"%d" % i) for i in range(4)] == [SUCCESS] * 4
    finally:
        gw_a.close()
    again = Probe(broker, pki.ca, pki.station)
    again.client.connect(broker.host, broker.port, clean_start=False, properties=session)
    again.client.loop_start()
    try:
        assert again.connack.result(T) == SUCCESS
        assert [again.next_message().payload for _ in range(2)] == [b"0", b"1"]
        # Sentinel from a new publisher: 2 and 3 were dropped, not just late.
        gw_b = Probe(broker, pki.ca, pki.gw_b).connect()
        try:
            assert gw_b.puback("edge/gw-b/events", b"sentinel") == SUCCESS
        finally:
            gw_b.close()
        assert again.next_message().payload == b"sentinel"
        again.no_more_messages()
    finally:
        again.close()
