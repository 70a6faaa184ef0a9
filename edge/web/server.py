"""The technician's local page and its JSON API (aiohttp). Reads status snapshots only."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

StatusFn = Callable[[], Mapping[str, Any]]
SimulateFn = Callable[[str, bool], None]


class WebServer:
    """Serve the status page on ``host:port``. Construct, then ``await start()``."""

    def __init__(
        self, host: str, port: int, status: StatusFn, simulate: SimulateFn | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._status = status
        self._simulate = simulate
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/api/status", self._api_status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/api/sim/inputs/{name}", self._api_simulate)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("web page on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
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


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
