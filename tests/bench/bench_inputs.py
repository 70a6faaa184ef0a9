"""From a mock-pin edge to the event committed in the outbox, and the zone
state machine's own rate on one core.

Latency: the whole box in this process on gpiozero's mock pins, a fire zone
with no glitch filter, restore delay or hold (so every edge is an event), no
broker (the uplink plays no part in the commit) and no camera (5,000 alarms
would each make a clip and five stills on the same two cores: that load is
tests/integration/test_stop.py's). Floor: a bare SQLite WAL FULL commit of one
row, the least a durable event can cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from edge import app
from edge.codes import ZoneType
from edge.config import parse
from edge.config.schema import ZoneConfig
from edge.inputs.zones import PanelState, step
from edge.model import EventsQueued, ZoneChanged
from tests.integration.test_end_to_end import without_video

REPO = Path(__file__).resolve().parents[2]
Row = tuple[str, float, float, str, str]
RAW = "glitch_ms = 0\nrestore_ms = 0\nhold_s = 0\n"


def _config(web_port: int, dead_port: int) -> str:
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace(
        'broker = "mqtt://127.0.0.1:18830"', f'broker = "mqtt://127.0.0.1:{dead_port}"'
    )
    text = text.replace('id = "fire"\n', 'id = "fire"\n' + RAW, 1)
    return without_video(text.replace("port = 8080", f"port = {web_port}"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _box(folder: Path) -> AsyncIterator[app.Box]:
    stop, ready = asyncio.Event(), asyncio.Event()
    boxes: list[app.Box] = []

    def on_ready(box: app.Box) -> None:
        boxes.append(box)
        ready.set()

    cfg = parse(_config(_free_port(), _free_port()), "bench.toml")
    task = asyncio.create_task(app.run(cfg, folder, stop=stop, ready=on_ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield boxes[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _edge_to_commit(folder: Path, n: int) -> list[float]:
    async with _box(folder) as box:
        stored = asyncio.Event()

        def queued(fact: object) -> None:
            if isinstance(fact, EventsQueued):
                stored.set()

        box.outbox.observers.append(queued)  # told on the loop, right after the commit
        samples = []
        for i in range(n):
            stored.clear()
            start = time.perf_counter()
            box.inputs.simulate("in3", i % 2 == 0)  # alarm, restore, alarm, ...
            await asyncio.wait_for(stored.wait(), 5)
            samples.append((time.perf_counter() - start) * 1000)
        return samples


def _bare_commits(folder: Path, n: int) -> list[float]:
    db = sqlite3.connect(folder / "bare.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    samples = []
    for i in range(n):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 400))
        db.execute("COMMIT")
        samples.append((time.perf_counter() - start) * 1000)
    db.close()
    return samples


def edge_to_commit(n: int = 10_000) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        ours = asyncio.run(_edge_to_commit(Path(tmp) / "box", n))
        floor = _bare_commits(Path(tmp), n)
    q, f = statistics.quantiles(ours, n=100), statistics.quantiles(floor, n=100)
    name = "bare SQLite WAL FULL commit (bar: p99 <= 5 ms)"
    return [
        (f"p50 ({n} edges)", q[49], f[49], "ms", name),
        (f"p99 ({n} edges)", q[98], f[98], "ms", name),
    ]


def state_machine(n: int = 200_000) -> list[Row]:
    """Edges through the pure reducer alone, one core, no I/O."""
    zones = {
        "fire": ZoneConfig(
            id="fire",
            name="Fire",
            type=ZoneType.FIRE,
            number=1,
            glitch_ms=0,
            restore_ms=0,
            hold_s=0,
        )
    }
    changes = [ZoneChanged("in", "fire", i % 2 == 0, i / 1000, i) for i in range(n)]
    state = PanelState()
    events = 0
    start = time.perf_counter()
    for change in changes:
        state, out = step(state, change, zones, str)
        events += len(out)
    elapsed = time.perf_counter() - start
    assert events == n  # every edge of an unfiltered zone is an event
    load = 8 * 1000.0  # the worst load the box must take: 8 inputs chattering at 1 kHz
    return [("edges/s through step()", n / elapsed, load, "1/s", "8 inputs chattering at 1 kHz")]


CASES = [("inputs: edge to commit", edge_to_commit), ("inputs: state machine", state_machine)]
