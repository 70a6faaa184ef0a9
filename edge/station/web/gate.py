"""Who may use the operator page: the station's aiohttp side of :mod:`edge.auth`.

Operators log in with their name and password (``/api/login``); a session
(HttpOnly, SameSite=Strict cookie) ends after ``session_idle_s`` without a
request or ``session_max_s`` after the login, whichever comes first. Every
state-changing request must come from the page's own origin (``Origin``, else
``Referer``) and carry the session's CSRF token in ``X-CSRF-Token`` (the page
reads it from ``/api/session``). Failed logins lock a client out, then the
whole page (:class:`edge.auth.Lockout`); the lockout is kept in the store
(table ``login_lockout``), so a restart does not forget it. Routes wrapped
by :meth:`Gate.needs` ask for a role (``supervisor``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from edge import auth
from edge.auth.sessions import IDLE_S, MAX_S
from edge.clock import Clock, ms
from edge.errors import StorageError
from edge.station import oplog
from edge.station.store import StationStore

log = logging.getLogger(__name__)

COOKIE = "station_session"
PUBLIC = frozenset({"/login", "/api/login", "/i18n/fr.json", "/i18n/en.json", "/i18n/i18n.js"})
OPERATOR: web.RequestKey[str] = web.RequestKey("operator", str)
ROLE: web.RequestKey[str] = web.RequestKey("role", str)
SESSION_ID: web.RequestKey[str] = web.RequestKey("session_id", str)
HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",  # no framing: no clickjacking
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Security:
    """The operator page's login settings (``edge station page`` options)."""

    session_idle_s: float = IDLE_S
    session_max_s: float = MAX_S
    login_max_failures: int = 5
    lockout_s: float = 300.0
    origins: tuple[str, ...] = ()  # besides the page's own: e.g. a TLS proxy's https://...


class StoredLockout:
    """The lockout snapshot in the station's store (SQLite or PostgreSQL)."""

    def __init__(self, store: StationStore) -> None:
        self.store = store
        self.where = f"{store.label}, table login_lockout"

    def read(self) -> object | None:
        try:
            with self.store.transaction() as db:
                text = oplog.read_lockout(db)
            return None if text is None else json.loads(text)
        except (StorageError, ValueError) as exc:
            raise auth.AuthError(f"{self.where}: cannot read: {exc}") from exc

    def write(self, snapshot: dict[str, Any]) -> None:
        try:
            with self.store.transaction() as db:
                oplog.write_lockout(db, json.dumps(snapshot, separators=(",", ":")))
        except StorageError as exc:
            raise auth.AuthError(f"{self.where}: cannot write: {exc}") from exc


