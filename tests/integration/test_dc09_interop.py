"""The DC-09 link against pysiaalarm, an independent receiver (its asyncio TCP server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.aio import SIAClient

from edge.dc09.link import Dc09Link, Dc09Settings, Outcome
from edge.dc09.messages import Alarm, Format
from edge.station.dc09.bridge import Dc09Bridge, pending, sender, take
from edge.station.inbound import EventReceived, HeartbeatReceived
from edge.station.store import StationStore
from tests.conftest import free_port
from tests.unit.test_station_store import DEVICE, T0, event_message

ACCOUNT = "1234"
KEY_128 = "0123456789ABCDEF"  # pysiaalarm takes the key's characters as the AES key bytes
KEY_256 = "0123456789ABCDEF0123456789ABCDEF"
BURGLARY = Alarm("ev-1", "1130", "BA", 1, 3, "https://station.example/events/ev-1")
FIRE_RESTORE = Alarm("ev-2", "3110", "FR", 2, 7)


class SkewedClock:
    """The real time, off by ``skew_s`` (a sender whose clock is wrong)."""

    def __init__(self, skew_s: float = 0.0) -> None:
        self.skew_s = skew_s

    def time(self) -> float:
        return time.time() + self.skew_s

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class Receiver:
    port: int
    client: Any
    events: list[SIAEvent] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counter = self.client._counts
        return {k: counter.get(k) for k in ("crc", "timestamp", "events", "valid_events")}


async def start_receiver(key: str | None, accounts: tuple[str, ...] = (ACCOUNT,)) -> Receiver:
    port = free_port()
    got: list[SIAEvent] = []

    async def heard(event: SIAEvent) -> None:
        got.append(event)

    known = [SIAAccount(a, key, allowed_timeband=(40, 20)) for a in accounts]
    client = SIAClient("127.0.0.1", port, known, heard)
    await client.async_start()
    return Receiver(port, client, got)


@pytest.fixture
async def plain() -> AsyncIterator[Receiver]:
    receiver = await start_receiver(None)
    yield receiver
    await receiver.client.async_stop()


def link(receiver: Receiver, **kw: Any) -> Dc09Link:
    clock = kw.pop("clock", SkewedClock())
    tamper = kw.pop("tamper", None)
    account = kw.pop("account", ACCOUNT)
    kw.setdefault("ack_timeout_s", 1.5)  # an answer slower than this is resent: keep it rare
    settings = Dc09Settings("127.0.0.1", receiver.port, account, **kw)
    return Dc09Link(settings, clock, tamper)


@pytest.mark.parametrize("fmt", list(Format))
async def test_plain_events_are_acked_and_understood(plain: Receiver, fmt: Format) -> None:
    sender = link(plain, fmt=fmt)
    try:
        assert await sender.send_event(BURGLARY) is Outcome.ACKED
        assert await sender.send_event(FIRE_RESTORE) is Outcome.ACKED
        assert await sender.send_null() is Outcome.ACKED
    finally:
        await sender.close()
    restore = "FR" if fmt is Format.SIA_DCS else "FH"  # pysiaalarm's name for CID 3110
    assert [e.code for e in plain.events] == ["BA", restore, "RP"]
    first = plain.events[0]
    assert (first.account, first.sequence) == (ACCOUNT, "0001")
    if fmt is Format.SIA_DCS:  # area 1, zone 3 (pysiaalarm names the area "ri")
        assert (first.ri, first.message) == ("1", "003")
        assert first.x_data == "Vhttps://station.example/events/ev-1"
    else:
        assert (first.event_qualifier, first.event_type, first.partition) == ("1", "130", "01")
        assert first.ri == "003"
    assert [e.sequence for e in plain.events] == ["0001", "0002", "0003"]
    assert sender.stats.resends == 0 and sender.stats.naks == 0


@pytest.mark.parametrize("fmt", list(Format))
async def test_closing_by_a_user_is_read_as_that_user(plain: Receiver, fmt: Format) -> None:
    sender = link(plain, fmt=fmt)  # armed on the panel output wired as zone 9, by user 7
    try:
        assert await sender.send_event(Alarm("ev-3", "3401", "CL", 1, 9, user=7)) is Outcome.ACKED
    finally:
        await sender.close()
    [event] = plain.events
    assert event.code == "CL"
    assert (event.message if fmt is Format.SIA_DCS else event.ri) == "007"


@pytest.mark.parametrize("key", [KEY_128, KEY_256])
async def test_encrypted_events_are_acked(key: str) -> None:
    receiver = await start_receiver(key)
    sender = link(receiver, key=key.encode("ascii"))
    try:
        assert await sender.send_event(BURGLARY) is Outcome.ACKED
        assert await sender.send_null() is Outcome.ACKED
    finally:
        await sender.close()
        await receiver.client.async_stop()
    assert [(e.encrypted, e.code) for e in receiver.events] == [(True, "BA"), (True, "RP")]
    assert receiver.events[0].message == "003"
    assert sender.stats.resends == 0


async def test_skewed_clock_is_naked_then_corrected(plain: Receiver) -> None:
    sender = link(plain, clock=SkewedClock(-600.0))  # ten minutes slow
    try:
        assert await sender.send_event(BURGLARY) is Outcome.ACKED
        assert (sender.stats.naks, sender.stats.clock_corrections) == (1, 1)
        assert 590 <= sender.offset_s <= 610
        assert await sender.send_event(FIRE_RESTORE) is Outcome.ACKED  # no NAK any more
    finally:
        await sender.close()
    assert sender.stats.naks == 1 and sender.stats.resends == 1
    assert [e.sequence for e in plain.events] == ["0001", "0002"]  # the resend kept its number
    assert plain.counts["timestamp"] == 1


async def test_bad_crc_gets_no_ack_and_is_resent(plain: Receiver) -> None:
    def corrupt(attempt: int, raw: bytes) -> bytes:
        if attempt > 0:
            return raw
        bad = b"0000" if raw[1:5] != b"0000" else b"FFFF"
        return raw[:1] + bad + raw[5:]

    sender = link(plain, tamper=corrupt)
    try:
        assert await sender.send_event(BURGLARY) is Outcome.ACKED
    finally:
        await sender.close()
    assert (sender.stats.timeouts, sender.stats.resends) == (1, 1)
    assert plain.counts["crc"] == 1
    assert [(e.code, e.sequence) for e in plain.events] == [("BA", "0001")]  # once, same number


async def test_a_silent_receiver_is_retried_until_it_answers() -> None:
    port = free_port()
    sender = Dc09Link(Dc09Settings("127.0.0.1", port, ACCOUNT, ack_timeout_s=0.3), SkewedClock())
    task = asyncio.create_task(sender.send_event(BURGLARY))
    await asyncio.sleep(0.5)  # nobody listens: connection refused, backing off
    assert not task.done()
    account = SIAAccount(ACCOUNT, None)
    got: list[SIAEvent] = []

    async def heard(event: SIAEvent) -> None:
        got.append(event)

    client = SIAClient("127.0.0.1", port, [account], heard)
    await client.async_start()
    try:
        assert await asyncio.wait_for(task, 10) is Outcome.ACKED
    finally:
        await sender.close()
        await client.async_stop()
    assert [e.sequence for e in got] == ["0001"]


async def test_bridge_forwards_each_stored_event_once_then_tests_the_link(tmp_path: Path) -> None:
    receiver = await start_receiver(None, accounts=(ACCOUNT, "ABCD"))
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    first, second = event_message("ev-a", seq=1), event_message("ev-b", seq=2)
    store.commit([EventReceived(DEVICE, first), EventReceived(DEVICE, second)], T0)
    store.commit([EventReceived(DEVICE, first)], T0 + 1)  # a retransmit: still one event
    store.commit([HeartbeatReceived("gw-silent", 60)], T0)
    assert [c.device for c in store.supervise(T0 + 200_000, T0)] == ["gw-silent"]
    sender = link(receiver, account="ABCD")  # for boxes whose account was not heard
    bridge = Dc09Bridge(
        store, sender, SkewedClock(), video_base="https://station.example/", null_every_s=0
    )
    try:
        assert await bridge.step() == 3
        assert await bridge.step() == 0  # nothing waits: a NULL message instead
    finally:
        await bridge.link.close()
        await receiver.client.async_stop()
        store.close()
    got = [(e.account, e.code, e.message) for e in receiver.events]
    assert got == [
        ("ABCD", "YS", None),  # the silent box: communication trouble
        (ACCOUNT, "BA", "003"),  # the box's own account
        (ACCOUNT, "BA", "003"),
        ("ABCD", "RP", None),
    ]
    assert receiver.events[1].x_data == "Vhttps://station.example/events/ev-a"
    assert [e.sequence for e in receiver.events] == ["0001", "0002", "0003", "0004"]
    reopened = StationStore(tmp_path / "station.sqlite")
    reopened.open()
    try:  # a restarted bridge has nothing left to send
        with reopened.transaction() as db:
            assert pending(db, 10, None) == []
    finally:
        reopened.close()


async def test_an_event_no_dc09_message_can_carry_is_logged_not_retried(
    plain: Receiver, tmp_path: Path
) -> None:
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    store.commit([EventReceived(DEVICE, event_message("ev-a"))], T0)
    bridge = Dc09Bridge(store, link(plain), SkewedClock(), video_base="https://bad]/")
    try:
        assert await bridge.step() == 1
        with store.transaction() as db:
            (row,) = db.execute("SELECT event_id, outcome FROM forwarded").fetchall()
            assert pending(db, 10, None) == []
    finally:
        await bridge.link.close()
        store.close()
    assert tuple(row) == ("ev-a", "rejected") and plain.events == []


async def test_an_event_too_long_with_its_video_goes_without_it(
    plain: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    store.commit([EventReceived(DEVICE, event_message("ev-a"))], T0)
    base = "https://station.example/" + "v" * 4100  # the reference alone exceeds 4095 bytes
    bridge = Dc09Bridge(store, link(plain), SkewedClock(), video_base=base)
    try:
        assert await bridge.step() == 1
        with store.transaction() as db:
            (row,) = db.execute("SELECT event_id, outcome FROM forwarded").fetchall()
    finally:
        await bridge.link.close()
        store.close()
    assert tuple(row) == ("ev-a", "acked")
    [event] = plain.events  # the alarm itself reached the receiver, without the reference
    assert (event.code, event.message, event.x_data) == ("BA", "003", None)
    [dropped] = [r for r in caplog.records if "without its video" in r.getMessage()]
    assert dropped.levelname == "WARNING" and "ev-a" in dropped.getMessage()
    assert "4095" in dropped.getMessage()


def left_waiting(store: StationStore, sent_by: Dc09Link, after_seq: int) -> int:
    """Store ev-a as a stopped bridge leaves it: its message taken, sent, never answered."""
    store.commit([EventReceived(DEVICE, event_message("ev-a"))], T0)
    sent_by.resume(after_seq)
    message = sent_by.event(Alarm("ev-a", "1130", "BA", 1, 3, account=ACCOUNT))
    with store.transaction() as db:
        take(db, message.seq, "ev-a", message.raw)
    return message.seq


async def test_a_message_left_waiting_long_ago_keeps_its_number(
    plain: Receiver, tmp_path: Path
) -> None:
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    seq = left_waiting(store, link(plain, clock=SkewedClock(-600.0)), 41)  # 10 minutes ago
    bridge = Dc09Bridge(store, link(plain), SkewedClock())
    try:
        assert await bridge.step() == 1  # sent again: NAKed for its old time, restamped
        store.commit([EventReceived(DEVICE, event_message("ev-b", seq=2))], T0 + 1)
        assert await bridge.step() == 1
        with store.transaction() as db:
            rows = db.execute("SELECT event_id, outcome, seq FROM forwarded").fetchall()
            assert sender(db).event_id is None  # nothing waits any more
    finally:
        await bridge.link.close()
        store.close()
    assert seq == 42 and sorted(tuple(r) for r in rows) == [
        ("ev-a", "acked", 42),
        ("ev-b", "acked", 43),
    ]
    assert [e.sequence for e in plain.events] == ["0042", "0043"]
    assert plain.counts["timestamp"] == 1 and bridge.link.stats.naks == 1


async def test_a_message_left_waiting_that_cannot_be_read_goes_anew(
    plain: Receiver, tmp_path: Path
) -> None:
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    left_waiting(store, link(plain, key=KEY_128.encode("ascii")), 6)  # the key has changed
    bridge = Dc09Bridge(store, link(plain), SkewedClock())
    try:
        assert await bridge.step() == 1  # the event itself, as a new message
        with store.transaction() as db:
            rows = db.execute("SELECT event_id, outcome, seq FROM forwarded").fetchall()
    finally:
        await bridge.link.close()
        store.close()
    assert [tuple(r) for r in rows] == [("ev-a", "acked", 8)]
    assert [(e.code, e.sequence, e.encrypted) for e in plain.events] == [("BA", "0008", False)]
