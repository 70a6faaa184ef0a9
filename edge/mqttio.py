"""paho-mqtt (MQTT v5) bridged to asyncio; shared by the box's uplink and the station.

One future per in-flight publish: ``await publish()`` returns only when the
broker acknowledged the message (PUBACK), raises :class:`PublishRefused` on a
failure reason code and :class:`UplinkError` when the link drops or the wait
times out. Nothing is queued in paho's RAM while disconnected: callers keep
their own durable queue and retry. paho's callbacks run on its network
thread; they only hop into the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
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

from edge.errors import PublishRefused, UplinkError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    properties: tuple[tuple[str, str], ...] = ()  # MQTT v5 user properties


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
    reconnect_min_s: int = 1
    reconnect_max_s: int = 60
    subscriptions: tuple[tuple[str, int], ...] = ()
    will: Message | None = None
    inbox_size: int = 10_000


@dataclass
class LinkStatus:
    connected: bool = False
    connected_since: float | None = None
    connects: int = 0
    disconnects: int = 0
    last_error: str | None = None
    inbox_dropped: int = 0
    in_flight: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class MqttLink:
    """A supervised MQTT v5 connection. Construct, then ``await start()``."""

    def __init__(self, settings: LinkSettings, birth: Callable[[], Message] | None = None) -> None:
        self.settings = settings
        self.status = LinkStatus()
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=settings.inbox_size)
        self._birth = birth
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._lock = threading.RLock()
        self._connected = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Begin connecting in the background (paho retries with backoff)."""
        self._loop = asyncio.get_running_loop()
        s = self.settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
        )
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
        client.reconnect_delay_set(min_delay=s.reconnect_min_s, max_delay=s.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=True)
        except (OSError, ValueError) as exc:
            raise UplinkError(f"cannot start MQTT connection to {s.host}:{s.port}: {exc}") from exc
        client.loop_start()

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
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self._client = None
        self._fail_pending("link stopped")

    async def wait_connected(self, timeout_s: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def publish(self, message: Message, timeout_s: float = 10.0) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1) or the write (QoS 0)."""
        client = self._client
        if client is None or self._loop is None or not self.status.connected:
            raise UplinkError("not connected")
        future: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            info = client.publish(
                message.topic,
                message.payload,
                message.qos,
                message.retain,
                properties=_user_properties(message.properties),
            )
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise UplinkError(f"publish failed: {paho.error_string(info.rc)}")
            self._pending[info.mid] = future
            self.status.in_flight = len(self._pending)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            raise UplinkError(f"no acknowledgement from the broker in {timeout_s} s") from exc
        finally:
            with self._lock:
                self._pending.pop(info.mid, None)
                self.status.in_flight = len(self._pending)

    # -- paho thread -------------------------------------------------------

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._hop(self._set_error, f"connection refused: {reason}")
            return
        for topic, qos in self.settings.subscriptions:
            client.subscribe(topic, qos)
        if self._birth is not None:
            birth = self._birth()
            client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
        self._hop(self._set_connected, True, None)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._hop(self._set_connected, False, f"disconnected: {reason}")

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            future = self._pending.get(mid)
        if future is None:
            return  # a publish we no longer wait for (timed out, or resent by paho)
        failure = PublishRefused(str(reason), int(reason.value)) if reason.is_failure else None
        self._hop(_settle, future, failure)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        props = tuple(getattr(msg.properties, "UserProperty", None) or ())
        self._hop(self._deliver, Message(msg.topic, bytes(msg.payload), msg.qos, msg.retain, props))

    def _hop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    # -- loop thread -------------------------------------------------------

    def _set_connected(self, connected: bool, error: str | None) -> None:
        was = self.status.connected
        self.status.connected = connected
        if connected:
            self.status.connects += 1
            self.status.connected_since = self._loop.time() if self._loop else None
            self._connected.set()
            log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)
        else:
            self._connected.clear()
            self.status.connected_since = None
            self.status.last_error = error
            if was:
                self.status.disconnects += 1
                if self._stopping:
                    log.info("MQTT disconnected")
                else:
                    log.warning("MQTT link lost: %s", error)
            self._fail_pending(error or "disconnected")

    def _set_error(self, error: str) -> None:
        self.status.last_error = error
        log.error("MQTT %s", error)

    def _deliver(self, message: Message) -> None:
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            self.status.inbox_dropped += 1
            log.error("MQTT inbox full: dropped a message on %s", message.topic)

    def _fail_pending(self, why: str) -> None:
        with self._lock:
            futures = list(self._pending.values())
        for future in futures:
            _settle(future, UplinkError(why))


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _user_properties(pairs: tuple[tuple[str, str], ...]) -> Properties | None:
    if not pairs:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = list(pairs)
    return props
