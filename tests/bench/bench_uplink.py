"""Alarm latency and backlog drain through the whole path, against raw paho floors.

Everything real: a mosquitto on a free loopback port, the station receiver,
the box on mock pins. The floors use plain paho clients on the same broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge import app, codes
from edge.codes import Condition
from edge.config import parse
from edge.model import Event, new_event_id
from edge.outbox.store import Outbox
from tests.integration.test_end_to_end import without_video

REPO = Path(__file__).resolve().parents[2]
Row = tuple[str, float, float, str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _broker(folder: Path) -> Iterator[int]:
    port = _free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 100\nmax_queued_messages 100000\nset_tcp_nodelay true\n"
    )
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _config(port: int, chunk_bytes: int = 262144) -> str:
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace('broker = "mqtt://127.0.0.1:18830"', f'broker = "mqtt://127.0.0.1:{port}"')
    text = text.replace("ack_timeout_s = 10", f"ack_timeout_s = 30\nchunk_bytes = {chunk_bytes}")
    # The fire zone keeps its glitch filter (20 ms, part of the latency an operator
    # sees) but restores at once, so 1,000 alarm/restore cycles take seconds, not hours.
    text = text.replace('id = "fire"\n', 'id = "fire"\nrestore_ms = 0\nhold_s = 0\n', 1)
    return text.replace("port = 8080", f"port = {_free_port()}")


@contextlib.contextmanager
def _station(port: int, folder: Path) -> Iterator[Path]:
    """The station receiver in its own process, as it runs in production."""
    db = folder / "station.sqlite"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "station",
            "run",
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--db",
            str(db),
            "--log-level",
            "WARNING",
        ],
        cwd=REPO,
    )
    try:
        yield db
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.asynccontextmanager
async def _running(
    port: int, folder: Path, chunk_bytes: int = 262144, camera: bool = True
) -> AsyncIterator[app.Box]:
    stop, ready = asyncio.Event(), asyncio.Event()
    boxes: list[app.Box] = []

    def on_ready(box: app.Box) -> None:
        boxes.append(box)
        ready.set()

    with _station(port, folder):
        await asyncio.sleep(1.0)  # let the station subscribe before the box sends
        text = _config(port, chunk_bytes)
        cfg = parse(text if camera else without_video(text), "bench.toml")
        task = asyncio.create_task(app.run(cfg, folder / "box", stop=stop, ready=on_ready))
        await asyncio.wait_for(ready.wait(), 20)
        box = boxes[0]
        await box.link.wait_connected(10)
        try:
            yield box
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


# -- latency -----------------------------------------------------------------


async def _latencies(port: int, folder: Path, n: int) -> list[float]:
    async with _running(port, folder) as box:
        acked = asyncio.Event()
        box.forwarder.on_acked = lambda _count: acked.set()
        samples = []
        for _ in range(n):
            for active in (True, False):
                depth_before = box.forwarder.stats.acked
                acked.clear()
                start = time.perf_counter()
                box.inputs.simulate("in3", active)  # the fire panel: a 24-hour zone
                while box.forwarder.stats.acked == depth_before:
                    await acked.wait()
                    acked.clear()
                if active:
                    samples.append((time.perf_counter() - start) * 1000)
        return samples


def _raw_round_trips(port: int, n: int) -> list[float]:
    """Floor: publish QoS 1, a second client answers QoS 1, the first receives it."""
    got = threading.Event()
    asker = paho.Client(CallbackAPIVersion.VERSION2, client_id="floor-a", protocol=paho.MQTTv5)
    answerer = paho.Client(CallbackAPIVersion.VERSION2, client_id="floor-b", protocol=paho.MQTTv5)
    asker.on_message = lambda *_a: got.set()
    answerer.on_message = lambda c, _u, m: c.publish("floor/answer", m.payload, qos=1)
    for client in (asker, answerer):
        client.connect("127.0.0.1", port)
        _no_delay(client)
        client.loop_start()
    asker.subscribe("floor/answer", qos=1)
    answerer.subscribe("floor/ask", qos=1)
    time.sleep(0.5)
    samples = []
    payload = b"x" * 600
    for _ in range(n):
        got.clear()
        start = time.perf_counter()
        asker.publish("floor/ask", payload, qos=1)
        got.wait(5)
        samples.append((time.perf_counter() - start) * 1000)
    for client in (asker, answerer):
        client.disconnect()
        client.loop_stop()
    return samples


def _no_delay(client: paho.Client) -> None:
    """The floor gets what the box does: no Nagle delay on its socket."""
    sock = client.socket()
    assert sock is not None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def latency(n: int = 1000) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as port:
        ours = asyncio.run(_latencies(port, Path(tmp), n))
        floor = _raw_round_trips(port, n)
    name = "raw paho QoS1 round trip (bar: p99 <= 100 ms)"
    return [
        (f"alarm p50 ({n})", _pct(ours, 50), _pct(floor, 50), "ms", name),
        (f"alarm p99 ({n})", _pct(ours, 99), _pct(floor, 99), "ms", name),
        (f"alarm max ({n})", max(ours), max(floor), "ms", name),
    ]


def _pct(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100)[pct - 1] if pct < 100 else max(samples)


# -- backlog drain -------------------------------------------------------------


def _backlog(folder: Path, n: int, media: int, media_bytes: int, chunk: int) -> None:
    """Queue ``n`` events (and ``media`` files) as an outage would leave them."""
    from edge.outbox.store import Limits

    outbox = Outbox(folder / "box" / "outbox.sqlite", Limits(1_000_000, 2**34, chunk))
    outbox.open(0)
    now = int(time.time() * 1000) - 3_600_000
    events = []
    for i in range(n):
        condition = Condition.BURGLARY if i % 2 else Condition.FIRE
        restore = i % 4 >= 2
        events.append(
            Event(
                id=new_event_id(now + i),
                kind=codes.kind(condition, restore),
                condition=condition,
                codes=codes.codes(condition, restore),
                occurred_at_ms=now + i,
                partition=1,
                armed=True,
            )
        )
    outbox.put_many([(e, now) for e in events])
    for i in range(media):
        outbox.media.put(
            events[i].id, f"m{i}", "clip", "video/mp4", os.urandom(media_bytes), 0, now
        )
    outbox.close()


async def _drain(port: int, folder: Path, chunk: int, events: int, media: int) -> float:
    """Seconds until the station has acknowledged ``events`` events and ``media`` files.

    Timed on the forwarder's own counts (updated as each ack is applied), not on the
    status figures, which are refreshed at most every 0.1 s; the outbox is then
    checked empty in the database itself."""
    # Without the demo camera: its software H.264 encoding would take the same two
    # cores as the station and the broker, which in service run elsewhere.
    async with _running(port, folder, chunk, camera=False) as box:
        stats = box.forwarder.stats
        start = time.perf_counter()
        while stats.acked < events or stats.media_done < media:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - start
        await box.outbox._refresh()  # the figures, read now from the database
        left = (box.outbox.depth, box.outbox.media_count)
        if left != (0, 0):
            raise RuntimeError(f"outbox not empty after the drain: {left} (events, media)")
        return elapsed


def _raw_publish_rate(port: int, n: int, size: int) -> float:
    """Floor: plain paho QoS 1 publishes of ``size`` bytes, waiting for every PUBACK."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="floor-pub", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    _no_delay(client)
    client.loop_start()
    time.sleep(0.3)
    payload = os.urandom(size)
    start = time.perf_counter()
    infos = [client.publish("floor/rate", payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return n / elapsed


def drain(
    events: int = 10_000, media: int = 32, media_bytes: int = 5 * 1024 * 1024, runs: int = 3
) -> list[Row]:
    """10,000 events; 32 clips of 5 MiB (20 s of video at 2 Mbit/s each: 168 MB, long
    enough to time; the same volume for the floor). Ours and the floor
    alternate ``runs`` times on the same broker; each figure is the median of its runs."""
    chunk = 256 * 1024
    ev_ours: list[float] = []
    ev_floor: list[float] = []
    mb_ours: list[float] = []
    mb_floor: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as port:
        for run in range(runs):
            folder = Path(tmp) / f"e{run}"
            _backlog(folder, events, 0, 0, chunk)
            ev_ours.append(events / asyncio.run(_drain(port, folder, chunk, events, 0)))
            ev_floor.append(_raw_publish_rate(port, events, 600))
            folder = Path(tmp) / f"m{run}"
            _backlog(folder, media, media, media_bytes, chunk)
            mb_ours.append(
                media * media_bytes / 1e6 / asyncio.run(_drain(port, folder, chunk, media, media))
            )
            chunks = media * media_bytes // chunk
            mb_floor.append(_raw_publish_rate(port, chunks, chunk) * chunk / 1e6)
    return [
        (
            f"events drained ({events})",
            statistics.median(ev_ours),
            statistics.median(ev_floor),
            "ev/s",
            f"raw paho QoS1 600 B; median of {runs}; box without camera (bar: >= 5,000 ev/s)",
        ),
        (
            f"media drained ({media} x {media_bytes >> 20} MiB)",
            statistics.median(mb_ours),
            statistics.median(mb_floor),
            "MB/s",
            f"raw paho QoS1 256 KiB; median of {runs}; box without camera (bar: >= 25 %)",
        ),
    ]


CASES = [("alarm latency", latency), ("backlog drain", drain)]
