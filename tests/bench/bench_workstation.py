"""The operator's workstation: how fast an alarm reaches every operator, how the queue and
an incident open on a big store, how fast the main courante exports. ``make bench
ARGS=workstation``; never part of ``make test`` (tests/bench is not collected: the
million-row store below is built only here).

- **push**: mosquitto, ``edge station run`` and ``edge station page`` each in their own
  process (SQLite, then PostgreSQL with fsync on); 20 operators logged in with the live
  stream open (Server-Sent Events clients); the receiver under load (200 boxes sending
  history events at ~300/s and a 256 KiB clip chunk every 50 ms) while 100 fire alarms
  from 100 other boxes arrive 150 ms apart. Measured per alarm: from its storing (the
  ``received_ms`` the receiver stamps before its commit) until the last of the 20 streams
  carries it; bar p99 <= 250 ms.
- **scale**: PostgreSQL holding 1,000,000 events (COPY), 2,000 sites and 10,000 open
  alarms in 2,000 open incidents (and 20,000 closed ones); ``/api/queue`` and one incident
  ``/api/incidents/<id>`` through the real page; bar p99 <= 300 ms.
- **export**: 100,000 lines of the main courante as CSV through ``/api/courante.csv``
  (streamed, read to the end), SQLite and PostgreSQL; bar <= 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_uplink import _broker

from edge.codes import Condition
from edge.protocol import Chunk, chunk_properties, encode_event
from edge.station import oplog
from edge.station.store import StationStore
from edge.station.web.server import OperatorPage
from tests.conftest import free_port
from tests.deskkit import PASSWORD, event, video_extra
from tests.postgres import start_postgres

Row = tuple[str, float, float, str, str]
OPERATORS = 20
ALARMS = 100


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- push: stored -> every operator's queue ---------------------------------------------


class Load(threading.Thread):
    """200 boxes' history events (~300/s) and a 256 KiB clip chunk every 50 ms."""

    def __init__(self, port: int) -> None:
        super().__init__(name="bench-load", daemon=True)
        self.stop = threading.Event()
        self.sent = 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-load", protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def run(self) -> None:
        seqs: dict[str, int] = {}
        chunk = os.urandom(256 * 1024)
        digest = "0" * 64  # never complete: the receiver stores the chunks and waits
        n = 0
        while not self.stop.is_set():
            for _ in range(15):
                device = f"load-{n % 200:03d}"
                seqs[device] = seqs.get(device, 0) + 1
                message = event(
                    f"{device}-{seqs[device]}",
                    seqs[device],
                    Condition.MANUAL_TEST,
                    device=device,
                    zone=None,
                )
                self.client.publish(f"edge/{device}/events", encode_event(message), qos=1)
                n += 1
            props = Properties(PacketTypes.PUBLISH)
            head = Chunk(n % 1000, 1000, 1000 * len(chunk), digest, "video/mp4", "clip")
            props.UserProperty = list(chunk_properties(head))
            self.client.publish(
                f"edge/load-000/media/ev-x/clip-{n // 1000}", chunk, qos=1, properties=props
            )
            self.sent += 16
            time.sleep(0.05)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def _processes(*argvs: list[str]) -> Iterator[None]:
    procs = [
        subprocess.Popen([sys.executable, "-m", "edge", *a], stderr=subprocess.DEVNULL)
        for a in argvs
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


def _operators(db: str, media: Path) -> None:
    store = StationStore(db if db.startswith("postgresql") else Path(db), media)
    store.open()
    with store.transaction() as tx:
        for n in range(OPERATORS):
            oplog.set_operator(tx, f"op{n:02d}", PASSWORD)
    store.close()


async def _login(base: str, name: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.post("/api/login", json={"name": name, "password": PASSWORD}) as r:
                if r.status == 200:
                    return http
        await asyncio.sleep(0.1)
    raise RuntimeError("the page did not start")


async def _listen(http: aiohttp.ClientSession, since: int, seen: dict[str, list[float]]) -> None:
    async with http.get(f"/api/stream?since={since}", timeout=aiohttp.ClientTimeout(None)) as r:
        async for line in r.content:
            if line.startswith(b"data: "):
                now = time.time()
                for row in json.loads(line[6:])["rows"]:
                    seen.setdefault(row["top"]["alarm_id"], []).append(now)


async def _push_run(port: int, page_port: int) -> dict[str, list[float]]:
    base = f"http://127.0.0.1:{page_port}"
    sessions = [await _login(base, f"op{n:02d}") for n in range(OPERATORS)]
    seen: dict[str, list[float]] = {}
    async with sessions[0].get("/api/queue") as r:
        since = (await r.json())["v"]
    readers = [asyncio.create_task(_listen(h, since, seen)) for h in sessions]
    await asyncio.sleep(1.0)
    load = Load(port)
    load.start()
    await asyncio.sleep(2.0)  # the receiver busy before the first alarm
    boxes = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-alarms", protocol=paho.MQTTv5)
    boxes.connect("127.0.0.1", port)
    boxes.loop_start()
    for n in range(ALARMS):
        device = f"alarm-{n:03d}"
        message = event(
            f"fire-{n:03d}", 1, Condition.FIRE, device=device, extra=video_extra(f"fire-{n:03d}")
        )
        boxes.publish(f"edge/{device}/events", encode_event(message), qos=1)
        await asyncio.sleep(0.15)
    for _ in range(100):
        if all(len(seen.get(f"fire-{n:03d}", [])) >= OPERATORS for n in range(ALARMS)):
            break
        await asyncio.sleep(0.1)
    load.close()
    boxes.disconnect()
    boxes.loop_stop()
    for task in readers:
        task.cancel()
    for http in sessions:
        await http.close()
    return seen


def _stored_ms(db: str) -> dict[str, int]:
    query = "SELECT id, received_ms FROM events WHERE id LIKE 'fire-%'"
    if db.startswith("postgresql"):
        with psycopg.connect(db) as conn:
            return {str(i): int(t) for i, t in conn.execute(query)}
    conn = sqlite3.connect(db)
    try:
        return {str(i): int(t) for i, t in conn.execute(query)}
    finally:
        conn.close()


def _push_one(folder: Path, port: int, label: str, db: str) -> list[Row]:
    media = folder / f"media-{label}"
    _operators(db, media)
    page_port = free_port()
    with _processes(
        [
            "station",
            "run",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--db",
            db,
            "--media",
            str(media),
            "--client-id",
            f"bench-ws-{label}",
            "--log-level",
            "WARNING",
        ],
        [
            "station",
            "page",
            "--db",
            db,
            "--media",
            str(media),
            "--port",
            str(page_port),
            "--log-level",
            "WARNING",
        ],
    ):
        time.sleep(2.0)
        seen = asyncio.run(_push_run(port, page_port))
    stored = _stored_ms(db)
    lat = []
    for alarm_id, at_ms in stored.items():
        times = seen.get(alarm_id, [])
        if len(times) < OPERATORS:
            raise RuntimeError(f"{alarm_id} reached {len(times)} of {OPERATORS} operators")
        lat.append((max(times) - at_ms / 1000) * 1000)
    if len(lat) != ALARMS:
        raise RuntimeError(f"{len(lat)} of {ALARMS} alarms stored")
    bar = "bar: p99 <= 250 ms"
    return [
        (f"{label}: p50 to all 20", statistics.median(lat), 250.0, "ms", bar),
        (f"{label}: p99 to all 20", _p(lat, 0.99), 250.0, "ms", bar),
    ]


def push() -> list[Row]:
    rows: list[Row] = []
    server = start_postgres(fsync=True)
    try:
        with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as port:
            folder = Path(tmp)
            rows += _push_one(folder, port, "SQLite", str(folder / "push.sqlite"))
            rows += _push_one(folder, port, "PostgreSQL", server.fresh("push"))
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)
    return rows


# -- scale: a million events, ten thousand open alarms -----------------------------------

DEVICES = 2_000
EVENTS = 1_000_000
OPEN_PER_SITE = 5  # 2,000 x 5 = 10,000 open alarms
CLOSED = 20_000
T0 = 1_790_000_000_000


def _copy(
    conn: psycopg.Connection[Any], table: str, columns: str, rows: Iterator[tuple[Any, ...]]
) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _fill(url: str) -> tuple[int, list[str]]:
    """The big store, written with COPY; the number of events and some incident ids."""
    rnd = random.Random(7)
    body = json.dumps(
        {
            "v": 2,
            "kind": "test",
            "condition": "periodic_test",
            "cid": "1602",
            "sia": "RP",
            "occurred_at": "2026-01-01T00:00:00.000Z",
            "partition": 1,
            "armed": None,
            "zone": None,
            "text": "periodic test",
            "extra": {},
        }
    )
    alarm_body = json.dumps(
        {
            **json.loads(body),
            "kind": "alarm",
            "condition": "burglary",
            "cid": "1130",
            "sia": "BA",
            "zone": {"id": "hall", "name": "Hall PIR", "type": "intrusion", "number": 3},
            "extra": video_extra("x"),
        }
    )
    per_device = EVENTS // DEVICES

    def events() -> Iterator[tuple[Any, ...]]:
        for d in range(DEVICES):
            device = f"box-{d:04d}"
            for s in range(per_device):
                k = per_device - s - 1
                is_open = k < OPEN_PER_SITE
                eid = f"open-{d}-{k}" if is_open else f"ev-{d}-{s}"
                at = T0 + s * 60_000 + d
                yield (
                    eid,
                    device,
                    "1234",
                    s + 1,
                    "alarm" if is_open else "test",
                    "1130" if is_open else "1602",
                    "BA" if is_open else "RP",
                    "hall" if is_open else None,
                    "Hall PIR" if is_open else None,
                    1,
                    None,
                    at,
                    at + 50,
                    at + 80,
                    0,
                    1,
                    alarm_body if is_open else body,
                )

    with psycopg.connect(url, autocommit=True) as conn:
        _copy(
            conn,
            "events",
            "id, device, account, seq, kind, cid, sia, zone_id, zone_name, "
            "partition, armed, occurred_ms, sent_ms, received_ms, historical, deliveries, body",
            events(),
        )
        site = json.dumps(
            {
                "address": "1 rue de la Gare, 75010 Paris",
                "latitude": 48.88,
                "longitude": 2.35,
                "devices": [],
                "notes": "",
                "instructions": {"intrusion": ["Lever le doute", "Appeler"] * 3},
                "contacts": [
                    {
                        "name": f"Contact {i}",
                        "role": "keyholder",
                        "phone": "+33 6 00 00 00 0" + str(i),
                        "note": "",
                    }
                    for i in range(4)
                ],
            }
        )
        _copy(
            conn,
            "sites",
            "id, name, body, updated_ms, updated_by",
            ((f"site-{d:04d}", f"Site {d}", site, T0, "bench") for d in range(DEVICES)),
        )
        _copy(
            conn,
            "site_devices",
            "device, site_id",
            ((f"box-{d:04d}", f"site-{d:04d}") for d in range(DEVICES)),
        )
        incidents: list[tuple[Any, ...]] = []
        alarms: list[tuple[Any, ...]] = []
        media: list[tuple[Any, ...]] = []
        for d in range(DEVICES):
            iid = f"inc-open-{d}"
            top = f"open-{d}-0"
            opened = T0 + rnd.randrange(86_400_000)
            incidents.append(
                (
                    iid,
                    f"site:site-{d:04d}",
                    opened,
                    opened,
                    3,
                    "intrusion",
                    top,
                    OPEN_PER_SITE,
                    OPEN_PER_SITE,
                    opened,
                    None,
                    d,
                )
            )
            for k in range(OPEN_PER_SITE):
                aid = f"open-{d}-{k}"
                alarms.append(
                    (
                        aid,
                        iid,
                        "event",
                        f"box-{d:04d}",
                        "hall:130",
                        per_device - k,
                        "intrusion",
                        3,
                        "alarm",
                        "Hall PIR",
                        opened,
                        opened,
                        0,
                        None,
                    )
                )
                media += [(f"box-{d:04d}", f"{aid}-s{i}", aid, iid) for i in range(6)]
        for c in range(CLOSED):
            iid, aid = f"inc-closed-{c}", f"closed-{c}"
            incidents.append(
                (
                    iid,
                    f"site:site-{c % DEVICES:04d}",
                    T0 - c,
                    T0 - c,
                    3,
                    "intrusion",
                    aid,
                    1,
                    0,
                    T0 - c,
                    T0 - c + 10,
                    DEVICES + c,
                )
            )
            alarms.append(
                (
                    aid,
                    iid,
                    "event",
                    f"box-{c % DEVICES:04d}",
                    "hall:130",
                    0,
                    "intrusion",
                    3,
                    "alarm",
                    "Hall PIR",
                    T0 - c,
                    T0 - c,
                    0,
                    T0,
                )
            )
        _copy(
            conn,
            "incidents",
            "id, site_key, opened_ms, waiting_ms, priority, category, "
            "top_alarm, alarms, unrestored, last_ms, closed_ms, changed_v",
            iter(incidents),
        )
        _copy(
            conn,
            "incident_alarms",
            "alarm_id, incident_id, source, device, restore_key, seq, "
            "category, priority, kind, zone_name, occurred_ms, received_ms, historical, "
            "restored_ms",
            iter(alarms),
        )
        _copy(conn, "alarm_media", "device, media_id, alarm_id, incident_id", iter(media))
        conn.execute("UPDATE desk_version SET v = %s WHERE id = 1", (DEVICES + CLOSED,))
        conn.execute("ANALYZE")
        (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone() or (0,)
    return int(count), [f"inc-open-{d}" for d in rnd.sample(range(DEVICES), 20)]


async def _timed(http: aiohttp.ClientSession, path: str, runs: int = 1) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        async with http.get(path) as r:
            await r.read()
            assert r.status == 200, (path, r.status)
        out.append((time.perf_counter() - start) * 1000)
    return out


async def _scale_run(url: str, folder: Path, ids: list[str]) -> tuple[list[float], list[float]]:
    store = StationStore(url, folder / "media")
    store.open()
    with store.transaction() as tx:
        oplog.set_operator(tx, "op00", PASSWORD)
    port = free_port()
    page = OperatorPage(store, "127.0.0.1", port)
    await page.start()
    try:
        http = await _login(f"http://127.0.0.1:{port}", "op00")
        async with http.get("/api/queue") as r:
            body = await r.json()
        if (body["open"], len(body["rows"])) != (DEVICES, 200):  # the store is what it says
            raise RuntimeError(f"queue: {body['open']} open, {len(body['rows'])} rows")
        await _timed(http, "/api/queue", 2)  # warm
        queue = await _timed(http, "/api/queue", 30)
        opened = []
        for incident in ids:
            opened += await _timed(http, f"/api/incidents/{incident}")
        await http.close()
    finally:
        await page.stop()
        store.close()
    return queue, opened


def scale() -> list[Row]:
    server = start_postgres(fsync=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = server.fresh("scale")
            StationStore(url, Path(tmp) / "media").open()  # the schema
            started = time.perf_counter()
            count, ids = _fill(url)
            built_s = time.perf_counter() - started
            queue, opened = asyncio.run(_scale_run(url, Path(tmp), ids))
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)
    bar = "bar: p99 <= 300 ms"
    return [
        (f"store built ({count:,} events)", built_s, 0.0, "s", "COPY"),
        ("queue: 10,000 open alarms p50", statistics.median(queue), 300.0, "ms", bar),
        ("queue: 10,000 open alarms p99", _p(queue, 0.99), 300.0, "ms", bar),
        ("an incident opened p99", _p(opened, 0.99), 300.0, "ms", bar),
    ]


# -- export: 100,000 lines of the main courante ------------------------------------------

LINES = 100_000


def _courante_rows() -> Iterator[tuple[Any, ...]]:
    for n in range(LINES):
        action = ("take", "call", "comment", "dispatch", "media_view")[n % 5]
        detail = {
            "take": {},
            "call": {"contact": "Paul Martin", "phone": "+33 6", "result": "reached"},
            "comment": {},
            "dispatch": {"to": "guard"},
            "media_view": {"device": "box-1", "media_id": f"m-{n}", "kind": "still"},
        }[action]
        yield (
            T0 + n * 100,
            f"op{n % 20:02d}",
            f"inc-{n // 10}",
            f"site:site-{n % 50:04d}",
            None,
            action,
            json.dumps(detail),
            "texte libre" if action == "comment" else "",
            None,
        )


def _export_once(target: str | Path, folder: Path) -> float:
    store = StationStore(target, folder / "media")
    store.open()
    columns = "at_ms, operator, incident_id, site_key, device, action, detail, text, corrects"
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            _copy(conn, "courante", columns, _courante_rows())
    else:
        with store.transaction() as tx:
            marks = ", ".join("?" for _ in range(9))
            for row in _courante_rows():
                tx.execute(f"INSERT INTO courante ({columns}) VALUES ({marks})", row)
    with store.transaction() as tx:
        oplog.set_operator(tx, "op00", PASSWORD)

    async def run() -> float:
        port = free_port()
        page = OperatorPage(store, "127.0.0.1", port)
        await page.start()
        try:
            http = await _login(f"http://127.0.0.1:{port}", "op00")
            start = time.perf_counter()
            size = lines = 0
            async with http.get("/api/courante.csv?lang=fr") as r:
                async for chunk in r.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            took = time.perf_counter() - start
            await http.close()
        finally:
            await page.stop()
        if lines != LINES + 1:
            raise RuntimeError(f"{lines} lines exported, {LINES + 1} expected")
        return took

    try:
        return asyncio.run(run())
    finally:
        store.close()


def export() -> list[Row]:
    server = start_postgres(fsync=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            sqlite_s = _export_once(folder / "export.sqlite", folder)
            pg_s = _export_once(server.fresh("export"), folder)
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)
    bar = "bar: <= 5 s, streamed"
    return [
        ("100,000 lines CSV, SQLite", sqlite_s, 5.0, "s", bar),
        ("100,000 lines CSV, PostgreSQL", pg_s, 5.0, "s", bar),
    ]


CASES = [("workstation push", push), ("workstation scale", scale), ("workstation export", export)]
