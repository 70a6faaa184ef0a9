"""The page's locks: login, lockout, sessions, CSRF, body limits, path traversal, TLS.

A real aiohttp server on a free loopback port with the box's side replaced by
small fakes (the hooks), and a settable clock for the lockout.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import ssl
import subprocess
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.boxweb.config_file import ConfigFile
from edge.codes import Condition
from edge.config import parse
from edge.model import StoredEvent, box_event
from edge.web import auth
from edge.web.hooks import Hooks
from edge.web.journal import Journal
from edge.web.openapi import ROUTES
from edge.web.server import WebServer, WebSettings
from tests.conftest import DEMO_API_TOKEN, DEMO_CONFIG, edge_cmd, free_port

PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Walk:
    def __init__(self) -> None:
        self.started = 0

    def start_walk(self, duration_s: float) -> dict[str, Any]:
        self.started += 1
        return {"zones": ["z1"], "seen": [], "not_seen": ["z1"], "remaining_s": duration_s}

    def walk_status(self) -> dict[str, Any] | None:
        return None

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None:
        return None

    def last_result(self) -> dict[str, Any] | None:
        return None


STATUS = {
    "device": {"id": "box-1", "uptime_s": 5},
    "uplink": {"connected": True, "published": 3},
    "outbox": {"depth": 2, "oldest_age_s": 1.5},
    "zones": {"armed": {"1": False}, "zones": [{"id": "z1", "active": True, "changes": 4}]},
    "cameras": {},
    "healthy": True,
    "problems": {},
}


@dataclass
class Server:
    server: WebServer
    base: str
    clock: Clock
    walk: Walk
    web_dir: Path
    journal: Journal

    def client(self, **kw: Any) -> aiohttp.ClientSession:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        return aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=10), **kw)


async def start(
    tmp_path: Path,
    password: bool = True,
    tls: bool = False,
    wall: Callable[[], float] = time.time,
    **more: Any,
) -> Server:
    web_dir = tmp_path / "web"
    if password:
        auth.write_password(web_dir, PASSWORD)
    clock, walk = Clock(), Walk()
    cfg = parse(DEMO_CONFIG.read_text(), "demo.toml")
    journal = Journal()

    async def send_test(text: str) -> str:
        return "e-1"

    hooks = Hooks(
        status=lambda: STATUS,
        walk=walk,
        journal=journal,
        send_test=send_test,
        config=ConfigFile(cfg, None, web_dir, None),
        monotonic=clock,
    )
    port = free_port()
    settings = WebSettings(
        "127.0.0.1",
        port,
        web_dir=web_dir,
        tls=tls,
        api_token=DEMO_API_TOKEN,
        login_max_failures=3,
        lockout_s=60,
        **more,
    )
    server = WebServer(settings, hooks, wall=wall)
    await server.start()
    scheme = "https" if tls else "http"
    return Server(server, f"{scheme}://127.0.0.1:{port}", clock, walk, web_dir, journal)


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Server]:
    s = await start(tmp_path)
    try:
        yield s
    finally:
        await s.server.stop()
        await s.journal.close()


async def login(s: Server, http: aiohttp.ClientSession, password: str = PASSWORD) -> Any:
    async with http.post(s.base + "/api/login", json={"password": password}) as r:
        return r.status, await r.json()


def concrete(path: str) -> str:
    return path.replace("{name}", "in1").replace("{camera}", "cam1").replace("{media}", "m1")


async def test_every_private_route_refuses_an_unauthenticated_request(srv: Server) -> None:
    private = [r for r in ROUTES if not r.public]
    assert len(private) > 15
    async with srv.client() as http:
        for route in private:
            async with http.request(
                route.method, srv.base + concrete(route.path), json={}, allow_redirects=False
            ) as r:
                if route.path == "/":
                    assert (r.status, r.headers["Location"]) == (302, "/login")
                else:
                    assert r.status == 401, route
                    assert await r.json() == {"error": "log in first"}
        for path in ("/static/app.js", "/static/index.html"):
            async with http.get(srv.base + path) as r:
                assert r.status == 401, path
        # with a wrong token, too
        async with http.get(
            srv.base + "/api/status", headers={"Authorization": "Bearer nope"}
        ) as r:
            assert r.status == 401
    assert srv.walk.started == 0


async def test_public_routes_answer_without_login(srv: Server) -> None:
    async with srv.client() as http:
        for path in ("/login", "/static/login.js", "/static/style.css"):
            async with http.get(srv.base + path) as r:
                assert r.status == 200, path
        async with http.get(srv.base + "/healthz") as r:
            health = await r.json()
            assert (health["healthy"], health["problems"], health["faults"]) == (True, {}, [])
            assert health["verdict"]["key"] == "box.health.ok"
        async with http.get(srv.base + "/api/login") as r:
            assert await r.json() == {"password_set": True}


async def test_login_sets_a_locked_down_cookie_and_logout_ends_it(srv: Server) -> None:
    async with srv.client() as http:
        async with http.post(srv.base + "/api/login", json={"password": PASSWORD}) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf"]
            cookie = r.cookies["edge_session"]
            assert cookie["httponly"] is True
            assert cookie["samesite"] == "Strict"
            assert not cookie["secure"]  # plain HTTP here; see the TLS test
            assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert r.headers["X-Frame-Options"] == "DENY"
        async with http.get(srv.base + "/api/status") as r:
            assert r.status == 200 and (await r.json())["device"]["id"] == "box-1"
        async with http.get(srv.base + "/api/session") as r:
            assert (await r.json())["csrf"] == csrf
        async with http.post(srv.base + "/api/logout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with http.get(srv.base + "/api/status") as r:
            assert r.status == 401


async def test_an_idle_session_expires(srv: Server) -> None:
    async with srv.client() as http:
        assert (await login(srv, http))[0] == 200
        srv.clock.now += 1801  # default session_idle_s = 1800
        async with http.get(srv.base + "/api/status") as r:
            assert r.status == 401


async def test_a_busy_session_still_ends_12_hours_after_its_login(srv: Server) -> None:
    async with srv.client() as http:
        assert (await login(srv, http))[0] == 200
        for _ in range(43):  # a request every 1,000 s: never idle
            srv.clock.now += 1000
            async with http.get(srv.base + "/api/status") as r:
                assert r.status == 200
        srv.clock.now += 201  # 43,201 s after the login
        async with http.get(srv.base + "/api/status") as r:
            assert r.status == 401
        assert (await login(srv, http))[0] == 200


async def test_a_hash_of_an_older_cost_is_rewritten_at_the_next_login(srv: Server) -> None:
    salt = b"an older salt..."
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**10, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    old = f"scrypt$1024$8$1${b64(salt).decode()}${b64(digest).decode()}"
    (srv.web_dir / "password").write_text(old + "\n")
    async with srv.client() as http:
        assert (await login(srv, http, "not the password"))[0] == 401
        assert auth.read_password(srv.web_dir) == old  # a failure rewrites nothing
        assert (await login(srv, http))[0] == 200
    stored = auth.read_password(srv.web_dir)
    assert stored is not None and stored.startswith("scrypt$16384$8$1$")
    assert auth.verify_password(PASSWORD, stored) and not auth.needs_rehash(stored)
    assert (srv.web_dir / "password").stat().st_mode & 0o777 == 0o600
    async with srv.client() as http:
        assert (await login(srv, http))[0] == 200


async def test_csrf_token_is_required_on_every_state_changing_request(srv: Server) -> None:
    unsafe = [r for r in ROUTES if r.method != "GET" and not r.public]
    async with srv.client() as http:
        _, body = await login(srv, http)
        csrf = body["csrf"]
        for route in unsafe:
            url = srv.base + concrete(route.path)
            for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
                async with http.request(route.method, url, json={}, headers=headers) as r:
                    assert r.status == 403, (route, headers)
                    assert await r.json() == {"error": "missing or wrong CSRF token"}
        assert srv.walk.started == 0
        # a right token from another site's page is refused by its Origin
        headers = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        async with http.post(srv.base + "/api/walktest", json={"minutes": 5}, headers=headers) as r:
            assert r.status == 403
        # or by its Referer, when the browser sends no Origin
        headers = {"X-CSRF-Token": csrf, "Referer": "http://evil.example/page"}
        async with http.post(srv.base + "/api/walktest", json={"minutes": 5}, headers=headers) as r:
            assert (r.status, await r.json()) == (403, {"error": "cross-site request refused"})
        assert srv.walk.started == 0
        headers = {"X-CSRF-Token": csrf}
        async with http.post(srv.base + "/api/walktest", json={"minutes": 5}, headers=headers) as r:
            assert r.status == 201
        assert srv.walk.started == 1


async def test_the_bearer_token_needs_no_csrf_token(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with (
        srv.client(headers=headers) as http,
        http.post(srv.base + "/api/walktest", json={"minutes": 1}) as r,
    ):
        assert r.status == 201
    assert srv.walk.started == 1


async def test_brute_force_is_locked_out(srv: Server) -> None:
    async with srv.client() as http:
        for _ in range(3):  # login_max_failures = 3
            status, body = await login(srv, http, "guess guess guess")
            assert (status, body) == (401, {"error": "wrong password"})
        async with http.post(srv.base + "/api/login", json={"password": PASSWORD}) as r:
            assert r.status == 429  # even the right password, while locked out
            assert r.headers["Retry-After"] == "60"
        srv.clock.now += 61
        for _ in range(3):
            await login(srv, http, "guess again, again")
        async with http.post(srv.base + "/api/login", json={"password": PASSWORD}) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "120"  # doubled at the second lockout
        srv.clock.now += 121
        assert (await login(srv, http))[0] == 200


async def test_a_restart_keeps_the_lockout(tmp_path: Path) -> None:
    wall = Clock()  # the wall clock: the lockout file keeps deadlines in wall time
    wall.now = 1_800_000_000.0
    s = await start(tmp_path, wall=wall)
    try:
        async with s.client() as http:
            for _ in range(3):
                assert (await login(s, http, "guess guess guess"))[0] == 401
            assert (await login(s, http))[0] == 429
    finally:
        await s.server.stop()
    stored = json.loads((s.web_dir / "lockout.json").read_text())
    assert stored["clients"]["127.0.0.1"]["locked_until"] == wall.now + 60
    assert (s.web_dir / "lockout.json").stat().st_mode & 0o777 == 0o600
    wall.now += 20  # the box was down 20 s
    s = await start(tmp_path, wall=wall)
    try:
        async with s.client() as http:
            async with http.post(s.base + "/api/login", json={"password": PASSWORD}) as r:
                assert r.status == 429  # even the right password: 40 s still to wait
                assert r.headers["Retry-After"] == "40"
                assert (await r.json())["error"] == "too many failed logins: try again in 40 s"
            s.clock.now += 41
            for _ in range(3):
                await login(s, http, "guess again, again")
            async with http.post(s.base + "/api/login", json={"password": PASSWORD}) as r:
                assert r.headers["Retry-After"] == "120"  # still the second lockout: doubled
            s.clock.now += 121
            assert (await login(s, http))[0] == 200
    finally:
        await s.server.stop()
    stored = json.loads((s.web_dir / "lockout.json").read_text())
    assert stored["clients"] == {}  # the login wiped the slate, on disk too


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "unreadable"])
async def test_a_damaged_lockout_file_locks_logins_for_a_while_not_the_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    path = tmp_path / "web" / "lockout.json"
    path.parent.mkdir(mode=0o700)
    if damage == "garbage":
        path.write_bytes(b"\x00{not json")
    elif damage == "wrong shape":
        path.write_text(json.dumps({"version": 1, "clients": {"1.2.3.4": {"failures": "x"}}}))
    else:
        path.mkdir()  # cannot be read, nor replaced
    s = await start(tmp_path)
    try:
        assert any(
            r.levelno == logging.ERROR and "lockout.json" in r.getMessage() for r in caplog.records
        )
        async with s.client() as http:
            async with http.get(s.base + "/login") as r:
                assert r.status == 200  # the page is up
            async with http.post(s.base + "/api/login", json={"password": PASSWORD}) as r:
                assert r.status == 429  # fail safe: every login waits one lockout
                assert r.headers["Retry-After"] == "60"
            s.clock.now += 61
            assert (await login(s, http))[0] == 200
    finally:
        await s.server.stop()
    if damage != "unreadable":
        assert json.loads(path.read_text())["version"] == 1  # written afresh


async def test_a_burst_of_parallel_guesses_meets_the_lockout(srv: Server) -> None:
    async with srv.client() as http:
        answers = await asyncio.gather(*(login(srv, http, f"guess number {n}") for n in range(20)))
    codes = sorted(status for status, _ in answers)
    assert codes == [401] * 3 + [429] * 17  # only login_max_failures were checked


async def test_login_refuses_malformed_bodies(srv: Server) -> None:
    async with srv.client() as http:
        for body in (b"", b"{", b"[]", b'{"password": 5}', b'{"pass": "x"}', b"\xff\xfe"):
            headers = {"Content-Type": "application/json"}
            async with http.post(srv.base + "/api/login", data=body, headers=headers) as r:
                assert r.status == 400, body
        big = json.dumps({"password": "x" * 70_000})
        async with http.post(srv.base + "/api/login", data=big) as r:
            assert r.status == 413


async def test_the_first_password_is_set_with_the_setup_code(tmp_path: Path) -> None:
    s = await start(tmp_path, password=False)
    try:
        code = s.server.gate.setup_code
        assert code is not None
        async with s.client() as http:
            async with http.get(s.base + "/api/login") as r:
                assert await r.json() == {"password_set": False}
            status, body = await login(s, http, "anything at all")
            assert status == 409 and "setup code" in body["error"]
            bad = {"code": "AAAA-BBBB-CCCC", "password": PASSWORD}
            async with http.post(s.base + "/api/setup", json=bad) as r:
                assert r.status == 401
            short = {"code": code, "password": "short"}
            async with http.post(s.base + "/api/setup", json=short) as r:
                assert r.status == 400 and "10 to 256" in (await r.json())["error"]
            good = {"code": code.lower(), "password": PASSWORD}
            async with http.post(s.base + "/api/setup", json=good) as r:
                assert r.status == 200
            async with http.get(s.base + "/api/status") as r:
                assert r.status == 200  # logged in by the setup
            async with http.post(s.base + "/api/setup", json=good) as r:
                assert r.status == 409  # once only
        stored = auth.read_password(s.web_dir)
        assert stored is not None and auth.verify_password(PASSWORD, stored)
        assert (s.web_dir / "password").stat().st_mode & 0o777 == 0o600
    finally:
        await s.server.stop()


async def test_an_installed_box_takes_the_setup_code_first_boot_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The installer reads the code with ``edge provision status --show-code`` (the file
    first boot wrote): that code, not one the page makes up, opens the first login; it
    is never written to the log."""
    code_file = tmp_path / "etc" / "setup-code"
    code_file.parent.mkdir()
    code_file.write_text("WXYZ-2345-ABCD\n")
    with caplog.at_level(logging.INFO):
        s = await start(tmp_path, password=False, setup_code_file=code_file)
    try:
        assert s.server.gate.setup_code == "WXYZ-2345-ABCD"
        assert "WXYZ" not in caplog.text and "--show-code" in caplog.text
        async with s.client() as http:
            good = {"code": "WXYZ-2345-ABCD", "password": PASSWORD}
            async with http.post(s.base + "/api/setup", json=good) as r:
                assert r.status == 200
    finally:
        await s.server.stop()


