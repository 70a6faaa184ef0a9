"""The technician page's API: status requests per second, and pin-to-page latency.

Throughput: the whole box in this process (mock pins, no broker), 8 clients
asking ``/api/status`` with the bearer token for 2 s. Floor: the same aiohttp
answering a constant JSON body of the same size with no middleware.

Latency: a mock-pin edge until the Server-Sent Event that carries it reaches
a client (what a technician sees on the inputs page). Floor: the same edge
until ``/api/inputs`` shows it to a client polling as fast as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from edge import app
from edge.config import parse

REPO = Path(__file__).resolve().parents[2]
TOKEN = "demo-api-token-for-simulated-boxes-only"  # config/demo.toml
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Row = tuple[str, float, float, str, str]
CLIENTS, SECONDS, EDGES, SETTLE_S = 8, 2.0, 40, 3.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _box(folder: Path, web_port: int) -> AsyncIterator[app.Box]:
    text = (REPO / "config" / "demo.toml").read_text().replace("port = 8080", f"port = {web_port}")
    text = text.replace("127.0.0.1:18830", f"127.0.0.1:{_free_port()}")
    stop, ready, boxes = asyncio.Event(), asyncio.Event(), []

    def on_ready(box: app.Box) -> None:
        boxes.append(box)
        ready.set()

    task = asyncio.create_task(
        app.run(parse(text, "bench.toml"), folder, stop=stop, ready=on_ready)
    )
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield boxes[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def _rate(url: str, headers: dict[str, str]) -> float:
    """Requests answered per second by ``CLIENTS`` clients in ``SECONDS``."""
    done = 0
    async with aiohttp.ClientSession(headers=headers) as http:
        end = time.perf_counter() + SECONDS

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with http.get(url) as r:
                    await r.read()
                    assert r.status == 200
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return done / (time.perf_counter() - started)


async def _bare_rate(body: bytes) -> float:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    bare = web.Application()
    bare.router.add_get("/", handler)
    runner = web.AppRunner(bare, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return await _rate(f"http://127.0.0.1:{port}/", {})
    finally:
        await runner.cleanup()


def _front_door(zones: dict[str, object]) -> bool:
    found = [z for z in zones["zones"] if z["id"] == "front-door"]  # type: ignore[index, attr-defined]
    return bool(found[0]["active"])


async def _latencies(box: app.Box, seen: Callable[[bool], Awaitable[None]]) -> list[float]:
    out, rng = [], random.Random(8)
    for n in range(EDGES):
        level = n % 2 == 0
        await asyncio.sleep(rng.uniform(0, 0.05))  # edges at no fixed phase to the stream
        started = time.perf_counter()
        box.inputs.simulate("in1", level)
        await asyncio.wait_for(seen(level), 5)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def _sse_latency(box: app.Box, base: str) -> list[float]:
    async with (
        aiohttp.ClientSession(headers=AUTH) as http,
        http.get(base + "/api/inputs/stream") as r,
    ):

        async def seen(level: bool) -> None:
            async for line in r.content:
                if line.startswith(b"data: ") and _front_door(json.loads(line[6:])) is level:
                    return

        return await _latencies(box, seen)


async def _poll_latency(box: app.Box, base: str) -> list[float]:
    async with aiohttp.ClientSession(headers=AUTH) as http:

        async def seen(level: bool) -> None:
            while True:
                async with http.get(base + "/api/inputs") as r:
                    if _front_door(await r.json()) is level:
                        return

        return await _latencies(box, seen)


async def _measure() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        async with _box(Path(tmp), port) as box:
            await asyncio.sleep(SETTLE_S)  # past the cameras' start and motion calibration
            async with (
                aiohttp.ClientSession(headers=AUTH) as http,
                http.get(base + "/api/status") as r,
            ):
                body = await r.read()
            ours = await _rate(base + "/api/status", AUTH)
            floor = await _bare_rate(body)
            sse = await _sse_latency(box, base)
            poll = await _poll_latency(box, base)
    q = statistics.quantiles
    return [
        ("/api/status", ours, floor, "req/s", "bare aiohttp, same body"),
        ("pin -> SSE p50", q(sse, n=100)[49], q(poll, n=100)[49], "ms", "busy-polling /api/inputs"),
        ("pin -> SSE p99", q(sse, n=100)[98], q(poll, n=100)[98], "ms", "busy-polling /api/inputs"),
    ]


def web_api() -> list[Row]:
    return asyncio.run(_measure())


CASES = [("web: status and inputs", web_api)]
