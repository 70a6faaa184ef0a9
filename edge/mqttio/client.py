"""Our paho client: PUBLISH decoded with one copy of the payload, and a connection that
can be bound to a network interface. Used only by :class:`edge.mqttio.MqttLink`.

paho 2.2 decodes an incoming PUBLISH with four copies of its payload; for a
256 KiB media chunk that was the station's largest cost. :class:`_Client`
overrides the private method that does it (and the one that opens the socket,
for SO_BINDTODEVICE): the private names relied on are checked by
:func:`paho_private_api_problems`, a test fails naming paho's version when they
change, and a client finding them changed falls back to plain paho.
"""

from __future__ import annotations

import inspect
import logging
import socket
import struct
from typing import Any, NamedTuple

import paho.mqtt as paho_mqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket, MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

log = logging.getLogger(__name__)
_Malformed: Any = MalformedPacket
# What paho's own decoders turn into MalformedPacket (paho 2.2, _packet.DECODE_ERRORS).
_DECODE_ERRORS = (struct.error, IndexError, KeyError, ValueError, MQTTException)


class _Publish(NamedTuple):
    """A decoded PUBLISH: the fields (and order) of paho 2.2's ``_packet.PublishPacket``."""

    dup: bool
    qos: int
    retain: bool
    topic: bytes
    mid: int
    properties: Any
    payload: bytes


def _decode_publish(header: int, packet: bytes | bytearray, protocol: int) -> _Publish:
    """A PUBLISH decoded with one copy of the payload, not paho's four.

    paho 2.2's ``_packet.decode_publish`` splits the packet with
    ``struct.unpack("!H{n}s")`` three times and slices it once more, each a
    full copy of the payload, and hands ``Properties.unpack`` the whole rest of
    the packet, which it re-slices for every property it reads: a 256 KiB
    media chunk with 7 user properties was the station's largest cost. Here a
    memoryview is sliced and only the properties' own bytes go to
    ``Properties.unpack``. Same fields and errors as paho's (MalformedPacket),
    checked on random whole and cut packets in tests/unit/test_mqttio.py.
    """
    try:
        return _decode(header, packet, protocol)
    except MalformedPacket:
        raise
    except _DECODE_ERRORS as exc:
        raise _Malformed(str(exc)) from exc


def _decode(header: int, packet: bytes | bytearray, protocol: int) -> _Publish:
    view = memoryview(packet)
    if len(view) < 2:
        raise _Malformed("PUBLISH shorter than its topic length")
    qos = (header & 0x06) >> 1
    topic_end = 2 + int.from_bytes(view[:2], "big")
    if topic_end > len(view):
        raise _Malformed("PUBLISH topic longer than the packet")
    topic = bytes(view[2:topic_end])
    if protocol != paho.MQTTv5 and not topic:
        raise _Malformed("topic can't be empty in MQTTv3")
    pos, mid = topic_end, 0
    if qos > 0:
        if pos + 2 > len(view):
            raise _Malformed("PUBLISH without its packet id")
        mid = int.from_bytes(view[pos : pos + 2], "big")
        pos += 2
    properties = None
    if protocol == paho.MQTTv5:
        decode: Any = VariableByteIntegers.decode
        length, used = decode(bytes(view[pos : pos + 4]))
        if pos + used + length > len(view):
            raise _Malformed("PUBLISH properties longer than the packet")
        new_properties: Any = Properties
        properties = new_properties(PacketTypes.PUBLISH)
        _props, props_len = properties.unpack(bytes(view[pos : pos + used + length]))
        pos += props_len
    return _Publish(
        dup=bool(header & 0x08),
        qos=qos,
        retain=bool(header & 0x01),
        topic=topic,
        mid=mid,
        properties=properties,
        payload=bytes(view[pos:]),
    )


