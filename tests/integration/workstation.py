"""A whole alarm chain for the workstation's tests: a real box on mock pins (the demo's
config, with its address and coordinates), a real mosquitto, the real receiver, and the
operator's page with its own MQTT link for snapshot and clip commands; the demo site
loaded (instructions, call list)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from edge import app
from edge.clock import SystemClock
from edge.config import parse
from edge.mqttio import LinkSettings
from edge.station import sites
from edge.station.commands import CommandLink
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import StationStore
from edge.station.web.server import OperatorPage
from tests.conftest import REPO, Broker, free_port
from tests.deskkit import PASSWORD, T0, operators
from tests.integration.test_end_to_end import RunningBox, demo_text
from tests.integration.test_station import until

DEVICE = "demo-box-01"
WHERE = 'address = "12 rue de la Paix, 75002 Paris"\nlatitude = 48.8686\nlongitude = 2.3314\n'


@dataclass
class Chain:
    box: app.Box
    receiver: Receiver
    store: StationStore
    page: OperatorPage
    base: str

    async def incident(self, timeout_s: float = 10.0) -> str:
        """The id of the one open incident, once there is one."""
        found: list[str] = []

        def one() -> bool:
            with self.store.read() as db:
                rows = db.execute("SELECT id FROM incidents WHERE closed_ms IS NULL").fetchall()
            found[:] = [str(r[0]) for r in rows]
            return len(found) == 1

        await until(one, "an open incident", timeout_s)
        return found[0]


def box_config(broker: Broker, where: str = WHERE) -> Any:
    text = demo_text(broker.port, free_port())
    marker = 'site = "Demo site (simulated panel)"\n'
    return parse(text.replace(marker, marker + where), "workstation.toml")


@contextlib.asynccontextmanager
async def chain(broker: Broker, tmp_path: Path, *, site: bool = True) -> AsyncIterator[Chain]:
    db = tmp_path / "station.sqlite"
    receiver = Receiver(StationSettings(broker.host, broker.port, db))
    connected = asyncio.Event()
    task = asyncio.create_task(receiver.run(connected.set), name="station")
    await asyncio.wait_for(connected.wait(), 10)
    store = StationStore(db)
    store.open()
    operators(store)
    if site:
        with store.transaction() as tx:
            for one in sites.parse_file(REPO / "config" / "demo-site.toml"):
                sites.put(tx, one, "sam", T0)
    settings = LinkSettings(broker.host, broker.port, f"station-page-{free_port()}")
    commands = CommandLink(settings, "edge", store, SystemClock())
    await commands.start()
    assert await commands.link.wait_connected(5)
    port = free_port()
    page = OperatorPage(store, "127.0.0.1", port, poll_s=0.05, commands=commands)
    await page.start()
    try:
        async with RunningBox(box_config(broker), tmp_path / "box") as box:
            await until(lambda: box.link.status.connected, "the box connected")
            await until(lambda: receiver.store.devices(), "the station to hear the box")
            yield Chain(box, receiver, store, page, f"http://127.0.0.1:{port}")
    finally:
        await page.stop()
        await commands.stop()
        store.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def logged_in(base: str, name: str = "alice") -> aiohttp.ClientSession:
    """A client logged in, sending the session's CSRF token with every request."""
    http = aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post("/api/login", json={"name": name, "password": PASSWORD}) as r:
        assert r.status == 200
        http.headers["X-CSRF-Token"] = (await r.json())["csrf"]
    return http
