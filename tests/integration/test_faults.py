"""Fault injection: the broker killed, the box killed, a day-long outage.

Each test drives the whole chain (box -> outbox -> mosquitto -> station -> ack)
and checks the delivery rules of DESIGN.md at the end: every committed event
stored once at the station (its sequence numbers run 1..N without a gap or a
repeat), media intact, the outbox empty, order kept per zone, alarms overtaking
backlog. The faults come at seeded random moments: the seed is printed, and
``EDGE_FAULT_SEED=<n>`` replays a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge import app, codes
from edge.clock import ms
from edge.codes import Condition, Kind, ZoneType
from edge.config import parse
from edge.model import Event, ZoneRef, new_event_id
from edge.outbox.store import Limits, Outbox
from tests.conftest import BOX_AUTH, Broker, free_port, start_broker, wait_for
from tests.integration.test_end_to_end import (
    RunningBox,
    box_status,
    demo_text,
    until,
    without_video,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(300)]

DEVICE = "demo-box-01"
Spawn = Callable[..., subprocess.Popen[bytes]]
# 24-hour zones of config/demo.toml: (input, zone). in4 is a normally open contact.
TRIPS = (("in3", "fire"), ("in4", "panic"), ("in5", "panel-tamper"))
ON_KINDS = {Kind.ALARM.value, Kind.TAMPER.value, Kind.TROUBLE.value}
OFF_KINDS = {Kind.RESTORE.value, Kind.TAMPER_RESTORE.value, Kind.TROUBLE_RESTORE.value}


def seeded(test: str) -> random.Random:
    """The RNG of one test; ``EDGE_FAULT_SEED`` replays a printed seed."""
    seed = int(os.environ.get("EDGE_FAULT_SEED") or random.randrange(2**32))
    print(f"\n[{test}] seed {seed} (replay: EDGE_FAULT_SEED={seed})")
    return random.Random(f"{seed}-{test}")


# The trips here are instant and come by the hundred: without glitch filter, restore
# delay or hold each one is an alarm and its restore, and swinger shutdown stays out
# of reach (generate() also disarms or arms every round, which resets its count).
RAW_TIMING = "glitch_ms = 0\nrestore_ms = 0\nhold_s = 0\n"
LIFE_SAFETY = ("fire", "panic")  # never swinger-shut-down: no swinger_limit to set


def fault_text(broker_port: int, web_port: int, ack_timeout_s: float, uplink: str = "") -> str:
    """The demo config with quick reconnects (at most 2 s apart) and extra uplink keys."""
    text = without_video(demo_text(broker_port, web_port, ack_timeout_s))
    for _input, zone in TRIPS:
        key = f'id = "{zone}"\n'
        assert key in text, key
        extra = "" if zone in LIFE_SAFETY else "swinger_limit = 100\n"
        text = text.replace(key, key + RAW_TIMING + extra, 1)
    key = f"ack_timeout_s = {ack_timeout_s}\n"
    assert key in text
    return text.replace(key, f"{key}reconnect_max_s = 2\n{uplink}", 1)


# -- reading the station's and the box's databases ---------------------------------


def query(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on a database another process writes; [] while it does not exist."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()


def station_count(db: Path) -> int:
    rows = query(db, "SELECT COUNT(*) FROM events WHERE device = ?", DEVICE)
    return int(rows[0][0]) if rows else 0


@dataclass(frozen=True)
class Row:
    rowid: int
    id: str
    seq: int
    kind: str
    zone: str | None
    historical: int
    deliveries: int


def station_events(db: Path) -> list[Row]:
    """The device's events at the station, in the order the station stored them."""
    rows = query(
        db,
        "SELECT rowid, id, seq, kind, zone_id, historical, deliveries FROM events "
        "WHERE device = ? ORDER BY rowid",
        DEVICE,
    )
    return [Row(*r) for r in rows]


