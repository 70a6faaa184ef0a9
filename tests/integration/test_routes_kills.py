"""Two routes under SIGKILL (issue 18): the box killed at random moments while alarms come.

The primary route is MQTT to our station (through a real mosquitto), the backup a DC-09
route straight to an independent alarm receiver (pysiaalarm). With ``done_when =
"every"`` each event must reach both. At the end: the station has each committed event
once (sequence numbers 1..N, no gap, no repeat); the DC-09 receiver has heard each of
them under one sequence number of its own (a message resent after a restart carries the
number and the bytes it had, which is how a receiver tells a repeat), and none other;
the outbox is empty. The kills come at seeded moments (``EDGE_FAULT_SEED`` replays).
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest
from pysiaalarm.utils import MessageTypes

from tests.conftest import Broker, free_port
from tests.integration.conftest import HoldingReceiver
from tests.integration.test_end_to_end import box_status, until
from tests.integration.test_faults import (
    TRIPS,
    Driver,
    Spawn,
    assert_each_seq_once,
    assert_outbox_empty,
    driving,
    fault_text,
    outbox_left,
    query,
    seeded,
    start_station,
    station_count,
    station_events,
    web_answers,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(300)]


def config_text(broker: Broker, web_port: int, receiver_port: int) -> str:
    return (
        fault_text(broker.port, web_port, 3)
        + f"""
[[routes]]
name = "arc"
type = "dc09"
receiver = "127.0.0.1:{receiver_port}"
null_s = 5
ack_timeout_s = 1
path_loss_s = 60

[delivery]
done_when = "every"
"""
    )


def dc09_messages(receiver: HoldingReceiver) -> dict[int, set[tuple[object, ...]]]:
    """The events the receiver accepted, by the box's sequence number: what each said."""
    said: dict[int, set[tuple[object, ...]]] = defaultdict(set)
    for event in receiver.events:
        if event.message_type == MessageTypes.NULL:  # a link test
            continue
        said[int(str(event.sequence))].add((event.code, event.ri, event.timestamp))
    return said


def committed(state: Path) -> int:
    rows = query(state / "outbox.sqlite", "SELECT value FROM meta WHERE key = 'seq'")
    return int(rows[0][0]) if rows else 0


async def test_box_killed_at_random_moments_with_two_routes(
    broker: Broker, spawn: Spawn, receiver: HoldingReceiver, tmp_path: Path
) -> None:
    rng = seeded("route-kills")
    web_port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(config_text(broker, web_port, receiver.port))
    station_db, _log = await asyncio.to_thread(start_station, spawn, tmp_path, broker.url)
    state = tmp_path / "box"
    run = ("run", "--config", str(config), "--state-dir", str(state))
    kills = rng.randint(8, 10)
    started = time.monotonic()

    async def up(box: object) -> bool:
        return await asyncio.to_thread(web_answers, web_port)

    with driving(Driver(web_port, random.Random(rng.random()))) as driver:
        for n in range(kills):
            box = spawn(f"box-{n}", *run)
            if rng.random() < 0.25:  # while it starts
                await asyncio.sleep(rng.uniform(0.3, 1.5))
            else:
                deadline = time.monotonic() + 30
                while not await up(box) and box.poll() is None:
                    assert time.monotonic() < deadline, "box up"
                    await asyncio.sleep(0.1)
                assert box.poll() is None, (tmp_path / f"box-{n}.log").read_text()
                await asyncio.sleep(rng.uniform(0.0, 2.5))
            box.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(box.wait, 10) == -signal.SIGKILL
    chaos_s = time.monotonic() - started
    heard_before = len(dc09_messages(receiver))

    before_seq = committed(state)
    final = spawn("box-final", *run)
    await until(lambda: final.poll() is not None or web_answers(web_port), 30, "the final box")
    clean = Driver(web_port, rng)
    for name, _zone in TRIPS:  # the restores of zones left active go before these
        assert await asyncio.to_thread(clean.post, name, True)
        assert await asyncio.to_thread(clean.post, name, False)

    def drained() -> bool:
        seq = committed(state)
        return (
            seq >= before_seq + 2 * len(TRIPS)
            and box_status(web_port)["outbox"]["depth"] == 0
            and station_count(station_db) == seq
            and len(dc09_messages(receiver)) == seq
        )

    try:
        await until(drained, 120, "both routes to drain")
    except pytest.fail.Exception:
        pending = query(
            state / "outbox.sqlite",
            "SELECT event_id, route, attempts, next_send_ms, acked "
            "FROM route_sends WHERE acked = 0",
        )
        pytest.fail(
            f"not drained in 120 s: {committed(state)} committed, station "
            f"{station_count(station_db)}, DC-09 receiver {len(dc09_messages(receiver))}; "
            f"unacknowledged route sends {pending}"
        )
    final.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(final.wait, 15) == 0

    left = outbox_left(state)
    rows = station_events(station_db)
    said = dc09_messages(receiver)
    accepted = sum(1 for e in receiver.events if e.message_type != MessageTypes.NULL)
    print(
        f"[route-kills] {kills} SIGKILLs in {chaos_s:.1f} s, {driver.trips} trips; "
        f"{left.last_seq} events committed; DC-09: {heard_before} numbers heard before the "
        f"final run, {accepted} messages accepted for {len(said)} numbers; station: "
        f"{sum(r.deliveries for r in rows)} deliveries for {len(rows)} events"
    )
    assert left.last_seq >= 10
    assert_each_seq_once(rows, left.last_seq)  # the station: each event once
    # the receiver: one number per event, each number one message however often resent
    assert len(said) == left.last_seq
    assert all(len(versions) == 1 for versions in said.values()), {
        n: v for n, v in said.items() if len(v) > 1
    }
    # and what it heard is what the station has: the same codes, as many of each
    by_code: dict[str, int] = defaultdict(int)
    for versions in said.values():
        ((code, _ri, _ts),) = versions
        by_code[str(code)] += 1
    assert sum(by_code.values()) == len(rows)
    assert_outbox_empty(left)
