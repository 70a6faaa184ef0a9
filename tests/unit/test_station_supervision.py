"""Station supervision: the pure verdict; lost and restore raised once (both back-ends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import protocol
from edge.clock import FakeClock, ms
from edge.errors import ProtocolError
from edge.mqttio import Message
from edge.station import inbound, supervision
from edge.station.inbound import HeartbeatReceived, StateReceived
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import StationStore
from edge.station.supervision import Seen, verdict
from tests.postgres import Postgres, postgres  # noqa: F401 (fixture)

T0 = 1_800_000_000_000


@pytest.mark.parametrize(
    ("seen", "now", "lost"),
    [
        (Seen("b", "online", T0, T0, 20, 90), T0 + 89_999, False),
        (Seen("b", "online", T0, T0, 20, 90), T0 + 90_000, True),
        (Seen("b", "online", T0, T0 + 60_000, 20, 90), T0 + 140_000, False),  # a later beat
        (Seen("b", "offline", T0, T0, 20, 90), T0 + 1, True),  # its will
        (Seen("b", None, None, T0, 20), T0 + 59_999, False),  # no birth: 3 intervals
        (Seen("b", None, None, T0, 20), T0 + 60_000, True),
        (Seen("b", None, None, T0), T0 + 180_000, True),  # nothing known: the default
    ],
)
def test_verdict(seen: Seen, now: int, lost: bool) -> None:
    assert verdict(seen, now, since_ms=0).lost is lost


def test_a_restarted_receiver_counts_from_its_own_start() -> None:
    old = Seen("b", "online", T0, T0, 20, 90)
    assert not verdict(old, T0 + 500_000, since_ms=T0 + 450_000).lost
    assert verdict(old, T0 + 540_000, since_ms=T0 + 450_000).lost


def test_heartbeat_carries_the_outbox_depth() -> None:
    beat = protocol.encode_heartbeat(seq=1, at_ms=T0, interval_s=20, outbox_depth=7)
    got = inbound.parse(Message("edge/b/heartbeat", beat), "edge")
    assert got == HeartbeatReceived("b", 20, 7)
    bad = Message("edge/b/heartbeat", b'{"v":1,"interval_s":20,"outbox_depth":"7"}')
    with pytest.raises(ProtocolError, match="outbox_depth"):
        inbound.parse(bad, "edge")


def test_birth_carries_the_profile_and_bad_profiles_are_refused() -> None:
    def state(body: dict[str, object]) -> Message:
        return Message("edge/b/state", json.dumps({"v": 1, **body}).encode())

    payload = protocol.encode_state(
        "online", boot_id="x", version="1", at_ms=T0, supervision={"heartbeat_s": 20, "lost_s": 90}
    )
    got = inbound.parse(Message("edge/b/state", payload), "edge")
    assert got == StateReceived("b", "online", 20, 90)
    assert inbound.parse(state({"state": "offline"}), "edge") == StateReceived("b", "offline")
    for bad in ({"heartbeat_s": 0, "lost_s": 9}, {"heartbeat_s": 9, "lost_s": 3}, "x", {}):
        with pytest.raises(ProtocolError, match="supervision"):
            inbound.parse(state({"state": "online", "supervision": bad}), "edge")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StationStore]:
    if request.param == "sqlite":
        s = StationStore(tmp_path / "station.sqlite")
    else:
        server: Postgres = request.getfixturevalue("postgres")
        s = StationStore(server.fresh("station"), tmp_path / "media")
    s.open()
    yield s
    s.close()


def test_lost_and_restore_are_raised_once_each(store: StationStore) -> None:
    store.commit([StateReceived("gw-1", "online", 20, 90), HeartbeatReceived("gw-1", 20, 3)], T0)
    store.commit([HeartbeatReceived("gw-2", 60)], T0)  # no birth heard: 3 x 60 s
    assert store.supervise(T0 + 89_000, T0) == []
    (lost,) = store.supervise(T0 + 90_000, T0)
    assert (lost.device, lost.kind) == ("gw-1", supervision.LOST)
    assert store.supervise(T0 + 95_000, T0) == []  # raised once
    (status_1, status_2) = store.device_status(T0 + 95_000, T0)
    assert (status_1["supervision"], status_1["lost_after_s"]) == ("lost", 90)
    assert (status_2["supervision"], status_2["lost_after_s"]) == ("ok", 180)
    assert (status_1["outbox_depth"], status_2["outbox_depth"]) == (3, None)  # its health
    store.commit([HeartbeatReceived("gw-1", 20)], T0 + 100_000)
    (back,) = store.supervise(T0 + 100_500, T0)
    assert (back.device, back.kind) == ("gw-1", supervision.RESTORED)
    kinds = [(a["device"], a["kind"]) for a in store.station_alarms()]
    assert kinds == [("gw-1", "device_restore"), ("gw-1", "device_lost")]


def test_offline_will_is_lost_at_once_and_birth_restores(store: StationStore) -> None:
    store.commit([StateReceived("gw-1", "online", 20, 90)], T0)
    store.commit([StateReceived("gw-1", "offline")], T0 + 5_000)
    assert [c.kind for c in store.supervise(T0 + 5_001, T0)] == [supervision.LOST]
    store.commit([StateReceived("gw-1", "online", 20, 90)], T0 + 9_000)
    assert [c.kind for c in store.supervise(T0 + 9_001, T0)] == [supervision.RESTORED]


async def test_receiver_logs_and_counts_with_a_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock(T0 / 1000)
    receiver = Receiver(StationSettings("h", 1, tmp_path / "s.sqlite"), clock=clock)
    receiver.store.open()
    try:
        since = ms(clock.time())
        receiver.store.commit([StateReceived("gw-1", "online", 20, 90)], since)
        clock.advance(91)
        assert [c.kind for c in await receiver.supervise(since)] == [supervision.LOST]
        assert receiver.stats.devices_lost == 1
    finally:
        receiver.store.close()