@dataclass(frozen=True)
class OutboxLeft:
    """What a stopped box left in its state directory."""

    last_seq: int
    events: int
    media: int
    media_files: list[str]
    dead_letters: int
    evicted_events: int
    evicted_media: int


def outbox_left(state: Path) -> OutboxLeft:
    db = state / "outbox.sqlite"
    meta = dict(query(db, "SELECT key, value FROM meta"))
    (events,) = query(db, "SELECT COUNT(*) FROM events")[0]
    (media,) = query(db, "SELECT COUNT(*) FROM media")[0]
    (dead,) = query(db, "SELECT COUNT(*) FROM dead_letters")[0]
    folder = state / "media"
    return OutboxLeft(
        last_seq=int(meta["seq"]),
        events=int(events),
        media=int(media),
        media_files=sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
        dead_letters=int(dead),
        evicted_events=int(meta["evicted_events"]),
        evicted_media=int(meta["evicted_media"]),
    )


def assert_outbox_empty(left: OutboxLeft) -> None:
    assert (left.events, left.media, left.media_files) == (0, 0, [])
    assert (left.dead_letters, left.evicted_events, left.evicted_media) == (0, 0, 0)


def assert_each_seq_once(rows: list[Row], last_seq: int) -> None:
    """Every event the box committed (seq 1..last_seq) is stored once, nothing else is."""
    seqs = Counter(r.seq for r in rows)
    assert len({r.id for r in rows}) == len(rows)
    missing = sorted(set(range(1, last_seq + 1)) - set(seqs))
    repeated = sorted(s for s, n in seqs.items() if n > 1)
    assert (missing[:20], repeated[:20]) == ([], []), f"{len(missing)} missing, repeated"
    assert sorted(seqs.elements()) == list(range(1, last_seq + 1))


def redundant(rows: list[Row]) -> int:
    """Deliveries the station had already stored (resends the faults made necessary)."""
    return sum(r.deliveries - 1 for r in rows)


def station_connects(log: Path) -> int:
    """How many times the station (re)connected to the broker, from its log."""
    return log.read_text(errors="replace").count("MQTT connected") if log.exists() else 0


def start_station(spawn: Spawn, tmp_path: Path, broker_url: str) -> tuple[Path, Path]:
    db = tmp_path / "station.sqlite"
    spawn("station", "station", "run", "--broker", broker_url, "--db", str(db))
    log = tmp_path / "station.log"
    wait_for(lambda: station_connects(log), 20, "the station to connect")
    time.sleep(0.2)  # its SUBSCRIBE follows the CONNACK
    return db, log


# -- 1. the broker killed and restarted ------------------------------------------


class BrokerChaos:
    """One mosquitto on a fixed port, killed (SIGKILL) and restarted at random moments."""

    def __init__(self, tmp_path: Path, rng: random.Random) -> None:
        self.tmp_path = tmp_path
        self.rng = rng
        self.broker: Broker = start_broker(tmp_path)
        self.port = self.broker.port
        self.restarts = 0
        self.down_s = 0.0
        self.connects: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (box, station)
        self.connects_at_last_kill = (0, 0)

    async def kill_and_restart(self) -> None:
        self.connects_at_last_kill = self.connects()
        self.broker.proc.kill()
        await asyncio.to_thread(self.broker.proc.wait, 10)
        down_s = self.rng.uniform(0.2, 2.0)
        await asyncio.sleep(down_s)
        self.broker = await asyncio.to_thread(start_broker, self.tmp_path, self.port)
        self.restarts += 1
        self.down_s += down_s

    async def run(self, done: asyncio.Event, at_least: int) -> None:
        """Kill and restart until ``done`` is set and ``at_least`` restarts happened."""
        while self.restarts < at_least or not done.is_set():
            await asyncio.sleep(self.rng.uniform(0.5, 2.5))
            await self.kill_and_restart()

    def stop(self) -> None:
        self.broker.stop()


