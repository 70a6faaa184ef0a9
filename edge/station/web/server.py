"""The operator's workstation (aiohttp): the queue of incidents, each one's handling, the
main courante, the sites; pushed live to every open page.

Login required (:mod:`edge.station.web.gate`: operators in the store with a
role, sessions that expire, the CSRF token and Origin check on every state
change, a lockout that survives a restart; state-changing requests must be
JSON, which a cross-site form cannot send). The page is static files (HTML,
script and style from this package, no inline script: a strict
Content-Security-Policy) and its words come from ``/i18n/<lang>.json``. What
changes is pushed over Server-Sent Events (:mod:`edge.station.web.feed`); the
API is in :mod:`edge.station.web.desk`, the courante's exports in
:mod:`edge.station.web.exports`. Every still or clip served is written to the
access log, and once per operator and media to the main courante.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from edge import i18n
from edge.clock import Clock, SystemClock, ms
from edge.errors import EdgeError
from edge.station import incidents, oplog
from edge.station.commands import CommandLink
from edge.station.store import StationStore
from edge.station.web import feed
from edge.station.web.desk import Desk
from edge.station.web.exports import Exports
from edge.station.web.gate import OPERATOR, ROLE, SESSION_ID, Gate, Security

log = logging.getLogger(__name__)

STATIC = ("operator.js", "detail.js", "admin.js", "operator.css", "courante.js", "courante.css")
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
MEDIA_VIEW_AGAIN_S = 600.0  # a media viewed again after this long is a new courante line
ESCALATE_S = 60.0
SHIFT_HOURS = (6, 14, 22)


class OperatorPage:
    """Construct (no I/O); ``await start()`` with the store open; ``await stop()``.

    ``commands``: the link that sends snapshot and clip commands to the boxes (None:
    the page says it cannot ask a box for fresh video)."""

    def __init__(
        self,
        store: StationStore,
        host: str = "127.0.0.1",
        port: int = 8090,
        clock: Clock | None = None,
        poll_s: float = 0.05,
        security: Security | None = None,
        escalate_s: float = ESCALATE_S,
        commands: CommandLink | None = None,
        shift_hours: Sequence[int] = SHIFT_HOURS,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.clock = clock or SystemClock()
        self.keepalive_s = 15.0  # an open stream also checks its session this often
        self.gate = Gate(store, self.clock, security or Security())
        self.feed = feed.Feed(store, self.clock, poll_s, escalate_s)
        self.desk = Desk(store, self.clock, self.gate, escalate_s, commands)
        self.exports = Exports(store, self.clock, shift_hours)
        self.commands = commands
        self._viewed: dict[tuple[str, str, str, str], float] = {}
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        gate = self.gate
        app = web.Application(middlewares=[gate.headers, gate.guard])
        static = resources.files("edge.station.web") / "static"
        files = {
            name: (static / name).read_text()
            for name in (*STATIC, "operator.html", "courante.html", "login.html")
        }

        def page(name: str) -> web.Response:
            response = web.Response(text=files[name], content_type="text/html")
            response.headers["Content-Security-Policy"] = PAGE_CSP
            return response

        async def index(_r: web.Request) -> web.Response:
            return page("operator.html")

        async def printable(_r: web.Request) -> web.Response:
            return page("courante.html")

        async def login_page(_r: web.Request) -> web.Response:
            return web.Response(text=files["login.html"], content_type="text/html")

        async def asset(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in STATIC:
                raise web.HTTPNotFound(text="no such file")
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            return web.Response(text=files[name], content_type=kind)

        async def i18n_words(request: web.Request) -> web.Response:
            lang = request.match_info["lang"]
            if lang not in i18n.LANGS:
                raise web.HTTPNotFound(text=f"no words in {lang!r}")
            return web.json_response(i18n.bundle(lang), headers={"Cache-Control": "no-cache"})

        async def i18n_script(_r: web.Request) -> web.Response:
            return web.Response(text=i18n.script(), content_type="text/javascript")

        app.router.add_get("/", index)
        app.router.add_get("/events/{event_id}", index)  # the DC-09 video reference
        app.router.add_get("/courante", printable)
        app.router.add_get("/static/{name}", asset)
        app.router.add_get("/login", login_page)
        app.router.add_get("/i18n/i18n.js", i18n_script)
        app.router.add_get("/i18n/{lang}.json", i18n_words)
        app.router.add_post("/api/login", gate.login)
        app.router.add_post("/api/logout", gate.logout)
        app.router.add_get("/api/session", self.session)
        app.router.add_get("/api/operators", gate.needs("supervisor", self.operators))
        app.router.add_get("/api/colleagues", self.colleagues)
        app.router.add_get("/api/devices", self.devices)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_get("/media/{device}/{media_id}", self.media)
        self.desk.routes(app)
        self.exports.routes(app)
        return app

    async def start(self) -> None:
        await self.gate.load()
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.feed.start()
        log.info("operator workstation on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
        await self.feed.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- who ----------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        """Who the page is, its CSRF token, and the workstation's settings."""
        found = self.gate.sessions.peek(request[SESSION_ID], self.clock.monotonic())
        return web.json_response(
            {
                "operator": request[OPERATOR],
                "role": request[ROLE],
                "csrf": None if found is None else found.csrf,
                "escalate_s": self.feed.escalate_s,
                "commands": self.commands is not None,
            }
        )

    async def operators(self, _r: web.Request) -> web.Response:
        """Every operator with their role, and who is logged in now (supervisors only)."""
        accounts = await asyncio.to_thread(self._call, oplog.operators)
        return web.json_response({"operators": accounts, "logged_in": self.gate.logged_in()})

    async def colleagues(self, _r: web.Request) -> web.Response:
        """Every operator's name and role: whom an incident may be transferred to."""
        return web.json_response(
            {"operators": await asyncio.to_thread(self._call, oplog.operators)}
        )

    async def devices(self, _r: web.Request) -> web.Response:
        now = ms(self.clock.time())
        rows = await asyncio.to_thread(self.store.device_status, now)
        return web.json_response(rows)

    # -- live ---------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the incidents that changed, as they change. ``since``: also
        what changed after that version first."""
        since = request.query.get("since")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.headers["Cache-Control"] = "no-store"
        await response.prepare(request)
        queue: asyncio.Queue[feed.Push] = asyncio.Queue(maxsize=100)
        self.feed.listeners.add(queue)
        sid = request[SESSION_ID]
        try:
            await response.write(b": hello\n\n")
            if since is not None and since.isdigit() and int(since) < self.feed.version:
                await feed.write(response, await asyncio.to_thread(self.feed.changes, int(since)))
            while True:
                try:
                    changes = await asyncio.wait_for(queue.get(), self.keepalive_s)
                except TimeoutError:
                    changes = {}
                if changes is None:  # the page is stopping
                    break
                if self.gate.sessions.peek(sid, self.clock.monotonic()) is None:
                    break  # logged out or expired: nothing more for this stream
                if not changes:
                    await response.write(b": keep-alive\n\n")
                    continue
                await feed.write(response, changes)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.feed.listeners.discard(queue)
        return response

    # -- media ----------------------------------------------------------------------

    async def media(self, request: web.Request) -> web.StreamResponse:
        """A still or clip; ``incident``: the one it is viewed for (the courante says so)."""
        device, media_id = request.match_info["device"], request.match_info["media_id"]
        files = await asyncio.to_thread(self.store.media, None, device, media_id)
        if not files:
            raise web.HTTPNotFound(text="no such media")
        operator, now = request[OPERATOR], ms(self.clock.time())
        await asyncio.to_thread(
            self._call, oplog.log_access, operator, now, device, media_id, request.remote or "-"
        )
        incident_id = request.query.get("incident")
        if incident_id and self._first_view(request[SESSION_ID], incident_id, device, media_id):
            try:
                await asyncio.to_thread(
                    self._call,
                    incidents.act,
                    incident_id,
                    operator,
                    request[ROLE],
                    "media_view",
                    {"device": device, "media_id": media_id, "kind": files[0].kind},
                    now,
                )
            except EdgeError:  # no such incident: the file is served all the same
                log.warning("media %s viewed for unknown incident %s", media_id, incident_id)
        return web.FileResponse(files[0].path, headers={"Content-Type": files[0].content_type})

    def _first_view(self, sid: str, incident_id: str, device: str, media_id: str) -> bool:
        """Once per session and media within ``MEDIA_VIEW_AGAIN_S`` (a clip is fetched
        in many ranges)."""
        now = self.clock.monotonic()
        if len(self._viewed) > 10_000:
            self._viewed = {k: t for k, t in self._viewed.items() if now - t < MEDIA_VIEW_AGAIN_S}
        key = (sid, incident_id, device, media_id)
        seen = self._viewed.get(key)
        if seen is not None and now - seen < MEDIA_VIEW_AGAIN_S:
            return False
        self._viewed[key] = now
        return True

    def _call(self, fn: Any, *args: Any) -> Any:
        with self.store.transaction() as db:
            return fn(db, *args)


async def serve(
    store: StationStore,
    host: str,
    port: int,
    security: Security | None = None,
    *,
    escalate_s: float = ESCALATE_S,
    commands: CommandLink | None = None,
    shift_hours: Sequence[int] = SHIFT_HOURS,
) -> None:
    """Run the page until cancelled (``edge station page``)."""
    page = OperatorPage(
        store,
        host,
        port,
        security=security,
        escalate_s=escalate_s,
        commands=commands,
        shift_hours=shift_hours,
    )
    if commands is not None:
        await commands.start()
    try:
        try:
            await page.start()
        except OSError as exc:
            raise EdgeError(f"operator page cannot listen on {host}:{port}: {exc}") from exc
        try:
            await asyncio.Event().wait()
        finally:
            await page.stop()
    finally:
        if commands is not None:
            await commands.stop()
