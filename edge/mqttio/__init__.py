"""paho-mqtt (MQTT v5) driven by the asyncio loop; shared by the box's uplink and the station.

paho runs without a thread of its own: its socket is watched by the event
loop (``add_reader``/``add_writer``), so its callbacks run on the loop. Only
the blocking ``connect()`` (DNS, TCP, TLS handshake) runs in an executor, and
the socket callbacks it fires hop back with ``call_soon_threadsafe``.

One future per in-flight publish: ``await publish()`` returns only when the
broker acknowledged the message (PUBACK), raises :class:`PublishRefused` on a
failure reason code and :class:`UplinkError` when the link drops or the wait
times out. At most ``max_inflight`` publishes are in flight (and never more
than the broker's Receive Maximum). Nothing waits in paho's RAM while
disconnected: callers keep their own durable queue and retry.

Every SUBACK is checked: a subscription the broker refuses (e.g. 0x87 Not
authorized, when its ACL does not let this client read the topic) is logged
at ERROR with the topic and the reason, and kept in
``status.refused_subscriptions`` (and ``status.last_error``) until a later
SUBACK, after a reconnect, grants it. Whoever supervises the link decides what
a refusal means (the box raises a communication trouble: a refused ``ack``
topic means nothing is ever deleted from its outbox).

Incoming PUBLISH packets are decoded by our own decoder (one copy of the
payload, not paho's four) through :class:`edge.mqttio.client._Client`, a
subclass of paho's client used only here: nothing of paho is patched for the
rest of the process. A link may be bound to a network interface (a route that
must leave by wwan0) or a source address.

Reconnects back off exponentially from ``reconnect_min_s`` to
``reconnect_max_s`` with full jitter, so a fleet of boxes does not hammer a
station's broker in step after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.clock import Clock, SystemClock
from edge.errors import PublishRefused, UplinkError
from edge.mqttio.client import _Client, paho_private_api_problems, paho_version

log = logging.getLogger(__name__)
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    properties: Pairs = ()  # MQTT v5 user properties
    # MQTT v5's standard properties of a request and its response (None: absent)
    response_topic: str | None = None
    correlation_data: bytes | None = None
    # Message Expiry Interval; on a received message, what was left of it when the
    # broker sent it (MQTT 5 3.3.2.3.3), counted from received_mono_s
    message_expiry_s: int | None = None
    content_type: str | None = None
    # the link's clock (monotonic) when the message came in; None on one being sent
    received_mono_s: float | None = None


@dataclass(frozen=True)
class LinkSettings:
    host: str
    port: int
    client_id: str
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    connect_timeout_s: float = 10.0
    session_expiry_s: int = 0  # 0: the session ends with the connection (clean start)
    max_inflight: int = 100
    subscriptions: tuple[tuple[str, int], ...] = ()
    will: Message | None = None
    inbox_size: int = 10_000
    bind_interface: str | None = None  # the connection leaves by this interface (wwan0)
    bind_address: str | None = None  # from this source address


@dataclass
class LinkStatus:
    connected: bool = False
    connected_since: float | None = None
    connects: int = 0
    disconnects: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    session_present: bool = False
    inbox_dropped: int = 0
    in_flight: int = 0
    window: int = 0
    max_packet: int | None = None  # the broker's Maximum Packet Size, from its CONNACK
    # topic filter -> the broker's reason, from a failed SUBACK until one grants it
    refused_subscriptions: dict[str, str] = field(default_factory=dict)


class MqttLink:
    """A supervised MQTT v5 connection. Construct (no I/O), then ``await start()``."""

    def __init__(
        self,
        settings: LinkSettings,
        birth: Callable[[], Message] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._clock: Clock = clock or SystemClock()  # stamps received messages
        self.status = LinkStatus(window=settings.max_inflight)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=settings.inbox_size)
        self._birth = birth
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._subscribing: dict[int, tuple[str, int]] = {}  # SUBSCRIBE mid -> topic, QoS asked
        self._slots = asyncio.Semaphore(settings.max_inflight)
        self._reserved = 0  # slots held back to honour the broker's Receive Maximum
        self._reserving: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._connack: asyncio.Future[bool] | None = None
        self._down: asyncio.Event = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._sock: Any = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = self._make_client()
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"mqtt.{self.settings.client_id}"
        )

    async def stop(self, last_words: Message | None = None, timeout_s: float = 3.0) -> None:
        """Optionally publish ``last_words`` (e.g. retained offline state), then disconnect."""
        client = self._client
        if client is None:
            return
        if last_words is not None and self.status.connected:
            try:
                await self.publish(last_words, timeout_s=timeout_s)
            except UplinkError as exc:
                log.warning("could not publish %s before disconnecting: %s", last_words.topic, exc)
        self._stopping = True
        if self.status.connected:
            client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._down.wait(), timeout_s)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._close_socket()
        self._client = None
        self._fail_pending("link stopped")

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- publishing --------------------------------------------------------

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1) or the write (QoS 0)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise UplinkError(
                f"no free publish slot in {timeout_s} s ({self.status.in_flight} in flight)"
            ) from exc
        try:
            await self._publish(message, timeout_s)
        finally:
            self._slots.release()

    async def _publish(self, message: Message, timeout_s: float) -> None:
        client = self._client
        if client is None or self._loop is None or not self.status.connected:
            raise UplinkError("not connected")
        limit = self.status.max_packet
        if limit is not None and _packet_size(message) > limit:
            # A broker drops the connection on a packet above its limit (DISCONNECT
            # 0x95): refuse here, so the caller dead-letters it instead of looping.
            raise PublishRefused(f"packet too large for the broker ({limit} bytes)", 0x95)
        info = client.publish(
            message.topic,
            message.payload,
            message.qos,
            message.retain,
            properties=_properties(message),
        )
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise UplinkError(f"publish failed: {paho.error_string(info.rc)}")
        if message.qos == 0:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending[info.mid] = future
        self.status.in_flight = len(self._pending)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            raise UplinkError(f"no acknowledgement from the broker in {timeout_s} s") from exc
        finally:
            self._pending.pop(info.mid, None)
            self.status.in_flight = len(self._pending)

    # -- connection supervision -------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            if await self._connect_once():
                failures = 0
                await self._down.wait()  # stop() cancels this task while it waits
            else:
                failures += 1
                self.status.failed_attempts += 1
            await asyncio.sleep(self._backoff_s(failures))

    def _backoff_s(self, failures: int) -> float:
        """Full jitter: uniform in [min, min(max, min * 2**failures)]."""
        s = self.settings
        ceiling = min(s.reconnect_max_s, s.reconnect_min_s * 2 ** min(failures, 16))
        return random.uniform(s.reconnect_min_s, max(s.reconnect_min_s, ceiling))  # noqa: S311

    async def _connect_once(self) -> bool:
        assert self._loop is not None and self._client is not None
        s = self.settings
        self._connack = self._loop.create_future()
        self._down.clear()
        try:
            await asyncio.wait_for(
                self._loop.run_in_executor(None, self._connect_blocking, self._client),
                s.connect_timeout_s,
            )
            return await asyncio.wait_for(self._connack, s.connect_timeout_s)
        except (OSError, ssl.SSLError, ValueError, TimeoutError) as exc:
            self._record_failure(
                f"cannot connect to {s.host}:{s.port}: {str(exc) or type(exc).__name__}"
            )
            self._close_socket()
            return False

    def _connect_blocking(self, client: paho.Client) -> None:
        s = self.settings
        props = None
        if s.session_expiry_s:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
        client.connect(
            s.host,
            s.port,
            keepalive=s.keepalive_s,
            bind_address=s.bind_address or "",
            clean_start=s.session_expiry_s == 0,
            properties=props,
        )

    def _record_failure(self, error: str) -> None:
        if error != self.status.last_error:
            log.warning("MQTT %s", error)
        self.status.last_error = error

    # -- paho callbacks (on the loop thread, or hopped there) --------------

    def _on_connect(self, client: Any, _u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._record_failure(f"connection refused by the broker: {reason}")
            self._resolve_connack(False)
            return
        window = self.settings.max_inflight
        receive_max = getattr(props, "ReceiveMaximum", None)
        if receive_max:
            window = min(window, int(receive_max))
        self._set_window(window)  # paho's own limit (max_inflight) is never below this
        max_packet = getattr(props, "MaximumPacketSize", None)
        self.status.max_packet = int(max_packet) if max_packet else None
        self.status.session_present = bool(getattr(flags, "session_present", False))
        self._subscribe(client)
        if self._birth is not None:
            birth = self._birth()
            client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
        self.status.connected = True
        self.status.connects += 1
        self.status.connected_since = self._loop.time() if self._loop else None
        self.status.last_error = None
        self._connected.set()
        self._resolve_connack(True)
        log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)

    def _subscribe(self, client: Any) -> None:
        """One SUBSCRIBE per topic, so each SUBACK names its topic by its mid."""
        self._subscribing.clear()  # SUBACKs of an earlier connection never come
        for topic, qos in self.settings.subscriptions:
            rc, mid = client.subscribe(topic, qos)
            if rc == paho.MQTT_ERR_SUCCESS:
                self._subscribing[mid] = (topic, qos)
            else:  # paho lost the socket meanwhile: on_disconnect follows
                log.warning("MQTT could not subscribe to %s: %s", topic, paho.error_string(rc))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        asked = self._subscribing.pop(mid, None)
        if asked is None:
            return
        for reason in reasons:  # one topic per SUBSCRIBE: one reason code
            self._suback(*asked, reason)

    def _suback(self, topic: str, qos: int, reason: Any) -> None:
        refused = self.status.refused_subscriptions
        if reason.is_failure:
            why = f"{reason} (0x{int(reason.value):02X})"
            text = _refusal(topic, why)
            # once per refusal at ERROR; the same refusal after a reconnect is no news
            log.log(logging.WARNING if topic in refused else logging.ERROR, "MQTT %s", text)
            refused[topic] = why
            self.status.last_error = text
            return
        why_refused = refused.pop(topic, None)
        if why_refused is not None:
            log.info("MQTT subscription to %s granted again", topic)
            if self.status.last_error == _refusal(topic, why_refused):
                self.status.last_error = None
        if int(reason.value) < qos:
            log.warning(
                "MQTT subscription to %s granted at QoS %d, not %d: messages on it may be lost",
                topic,
                int(reason.value),
                qos,
            )

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was = self.status.connected
        self.status.connected = False
        self.status.connected_since = None
        self._connected.clear()
        if was:
            self.status.disconnects += 1
            if self._stopping:
                log.info("MQTT disconnected")
            else:
                self._record_failure(f"link lost: {reason}")
        self._resolve_connack(False)
        self._fail_pending(f"disconnected: {reason}")
        self._down.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        future = self._pending.get(mid)
        if future is None or future.done():
            return  # a publish we no longer wait for (timed out, or resent by paho)
        if reason.is_failure:
            future.set_exception(PublishRefused(str(reason), int(reason.value)))
        else:
            future.set_result(None)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        message = _received(msg, self._clock.monotonic())
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            self.status.inbox_dropped += 1
            log.error("MQTT inbox full: dropped a message on %s", message.topic)

    # -- socket plumbing ---------------------------------------------------

    def _on_socket_open(self, _c: Any, _u: Any, sock: Any) -> None:
        self._hop(self._watch, sock)

    def _on_socket_close(self, _c: Any, _u: Any, sock: Any) -> None:
        self._hop(self._unwatch, sock)

    def _on_register_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._hop(self._add_writer, sock)

    def _on_unregister_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._hop(self._remove_writer, sock)

    def _watch(self, sock: Any) -> None:
        assert self._loop is not None
        self._sock = sock
        # Alarms are small and latency-bound: do not let Nagle hold them back.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(sock, self._readable)
        if self._misc is None or self._misc.done():
            self._misc = asyncio.create_task(self._misc_loop(), name="mqtt.misc")

    def _unwatch(self, sock: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if self.status.connected:  # closed without paho calling on_disconnect
            self._on_disconnect(None, None, None, "socket closed", None)
        self._down.set()

    def _add_writer(self, sock: Any) -> None:
        if self._loop is not None and sock is self._sock:
            self._loop.add_writer(sock, self._writable)

    def _remove_writer(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)

    def _readable(self) -> None:
        client = self._client
        if client is None:
            return
        client.loop_read()
        sock = self._sock
        # TLS may hold decrypted bytes the raw socket no longer signals.
        while sock is not None and sock is self._sock and getattr(sock, "pending", None):
            if not sock.pending() or client.loop_read() != paho.MQTT_ERR_SUCCESS:
                break

    def _writable(self) -> None:
        if self._client is not None:
            self._client.loop_write()

    async def _misc_loop(self) -> None:
        while self._client is not None:
            self._client.loop_misc()
            await asyncio.sleep(1.0)

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._unwatch(sock)

    # -- helpers -----------------------------------------------------------

    def _make_client(self) -> paho.Client:
        s = self.settings
        client: paho.Client = _Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
        )
        problems = paho_private_api_problems(client)
        if problems:  # a paho other than the pinned one: its own decoder, slower
            log.warning(
                "paho-mqtt %s changed what edge.mqttio's PUBLISH decoder relies on (%s): "
                "using paho's own decoding",
                paho_version(),
                "; ".join(problems),
            )
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=s.client_id,
                protocol=paho.MQTTv5,
            )
        if isinstance(client, _Client):
            client.bind_interface = s.bind_interface
        elif s.bind_interface:
            log.error("interface %s cannot be bound with this paho: any path", s.bind_interface)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(
                ca_certs=str(s.ca_file) if s.ca_file else None,
                certfile=str(s.cert_file) if s.cert_file else None,
                keyfile=str(s.key_file) if s.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if s.will is not None:
            client.will_set(s.will.topic, s.will.payload, s.will.qos, s.will.retain)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def _hop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _resolve_connack(self, ok: bool) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(ok)

    def _set_window(self, window: int) -> None:
        self.status.window = window
        target = self.settings.max_inflight - window
        while self._reserved > target:
            self._slots.release()
            self._reserved -= 1
        if self._reserved < target and (self._reserving is None or self._reserving.done()):
            self._reserving = asyncio.create_task(self._reserve(target), name="mqtt.window")

    async def _reserve(self, target: int) -> None:
        while self._reserved < target:
            await self._slots.acquire()
            self._reserved += 1

    def _fail_pending(self, why: str) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(UplinkError(why))


def _refusal(topic: str, why: str) -> str:
    return f"subscription to {topic} refused by the broker: {why}"


def _packet_size(message: Message) -> int:
    """An upper bound of the PUBLISH packet's size on the wire (MQTT v5)."""
    props = sum(5 + len(k.encode()) + len(v.encode()) for k, v in message.properties)
    if message.response_topic is not None:
        props += 3 + len(message.response_topic.encode())
    if message.correlation_data is not None:
        props += 3 + len(message.correlation_data)
    if message.message_expiry_s is not None:
        props += 5
    if message.content_type is not None:
        props += 3 + len(message.content_type.encode())
    remaining = 2 + len(message.topic.encode()) + 2 + 4 + props + len(message.payload)
    return 1 + 4 + remaining


