"""The page's live routes: the status and the inputs, pushed as Server-Sent Events.

Every page of the technician's site keeps ``/api/status/stream`` open: the header's
verdict, the box's name and the overview come from it, and the events page looks
at the journal again when its ``changes`` move. The inputs page and the walk test
keep ``/api/inputs/stream``, which sees an input's edge within ``INPUTS_POLL_S``.
A stream ends with the page's server, when the browser goes away, and when the
session it was opened with ends (logged out, idle, or 12 h after its login).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from edge.web.replies import dumps

if TYPE_CHECKING:
    from edge.web.hooks import Hooks
    from edge.web.server import WebServer

WHO = web.RequestKey("who", str)  # "session" or "token": how the request was let in
INPUTS_POLL_S = 0.02  # the inputs page sees an edge within this (plus the glitch filter)
STATUS_POLL_S = 0.5  # the header's verdict is at most this late
KEEPALIVE_S = 15.0
SESSION_COOKIE = "edge_session"


class LiveRoutes:
    server: WebServer
    hooks: Hooks

    async def status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.hooks.status(), dumps=dumps)

    def _inputs_now(self) -> dict[str, Any]:
        read = self.hooks.inputs or self.hooks.status
        return inputs_of(read())

    async def inputs(self, _request: web.Request) -> web.Response:
        return web.json_response(self._inputs_now(), dumps=dumps)

    async def inputs_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the zones and the walk test, sent whenever they change."""
        return await self._stream(request, lambda: dumps(self._inputs_now()), INPUTS_POLL_S)

    async def status_stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the status as ``/api/status`` gives it, whenever it changes
        (its verdict first of all), looked at every ``STATUS_POLL_S``."""
        return await self._stream(request, lambda: dumps(self.hooks.status()), STATUS_POLL_S)

    async def _stream(
        self, request: web.Request, read: Callable[[], str], poll_s: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        last, idle_s = "", 0.0
        closing = self.server.closing
        try:
            while not closing.is_set() and self._still_let_in(request):
                text = read()
                if text != last:
                    await response.write(f"data: {text}\n\n".encode())
                    last, idle_s = text, 0.0
                elif idle_s >= KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    idle_s = 0.0
                await asyncio.sleep(poll_s)
                idle_s += poll_s
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away
        return response

    def _still_let_in(self, request: web.Request) -> bool:
        """A stream opened with a session lives no longer than it (a stream alone does
        not keep a session alive: only the page's requests do)."""
        if request.get(WHO) != "session":
            return True
        sid = request.cookies.get(SESSION_COOKIE)
        return self.server.gate.sessions.peek(sid, self.server.now) is not None


def inputs_of(status: Mapping[str, Any]) -> dict[str, Any]:
    zones = status.get("zones", {})
    return {
        "zones": zones.get("zones", []),
        "armed": zones.get("armed", {}),
        "walktest": status.get("walktest", {"running": False}),
    }