class _Client(paho.Client):
    """paho's client, receiving PUBLISH through :func:`_decode_publish`; ours alone.

    paho 2.2 decodes an incoming PUBLISH in the private ``_handle_publish``
    (called by ``_packet_handle``); this override does the same with our
    decoder for QoS 0 and 1, and leaves QoS 2 (which no subscription here
    asks for) to paho. Nothing of paho is patched: any other paho client in
    the process decodes as paho does. The private names relied on are listed
    in :func:`paho_private_api_problems`; a test fails naming paho's version
    when they change, and a client finding them changed falls back to paho's
    own (slower) decoding rather than fail.
    """

    bind_interface: str | None = None  # SO_BINDTODEVICE: the connection leaves by it

    def _create_socket_connection(self) -> socket.socket:
        """paho's connection, bound to ``bind_interface`` when one is set (a route that
        must really take its path: a 4G modem's wwan0 beside the site's Ethernet)."""
        if not self.bind_interface:
            return super()._create_socket_connection()
        source = self._bind_address or None
        return bound_connection(
            self._host, self._port, self.bind_interface, source, self._connect_timeout
        )

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        if (header & 0x06) >> 1 == 2:
            return super()._handle_publish()
        publish = _decode_publish(header, self._in_packet["packet"], self._protocol)
        message = paho.MQTTMessage(publish.mid, publish.topic)
        message.dup = publish.dup
        message.qos = publish.qos
        message.retain = publish.retain
        message.properties = publish.properties
        message.payload = publish.payload
        message.timestamp = paho.time_func()
        self._handle_on_message(message)
        if message.qos == 0 or self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._send_puback(message.mid)


# paho 2.2's private API that _Client uses: where, and the parameters expected.
_PRIVATE_METHODS: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (paho.Client, "_handle_publish", ("self",)),
    (paho.Client, "_handle_on_message", ("self", "message")),
    (paho.Client, "_send_puback", ("self", "mid")),
    (paho.Client, "_create_socket_connection", ("self",)),
    (paho.MQTTMessage, "__init__", ("self", "mid", "topic")),
    (Properties, "unpack", ("self", "buffer")),
    (VariableByteIntegers, "decode", ("buffer",)),
)


def bound_connection(
    host: str, port: int, interface: str, source: str | None, timeout_s: float | None
) -> socket.socket:
    """A TCP connection that leaves by ``interface`` (SO_BINDTODEVICE, which needs
    CAP_NET_RAW), from ``source`` if given; OSError naming the interface otherwise."""
    error: OSError | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\0")
            if source:
                sock.bind((source, 0))
            sock.settimeout(timeout_s)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = OSError(exc.errno, f"via {interface}: {exc.strerror or exc}")
            continue
        return sock
    raise error or OSError(f"{host}: no address to connect to via {interface}")


def paho_version() -> str:
    return str(getattr(paho_mqtt, "__version__", "?"))


def paho_private_api_problems(client: paho.Client) -> list[str]:
    """What of paho's private API :class:`_Client` relies on is missing or changed.

    Empty with paho-mqtt 2.2.0 (the pinned version). ``client`` is any paho
    client instance (its private attributes are set by its constructor).
    """
    problems = []
    for owner, name, params in _PRIVATE_METHODS:
        found = getattr(owner, name, None)
        try:
            actual = tuple(inspect.signature(found).parameters) if callable(found) else None
        except (TypeError, ValueError):
            actual = None
        if actual != params:
            problems.append(f"{owner.__name__}.{name}{params} is now {actual}")
    if not callable(getattr(paho, "time_func", None)):
        problems.append("paho.mqtt.client.time_func is gone")
    in_packet = getattr(client, "_in_packet", None)
    if not isinstance(in_packet, dict) or not {"command", "packet"} <= in_packet.keys():
        problems.append("Client._in_packet has no 'command' and 'packet'")
    for attr in ("_protocol", "_manual_ack", "_host", "_port", "_bind_address", "_connect_timeout"):
        if not hasattr(client, attr):
            problems.append(f"Client.{attr} is gone")
    return problems
