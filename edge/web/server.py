"""The technician's local page and its JSON API (aiohttp).

Every route needs a logged-in session (cookie) or the config's bearer token,
except the login page and ``/healthz``. Every state-changing request made
with a session carries its CSRF token in ``X-CSRF-Token``. The page reads
status snapshots and calls back into the box only through :class:`Hooks`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.auth import CSRF_HEADER, UNSAFE, Keeper, origin_of, refusal
from edge.logs import SECRET
from edge.web import auth, tls
from edge.web.api import Api
from edge.web.api_live import WHO
from edge.web.diagnostics import LogRing
from edge.web.hooks import Hooks
from edge.web.openapi import ROUTES, Route

log = logging.getLogger(__name__)

SESSION_COOKIE = "edge_session"
MAX_BODY = 64 * 1024
MAX_CONFIG_BODY = 1024 * 1024
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
STATIC = resources.files("edge.web").joinpath("static")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    web_dir: Path | None = None  # password and TLS files; None: nobody can log in
    device_id: str = "edge"
    tls: bool = False
    api_token: str | None = None
    session_idle_s: float = 1800.0
    session_max_s: float = 43_200.0  # a session ends 12 h after its login, however busy
    login_max_failures: int = 5
    lockout_s: float = 300.0
    secrets: tuple[str, ...] = ()  # other values diagnostics must never show (uplink password)
    setup_code_file: Path | None = None  # first boot's code (edge provision), else one is made


@dataclass
class Gate:
    """The mutable security state of one server: sessions, lockout, setup code."""

    sessions: auth.Sessions
    lockout: auth.Lockout
    kept: Keeper | None = None  # where the lockout survives a restart (None: no web_dir)
    setup_code: str | None = None
    logins: int = 0
    refused: dict[str, int] = field(default_factory=dict)


class WebServer:
    """Serve the page on ``host:port``. Construct (no I/O), then ``await start()``."""

    def __init__(
        self, settings: WebSettings, hooks: Hooks, wall: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.hooks = hooks
        self.wall = wall  # the lockout file's deadlines are wall-clock times
        lockout = auth.Lockout(settings.login_max_failures, settings.lockout_s)
        web_dir = settings.web_dir
        kept = None if web_dir is None else Keeper(lockout, auth.lockout_file(web_dir))
        sessions = auth.Sessions(settings.session_idle_s, settings.session_max_s)
        self.gate = Gate(sessions, lockout, kept)
        self.logs = LogRing(secrets=self.secrets)
        self._codes: list[str] = []  # every setup code made, kept out of diagnostics
        self.closing = asyncio.Event()
        self.api = Api(self)
        self.scheme = "https" if settings.tls else "http"
        self._runner: web.AppRunner | None = None

    @property
    def now(self) -> float:
        return self.hooks.monotonic()

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_CONFIG_BODY,
            middlewares=[self._headers, self._guard],
        )
        for route in ROUTES:
            handler = getattr(self.api, route.handler)
            app.router.add_route(route.method, route.path, _tagged(handler, route))
        app.router.add_static("/static", Path(str(STATIC)), follow_symlinks=False)
        return app

    async def start(self) -> None:
        self.closing.clear()
        logging.getLogger().addHandler(self.logs)
        self._load_lockout()
        self._prepare_password()
        context = None
        if self.settings.tls:
            if self.settings.web_dir is None:
                raise auth.AuthError("web.tls needs a state directory for its certificate")
            cert, key = await asyncio.to_thread(
                tls.ensure_certificate,
                self.settings.web_dir / "tls",
                self.settings.device_id,
                self.settings.host,
            )
            context = tls.server_context(cert, key)
            log.info("web page certificate SHA-256 %s", tls.fingerprint(cert))
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.settings.host, self.settings.port, ssl_context=context
        )
        await site.start()
        log.info("web page on %s://%s:%d/", self.scheme, self.settings.host, self.settings.port)
        if not self.settings.tls and self.settings.host not in LOOPBACK:
            log.warning(
                "the web page is served without TLS on %s: the password crosses the network "
                "in clear (set web.tls = true)",
                self.settings.host,
            )

    async def stop(self) -> None:
        self.closing.set()
        self.api.cancel_tasks()
        logging.getLogger().removeHandler(self.logs)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def password_hash(self) -> str | None:
        if self.settings.web_dir is None:
            return None
        return auth.read_password(self.settings.web_dir)

    def secrets(self) -> list[str]:
        """What diagnostics must never show: setup codes, the API token, the password
        hash and the page's TLS key, besides the settings' own ``secrets``."""
        found = [*self._codes, *(code.lower() for code in self._codes), *self.settings.secrets]
        if self.settings.api_token:
            found.append(self.settings.api_token)
        web_dir = self.settings.web_dir
        if web_dir is None:
            return found
        try:
            stored = self.password_hash()
        except auth.AuthError:
            stored = None  # unreadable: diagnostics cannot show it either
        if stored is not None:
            found.append(stored)
        try:
            key = (web_dir / "tls" / "key.pem").read_text(encoding="ascii", errors="replace")
        except OSError:
            key = ""
        found += [line for line in key.splitlines() if line and not line.startswith("-----")]
        return found

    def _load_lockout(self) -> None:
        """The lockout as the last run left it (see :class:`edge.auth.Keeper`: a file that
        cannot be read makes every login wait one lockout), then saved at each change."""
        kept = self.gate.kept
        if kept is None:
            return
        kept.load(self.now, self.wall())
        kept.lockout.on_change = self._save_lockout

    def _save_lockout(self) -> None:
        if self.gate.kept is not None:
            self.gate.kept.save(self.gate.lockout.snapshot(self.now, self.wall()))

    def _prepare_password(self) -> None:
        if self.settings.web_dir is None or self.password_hash() is not None:
            return
        given = self._provisioned_code()
        if given is not None:  # the code first boot made, shown by the installer's command
            self.gate.setup_code = given
            self._codes.append(given)
            log.warning(
                "no web password is set: open the page and type the setup code that "
                "'edge provision status --show-code' shows (or run: edge set-password)"
            )
            return
        self.gate.setup_code = auth.setup_code()
        self._codes.append(self.gate.setup_code)
        # For the console and the journal only (journalctl -u edge): whoever reads it
        # has the box in hand. SECRET keeps it out of the page's log view.
        log.warning(
            "no web password is set: open the page and use the one-time setup code %s "
            "(or run: edge set-password)",
            self.gate.setup_code,
            extra=SECRET,
        )

    def _provisioned_code(self) -> str | None:
        path = self.settings.setup_code_file
        if path is None:
            return None
        try:
            code = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            if path.exists():
                log.error("setup code %s unreadable (%s): a new one is made", path, exc)
            return None
        return code or None

    # -- middlewares ----------------------------------------------------------

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            for key, value in HEADERS.items():
                exc.headers.setdefault(key, value)
            raise
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        if self.settings.tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route: Route | None = getattr(request.match_info.handler, "route", None)
        limit = MAX_CONFIG_BODY if route is not None and route.big_body else MAX_BODY
        if request.content_length is not None and request.content_length > limit:
            return _error(413, f"request body over {limit} bytes")
        public = route is None or route.public  # static files: the router checks the path
        if public and not _static_private(request):
            refused = self._refusal(request, None, public=True)
            return _error(403, refused) if refused else await handler(request)
        who = self._who(request)
        if who is None:
            self._count_refusal(request)
            if request.method == "GET" and request.path == "/":
                raise web.HTTPFound("/login")
            return _error(401, "log in first")
        if request.method in UNSAFE and who != "token":
            session = self.gate.sessions.get(request.cookies.get(SESSION_COOKIE), self.now)
            refused = self._refusal(request, session)
            if refused:
                return _error(403, refused)
        request[WHO] = who
        return await handler(request)

    def _refusal(
        self, request: web.Request, session: auth.Session | None, *, public: bool = False
    ) -> str | None:
        """Why a state change must be refused: a foreign Origin, a missing or wrong
        CSRF token (only the Origin on a ``public`` route)."""
        return refusal(
            request.method,
            session,
            request.headers.get(CSRF_HEADER),
            request.headers.get("Origin"),
            request.headers.get("Referer"),
            [origin_of(self.scheme, request.host)],
            public=public,
        )

    def _who(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and auth.same_secret(
            header.removeprefix("Bearer ").strip(), self.settings.api_token
        ):
            return "token"
        if self.gate.sessions.get(request.cookies.get(SESSION_COOKIE), self.now) is not None:
            return "session"
        return None

    def _count_refusal(self, request: web.Request) -> None:
        client = request.remote or "?"
        self.gate.refused[client] = self.gate.refused.get(client, 0) + 1


def _static_private(request: web.Request) -> bool:
    """Static assets of the logged-in page are private; the login page's are not."""
    if not request.path.startswith("/static/"):
        return False
    return request.path not in ("/static/login.js", "/static/style.css")


def _tagged(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], route: Route
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def tagged(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    tagged.route = route  # type: ignore[attr-defined]
    return tagged


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def wall_time() -> float:
    return time.time()
