"""The operator page's locks, on a real aiohttp server and a real store (SQLite and
PostgreSQL): login, sessions that expire, CSRF and Origin, roles, a lockout that
survives a restart, the hex passwords an older station stored.

The page runs on a fake clock (``edge.clock.FakeClock``): expiry and lockouts are
tested without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from edge import auth
from edge.clock import FakeClock
from edge.station import courante, oplog, views
from edge.station.inbound import EventReceived
from edge.station.store import StationStore
from edge.station.web.gate import Security
from edge.station.web.server import OperatorPage
from tests.conftest import free_port
from tests.postgres import postgres  # noqa: F401 (fixture)
from tests.stores import MakeStore
from tests.unit.test_station_store import T0, event_message

pytestmark = pytest.mark.timeout(60)

ALICE, BOB, PASSWORD = "alice", "bob", "correct horse battery"
WALL = 1_800_000_000.0
PUBLIC = {"/login", "/api/login", "/i18n/i18n.js", "/i18n/fr.json"}  # the page's words


@dataclass
class Station:
    """A store and its operator page; :meth:`restart` starts both again on the same data."""

    make_store: MakeStore
    security: Security
    clock: FakeClock = field(default_factory=lambda: FakeClock(WALL))
    store: StationStore | None = None
    page: OperatorPage | None = None
    base: str = ""

    async def start(self) -> OperatorPage:
        self.store = self.make_store()
        self.store.open()
        port = free_port()
        self.page = OperatorPage(
            self.store, "127.0.0.1", port, self.clock, poll_s=0.05, security=self.security
        )
        await self.page.start()
        self.base = f"http://127.0.0.1:{port}"
        return self.page

    async def stop(self) -> None:
        if self.page is not None:
            await self.page.stop()
        if self.store is not None:
            self.store.close()

    async def restart(self, down_s: float) -> None:
        """Stop, ``down_s`` seconds of wall time, then a new process (a new monotonic clock)."""
        await self.stop()
        self.clock = FakeClock(self.clock.time() + down_s)
        await self.start()

    def tx(self) -> Any:
        assert self.store is not None
        return self.store.transaction()

    def client(self, **kw: Any) -> aiohttp.ClientSession:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        return aiohttp.ClientSession(self.base, cookie_jar=jar, **kw)

    @property
    def origin(self) -> str:
        return self.base


@pytest.fixture
async def station(make_store: MakeStore) -> AsyncIterator[Station]:
    s = Station(make_store, Security(login_max_failures=3, lockout_s=60))
    await s.start()
    with s.tx() as db:
        oplog.set_operator(db, ALICE, PASSWORD)
        oplog.set_operator(db, BOB, PASSWORD, "supervisor")
    assert s.store is not None
    s.store.commit([EventReceived("gw-1", event_message("ev-1", "gw-1", 1))], T0)
    try:
        yield s
    finally:
        await s.stop()


async def login(
    http: aiohttp.ClientSession, name: str = ALICE, password: str = PASSWORD, **kw: Any
) -> tuple[int, Any]:
    async with http.post("/api/login", json={"name": name, "password": password}, **kw) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


def routes(page: OperatorPage) -> list[tuple[str, str]]:
    """(method, path) of every route of the page, placeholders filled in."""
    out = []
    for route in page.app().router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        fill = (
            ("{event_id}", "ev-1"), ("{device}", "gw-1"), ("{media_id}", "m"), ("{lang}", "fr"),
            ("{incident_id}", "inc"), ("{site_id}", "site"), ("{name}", "operator.js"),
        )  # fmt: skip
        for name, value in fill:
            path = path.replace(name, value)
        if route.method in ("GET", "POST"):
            out.append((route.method, path))
    assert len(out) >= 12
    return out


def actions(s: Station) -> list[dict[str, Any]]:
    """The operators' lines of the main courante (the station's own left out)."""
    with s.tx() as db:
        entries = courante.page(db, courante.Filter(), None, 1000)
    return [{"operator": e.operator, "action": e.action} for e in entries if e.operator]


def comment_path(s: Station) -> str:
    """A state change: a comment on the incident of ev-1."""
    with s.tx() as db:
        return f"/api/incidents/{views.incident_of_event(db, 'ev-1')}/steps"


COMMENT = {"action": "comment", "text": "seen"}


# -- who may come in ---------------------------------------------------------------


async def test_every_route_refuses_an_unauthenticated_request(station: Station) -> None:
    assert station.page is not None
    private = [(m, p) for m, p in routes(station.page) if p not in PUBLIC]
    async with station.client() as http:
        for cookie in (None, "forged-session-id"):
            if cookie is not None:
                http.cookie_jar.update_cookies({"station_session": cookie})
            for method, path in private:
                async with http.request(method, path, json={}, allow_redirects=False) as r:
                    if path.startswith(("/api/", "/media/")):
                        assert (r.status, await r.text()) == (401, "log in first"), path
                    else:
                        assert r.status == 302 and r.headers["Location"].startswith("/login?next=")
    assert actions(station) == []


async def test_login_answers_who_and_the_csrf_token_and_sets_a_locked_down_cookie(
    station: Station,
) -> None:
    async with station.client() as http:
        async with http.post("/api/login", json={"name": BOB, "password": PASSWORD}) as r:
            assert r.status == 200
            body = await r.json()
            cookie = r.cookies["station_session"]
            assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
            assert r.headers["X-Frame-Options"] == "DENY"
        assert (body["operator"], body["role"]) == (BOB, "supervisor")
        async with http.get("/api/session") as r:
            assert await r.json() == {"operator": BOB, "role": "supervisor", "csrf": body["csrf"],
                                      "escalate_s": 60.0, "commands": False}  # fmt: skip
        async with http.get("/login") as r:
            assert r.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        # a name that is not an operator's, and bodies that are not a login
        assert (await login(http, "nobody"))[0] == 401
        for data in (b'{"name": 5, "password": "x"}', b"[]", b"{"):
            headers = {"Content-Type": "application/json"}
            async with http.post("/api/login", data=data, headers=headers) as r:
                assert r.status == 400, data


# -- CSRF and Origin ------------------------------------------------------------------


async def test_every_state_change_needs_the_session_s_csrf_token(station: Station) -> None:
    assert station.page is not None
    unsafe = [p for m, p in routes(station.page) if m == "POST" and p not in PUBLIC]
    assert set(unsafe) == {
        "/api/logout", "/api/sites", "/api/sites/site/remove",
        *(f"/api/incidents/inc/{step}" for step in
          ("take", "release", "transfer", "steps", "outcome", "close", "requests")),
    }  # fmt: skip
    async with station.client() as http:
        _, body = await login(http)
        csrf = body["csrf"]
        for path in [*unsafe, comment_path(station)]:
            for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": csrf + "x"}):
                async with http.post(path, json=COMMENT, headers=headers) as r:
                    assert (r.status, await r.text()) == (403, "missing or wrong CSRF token")
        assert actions(station) == []
        async with http.get("/api/queue") as r:
            assert r.status == 200  # still logged in: the refused logout did nothing
        headers = {"X-CSRF-Token": csrf}
        async with http.post(comment_path(station), json=COMMENT, headers=headers) as r:
            assert r.status == 200
    assert [a["operator"] for a in actions(station)] == [ALICE]


async def test_a_token_works_only_with_its_own_session(station: Station) -> None:
    async with station.client() as alice, station.client() as bob:
        _, a = await login(alice)
        await login(bob, BOB)
        headers = {"X-CSRF-Token": a["csrf"]}
        async with bob.post(comment_path(station), json=COMMENT, headers=headers) as r:
            assert r.status == 403
    assert actions(station) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page.html"},
    ],
)
async def test_a_foreign_origin_is_refused_even_with_the_right_token(
    station: Station, headers: dict[str, str]
) -> None:
    async with station.client() as http:
        _, body = await login(http)
        sent = {"X-CSRF-Token": body["csrf"], **headers}
        async with http.post(comment_path(station), json=COMMENT, headers=sent) as r:
            assert (r.status, await r.text()) == (403, "cross-site request refused")
        async with http.post("/api/logout", json={}, headers=sent) as r:
            assert r.status == 403
        # the login itself, too: another site cannot log a browser in
        async with station.client() as other:
            status, text = await login(other, headers=headers)
            assert (status, text) == (403, "cross-site request refused")
        assert actions(station) == []
        own = {"X-CSRF-Token": body["csrf"], "Origin": station.origin}
        async with http.post(comment_path(station), json=COMMENT, headers=own) as r:
            assert r.status == 200
        own.pop("Origin")  # a browser that sends only a Referer
        own["Referer"] = station.origin + "/events/ev-1"
        async with http.post(comment_path(station), json=COMMENT, headers=own) as r:
            assert r.status == 200


async def test_an_origin_given_on_the_command_line_is_allowed(
    make_store: MakeStore,
) -> None:
    proxy = "https://station.example.com"
    s = Station(make_store, Security(origins=(proxy,)))
    await s.start()
    try:
        with s.tx() as db:
            oplog.set_operator(db, ALICE, PASSWORD)
        async with s.client() as http:
            name = {"name": ALICE, "password": PASSWORD}
            async with http.post("/api/login", json=name, headers={"Origin": proxy}) as r:
                assert r.status == 200
                body = await r.json()
                cookie = r.cookies["station_session"]
                assert cookie["secure"] is True  # reached over https: the cookie says so
            sent = {
                "X-CSRF-Token": body["csrf"],
                "Origin": proxy,
                "Cookie": f"station_session={cookie.value}",  # as the browser would, over TLS
            }
            async with http.post("/api/logout", json={}, headers=sent) as r:
                assert r.status == 200
            assert (await login(http, headers={"Origin": "https://evil.example.com"}))[0] == 403
    finally:
        await s.stop()


# -- sessions that end ------------------------------------------------------------------


async def test_an_idle_session_expires(station: Station) -> None:
    async with station.client() as http:
        await login(http)
        station.clock.advance(1799)
        async with http.get("/api/queue") as r:
            assert r.status == 200
        station.clock.advance(1801)  # default: 30 min without a request
        async with http.get("/api/queue") as r:
            assert r.status == 401
        async with http.get("/", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (302, "/login?next=/")


async def test_a_busy_session_ends_12_hours_after_its_login(station: Station) -> None:
    async with station.client() as http:
        await login(http)
        for _ in range(43):
            station.clock.advance(1000)
            async with http.get("/api/queue") as r:
                assert r.status == 200
        station.clock.advance(201)  # 43,201 s after the login
        async with http.get("/api/queue") as r:
            assert r.status == 401
        assert (await login(http))[0] == 200


async def test_expiry_follows_the_page_s_settings(make_store: MakeStore) -> None:
    s = Station(make_store, Security(session_idle_s=60, session_max_s=600))
    await s.start()
    try:
        with s.tx() as db:
            oplog.set_operator(db, ALICE, PASSWORD)
        async with s.client() as http:
            await login(http)
            s.clock.advance(61)
            async with http.get("/api/queue") as r:
                assert r.status == 401
    finally:
        await s.stop()


async def test_logout_ends_the_session_and_its_live_stream(station: Station) -> None:
    assert station.page is not None and station.store is not None
    station.page.keepalive_s = 0.1
    async with station.client() as http:
        _, body = await login(http)
        async with http.get("/api/stream") as stream:
            assert await stream.content.readline() == b": hello\n"
            async with http.post(
                "/api/logout", json={}, headers={"X-CSRF-Token": body["csrf"]}
            ) as r:
                assert r.status == 200
            async with asyncio.timeout(5):
                rest = await stream.content.read()  # the stream ends
            assert b"data:" not in rest
        async with http.get("/api/queue") as r:
            assert r.status == 401


async def test_an_expired_session_s_stream_gets_no_more_alarms(station: Station) -> None:
    assert station.page is not None and station.store is not None
    async with station.client() as http:
        await login(http)
        async with http.get("/api/stream") as stream:
            await stream.content.readline()
            station.clock.advance(1801)
            station.store.commit([EventReceived("gw-1", event_message("ev-2", "gw-1", 2))], T0)
            async with asyncio.timeout(5):
                rest = await stream.content.read()
        assert b"ev-2" not in rest


# -- roles -----------------------------------------------------------------------------


async def test_only_a_supervisor_lists_the_operators_and_who_is_logged_in(
    station: Station,
) -> None:
    async with station.client() as alice, station.client() as bob:
        await login(alice)
        station.clock.advance(5)
        await login(bob, BOB)
        async with alice.get("/api/operators") as r:
            assert (r.status, await r.text()) == (403, "only a supervisor may do this")
        station.clock.advance(2)
        async with bob.get("/api/operators") as r:
            assert r.status == 200
            body = await r.json()
    assert body["operators"] == [
        {"name": ALICE, "role": "operator"},
        {"name": BOB, "role": "supervisor"},
    ]
    assert [(x["operator"], x["role"], x["idle_s"]) for x in body["logged_in"]] == [
        (ALICE, "operator", 2.0),  # her last request: the refused one
        (BOB, "supervisor", 0.0),
    ]
    assert body["logged_in"][1]["login_ms"] - body["logged_in"][0]["login_ms"] == 5000


async def test_a_role_changed_in_the_store_applies_at_the_next_login(station: Station) -> None:
    async with station.client() as http:
        assert (await login(http))[1]["role"] == "operator"
        with station.tx() as db:
            oplog.set_operator(db, ALICE, PASSWORD, "supervisor")
        assert (await login(http))[1]["role"] == "supervisor"
        async with http.get("/api/operators") as r:
            assert r.status == 200


# -- the lockout, across restarts ---------------------------------------------------------


async def test_the_lockout_survives_a_restart(station: Station) -> None:
    async with station.client() as http:
        for _ in range(3):  # login_max_failures = 3
            assert await login(http, password="guess guess guess") == (
                401,
                "wrong name or password",
            )
        async with http.post("/api/login", json={"name": ALICE, "password": PASSWORD}) as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "60")
    with station.tx() as db:
        stored = json.loads(oplog.read_lockout(db) or "")
    assert stored["clients"]["127.0.0.1"]["locked_until"] == WALL + 60
    await station.restart(down_s=20)
    async with station.client() as http:
        async with http.post("/api/login", json={"name": ALICE, "password": PASSWORD}) as r:
            assert r.status == 429  # even the right password: 40 s still to wait
            assert r.headers["Retry-After"] == "40"
            assert await r.text() == "too many failed logins: try again in 40 s"
        station.clock.advance(41)
        for _ in range(3):
            await login(http, password="guess again, again")
        async with http.post("/api/login", json={"name": ALICE, "password": PASSWORD}) as r:
            assert r.headers["Retry-After"] == "120"  # still the second lockout: doubled
        station.clock.advance(121)
        assert (await login(http))[0] == 200
    with station.tx() as db:
        assert json.loads(oplog.read_lockout(db) or "")["clients"] == {}  # the slate wiped


async def test_a_burst_of_parallel_guesses_meets_the_lockout(station: Station) -> None:
    async with station.client() as http:
        answers = await asyncio.gather(
            *(login(http, password=f"guess number {n}") for n in range(12))
        )
    assert sorted(status for status, _ in answers) == [401] * 3 + [429] * 9


async def test_a_damaged_lockout_row_locks_logins_for_a_while_not_the_page(
    station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    await station.stop()
    station.store = station.make_store()
    station.store.open()
    with station.tx() as db:
        oplog.write_lockout(db, "garbage {not json")
    station.store.close()
    await station.restart(down_s=1)
    assert any(
        r.levelno == logging.ERROR and "login_lockout is lost" in r.getMessage()
        for r in caplog.records
    )
    async with station.client() as http:
        async with http.get("/login") as r:
            assert r.status == 200  # the page is up
        async with http.post("/api/login", json={"name": ALICE, "password": PASSWORD}) as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "60")  # fail safe
        station.clock.advance(61)
        assert (await login(http))[0] == 200
    with station.tx() as db:
        assert json.loads(oplog.read_lockout(db) or "")["version"] == 1  # written afresh


# -- the hashes an older station stored -------------------------------------------------------


def hex_line(password: str, salt: bytes) -> str:
    """An operator's hash as the station wrote it before edge.auth: hex, 64-byte digest."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


async def test_a_hex_password_still_logs_in_and_is_rewritten_in_the_one_format(
    station: Station,
) -> None:
    old = hex_line("an older password", b"0123456789abcdef")
    with station.tx() as db:
        db.execute("INSERT INTO operators (name, hash) VALUES (?, ?)", ("carol", old))
    async with station.client() as http:
        assert (await login(http, "carol", "an older passworD"))[0] == 401
        with station.tx() as db:
            assert (oplog.account(db, "carol") or pytest.fail()).hash == old  # untouched
        status, body = await login(http, "carol", "an older password")
        assert (status, body["role"]) == (200, "operator")  # an account of old: an operator
    with station.tx() as db:
        new = (oplog.account(db, "carol") or pytest.fail()).hash
    assert new != old and new.startswith("scrypt$16384$8$1$") and not auth.needs_rehash(new)
    assert auth.verify_password("an older password", new)
    async with station.client() as http:
        assert (await login(http, "carol", "an older password"))[0] == 200
