"""Handlers of the page's routes (the table is in :mod:`edge.web.openapi`)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from edge import i18n
from edge.errors import Conflict, NotFound, ProtocolError
from edge.protocol import parse_iso_ms
from edge.web import auth, diagnostics, metrics, openapi
from edge.web.api_live import WHO, LiveRoutes
from edge.web.api_video import VideoRoutes
from edge.web.journal import STATES, Filter
from edge.web.replies import BadRequest, json_object
from edge.web.replies import error as _error

if TYPE_CHECKING:
    from edge.web.server import WebServer

log = logging.getLogger(__name__)
MAX_PULSES = 100_000
DOWNLOADS = ("logs.txt", "bundle.zip")
# A config's file name as the technician's phone named it ("edge (2).toml",
# "config été.toml"): shown in its problems only, never a path on the box.
NAME_RE = re.compile(r"[^/\\\x00-\x1f\x7f]{1,100}")


def _page(name: str) -> web.Response:
    text = resources.files("edge.web").joinpath(f"static/{name}").read_text("utf-8")
    return web.Response(text=text, content_type="text/html")


class Api(LiveRoutes, VideoRoutes):
    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.hooks = server.hooks
        self._patterns: dict[str, asyncio.Task[None]] = {}
        # One password check at a time: a burst of guesses waits in line (each
        # scrypt costs ~16 MiB and tens of ms) and meets the lockout it earned.
        self._checking = asyncio.Lock()

    def cancel_tasks(self) -> None:
        for task in self._patterns.values():
            task.cancel()

    # -- pages and sessions ------------------------------------------------------

    async def index(self, _request: web.Request) -> web.Response:
        return _page("index.html")

    async def login_page(self, _request: web.Request) -> web.Response:
        return _page("login.html")

    async def i18n_words(self, request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        if lang not in i18n.LANGS:
            return _error(404, f"no words in {lang!r}: {', '.join(i18n.LANGS)}")
        return web.json_response(i18n.bundle(lang), headers={"Cache-Control": "no-cache"})

    async def i18n_script(self, _request: web.Request) -> web.Response:
        return web.Response(text=i18n.script(), content_type="text/javascript")

    async def healthz(self, _request: web.Request) -> web.Response:
        """Healthy or not, and the page's verdict: the worst fault in words, then all."""
        status = self.hooks.status()
        healthy = bool(status.get("healthy"))
        problems = status.get("problems", {})
        faults = status.get("faults")
        if faults is None:  # a status of its own (tests, tools): its problems as faults
            faults = [_fault(name, text) for name, text in problems.items()]
        verdict = status.get("verdict") or (faults[0] if faults else _HEALTHY)
        body = {"healthy": healthy, "problems": problems, "verdict": verdict, "faults": faults}
        return web.json_response(body, status=200 if healthy else 503)

    async def login_state(self, _request: web.Request) -> web.Response:
        return web.json_response({"password_set": self.server.password_hash() is not None})

    async def login(self, request: web.Request) -> web.StreamResponse:
        client = request.remote or "?"
        wait = self._locked(client)
        if wait is not None:
            return wait
        try:
            body = await json_object(request, 'body must be JSON: {"password": "..."}')
        except BadRequest as exc:
            return _error(400, str(exc))
        password = body.get("password")
        if not isinstance(password, str):
            return _error(400, 'body must be JSON: {"password": "..."}')
        stored = self.server.password_hash()
        if stored is None:
            return _error(409, "no password is set yet: use the setup code from the console")
        async with self._checking:
            wait = self._locked(client)
            if wait is not None:
                return wait
            ok = await asyncio.to_thread(auth.verify_password, password, stored)
            if not ok:
                return self._failed(client, "wrong password")
        if auth.needs_rehash(stored):
            await self._rehash(password)
        return self._logged_in(client)

    async def _rehash(self, password: str) -> None:
        """Write a password that logged in again, in today's hash format and cost."""
        web_dir = self.server.settings.web_dir
        if web_dir is None:
            return
        try:
            await asyncio.to_thread(auth.write_password, web_dir, password)
        except (auth.AuthError, OSError):
            log.exception("the web password's hash is left in its old format")
        else:
            log.info("the web password's hash is rewritten in today's format")

    async def setup(self, request: web.Request) -> web.StreamResponse:
        client = request.remote or "?"
        wait = self._locked(client)
        if wait is not None:
            return wait
        usage = 'body must be JSON: {"code": "...", "password": "..."}'
        try:
            body = await json_object(request, usage)
        except BadRequest as exc:
            return _error(400, str(exc))
        code, password = body.get("code"), body.get("password")
        if not isinstance(code, str) or not isinstance(password, str):
            return _error(400, usage)
        web_dir = self.server.settings.web_dir
        if web_dir is None or self.server.password_hash() is not None:
            return _error(409, "a password is already set: log in")
        wanted = self.server.gate.setup_code
        if not auth.same_secret(code.strip().upper(), wanted):
            return self._failed(client, "wrong setup code")
        try:
            auth.check_password_rules(password)
        except auth.AuthError as exc:
            return _error(400, str(exc))
        await asyncio.to_thread(auth.write_password, web_dir, password)
        self.server.gate.setup_code = None
        log.warning("web password set with the setup code from %s", client)
        return self._logged_in(client)

    def _locked(self, client: str) -> web.Response | None:
        wait_s = self.server.gate.lockout.retry_after_s(client, self.server.now)
        if wait_s <= 0:
            return None
        response = _error(429, f"too many failed logins: try again in {wait_s:.0f} s")
        response.headers["Retry-After"] = str(max(1, round(wait_s)))
        return response

    def _failed(self, client: str, why: str) -> web.Response:
        self.server.gate.lockout.failed(client, self.server.now)
        log.warning("web login refused from %s: %s", client, why)
        return _error(401, why)

    def _logged_in(self, client: str) -> web.Response:
        gate = self.server.gate
        gate.lockout.succeeded(client)
        gate.logins += 1
        sid, session = gate.sessions.create(self.server.now)
        log.info("web login from %s", client)
        response = web.json_response({"csrf": session.csrf})
        response.set_cookie(
            "edge_session",
            sid,
            httponly=True,
            samesite="Strict",
            secure=self.server.settings.tls,
            path="/",
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self.server.gate.sessions.drop(request.cookies.get("edge_session"))
        response = web.json_response({"logged_out": True})
        response.del_cookie("edge_session", path="/")
        return response

    async def session(self, request: web.Request) -> web.Response:
        if request.get(WHO) == "token":
            return web.json_response({"csrf": None, "via": "token"})
        session = self.server.gate.sessions.get(
            request.cookies.get("edge_session"), self.server.now
        )
        return web.json_response({"csrf": session.csrf if session else None, "via": "session"})

    # -- simulated inputs (status and the live routes: api_live.py) ----------------

    async def simulate(self, request: web.Request) -> web.Response:
        usage = 'body must be JSON: {"active": true|false}'
        if self.hooks.simulate is None:
            return _error(404, "inputs are simulated only with gpio.backend = 'mock'")
        name = request.match_info["name"]
        try:
            body = await json_object(request, usage)
        except BadRequest as exc:
            return _error(400, str(exc))
        active = body.get("active")
        if not isinstance(active, bool):
            return _error(400, usage)
        try:
            self.hooks.simulate(name, active)
        except NotFound as exc:
            return _error(404, str(exc))
        return web.json_response({"input": name, "active": active})

    async def pulses(self, request: web.Request) -> web.Response:
        """Start a pulse train on a simulated input: {"count", "on_ms", "off_ms"}."""
        usage = 'body must be JSON: {"count": 1..100000, "on_ms": >0, "off_ms": >0}'
        if self.hooks.pulses is None:
            return _error(404, "inputs are simulated only with gpio.backend = 'mock'")
        name = request.match_info["name"]
        try:
            body = await json_object(request, usage)
        except BadRequest as exc:
            return _error(400, str(exc))
        if set(body) != {"count", "on_ms", "off_ms"}:
            return _error(400, usage)
        count, on_ms, off_ms = body["count"], body["on_ms"], body["off_ms"]
        numbers = all(_is_number(v) for v in (on_ms, off_ms))
        whole = isinstance(count, int) and not isinstance(count, bool)
        if not (whole and 1 <= count <= MAX_PULSES and numbers) or on_ms <= 0 or off_ms <= 0:
            return _error(400, usage)
        running = self._patterns.get(name)
        if running is not None and not running.done():
            return _error(409, f"input {name!r} is already pulsing")
        try:
            coro = self.hooks.pulses(name, count, float(on_ms), float(off_ms))
        except NotFound as exc:
            return _error(404, str(exc))
        self._patterns[name] = asyncio.create_task(coro, name=f"sim.pulses.{name}")
        return web.json_response({"input": name, "count": count}, status=202)

    # -- walk test ---------------------------------------------------------------

    async def walk_status(self, _request: web.Request) -> web.Response:
        if self.hooks.walk is None:
            return _error(404, "no walk test on this box")
        walk = self.hooks.walk
        return web.json_response({"running": walk.walk_status(), "last": walk.last_result()})

    async def walk_start(self, request: web.Request) -> web.Response:
        usage = 'body must be JSON: {"minutes": 1..240}'
        if self.hooks.walk is None:
            return _error(404, "no walk test on this box")
        try:
            body = await json_object(request, usage)
        except BadRequest as exc:
            return _error(400, str(exc))
        minutes = body.get("minutes")
        if not isinstance(minutes, int | float) or isinstance(minutes, bool):
            return _error(400, usage)
        if not 0 < minutes <= 240:
            return _error(400, usage)
        try:
            running = self.hooks.walk.start_walk(float(minutes) * 60)
        except Conflict as exc:
            return _error(409, str(exc))
        return web.json_response({"running": running}, status=201)

    async def walk_stop(self, _request: web.Request) -> web.Response:
        if self.hooks.walk is None:
            return _error(404, "no walk test on this box")
        summary = await self.hooks.walk.stop_walk()
        if summary is None:
            return _error(409, "no walk test is running")
        return web.json_response({"summary": summary})

    # -- events ------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        journal = self.hooks.journal
        if journal is None:
            return _error(404, "no event journal on this box")
        try:
            found, limit = _journal_filter(request.query)
        except BadRequest as exc:
            return _error(400, str(exc))
        return web.json_response(await journal.query(found, limit))

    async def test_event(self, _request: web.Request) -> web.Response:
        if self.hooks.send_test is None:
            return _error(404, "this box cannot send test events")
        event_id = await self.hooks.send_test("test event from the technician's page")
        return web.json_response({"id": event_id}, status=201)

    # -- config ------------------------------------------------------------------------

    async def config(self, _request: web.Request) -> web.Response:
        if self.hooks.config is None:
            return _error(404, "no config file on this box")
        config = self.hooks.config
        return web.json_response({"text": config.redacted(), "confirm_s": config.confirm_s})

    async def config_check(self, request: web.Request) -> web.Response:
        if self.hooks.config is None:
            return _error(404, "no config file on this box")
        try:
            text, name = await _config_text(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        problems = await asyncio.to_thread(self.hooks.config.check, text, name)
        return web.json_response(
            {"ok": not problems, "problems": problems}, status=422 if problems else 200
        )

    async def config_apply(self, request: web.Request) -> web.Response:
        if self.hooks.config is None:
            return _error(404, "no config file on this box")
        try:
            text, name = await _config_text(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        problems = await asyncio.to_thread(self.hooks.config.check, text, name)
        if problems:
            return web.json_response({"ok": False, "problems": problems}, status=422)
        try:
            result = await self.hooks.config.apply(text)
        except Conflict as exc:
            return _error(409, str(exc))
        return web.json_response({"ok": True, **result}, status=202)

    # -- diagnostics, API description, metrics --------------------------------------

    async def diagnostics(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in DOWNLOADS:  # a fixed list: no path ever reaches the disk
            return _error(404, f"no download {name!r}; there are: {', '.join(DOWNLOADS)}")
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        logs = self.server.logs.text()
        if name == "logs.txt":
            return web.Response(text=logs, content_type="text/plain", headers=disposition)
        config = self.hooks.config.redacted() if self.hooks.config is not None else ""
        journal = self.hooks.journal
        events = (await journal.query(limit=1000))["events"] if journal is not None else []
        status = dict(self.hooks.status())
        secrets = self.server.secrets()
        data = await asyncio.to_thread(diagnostics.bundle, config, status, events, logs, secrets)
        return web.Response(body=data, content_type="application/zip", headers=disposition)

    async def openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(openapi.document())

    async def metrics(self, _request: web.Request) -> web.Response:
        text = metrics.render(self.hooks.status())
        return web.Response(text=text, headers={"Content-Type": metrics.CONTENT_TYPE})


_HEALTHY: dict[str, Any] = {
    "check": None,
    "level": "ok",
    "key": "box.health.ok",
    "values": {},
    "text": "healthy",
}


def _fault(name: str, text: str) -> dict[str, Any]:
    values = {"name": name, "problem": text}
    return {
        "check": name,
        "level": "fault",
        "key": "box.health.other",
        "values": values,
        "text": f"{name}: {text}",
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _journal_filter(q: Mapping[str, str]) -> tuple[Filter, int]:
    """The events page's query: kind, zone, state, since/until (ISO 8601 with a zone,
    on the occurred-at time), before (the previous page's ``next_before``), limit."""
    state = q.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    limit = _whole(q.get("limit", "200"))
    if limit is None or not 1 <= limit <= 1000:
        raise BadRequest("limit must be a whole number from 1 to 1000")
    before: int | None = None
    if q.get("before"):
        before = _whole(q["before"])
        if before is None or not 1 <= before <= 2**62:
            raise BadRequest("before must be a whole number from 1 (a page's next_before)")
    times: dict[str, int | None] = {"since": None, "until": None}
    for name in times:
        if q.get(name):
            try:
                times[name] = parse_iso_ms(q[name])
            except ProtocolError as exc:
                raise BadRequest(f"{name}: {exc} (e.g. 2026-11-28T03:00:00Z)") from exc
    kind, zone = q.get("kind") or None, q.get("zone") or None
    return Filter(kind, zone, state, times["since"], times["until"], before), limit


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


async def _config_text(request: web.Request) -> tuple[str, str]:
    """The uploaded TOML text and the file name its problems are reported under."""
    usage = 'body must be JSON: {"text": "<the TOML config>", "name": "file.toml"}'
    body = await json_object(request, usage)
    text, name = body.get("text"), body.get("name", "upload.toml")
    if not isinstance(text, str) or not isinstance(name, str):
        raise BadRequest(usage)
    if not NAME_RE.fullmatch(name):
        raise BadRequest("name must be a plain file name such as edge.toml")
    return text, name