@dataclass
class Generated:
    events: int = 0
    trips: int = 0
    media: dict[str, str] = field(default_factory=dict)  # media id -> sha256
    media_bytes: int = 0
    multi_chunk: int = 0


async def generate(box: app.Box, rng: random.Random, rounds: int, chunk_bytes: int) -> Generated:
    """Trips of 24-hour zones and the box's own test events, some with a still."""
    made = Generated()
    for r in range(rounds):
        box.inputs.simulate("in6", r % 2 == 0)  # arm, disarm, ...: a new arming period
        made.events += 1
        for t in range(12):  # 12 trips: 24 events
            name, _zone = TRIPS[(r * 12 + t) % len(TRIPS)]
            box.inputs.simulate(name, True)
            box.inputs.simulate(name, False)
            made.trips += 1
            made.events += 2
        tests = await asyncio.gather(
            *(
                box.raise_event(Condition.MANUAL_TEST, False, f"round {r} test {i}")
                for i in range(26)
            )
        )
        made.events += len(tests)
        for event in rng.sample(tests, rng.randint(5, 10)):
            data = rng.randbytes(rng.randint(2 * 1024, 40 * 1024))
            media_id = str(uuid.uuid4())
            await box.outbox.put_media(event, media_id, "still", "image/jpeg", data)
            made.media[media_id] = hashlib.sha256(data).hexdigest()
            made.media_bytes += len(data)
            made.multi_chunk += len(data) > chunk_bytes
        await asyncio.sleep(rng.uniform(0.1, 0.4))
    return made


async def test_broker_killed_and_restarted_during_2000_events_with_media(
    spawn: Spawn, tmp_path: Path
) -> None:
    rng = seeded("broker-kills")
    chaos = BrokerChaos(tmp_path, rng)
    try:
        station_db, station_log = start_station(spawn, tmp_path, chaos.broker.url)
        chunk_bytes = 16384
        text = fault_text(chaos.port, free_port(), 2, f"chunk_bytes = {chunk_bytes}\n")
        cfg = parse(text, "faults.toml")
        state = tmp_path / "box"
        loop = asyncio.get_running_loop()
        async with RunningBox(cfg, state) as box:
            await until(lambda: box.link.status.connected, what="box connected")
            started = loop.time()
            chaos.connects = lambda: (box.link.status.connects, station_connects(station_log))
            done = asyncio.Event()
            killing = asyncio.create_task(chaos.run(done, at_least=4), name="chaos")
            made = await generate(box, rng, rounds=40, chunk_bytes=chunk_bytes)
            generated_s = loop.time() - started
            done.set()
            await asyncio.wait_for(killing, 60)
            calm = loop.time()
            box_then, station_then = chaos.connects_at_last_kill
            await until(
                lambda: (
                    box.link.status.connected
                    and box.link.status.connects > box_then
                    and station_connects(station_log) > station_then
                ),
                30,
                "the box and the station to reconnect by themselves after the last restart",
            )
            await until(
                lambda: (
                    box.outbox.depth == 0
                    and box.outbox.media_count == 0
                    and station_count(station_db) >= made.events
                ),
                180,
                "the outbox to drain after the last restart",
            )
            drained = loop.time()
            connects, stats = box.link.status.connects, box.forwarder.stats
        left = outbox_left(state)
        rows = station_events(station_db)
        media = query(
            station_db,
            "SELECT media_id, sha256, size, path FROM media WHERE device = ?",
            DEVICE,
        )
        print(
            f"[broker-kills] {made.events} events ({made.trips} trips), {len(made.media)} stills "
            f"({made.multi_chunk} multi-chunk, {made.media_bytes // 1024} KiB) in "
            f"{generated_s:.1f} s; broker killed {chaos.restarts}x, down {chaos.down_s:.1f} s "
            f"in all; box connected {connects}x, station {station_connects(station_log)}x; "
            f"drained {drained - calm:.1f} s after the last restart "
            f"({drained - started:.1f} s in all); published {stats.published}, "
            f"{redundant(rows)} redundant deliveries, {stats.chunks} chunks sent"
        )
    finally:
        chaos.stop()
    assert chaos.restarts >= 3
    assert left.last_seq == made.events  # the box committed every event generated
    assert_each_seq_once(rows, left.last_seq)
    assert_outbox_empty(left)
    assert {m[0] for m in media} == set(made.media)
    media_root = station_db.with_name(station_db.name + ".media")
    for media_id, sha256, _size, path in media:
        data = (media_root / str(path)).read_bytes()
        assert (sha256, hashlib.sha256(data).hexdigest()) == (made.media[str(media_id)],) * 2