def _properties(message: Message) -> Properties | None:
    """The PUBLISH properties of ``message`` (paho's), None when it has none."""
    new_properties: Any = Properties
    props: Any = new_properties(PacketTypes.PUBLISH)
    if message.properties:
        props.UserProperty = list(message.properties)
    if message.response_topic is not None:
        props.ResponseTopic = message.response_topic
    if message.correlation_data is not None:
        props.CorrelationData = message.correlation_data
    if message.message_expiry_s is not None:
        props.MessageExpiryInterval = message.message_expiry_s
    if message.content_type is not None:
        props.ContentType = message.content_type
    empty: bool = props.isEmpty()
    return None if empty else props


def _received(msg: Any, now_mono_s: float) -> Message:
    """Our message for paho's received one (``msg.properties``: paho's, or None)."""
    props = msg.properties
    expiry = getattr(props, "MessageExpiryInterval", None)
    correlation = getattr(props, "CorrelationData", None)
    return Message(
        msg.topic,
        bytes(msg.payload),
        msg.qos,
        msg.retain,
        tuple(getattr(props, "UserProperty", None) or ()),
        response_topic=getattr(props, "ResponseTopic", None),
        correlation_data=None if correlation is None else bytes(correlation),
        message_expiry_s=None if expiry is None else int(expiry),
        content_type=getattr(props, "ContentType", None),
        received_mono_s=now_mono_s,
    )
