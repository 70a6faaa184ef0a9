"""The workstation's API on a real page and store (SQLite and PostgreSQL): the steps and
their refusals, sites managed by supervisors only and validated like the site files, the
main courante read back as JSON pages and as a CSV stream, per shift, site or operator."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from edge.clock import FakeClock
from edge.codes import Condition
from edge.station.web.exports import shift_bounds
from edge.station.web.server import OperatorPage
from tests.conftest import free_port
from tests.deskkit import PASSWORD, T0, event, file, operators
from tests.postgres import postgres  # noqa: F401 (fixture)
from tests.stores import MakeStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def page(make_store: MakeStore) -> AsyncIterator[OperatorPage]:
    store = make_store()
    store.open()
    operators(store)
    port = free_port()
    served = OperatorPage(store, "127.0.0.1", port, FakeClock(T0 / 1000 + 10), poll_s=0.05)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()
        store.close()


async def client(page: OperatorPage, name: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(f"http://127.0.0.1:{page.port}",
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))  # fmt: skip
    async with http.post("/api/login", json={"name": name, "password": PASSWORD}) as r:
        assert r.status == 200
        http.headers["X-CSRF-Token"] = (await r.json())["csrf"]
    return http


async def call(http: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    method = http.get if body is None else http.post
    kwargs = {} if body is None else {"json": body}
    async with method(path, **kwargs) as r:
        data = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, data


async def test_steps_refused_in_words_the_page_can_say(page: OperatorPage) -> None:
    file(page.store, event("a1", 1))
    alice, bob = await client(page, "alice"), await client(page, "bob")
    try:
        (row,) = (await call(alice, "/api/queue"))[1]["rows"]
        base = f"/api/incidents/{row['id']}"
        assert (await call(alice, "/api/events/a1/incident"))[1] == {"incident": row["id"]}
        assert await call(alice, base + "/take", {}) == (200, {"ok": True})
        assert await call(bob, base + "/take", {}) == (409, {"error": "held", "holder": "alice"})
        assert (await call(bob, base + "/steps", {"action": "dispatch", "to": "police"}))[1] == {
            "error": "not_holder", "holder": "alice",
        }  # fmt: skip
        assert await call(alice, base + "/transfer", {"to": "nobody"}) == (
            400, {"error": "no_operator"},
        )  # fmt: skip
        assert (await call(alice, base + "/close", {}))[1] == {"error": "no_outcome",
                                                               "unrestored": "1"}  # fmt: skip
        assert (await call(alice, base + "/outcome", {"code": "maybe"}))[0] == 400
        assert (await call(alice, base + "/outcome", {"code": "false_cause",
                                                      "cause": "a cat"}))[0] == 200  # fmt: skip
        assert (await call(alice, base + "/close", {"reason": " "}))[1]["error"] == "not_restored"
        assert (await call(alice, base + "/requests", {"type": "snapshot", "camera": "c",
                                                       "device": "gw-1"}))[1] == {
            "error": "no_broker"
        }  # fmt: skip
        assert (await call(alice, base + "/close", {"reason": "detector to be replaced"}))[0] == 200
        assert (await call(alice, "/api/queue"))[1]["rows"] == []
        assert (await call(alice, "/api/holders"))[0] == 403  # supervisors only
    finally:
        await alice.close()
        await bob.close()


async def test_sites_are_a_supervisor_s_and_validated_like_the_files(page: OperatorPage) -> None:
    sam, alice = await client(page, "sam"), await client(page, "alice")
    site = {"id": "shop", "name": "Shop", "address": "1 rue X", "latitude": 48.8,
            "longitude": 2.3, "devices": ["gw-1"], "instructions": {"fire": ["Call 18"]},
            "contacts": [{"name": "Paul", "role": "keyholder", "phone": "+33 6 12"}]}  # fmt: skip
    try:
        assert (await call(alice, "/api/sites", site))[0] == 403
        assert (await call(alice, "/api/sites"))[0] == 403
        status, body = await call(sam, "/api/sites", {**site, "latitude": 98.0})
        assert status == 400 and body["error"] == "invalid_site"
        assert body["problems"] == [
            "site: sites[0](id='shop').latitude = 98.0: Input should be less than or equal to 90"
        ]
        assert await call(sam, "/api/sites", site) == (200, {"ok": True, "created": True})
        assert (await call(sam, "/api/sites", {**site, "id": "other"}))[1]["problems"] == [
            "gw-1 is on site 'shop'"
        ]
        status, listed = await call(sam, "/api/sites")
        assert [(s["id"], s["devices"]) for s in listed] == [("shop", ["gw-1"])]
        assert (await call(sam, "/api/sites/shop"))[1]["instructions"] == {"fire": ["Call 18"]}
        file(page.store, event("f1", 1, Condition.FIRE))
        (row,) = (await call(sam, "/api/queue"))[1]["rows"]
        assert row["site"] == "Shop"
        detail = (await call(sam, f"/api/incidents/{row['id']}"))[1]
        assert detail["instructions"] == [
            {"category": "fire", "steps": [{"index": 0, "text": "Call 18", "done": None}]}
        ]
        assert (await call(sam, "/api/sites/shop/remove", {}))[0] == 200
        assert (await call(sam, "/api/sites/shop"))[0] == 404
    finally:
        await sam.close()
        await alice.close()


async def test_the_main_courante_as_pages_and_as_a_csv_stream(page: OperatorPage) -> None:
    file(page.store, event("a1", 1))
    alice = await client(page, "alice")
    try:
        (row,) = (await call(alice, "/api/queue"))[1]["rows"]
        steps = f"/api/incidents/{row['id']}/steps"
        await call(alice, f"/api/incidents/{row['id']}/take", {})
        await call(alice, steps, {"action": "call", "contact": "Paul Martin", "phone": "+33 6",
                                  "result": "no_answer"})  # fmt: skip
        await call(alice, steps, {"action": "comment", "text": "voisin prévenu, « RAS »"})
        body = (await call(alice, "/api/courante?operator=alice"))[1]
        assert [e["words"] for e in body["entries"]] == [
            "Prise en charge", "Appel Paul Martin (+33 6) : Pas de réponse", "Commentaire",
        ]  # fmt: skip
        async with alice.get("/api/courante.csv?lang=en&site=box:gw-1") as r:
            assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
            assert r.headers["Content-Disposition"].startswith('attachment; filename="courante-')
            raw = await r.read()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0] == ["Time", "Operator", "Site", "Incident", "Action", "Detail", "Text",
                           "Line", "Corrects line"]  # fmt: skip
        assert [(r[1], r[4], r[5], r[6]) for r in rows[1:]] == [
            ("Station", "Opened", "Incident opened: Intrusion", ""),
            ("alice", "Take", "Taken in charge", ""),
            ("alice", "Call", "Call Paul Martin (+33 6): No answer", ""),
            ("alice", "Comment", "Comment", "voisin prévenu, « RAS »"),
        ]
        assert datetime.fromisoformat(rows[1][0]).utcoffset() is not None  # with its offset
        async with alice.get("/api/courante.csv?site=site:elsewhere") as r:
            assert (await r.read()).count(b"\r\n") == 1  # the header only
        assert (await call(alice, "/api/courante?since=2030-01-01&until=2020-01-01"))[0] == 400
    finally:
        await alice.close()


def test_a_shift_is_between_two_shift_hours_in_the_station_s_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    at = int(datetime(2026, 3, 29, 10, 30, tzinfo=paris).timestamp() * 1000)  # DST day
    since, until = shift_bounds(at, (6, 14, 22), paris)
    assert datetime.fromtimestamp(since / 1000, paris).hour == 6
    assert (until - since) / 3_600_000 == 8
    before = shift_bounds(int(datetime(2026, 3, 29, 3, 0, tzinfo=paris).timestamp() * 1000),
                          (6, 14, 22), paris)  # fmt: skip
    assert datetime.fromtimestamp(before[0] / 1000, paris).day == 28  # began 22:00 the day before
    assert (before[1] - before[0]) / 3_600_000 == 7  # the night the clocks go forward
    previous = shift_bounds(at, (6, 14, 22), paris, back=1)
    assert previous[1] == since
