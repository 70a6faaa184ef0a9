"""Two transmission paths: failover time and the cost of a second route on alarm latency.

Everything real: two mosquitto brokers, one station receiver per broker on one
store, the box in this process on mock pins. The primary broker sits behind a
veth pair in a network namespace of its own (:mod:`tests.netpath`, needs root):
a cut takes the pair down, as a pulled cable does. Without namespaces the primary
broker is stopped with SIGSTOP instead (the box sees the same silence: no reset,
no answer) and the table says so.

- Failover: the primary cut, a fire tripped; the time until the backup route has it
  acknowledged, against ``[delivery] failover_s`` (the floor: what the policy waits).
  The primary's keepalive is long, so the box does not yet know the path is down:
  what is measured is the failover timer, the common case of a silent path.
  ``EDGE_BENCH_CUTS`` sets the number of cuts (100).
- Latency: a fire acknowledged with one route, against the same box with a backup
  route (``done_when = "first"``: the backup waits, unused, its bookkeeping is the
  cost) and with ``done_when = "every"`` (acknowledged on both routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from edge import app
from edge.config import parse
from tests import netpath
from tests.bench.bench_uplink import REPO, Row, _broker, _config, _free_port, _pct
from tests.integration.test_end_to_end import without_video

FAILOVER_S = 2
ALARMS = 500


class Stopped:
    """The SIGSTOP fallback: a loopback broker frozen and thawed."""

    def __init__(self, port: int, pid: int) -> None:
        self.url = f"mqtt://127.0.0.1:{port}"
        self.pid = pid

    def cut(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def mend(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def _primary(folder: Path) -> Iterator[tuple[object, str]]:
    """(the path with cut() and mend(), how it is cut)."""
    try:
        with netpath.cut_path(folder, "max_inflight_messages 100\nset_tcp_nodelay true") as path:
            yield path, "veth down"
            return
    except netpath.Unavailable:
        pass
    port = _free_port()
    conf = folder / "primary.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield Stopped(port, proc.pid), "broker SIGSTOP"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def _receivers(folder: Path, *urls: str) -> Iterator[None]:
    db = folder / "station.sqlite"
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "edge", "station", "run", "--broker", url),
                *("--db", str(db), "--client-id", f"bench-receiver-{n}", "--log-level", "WARNING"),
            ],
            cwd=REPO,
        )
        for n, url in enumerate(urls)
    ]
    try:
        time.sleep(1.5)  # subscribed before the box sends
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def _text(primary_url: str, backup_port: int | None, done_when: str = "first") -> str:
    text = without_video(_config(0))
    text = text.replace('broker = "mqtt://127.0.0.1:0"', f'broker = "{primary_url}"')
    text = text.replace("ack_timeout_s = 30", "ack_timeout_s = 30\nkeepalive_s = 600")
    if backup_port is None:
        return text
    return (
        text
        + f"""
[[routes]]
name = "4g"
type = "mqtt"
broker = "mqtt://127.0.0.1:{backup_port}"
path_loss_s = 600

[delivery]
failover_s = {FAILOVER_S}
done_when = "{done_when}"
"""
    )


@contextlib.asynccontextmanager
async def _box(text: str, folder: Path) -> AsyncIterator[app.Box]:
    stop, ready = asyncio.Event(), asyncio.Event()
    boxes: list[app.Box] = []

    def on_ready(box: app.Box) -> None:
        boxes.append(box)
        ready.set()

    task = asyncio.create_task(
        app.run(parse(text, "bench.toml"), folder, stop=stop, ready=on_ready)
    )
    await asyncio.wait_for(ready.wait(), 20)
    box = boxes[0]
    await box.link.wait_connected(10)
    for route in box.routes.mqtt:
        await route.link.wait_connected(10)
    try:
        yield box
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.002)


# -- failover ----------------------------------------------------------------------


async def _failovers(path: object, backup_port: int, folder: Path, cuts: int) -> list[float]:
    cut, mend = path.cut, path.mend  # type: ignore[attr-defined]
    async with _box(_text(path.url, backup_port), folder / "box") as box:  # type: ignore[attr-defined]
        backup = box.routes.mqtt[0].forwarder
        samples = []
        for n in range(cuts):
            before = backup.stats.acked
            cut()
            start = time.perf_counter()
            box.inputs.simulate("in3", True)
            await _until(
                lambda b=before: backup.stats.acked > b,  # type: ignore[misc]
                FAILOVER_S + 30,
                f"cut {n}",
            )
            samples.append((time.perf_counter() - start) * 1000)
            mend()
            box.inputs.simulate("in3", False)  # over the primary once it is answered again
            await _until(lambda: box.outbox.depth == 0, 60, f"mend {n}")
        return samples


def failover() -> list[Row]:
    cuts = int(os.environ.get("EDGE_BENCH_CUTS", "100"))
    with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as backup_port:
        folder = Path(tmp)
        with (
            _primary(folder) as (path, how),
            _receivers(folder, path.url, f"mqtt://127.0.0.1:{backup_port}"),  # type: ignore[attr-defined]
        ):
            ours = asyncio.run(_failovers(path, backup_port, folder, cuts))
    floor = FAILOVER_S * 1000.0
    name = f"failover_s ({how})"
    return [
        (f"failover p50 ({cuts} cuts)", _pct(ours, 50), floor, "ms", name),
        (f"failover p99 ({cuts} cuts)", _pct(ours, 99), floor, "ms", name),
        (f"failover max ({cuts} cuts)", max(ours), floor, "ms", name),
    ]


# -- a second route's cost on the alarm latency -------------------------------------


async def _latencies(text: str, folder: Path, n: int) -> list[float]:
    async with _box(text, folder) as box:
        forwarders = [box.forwarder, *(m.forwarder for m in box.routes.mqtt)]
        every = box.routes.policy.every is not None
        watched = forwarders if every else forwarders[:1]
        samples = []
        for _ in range(n):
            for active in (True, False):
                before = [f.stats.acked for f in watched]
                start = time.perf_counter()
                box.inputs.simulate("in3", active)  # the fire panel: a 24-hour zone
                await _until(
                    lambda b=before: all(  # type: ignore[misc]
                        f.stats.acked > a for f, a in zip(watched, b, strict=True)
                    ),
                    30,
                    "an acknowledgement",
                )
                if active:
                    samples.append((time.perf_counter() - start) * 1000)
        return samples


def latency(n: int = ALARMS) -> list[Row]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        _broker(Path(tmp)) as primary,
        _broker(Path(tmp)) as backup,
    ):
        folder = Path(tmp)
        url = f"mqtt://127.0.0.1:{primary}"
        with _receivers(folder, url, f"mqtt://127.0.0.1:{backup}"):
            one = asyncio.run(_latencies(_text(url, None), folder / "one", n))
            two = asyncio.run(_latencies(_text(url, backup), folder / "two", n))
            every = asyncio.run(_latencies(_text(url, backup, "every"), folder / "every", n))
    name = "one route (the same box)"
    return [
        (f"alarm p50 2 routes ({n})", _pct(two, 50), _pct(one, 50), "ms", name),
        (f"alarm p99 2 routes ({n})", _pct(two, 99), _pct(one, 99), "ms", name),
        (f"alarm p50 every ({n})", _pct(every, 50), _pct(one, 50), "ms", name),
        (f"alarm p99 every ({n})", _pct(every, 99), _pct(one, 99), "ms", name),
    ]


CASES = [("routes failover", failover), ("routes latency", latency)]
