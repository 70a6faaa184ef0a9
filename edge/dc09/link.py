"""Send DC-09 messages to an alarm receiver over TCP or UDP: wait for the ACK, resend, correct
the clock.

One message in flight at a time (receivers such as pysiaalarm's cannot split
two messages from one read). A message is first prepared (:meth:`Dc09Link.event`,
:meth:`Dc09Link.null`: its sequence number taken, its bytes encoded, so the
caller can store them before they go), then delivered (:meth:`Dc09Link.deliver`).
It is resent with the SAME sequence number after ``ack_timeout_s`` without an
ACK, after a NAK, or after an answer that does not decode (a receiver answers a
bad CRC with nothing usable); a resend is stamped with the current time. A NAK
carrying the receiver's time sets the clock offset: the resend (and every later
message) is stamped with the receiver's time. A DUH (the receiver cannot handle
the message) ends the delivery. The connection is reopened, with a capped
back-off, whenever it fails. It may be bound to a network interface (a route
that must leave by wwan0) or a source address.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from edge.clock import Clock
from edge.dc09 import codec, messages
from edge.dc09.codec import Dc09Error, Frame
from edge.dc09.messages import Alarm, Format

log = logging.getLogger(__name__)

Tamper = Callable[[int, bytes], bytes]  # (attempt, message) -> bytes sent: fault injection


@dataclass(frozen=True)
class Dc09Settings:
    host: str
    port: int
    account: str  # 3-16 hex digits
    fmt: Format = Format.SIA_DCS
    line: str = "0"
    receiver: str | None = None
    key: bytes | None = None  # AES-128/192/256: messages are encrypted
    ack_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    backoff_max_s: float = 30.0
    transport: str = "tcp"  # or "udp"
    bind_interface: str | None = None
    bind_address: str | None = None


class Outcome(enum.Enum):
    ACKED = "acked"
    REJECTED = "rejected"  # DUH: the receiver does not handle this message


@dataclass
class Dc09Stats:
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    resends: int = 0
    naks: int = 0
    timeouts: int = 0
    unreadable: int = 0
    clock_corrections: int = 0
    connects: int = 0
    last_offset_s: float = 0.0
    history: list[str] = field(default_factory=list)  # last answers, for the status


@dataclass(frozen=True)
class Outgoing:
    """A message ready to go: its first bytes, and the frame they encode (resends restamp it)."""

    frame: Frame
    raw: bytes

    @property
    def seq(self) -> int:
        return self.frame.seq


class Dc09Link:
    """Construct (no I/O), then :meth:`send_event` / :meth:`send_null` (or prepare a message
    and :meth:`deliver` it); :meth:`close` at the end."""

    def __init__(self, settings: Dc09Settings, clock: Clock, tamper: Tamper | None = None) -> None:
        if settings.key is not None:
            codec.check_key(settings.key)
        self.settings = settings
        self.clock = clock
        self.tamper = tamper
        self.offset_s = 0.0  # the receiver's clock minus ours
        self.stats = Dc09Stats()
        self._seq = 0
        self._channel: Channel | None = None
        self._buffer = b""

    def event(self, alarm: Alarm) -> Outgoing:
        """The next message for ``alarm``. Dc09Error (FrameTooLong) if no message can say it;
        then no sequence number is taken."""
        s = self.settings
        return self._prepare(
            lambda seq, at: messages.event_frame(
                alarm,
                fmt=s.fmt,
                seq=seq,
                account=alarm.account or s.account,
                line=s.line,
                receiver=s.receiver,
                at=at,
                encrypted=s.key is not None,
            )
        )

    def null(self) -> Outgoing:
        """The next supervision (link test) message."""
        s = self.settings
        return self._prepare(
            lambda seq, at: messages.null_frame(
                seq=seq,
                account=s.account,
                line=s.line,
                receiver=s.receiver,
                at=at,
                encrypted=s.key is not None,
            )
        )

    def again(self, raw: bytes) -> Outgoing:
        """A message prepared before (its bytes, as stored), to go again as it was."""
        return Outgoing(codec.decode(raw, self.settings.key), raw)

    def resume(self, seq: int) -> None:
        """Continue after ``seq``, the last sequence number taken (before a restart)."""
        if not 0 <= seq <= codec.MAX_SEQ:
            raise ValueError(f"sequence {seq} is not 0..{codec.MAX_SEQ}")
        self._seq = seq

    async def send_event(self, alarm: Alarm) -> Outcome:
        return await self.deliver(self.event(alarm))

    async def send_null(self) -> Outcome:
        return await self.deliver(self.null())

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time() + self.offset_s, UTC)

    # -- one message until it is answered ----------------------------------

    def _prepare(self, build: Callable[[int, datetime], Frame]) -> Outgoing:
        seq = self._seq % codec.MAX_SEQ + 1
        frame = build(seq, self.now())
        raw = codec.encode(frame, self.settings.key)
        self._seq = seq
        return Outgoing(frame, raw)

    async def deliver(self, message: Outgoing) -> Outcome:
        """Send ``message`` until the receiver ACKs it (or answers DUH)."""
        frame, seq, attempt, backoff = message.frame, message.seq, 0, 1.0
        while True:
            if attempt == 0:
                raw = message.raw
            else:
                at = None if frame.timestamp is None else self.now().replace(microsecond=0)
                frame = replace(frame, timestamp=at)
                raw = codec.encode(frame, self.settings.key)
            if self.tamper is not None:
                raw = self.tamper(attempt, raw)
            attempt += 1
            if attempt > 1:
                self.stats.resends += 1
            try:
                channel = await self._connect()
                await asyncio.wait_for(channel.send(raw), self.settings.ack_timeout_s)
                self.stats.sent += 1
                answer = await self._answer(seq)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                log.warning("DC-09 receiver %s:%d: %s", self.settings.host, self.settings.port, exc)
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max_s)
                continue
            if answer is None:
                self.stats.timeouts += 1
                continue
            if answer.ident in ("ACK", "RSP"):
                self.stats.acked += 1
                return Outcome.ACKED
            if answer.ident == "DUH":
                self.stats.rejected += 1
                log.error("DC-09 receiver answered DUH to %s seq %04d", frame.ident, seq)
                return Outcome.REJECTED
            if not self._nak(answer):  # refused as it is: do not hammer the receiver
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max_s)

    def _nak(self, answer: Frame) -> bool:
        """Count a NAK; True if its time corrected our clock (resend at once)."""
        self.stats.naks += 1
        if answer.timestamp is None:
            return False
        offset = answer.timestamp.timestamp() - self.clock.time()
        if abs(offset - self.offset_s) < 1.0:
            return False
        log.warning("DC-09 receiver's clock is %+.0f s from ours: corrected", offset)
        self.offset_s = offset
        self.stats.clock_corrections += 1
        self.stats.last_offset_s = offset
        return True

    async def _answer(self, seq: int) -> Frame | None:
        """The receiver's answer to ``seq`` (a NAK answers any), or None after the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ack_timeout_s
        while True:
            found, self._buffer = codec.split(self._buffer)
            for raw in found:
                answer = self._read(raw)
                if answer is None:
                    continue
                if answer.ident == "NAK" or answer.seq == seq:
                    return answer
                log.info("DC-09 answer %s for seq %04d while waiting for %04d", *_who(answer), seq)
            left = deadline - loop.time()
            if left <= 0:
                return None
            assert self._channel is not None
            try:
                chunk = await asyncio.wait_for(self._channel.receive(), left)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionResetError("the receiver closed the connection")
            self._buffer += chunk

    def _read(self, raw: bytes) -> Frame | None:
        try:
            answer = codec.decode(raw, self.settings.key)
        except Dc09Error as exc:
            self.stats.unreadable += 1
            log.warning("unreadable DC-09 answer %r: %s", raw[:60], exc)
            return None
        if answer.ident not in codec.RESPONSES:
            self.stats.unreadable += 1
            return None
        self.stats.history = [*self.stats.history[-9:], f"{answer.ident} {answer.seq:04d}"]
        return answer

    async def _connect(self) -> Channel:
        if self._channel is not None and not self._channel.closed:
            return self._channel
        s = self.settings
        try:
            opening = _datagrams(s) if s.transport == "udp" else _stream(s)
            self._channel = await asyncio.wait_for(opening, s.connect_timeout_s)
        except TimeoutError as exc:
            raise OSError(f"no connection within {s.connect_timeout_s} s") from exc
        self._buffer = b""
        self.stats.connects += 1
        return self._channel