class Gate:
    """Sessions, lockout and checks of one operator page. Construct (no I/O), then
    ``await load()`` before serving."""

    def __init__(self, store: StationStore, clock: Clock, security: Security) -> None:
        self.store = store
        self.clock = clock
        self.security = security
        self.sessions = auth.Sessions(security.session_idle_s, security.session_max_s)
        self.lockout = auth.Lockout(security.login_max_failures, security.lockout_s)
        self.kept = auth.Keeper(self.lockout, StoredLockout(store))
        self._changed = False
        self.lockout.on_change = self._note_change
        # One password check at a time: a burst of guesses waits in line (each scrypt
        # costs ~16 MiB and tens of ms) and meets the lockout it earned.
        self._checking = asyncio.Lock()

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    async def load(self) -> None:
        await asyncio.to_thread(self.kept.load, self.now, self.clock.time())

    # -- every request ----------------------------------------------------------

    @web.middleware
    async def headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update({k: v for k, v in HEADERS.items() if k not in exc.headers})
            raise
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC:
            self._check(request, None, public=True)
            return await handler(request)
        sid = request.cookies.get(COOKIE, "")
        session = self.sessions.get(sid, self.now)
        if session is None:
            if request.path.startswith(("/api/", "/media/")):
                raise web.HTTPUnauthorized(text="log in first")
            raise web.HTTPFound(f"/login?next={quote(request.path)}")
        self._check(request, session)
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON")
        request[OPERATOR], request[ROLE], request[SESSION_ID] = session.user, session.role, sid
        return await handler(request)

    def _check(
        self, request: web.Request, session: auth.Session | None, public: bool = False
    ) -> None:
        allowed = [auth.origin_of(request.scheme, request.host), *self.security.origins]
        refused = auth.refusal(
            request.method,
            session,
            request.headers.get(auth.CSRF_HEADER),
            request.headers.get("Origin"),
            request.headers.get("Referer"),
            allowed,
            public=public,
        )
        if refused is not None:
            log.warning("operator page: %s: %s %s from %s", refused, request.method,
                        request.path, request.remote)  # fmt: skip
            raise web.HTTPForbidden(text=str(refused))

    def needs(self, role: str, handler: Handler) -> Handler:
        """``handler``, answered only to operators whose role is ``role`` or above."""
        oplog.ROLES.parse(role)

        async def guarded(request: web.Request) -> web.StreamResponse:
            if not oplog.ROLES.permits(request[ROLE], role):
                raise web.HTTPForbidden(text=f"only a {role} may do this")
            return await handler(request)

        return guarded

    # -- login, logout, session ------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        client = request.remote or "-"
        self._locked(client)
        body = await json_body(request)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise web.HTTPBadRequest(text='send {"name": "...", "password": "..."}')
        async with self._checking:
            self._locked(client)
            found = await asyncio.to_thread(self._call, oplog.account, name)
            stored = None if found is None else found.hash
            ok = await asyncio.to_thread(auth.verify_password, password, stored)
            if ok:
                self.lockout.succeeded(client)
            else:
                self.lockout.failed(client, self.now)
            await self._save_lockout()
        if found is None or not ok:
            log.warning("operator login refused for %r from %s", name, client)
            raise web.HTTPUnauthorized(text="wrong name or password")
        if auth.needs_rehash(found.hash):
            await self._rehash(found, password)
        sid, session = self.sessions.create(self.now, found.name, found.role)
        response = web.json_response(
            {"operator": found.name, "role": found.role, "csrf": session.csrf}
        )
        secure = request.secure or request.headers.get("Origin", "").startswith("https://")
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=secure, path="/")
        log.info("operator %s (%s) logged in from %s", found.name, found.role, client)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.drop(request[SESSION_ID])
        response = web.json_response({})
        response.del_cookie(COOKIE, path="/")
        log.info("operator %s logged out", request[OPERATOR])
        return response

    async def session(self, request: web.Request) -> web.Response:
        """The page's script asks who it is and its CSRF token (the cookie is HttpOnly)."""
        found = self.sessions.peek(request[SESSION_ID], self.now)
        return web.json_response(
            {
                "operator": request[OPERATOR],
                "role": request[ROLE],
                "csrf": None if found is None else found.csrf,
            }
        )

    def logged_in(self) -> list[dict[str, Any]]:
        """Who is logged in now: name, role, login time and seconds since the last request."""
        now, wall = self.now, self.clock.time()
        return [
            {
                "operator": s.user,
                "role": s.role,
                "login_ms": ms(wall - (now - s.created_s)),
                "idle_s": round(now - s.last_seen_s, 1),
            }
            for s in self.sessions.active(now)
        ]

    def _locked(self, client: str) -> None:
        wait_s = self.lockout.retry_after_s(client, self.now)
        if wait_s > 0:
            raise web.HTTPTooManyRequests(
                text=f"too many failed logins: try again in {wait_s:.0f} s",
                headers={"Retry-After": str(max(1, round(wait_s)))},
            )

    def _note_change(self) -> None:
        self._changed = True

    async def _save_lockout(self) -> None:
        if not self._changed:
            return
        self._changed = False
        snapshot = self.lockout.snapshot(self.now, self.clock.time())
        await asyncio.to_thread(self.kept.save, snapshot)

    async def _rehash(self, found: oplog.Account, password: str) -> None:
        """An operator's hash in an old format (hex) or cost, rewritten in today's."""
        try:
            new = await asyncio.to_thread(auth.hash_password, password)
            await asyncio.to_thread(self._call, oplog.rehash, found.name, found.hash, new)
        except (auth.AuthError, StorageError):  # a password outside today's rules: kept
            log.exception("operator %s: hash left in its old format", found.name)
            return
        log.info("operator %s: hash rewritten in today's format", found.name)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.store.transaction() as db:
            return fn(db, *args)


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body is a JSON object")
    return body
