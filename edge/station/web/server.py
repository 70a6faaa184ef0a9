"""The operator page (aiohttp): alarms as they land, each with its stills, clip and evidence.

Login required (:mod:`edge.station.web.gate`: operators in the store with a
role, sessions that expire, the CSRF token and Origin check on every state
change, a lockout that survives a restart; state-changing requests must be
JSON, which a cross-site form cannot send). One poller reads the store every
``poll_s`` and pushes new events to every open page over Server-Sent Events,
so alarms stored by any receiver sharing the store appear without reload.
Every still or clip served is written to the access log (operator, time,
media, address); every acknowledgement and comment to the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from importlib import resources
from typing import Any

from aiohttp import web

from edge import i18n
from edge.clock import Clock, SystemClock, ms
from edge.errors import EdgeError, StorageError
from edge.station import oplog
from edge.station.queries import StoredRow
from edge.station.sql import Db
from edge.station.store import StationStore
from edge.station.web.gate import OPERATOR, SESSION_ID, Gate, Security, json_body

log = logging.getLogger(__name__)

MAX_COMMENT = 2_000


def priority(row: StoredRow) -> int:
    """1 (fire, panic, hold-up) to 4 (tests, arm/disarm, restores, motion): the list's colour."""
    if row.kind == "alarm":
        return 1 if row.sia[:1] in ("F", "P", "H") else 2
    if row.kind == "tamper":
        return 2
    return 3 if row.kind == "trouble" else 4


def _row(row: StoredRow, acked: set[str]) -> dict[str, Any]:
    return {**asdict(row), "priority": priority(row), "acked": row.id in acked}


def _offsets(body: dict[str, Any]) -> dict[str, float]:
    """Still id -> seconds from the alarm, from the event's ``extra`` (when the box says)."""
    extra = body.get("extra") or {}
    ids = str(extra.get("still_ids", "")).split()
    try:
        offsets = [float(v) for v in str(extra.get("still_offsets_s", "")).split()]
    except ValueError:
        return {}
    return dict(zip(ids, offsets, strict=False))


