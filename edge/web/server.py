"""The technician's local page and its JSON API (aiohttp). Reads status snapshots only."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger(__name__)

StatusFn = Callable[[], Mapping[str, Any]]
SimulateFn = Callable[[str, bool], None]
PulseFn = Callable[[str, int, float, float], Coroutine[Any, Any, None]]


class WalkControl(Protocol):
    def start_walk(self, duration_s: float) -> dict[str, Any]: ...

    def walk_status(self) -> dict[str, Any] | None: ...

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None: ...


MAX_PULSES = 100_000


class WebServer:
    """Serve the status page on ``host:port``. Construct, then ``await start()``."""

    def __init__(
        self,
        host: str,
        port: int,
        status: StatusFn,
        simulate: SimulateFn | None = None,
        pulses: PulseFn | None = None,
        walk: WalkControl | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._status = status
        self._simulate = simulate
        self._pulses = pulses
        self._walk = walk
        self._patterns: dict[str, asyncio.Task[None]] = {}
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/status", self._api_status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/api/sim/inputs/{name}", self._api_simulate)
        app.router.add_post("/api/sim/inputs/{name}/pulses", self._api_pulses)
        app.router.add_get("/api/walktest", self._api_walk_status)
        app.router.add_post("/api/walktest", self._api_walk_start)
        app.router.add_delete("/api/walktest", self._api_walk_stop)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("web page on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
        for task in self._patterns.values():
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, _request: web.Request) -> web.Response:
        page = resources.files("edge.web").joinpath("static/index.html").read_text("utf-8")
        return web.Response(text=page, content_type="text/html")

    async def _api_status(self, _request: web.Request) -> web.Response:
        return web.json_response(self._status(), dumps=_dumps)

    async def _healthz(self, _request: web.Request) -> web.Response:
        status = self._status()
        healthy = bool(status.get("healthy"))
        body = {"healthy": healthy, "problems": status.get("problems", {})}
        return web.json_response(body, status=200 if healthy else 503)

    async def _api_simulate(self, request: web.Request) -> web.Response:
        if self._simulate is None:
            return _error(404, "inputs are simulated only with gpio.backend = 'mock'")
        name = request.match_info["name"]
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError, LookupError):  # LookupError: charset
            return _error(400, 'body must be JSON: {"active": true|false}')
        active = body.get("active") if isinstance(body, dict) else None
        if not isinstance(active, bool):
            return _error(400, 'body must be JSON: {"active": true|false}')
        try:
            self._simulate(name, active)
        except KeyError:
            return _error(404, f"no input named {name!r}")
        return web.json_response({"input": name, "active": active})

    async def _api_pulses(self, request: web.Request) -> web.Response:
        """Start a pulse train on a simulated input: {"count", "on_ms", "off_ms"}."""
        usage = 'body must be JSON: {"count": 1..100000, "on_ms": >0, "off_ms": >0}'
        if self._pulses is None:
            return _error(404, "inputs are simulated only with gpio.backend = 'mock'")
        name = request.match_info["name"]
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError, LookupError):
            return _error(400, usage)
        if not isinstance(body, dict) or set(body) != {"count", "on_ms", "off_ms"}:
            return _error(400, usage)
        count, on_ms, off_ms = body["count"], body["on_ms"], body["off_ms"]
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (on_ms, off_ms)
        )
        whole = isinstance(count, int) and not isinstance(count, bool)
        if not (whole and 1 <= count <= MAX_PULSES and numbers):
            return _error(400, usage)
        if on_ms <= 0 or off_ms <= 0:
            return _error(400, usage)
        running = self._patterns.get(name)
        if running is not None and not running.done():
            return _error(409, f"input {name!r} is already pulsing")
        try:
            coro = self._pulses(name, count, float(on_ms), float(off_ms))
        except KeyError:
            return _error(404, f"no input named {name!r}")
        self._patterns[name] = asyncio.create_task(coro, name=f"sim.pulses.{name}")
        return web.json_response({"input": name, "count": count}, status=202)

    async def _api_walk_status(self, _request: web.Request) -> web.Response:
        if self._walk is None:
            return _error(404, "no walk test on this box")
        return web.json_response({"running": self._walk.walk_status()})

    async def _api_walk_start(self, request: web.Request) -> web.Response:
        usage = 'body must be JSON: {"minutes": 1..240}'
        if self._walk is None:
            return _error(404, "no walk test on this box")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError, LookupError):
            return _error(400, usage)
        minutes = body.get("minutes") if isinstance(body, dict) else None
        if not isinstance(minutes, int | float) or isinstance(minutes, bool):
            return _error(400, usage)
        if not 0 < minutes <= 240:
            return _error(400, usage)
        try:
            running = self._walk.start_walk(float(minutes) * 60)
        except ValueError as exc:
            return _error(409, str(exc))
        return web.json_response({"running": running}, status=201)

    async def _api_walk_stop(self, _request: web.Request) -> web.Response:
        if self._walk is None:
            return _error(404, "no walk test on this box")
        summary = await self._walk.stop_walk()
        if summary is None:
            return _error(409, "no walk test is running")
        return web.json_response({"summary": summary})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