class Channel:
    """Bytes to and from the receiver: a TCP stream, or UDP datagrams."""

    closed = False

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def receive(self) -> bytes:
        """The next bytes (b"" when the receiver closed a stream)."""
        raise NotImplementedError

    async def close(self) -> None:
        self.closed = True


class _Stream(Channel):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("the connection to the receiver is closed")
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        return await self.reader.read(4096)

    async def close(self) -> None:
        self.closed = True
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class _Datagrams(Channel, asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython's selector datagram transport is not an asyncio.DatagramTransport
        # subclass: it has sendto all the same)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, _addr: tuple[str | Any, int]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("DC-09 over UDP: %s", exc)

    def connection_lost(self, _exc: Exception | None) -> None:
        self.closed = True

    async def send(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise ConnectionResetError("the UDP socket is closed")
        self.transport.sendto(data)

    async def receive(self) -> bytes:
        return await self.queue.get()

    async def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def _stream(s: Dc09Settings) -> Channel:
    if s.bind_interface:
        sock = await asyncio.to_thread(_bound_socket, s, socket.SOCK_STREAM, connect=True)
        reader, writer = await asyncio.open_connection(sock=sock)
    else:
        local = (s.bind_address, 0) if s.bind_address else None
        reader, writer = await asyncio.open_connection(s.host, s.port, local_addr=local)
    return _Stream(reader, writer)


async def _datagrams(s: Dc09Settings) -> Channel:
    loop = asyncio.get_running_loop()
    channel = _Datagrams()
    if s.bind_interface:
        sock = await asyncio.to_thread(_bound_socket, s, socket.SOCK_DGRAM, connect=True)
        await loop.create_datagram_endpoint(lambda: channel, sock=sock)
    else:
        local = (s.bind_address, 0) if s.bind_address else None
        await loop.create_datagram_endpoint(
            lambda: channel, remote_addr=(s.host, s.port), local_addr=local
        )
    return channel


def _bound_socket(s: Dc09Settings, kind: int, connect: bool) -> socket.socket:
    """A socket that leaves by ``s.bind_interface`` (SO_BINDTODEVICE, CAP_NET_RAW)."""
    assert s.bind_interface is not None
    family, _k, proto, _n, address = socket.getaddrinfo(s.host, s.port, type=kind)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_BINDTODEVICE, s.bind_interface.encode() + b"\0"
        )
        if s.bind_address:
            sock.bind((s.bind_address, 0))
        sock.settimeout(s.connect_timeout_s)
        if connect:
            sock.connect(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _who(frame: Frame) -> tuple[str, int]:
    return frame.ident, frame.seq
