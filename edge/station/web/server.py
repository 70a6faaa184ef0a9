"""The operator page (aiohttp): alarms as they land, each with its stills, clip and evidence.

Login required (operators in the store, scrypt hashes; an HttpOnly,
SameSite=Strict session cookie; state-changing requests must be JSON, which
a cross-site form cannot send). One poller reads the store every
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
import secrets
from dataclasses import asdict
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web

from edge.clock import Clock, SystemClock, ms
from edge.errors import EdgeError, StorageError
from edge.station import oplog
from edge.station.queries import StoredRow
from edge.station.sql import Db
from edge.station.store import StationStore

log = logging.getLogger(__name__)

COOKIE = "station_session"
MAX_FAILURES, LOCKOUT_S = 5, 300.0  # failed logins from one address, then a pause
MAX_COMMENT = 2_000
OPERATOR: web.RequestKey[str] = web.RequestKey("operator", str)


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
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.clock = clock or SystemClock()
        self.poll_s = poll_s
        self.sessions: dict[str, str] = {}
        self.failures: dict[str, list[float]] = {}  # client address -> failed login times
        self._listeners: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        static = resources.files("edge.station.web") / "static"
        page = (static / "operator.html").read_text()
        login = (static / "login.html").read_text()

        async def index(_r: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        async def login_page(_r: web.Request) -> web.Response:
            return web.Response(text=login, content_type="text/html")

        app.router.add_get("/", index)
        app.router.add_get("/events/{event_id}", index)  # the DC-09 video reference
        app.router.add_get("/login", login_page)
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/alarms", self.alarms)
        app.router.add_get("/api/devices", self.devices)
        app.router.add_get("/api/stream", self.stream)
        app.router.add_get("/api/events/{event_id}", self.event)
        app.router.add_post("/api/events/{event_id}/log", self.act)
        app.router.add_get("/media/{device}/{media_id}", self.media)
        return app

    async def start(self) -> None:
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

    # -- login ------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in ("/login", "/api/login"):
            return await handler(request)  # type: ignore[no-any-return]
        name = self.sessions.get(request.cookies.get(COOKIE, ""))
        if name is None:
            if request.path.startswith(("/api/", "/media/")):
                raise web.HTTPUnauthorized(text="log in first")
            raise web.HTTPFound(f"/login?next={quote(request.path)}")
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        request[OPERATOR] = name
        return await handler(request)  # type: ignore[no-any-return]

    async def login(self, request: web.Request) -> web.Response:
        client, now = request.remote or "-", self.clock.monotonic()
        recent = [t for t in self.failures.get(client, []) if now - t < LOCKOUT_S]
        if len(recent) >= MAX_FAILURES:
            raise web.HTTPTooManyRequests(text=f"too many failed logins; wait {LOCKOUT_S:.0f} s")
        body = await _json(request)
        name, password = str(body.get("name", "")), str(body.get("password", ""))
        stored = await asyncio.to_thread(self._call, oplog.operator_hash, name)
        ok = await asyncio.to_thread(oplog.check_password, password, stored or "x$")
        if stored is None or not ok:
            self.failures[client] = [*recent, now]
            log.warning("operator login refused for %r from %s", name, client)
            raise web.HTTPUnauthorized(text="wrong name or password")
        self.failures.pop(client, None)
        token = secrets.token_urlsafe(32)
        self.sessions[token] = name
        response = web.json_response({"operator": name})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        log.info("operator %s logged in from %s", name, request.remote)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.pop(request.cookies.get(COOKIE, ""), None)
        response = web.json_response({})
        response.del_cookie(COOKIE, path="/")
        return response

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
        try:
            await response.write(b": hello\n\n")
            while True:
                try:
                    rows = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if rows is None:  # the page is stopping
                    break
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
        body = await _json(request)
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


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body is a JSON object")
    return body


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be {low} to {high}")
    return value


async def serve(store: StationStore, host: str, port: int) -> None:
    """Run the page until cancelled (``edge station page``)."""
    page = OperatorPage(store, host, port)
    try:
        await page.start()
    except OSError as exc:
        raise EdgeError(f"operator page cannot listen on {host}:{port}: {exc}") from exc
    try:
        await asyncio.Event().wait()
    finally:
        await page.stop()