class OperatorPage:
    """Construct (no I/O); ``await start()`` with the store open; ``await stop()``."""

    def __init__(
        self,
        store: StationStore,
        host: str = "127.0.0.1",
        port: int = 8090,
        clock: Clock | None = None,
        poll_s: float = 0.3,
        security: Security | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.clock = clock or SystemClock()
        self.poll_s = poll_s
        self.keepalive_s = 15.0  # an open stream also checks its session this often
        self.gate = Gate(store, self.clock, security or Security())
        self._listeners: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        gate = self.gate
        app = web.Application(middlewares=[gate.headers, gate.guard])
        static = resources.files("edge.station.web") / "static"
        page = (static / "operator.html").read_text()
        login = (static / "login.html").read_text()

        async def index(_r: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        async def login_page(_r: web.Request) -> web.Response:
            return web.Response(text=login, content_type="text/html")

        async def i18n_words(request: web.Request) -> web.Response:
            lang = request.match_info["lang"]
            if lang not in i18n.LANGS:
                raise web.HTTPNotFound(text=f"no words in {lang!r}")
            return web.json_response(i18n.bundle(lang), headers={"Cache-Control": "no-cache"})

        async def i18n_script(_r: web.Request) -> web.Response:
            return web.Response(text=i18n.script(), content_type="text/javascript")

        app.router.add_get("/", index)
        app.router.add_get("/events/{event_id}", index)  # the DC-09 video reference
        app.router.add_get("/login", login_page)
        app.router.add_get("/i18n/i18n.js", i18n_script)
        app.router.add_get("/i18n/{lang}.json", i18n_words)
        app.router.add_post("/api/login", gate.login)
        app.router.add_post("/api/logout", gate.logout)
        app.router.add_get("/api/session", gate.session)
        app.router.add_get("/api/operators", gate.needs("supervisor", self.operators))
        app.router.add_get("/api/alarms", self.alarms)
        app.router.add_get("/api/devices", self.devices)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_get("/api/events/{event_id}", self.event)
        app.router.add_post("/api/events/{event_id}/log", self.act)
        app.router.add_get("/media/{device}/{media_id}", self.media)
        return app

    async def start(self) -> None:
        await self.gate.load()
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self._poller = asyncio.create_task(self._poll(), name="operator-page.poll")
        log.info("operator page on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):  # then cleanup's timeout ends it
                queue.put_nowait(None)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._runner is not None:
            await self._runner.cleanup()

    # -- supervisors --------------------------------------------------------------

    async def operators(self, _r: web.Request) -> web.Response:
        """Every operator with their role, and who is logged in now (supervisors only)."""
        accounts = await asyncio.to_thread(self._call, oplog.operators)
        return web.json_response({"operators": accounts, "logged_in": self.gate.logged_in()})

    # -- the list, live ---------------------------------------------------------

    async def alarms(self, request: web.Request) -> web.Response:
        limit = _int(request.query.get("limit", "100"), "limit", 1, 1000)
        return web.json_response(await asyncio.to_thread(self._latest, limit))

    async def devices(self, _r: web.Request) -> web.Response:
        now = ms(self.clock.time())
        rows = await asyncio.to_thread(self.store.device_status, now)
        return web.json_response(rows)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.headers["Cache-Control"] = "no-store"
        await response.prepare(request)
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=100)
        self._listeners.add(queue)
        sid = request[SESSION_ID]
        try:
            await response.write(b": hello\n\n")
            while True:
                try:
                    rows = await asyncio.wait_for(queue.get(), self.keepalive_s)
                except TimeoutError:
                    rows = []
                if rows is None:  # the page is stopping
                    break
                if self.gate.sessions.peek(sid, self.clock.monotonic()) is None:
                    break  # logged out or expired: nothing more for this stream
                if not rows:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(f"data: {json.dumps(rows)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._listeners.discard(queue)
        return response

    async def _poll(self) -> None:
        seen: set[str] | None = None
        while True:
            try:
                rows = await asyncio.to_thread(self._latest, 50)
            except StorageError:
                log.exception("operator page cannot read the store; retrying")
                rows = []
            fresh = [r for r in rows if seen is not None and r["id"] not in seen]
            seen = (seen or set()) | {r["id"] for r in rows}
            if fresh:
                for queue in list(self._listeners):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(fresh)
            await asyncio.sleep(self.poll_s)

    def _latest(self, limit: int) -> list[dict[str, Any]]:
        rows = self.store.events(limit=limit)
        acked = self._call(oplog.acknowledged, [r.id for r in rows])
        return [_row(r, acked) for r in rows]

    # -- one event --------------------------------------------------------------

    async def event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        found = await asyncio.to_thread(self._event, event_id)
        if found is None:
            raise web.HTTPNotFound(text=f"no event {event_id}")
        return web.json_response(found)

    def _event(self, event_id: str) -> dict[str, Any] | None:
        body = self.store.body(event_id)
        rows = self.store.events(event_id=event_id, limit=1)
        if body is None or not rows:
            return None
        row = rows[0]
        offsets = _offsets(body)
        media = [
            {
                "media_id": m.media_id,
                "kind": m.kind,
                "content_type": m.content_type,
                "size": m.size,
                "url": f"/media/{m.device}/{m.media_id}",
                "offset_s": offsets.get(m.media_id),
            }
            for m in self.store.media(event_id, row.device)
        ]
        media.sort(key=lambda m: (m["kind"] != "still", m["offset_s"] or 0, m["media_id"]))
        device = next(
            (
                d
                for d in self.store.device_status(ms(self.clock.time()))
                if d["device"] == row.device
            ),
            None,
        )
        account = self._call(_account, event_id)
        return {
            "event": body,
            "site": {"device": row.device, "account": account},
            "row": _row(row, self._call(oplog.acknowledged, [event_id])),
            "media": media,
            "lost": self.store.lost_media(event_id, row.device),  # will never come, and why
            "evidence": self._evidence(row.device, event_id),
            "device": device,
            "log": self._call(oplog.actions, event_id),
        }

    def _evidence(self, device: str, event_id: str) -> list[dict[str, Any]]:
        """Motion events the box sent as evidence for this alarm."""
        out = []
        for row in self.store.events(device, 50, kind="motion"):
            body = self.store.body(row.id) or {}
            extra = body.get("extra") or {}
            if extra.get("alarm_id") == event_id:
                out.append({"id": row.id, **extra})
        return out

    async def act(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        body = await json_body(request)
        action, comment = body.get("action"), body.get("comment", "")
        if action not in ("ack", "comment") or not isinstance(comment, str):
            raise web.HTTPBadRequest(text="action is 'ack' or 'comment'; comment is a string")
        if len(comment) > MAX_COMMENT or (action == "comment" and not comment.strip()):
            raise web.HTTPBadRequest(text=f"a comment has 1 to {MAX_COMMENT} characters")
        if await asyncio.to_thread(self.store.body, event_id) is None:
            raise web.HTTPNotFound(text=f"no event {event_id}")
        operator, now = request[OPERATOR], ms(self.clock.time())
        await asyncio.to_thread(
            self._call, oplog.log_action, event_id, operator, now, action, comment
        )
        log.info("operator %s: %s on event %s: %s", operator, action, event_id, comment)
        return web.json_response({"operator": operator, "at_ms": now, "action": action})

    async def media(self, request: web.Request) -> web.StreamResponse:
        device, media_id = request.match_info["device"], request.match_info["media_id"]
        files = await asyncio.to_thread(self.store.media, None, device, media_id)
        if not files:
            raise web.HTTPNotFound(text="no such media")
        await asyncio.to_thread(
            self._call,
            oplog.log_access,
            request[OPERATOR],
            ms(self.clock.time()),
            device,
            media_id,
            request.remote or "-",
        )
        return web.FileResponse(files[0].path, headers={"Content-Type": files[0].content_type})

    def _call(self, fn: Any, *args: Any) -> Any:
        with self.store.transaction() as db:
            return fn(db, *args)


def _account(db: Db, event_id: str) -> str | None:
    row = db.execute("SELECT account FROM events WHERE id = ?", (event_id,)).fetchone()
    return None if row is None else str(row[0])


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be {low} to {high}")
    return value


async def serve(
    store: StationStore, host: str, port: int, security: Security | None = None
) -> None:
    """Run the page until cancelled (``edge station page``)."""
    page = OperatorPage(store, host, port, security=security)
    try:
        await page.start()
    except OSError as exc:
        raise EdgeError(f"operator page cannot listen on {host}:{port}: {exc}") from exc
    try:
        await asyncio.Event().wait()
    finally:
        await page.stop()