TRAVERSALS = [
    "/static/../server.py",
    "/static/%2e%2e/server.py",
    "/static/..%2fserver.py",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static//etc/passwd",
    "/api/diagnostics/..%2f..%2fetc%2fpasswd",
    "/api/diagnostics/%2e%2e",
    "/api/diagnostics/../../etc/passwd",
    "/api/diagnostics/logs.txt%00.zip",
]


async def test_path_traversal_in_downloads_is_refused(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with srv.client(headers=headers) as http:
        for path in TRAVERSALS:
            url = aiohttp.client.URL(srv.base + path, encoded=True)
            async with http.get(url) as r:
                text = await r.text()
                assert r.status in (403, 404), (path, r.status)
                assert "root:" not in text and "import" not in text, path
        async with http.get(srv.base + "/api/diagnostics/logs.txt") as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"] == 'attachment; filename="logs.txt"'


async def test_the_diagnostics_bundle_is_redacted(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with (
        srv.client(headers=headers) as http,
        http.get(srv.base + "/api/diagnostics/bundle.zip") as r,
    ):
        assert r.status == 200 and r.content_type == "application/zip"
        data = await r.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        assert names == {
            "config-redacted.toml",
            "status.json",
            "events.json",
            "versions.json",
            "logs.txt",
        }
        config = z.read("config-redacted.toml").decode()
        assert "[device]" in config and 'id = "demo-box-01"' in config
        assert DEMO_API_TOKEN not in config
        assert json.loads(z.read("status.json"))["device"]["id"] == "box-1"
        assert "aiohttp" in json.loads(z.read("versions.json"))


async def test_diagnostics_scrub_the_secrets_the_page_is_given(tmp_path: Path) -> None:
    secret = "uplink-password-of-this-box"
    s = await start(tmp_path, secrets=(secret,))
    try:
        logging.getLogger("edge.uplink").error("connect as box:%s refused", secret)
        headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
        async with s.client(headers=headers) as http:
            async with http.get(s.base + "/api/diagnostics/logs.txt") as r:
                logs = await r.text()
            async with http.get(s.base + "/api/diagnostics/bundle.zip") as r:
                data = await r.read()
        assert "connect as box:[redacted] refused" in logs and secret not in logs
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                assert secret not in z.read(name).decode(), name
            assert "connect as box:[redacted] refused" in z.read("logs.txt").decode()
    finally:
        await s.server.stop()


async def test_config_check_gives_the_errors_of_edge_check_config(
    srv: Server, tmp_path: Path
) -> None:
    bad = DEMO_CONFIG.read_text().replace("port = 8080", "port = 80800")
    bad = bad.replace('account = "1234"', 'account = "12 34"')
    path = tmp_path / "site.toml"
    path.write_text(bad)
    cli = await asyncio.to_thread(
        subprocess.run,
        [*edge_cmd(), "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 2
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with srv.client(headers=headers) as http:
        body = {"text": bad, "name": str(path.name)}
        async with http.post(srv.base + "/api/config/check", json=body) as r:
            assert r.status == 422
            answer = await r.json()
        want = [line.replace(str(path), path.name) for line in cli.stderr.splitlines()]
        assert answer == {"ok": False, "problems": want}
        good = {"text": DEMO_CONFIG.read_text()}
        async with http.post(srv.base + "/api/config/check", json=good) as r:
            assert (r.status, await r.json()) == (200, {"ok": True, "problems": []})
        for malformed in ({}, {"text": 5}, {"text": "x", "name": "../etc/passwd"}, []):
            async with http.post(srv.base + "/api/config/check", json=malformed) as r:
                assert r.status == 400, malformed
        not_toml = {"text": "this is [not toml"}
        async with http.post(srv.base + "/api/config/check", json=not_toml) as r:
            problems = (await r.json())["problems"]
            assert r.status == 422 and "TOML syntax error" in problems[0]
        huge = {"text": "#" * (1024 * 1024 + 1)}
        async with http.post(srv.base + "/api/config/check", json=huge) as r:
            assert r.status == 413
        # applying needs the box's config path: this one was started without
        async with http.post(srv.base + "/api/config/apply", json=good) as r:
            assert r.status == 409 and "config file path" in (await r.json())["error"]


async def test_events_test_event_and_filters(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with srv.client(headers=headers) as http:
        async with http.post(srv.base + "/api/events/test") as r:
            assert (r.status, await r.json()) == (201, {"id": "e-1"})
        async with http.get(srv.base + "/api/events?state=acked&limit=5") as r:
            assert (await r.json())["events"] == []
        for query in (
            "state=lost",
            "limit=0",
            "limit=1001",
            "limit=many",
            "since=yesterday",
            "until=2026-11-28T03:00:00",  # no time zone: which 3 a.m.?
            "before=0",
            "before=99999999999999999999999",
        ):
            async with http.get(srv.base + "/api/events?" + query) as r:
                assert r.status == 400, query
                assert query.split("=")[0] in (await r.json())["error"], query
        await srv.journal.open(srv.web_dir / "journal.sqlite", 1_764_300_000_000)
        for seq in range(1, 6):  # one a minute from 2025-11-28T03:20Z
            event = box_event(Condition.MANUAL_TEST, False, f"test {seq}", 1_764_300_000_000)
            event = replace(event, occurred_at_ms=event.occurred_at_ms + seq * 60_000)
            srv.journal.queued(StoredEvent(event, seq, 1, 0, None), event.occurred_at_ms)
        query = "since=2025-11-28T03:22:00Z&until=2025-11-28T04:24:00%2B01:00&limit=1"
        async with http.get(srv.base + "/api/events?" + query) as r:
            page = await r.json()
        assert [e["seq"] for e in page["events"]] == [3] and page["next_before"] == 3
        async with http.get(f"{srv.base}/api/events?{query}&before=3") as r:
            page = await r.json()
        assert [e["seq"] for e in page["events"]] == [2] and page["next_before"] is None
        assert page["counts"] == {"queued": 5, "sent": 0, "acked": 0}


async def test_metrics_are_prometheus_text(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with srv.client(headers=headers) as http, http.get(srv.base + "/metrics") as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    lines = text.splitlines()
    assert "edge_outbox_depth 2" in lines
    assert "edge_uplink_connected 1" in lines
    assert 'edge_zone_active{zone="z1"} 1' in lines
    assert "edge_healthy 1" in lines
    for line in lines:  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


async def test_openapi_describes_every_route(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
    async with srv.client(headers=headers) as http, http.get(srv.base + "/api/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app = srv.server.app()
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith("/static")
    }
    assert described == served


async def test_tls_serves_a_certificate_made_at_first_start(tmp_path: Path) -> None:
    s = await start(tmp_path, tls=True)
    try:
        cert = s.web_dir / "tls" / "cert.pem"
        assert cert.is_file() and (s.web_dir / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False  # the certificate names localhost and 127.0.0.1
        async with (
            s.client(connector=aiohttp.TCPConnector(ssl=context)) as http,
            http.post(s.base + "/api/login", json={"password": PASSWORD}) as r,
        ):
            assert r.status == 200
            assert r.cookies["edge_session"]["secure"] is True
            assert "max-age" in r.headers["Strict-Transport-Security"]
        first = cert.read_bytes()
    finally:
        await s.server.stop()
    s = await start(tmp_path, tls=True)  # the same certificate is kept
    try:
        assert cert.read_bytes() == first
    finally:
        await s.server.stop()


async def test_a_live_stream_ends_with_its_session(srv: Server) -> None:
    """The page's pushed status lives no longer than the session that opened it: logged
    out (or expired), the stream ends; a stream alone does not keep a session alive."""
    async with srv.client() as http:
        status, body = await login(srv, http)
        assert status == 200
        csrf = body["csrf"]
        async with http.get(srv.base + "/api/status/stream") as stream:
            assert stream.status == 200
            first = await asyncio.wait_for(stream.content.readline(), 5)
            assert first.startswith(b"data: ")
            async with http.post(srv.base + "/api/logout", headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 200
            rest = await asyncio.wait_for(stream.content.read(), 5)  # the server ends it
        assert b"data: " not in rest
        async with http.get(srv.base + "/api/status/stream") as r:
            assert r.status == 401