# -- 2. the box killed with SIGKILL ------------------------------------------------


class Driver(threading.Thread):
    """Trips the box's simulated 24-hour zones through its web API, retrying while it is down."""

    def __init__(self, web_port: int, rng: random.Random) -> None:
        super().__init__(name="driver", daemon=True)
        self.url = f"http://127.0.0.1:{web_port}/api/sim/inputs/"
        self.rng = rng
        self.halt = threading.Event()
        self.trips = 0
        self.refused = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                name, _zone = self.rng.choice(TRIPS)
                self.post(name, True)
                time.sleep(self.rng.uniform(0.01, 0.15))
                self.post(name, False)
                time.sleep(self.rng.uniform(0.01, 0.1))
                self.trips += 1
        except BaseException as exc:  # reported by the test, in its thread
            self.error = exc

    def post(self, name: str, active: bool) -> bool:
        """POST until the box takes it (or the driver is halted)."""
        body = json.dumps({"active": active}).encode()
        while not self.halt.is_set():
            request = urllib.request.Request(
                self.url + name,
                data=body,
                headers={"Content-Type": "application/json", **BOX_AUTH},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    response.read()
                return True
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise
                self.refused += 1  # up, but its inputs are not open yet
            except (OSError, http.client.HTTPException):
                self.refused += 1  # down, or killed while answering
            time.sleep(0.05)
        return False


def web_answers(web_port: int) -> bool:
    try:
        box_status(web_port)
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return True


@contextlib.contextmanager
def driving(driver: Driver) -> Iterator[Driver]:
    driver.start()
    try:
        yield driver
    finally:
        driver.halt.set()
        driver.join(10)
    if driver.error is not None:
        raise driver.error


def test_box_killed_with_sigkill_at_random_moments(
    broker: Broker, spawn: Spawn, tmp_path: Path
) -> None:
    rng = seeded("box-kills")
    web_port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(fault_text(broker.port, web_port, 3))
    station_db, _log = start_station(spawn, tmp_path, broker.url)
    state = tmp_path / "box"
    run = ("run", "--config", str(config), "--state-dir", str(state))
    kills = rng.randint(20, 24)
    started = time.monotonic()
    early = 0
    with driving(Driver(web_port, random.Random(rng.random()))) as driver:
        for n in range(kills):
            box = spawn(f"box-{n}", *run)
            if rng.random() < 0.25:  # while it starts: opening the outbox, connecting...
                early += 1
                time.sleep(rng.uniform(0.3, 1.5))
            else:
                wait_for(lambda b=box: web_answers(web_port) or b.poll() is not None, 30, "box up")
                assert box.poll() is None, (tmp_path / f"box-{n}.log").read_text()
                time.sleep(rng.uniform(0.0, 2.0))
            box.send_signal(signal.SIGKILL)
            assert box.wait(10) == -signal.SIGKILL
        assert driver.is_alive()
    chaos_s = time.monotonic() - started
    before_final = len(station_events(station_db))

    committed = query(state / "outbox.sqlite", "SELECT value FROM meta WHERE key = 'seq'")
    before_seq = int(committed[0][0])
    final = spawn("box-final", *run)
    wait_for(lambda: web_answers(web_port), 30, "the final box up")
    # One trip of each zone: queued behind the start-up levels, so once their events are
    # in, so are the restores of zones that went quiet while the box was down.
    clean = Driver(web_port, rng)
    for name, _zone in TRIPS:
        assert clean.post(name, True) and clean.post(name, False)

    def drained() -> bool:
        rows = query(state / "outbox.sqlite", "SELECT value FROM meta WHERE key = 'seq'")
        seq = int(rows[0][0])
        depth = box_status(web_port)["outbox"]["depth"]
        return (
            seq >= before_seq + 2 * len(TRIPS) and depth == 0 and station_count(station_db) == seq
        )

    wait_for(drained, 120, "the final run to drain")
    final.send_signal(signal.SIGTERM)
    assert final.wait(15) == 0
    left = outbox_left(state)
    rows = station_events(station_db)
    print(
        f"[box-kills] {kills} SIGKILLs ({early} during start-up) in {chaos_s:.1f} s, "
        f"{driver.trips} trips ({driver.refused} posts refused while down); "
        f"{left.last_seq} events committed, {before_final} at the station before the final "
        f"run; {redundant(rows)} redundant deliveries"
    )
    assert left.last_seq >= 20  # the chaos let the box commit something
    assert_each_seq_once(rows, left.last_seq)
    assert_outbox_empty(left)
    by_zone: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        if row.zone is not None:
            by_zone.setdefault(row.zone, []).append(row.kind)
    for zone, kinds in by_zone.items():
        on = [k in ON_KINDS for k in kinds]
        assert set(kinds) <= ON_KINDS | OFF_KINDS, zone
        broken = [i for i in range(len(on)) if on[i] != (i % 2 == 0)]
        assert not broken, f"zone {zone}: not alarm, restore, ... at {broken[:5]}: {kinds}"
        assert not on[-1], f"zone {zone} ends in alarm after the final clean run"


# -- 3. a day-long outage drained ---------------------------------------------------

EXTRA_ZONES = """
[[zones]]
id = "holdup"
name = "Hold-up button, till"
type = "holdup"
number = 12

[[zones]]
id = "siren-tamper"
name = "Siren tamper loop"
type = "tamper"
number = 21

[[inputs]]
name = "in8"
pin = 6
zone = "holdup"
contact = "no"

[[inputs]]
name = "in9"
pin = 13
zone = "siren-tamper"
"""
# The backlog's zones: every priority class but not panel-tamper, the live alarm's zone,
# which shares its class (tamper) with siren-tamper.
BACKLOG_ZONES = (
    ZoneRef("fire", "Fire panel", ZoneType.FIRE, 10),
    ZoneRef("panic", "Panic button, reception", ZoneType.PANIC, 11),
    ZoneRef("holdup", "Hold-up button, till", ZoneType.HOLDUP, 12),
    ZoneRef("front-door", "Front door", ZoneType.INTRUSION, 1),
    ZoneRef("hall-pir", "Hall motion detector", ZoneType.INTRUSION, 2),
    ZoneRef("siren-tamper", "Siren tamper loop", ZoneType.TAMPER, 21),
    ZoneRef("mains", "Panel AC power", ZoneType.AC_POWER, 91),
)
TAMPER_ZONES = {"panel-tamper", "siren-tamper"}


def backlog(rng: random.Random, now_ms: int, count: int) -> list[Event]:
    """``count`` events, alarm then restore per zone, occurred over the last 24 hours
    (the newest 5 minutes ago, so all are historical when sent), in time order."""
    day_ms = 24 * 3600 * 1000
    times = sorted(rng.randrange(now_ms - day_ms, now_ms - 300_000) for _ in range(count))
    events = []
    for n in range(count // 2):
        zone = rng.choice(BACKLOG_ZONES)
        condition = codes.ZONE_CONDITION[zone.type]
        for restore, at_ms in ((False, times[2 * n]), (True, times[2 * n + 1])):
            kind = codes.kind(condition, restore)
            events.append(
                Event(
                    id=new_event_id(at_ms),
                    kind=kind,
                    condition=condition,
                    codes=codes.codes(condition, restore),
                    occurred_at_ms=at_ms,
                    partition=1,
                    armed=zone.type is ZoneType.INTRUSION,
                    zone=zone,
                    text=f"{zone.name}: {kind.value}",
                )
            )
    return events


async def test_day_long_outage_drains_once_in_zone_order_with_live_alarm_first(
    spawn: Spawn, tmp_path: Path
) -> None:
    rng = seeded("outage")
    broker = start_broker(tmp_path)
    try:
        text = fault_text(broker.port, free_port(), 10) + EXTRA_ZONES
        cfg = parse(text, "faults.toml")
        state = tmp_path / "box"
        # The outage: the box queued a day of events while nothing reached the station.
        queued = backlog(rng, ms(time.time()), 10_000)
        limits = Limits(
            cfg.outbox.max_events, int(cfg.outbox.media_quota_bytes), cfg.uplink.chunk_bytes
        )
        outbox = Outbox(state / "outbox.sqlite", limits)
        outbox.open(ms(time.time()))
        try:
            outbox.put_many([(e, e.occurred_at_ms) for e in queued])
        finally:
            outbox.close()
        # Station and link back up: the box starts on its backlog.
        station_db, _log = start_station(spawn, tmp_path, broker.url)
        loop = asyncio.get_running_loop()
        async with RunningBox(cfg, state) as box:
            await until(lambda: box.link.status.connected, what="box connected")
            started = loop.time()
            await until(lambda: station_count(station_db) > 0, 30, "the drain to start")
            stored_at_trip = station_count(station_db)
            box.inputs.simulate("in5", True)  # panel tamper, live, during the drain
            await until(
                lambda: station_count(station_db) >= len(queued) + 1 and box.outbox.depth == 0,
                240,
                "the backlog and the live alarm at the station",
            )
            drain_s = loop.time() - started
            box.inputs.simulate("in5", False)
            await until(
                lambda: station_count(station_db) >= len(queued) + 2 and box.outbox.depth == 0,
                30,
                "the live restore",
            )
            published = box.forwarder.stats.published
    finally:
        broker.stop()
    left = outbox_left(state)
    rows = station_events(station_db)
    live = [r for r in rows if r.zone == "panel-tamper"]
    tamper_backlog = [r for r in rows if r.zone in TAMPER_ZONES and r not in live]
    overtaken = sum(1 for r in tamper_backlog if r.rowid > live[0].rowid)
    print(
        f"[outage] {len(queued)} queued events drained in {drain_s:.1f} s "
        f"({len(queued) / drain_s:.0f} events/s); live tamper tripped after {stored_at_trip} "
        f"were stored, overtook {overtaken} of {len(tamper_backlog)} queued tamper events; "
        f"published {published}, {redundant(rows)} redundant deliveries"
    )
    assert left.last_seq == len(queued) + 2
    assert_each_seq_once(rows, left.last_seq)
    assert_outbox_empty(left)
    assert {r.id for r in rows} >= {e.id for e in queued}
    # Per zone, the station stored the events in the order the box committed them.
    by_zone: dict[str | None, list[int]] = {}
    for row in rows:
        by_zone.setdefault(row.zone, []).append(row.seq)
    assert {z: s for z, s in by_zone.items() if s != sorted(s)} == {}
    queued_ids = {e.id for e in queued}
    assert {r.historical for r in rows if r.id in queued_ids} == {1}
    assert [(r.kind, r.historical) for r in live] == [("tamper", 0), ("tamper_restore", 0)]
    assert stored_at_trip < len(queued)
    assert live[0].rowid < max(r.rowid for r in tamper_backlog)  # it overtook the backlog
