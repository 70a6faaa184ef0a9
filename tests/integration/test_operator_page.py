"""The operator's workstation against a real broker, receiver and store; in real headless
Chromium too.

A simulated box (an MQTT client speaking the box's protocol) sends a fire alarm whose
``extra`` announces five stills and an H.264 clip made by ffmpeg, as a real box's does;
the workstation must put it in its queue without a reload, show the media, and write
every view and step to the main courante.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.codes import Condition
from edge.protocol import encode_event
from edge.station import courante, oplog
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import StationStore
from edge.station.web.server import OperatorPage
from tests.browser.conftest import Tab, browser, chromium  # noqa: F401 (fixtures)
from tests.conftest import Broker, free_port
from tests.deskkit import event, video_extra
from tests.integration.test_station import Device, complete, until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

OPERATOR, PASSWORD = "alice", "correct horse battery"


def fire_alarm(event_id: str, seq: int) -> Any:
    return event(event_id, seq, Condition.FIRE, extra=video_extra(event_id))


def media_files(tmp: Path) -> tuple[bytes, bytes]:
    clip, still = tmp / "clip.mp4", tmp / "still.jpg"
    for args in (
        ["-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=10", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(clip)],
        ["-f", "lavfi", "-i", "testsrc=size=160x120", "-frames:v", "1", str(still)],
    ):  # fmt: skip
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)
    return clip.read_bytes(), still.read_bytes()


@dataclass
class Station:
    receiver: Receiver
    page: OperatorPage
    box: Device
    base: str
    clip: bytes
    still: bytes

    async def alarm(self, event_id: str, seq: int) -> None:
        """The box sends the alarm, then its stills and clip; until all are stored."""
        await self.box.send(self.box.topics.events, encode_event(fire_alarm(event_id, seq)))
        for i in range(5):
            await self.box.chunks(self.still, media_id=f"{event_id}-s{i}", event_id=event_id,
                                  chunk_bytes=4_000)  # fmt: skip
        await self.box.chunks(self.clip, media_id=f"{event_id}-clip", event_id=event_id,
                              chunk_bytes=4_000, kind="clip")  # fmt: skip
        await self.box.until(complete(f"{event_id}-clip"), 10)


@pytest.fixture
async def station(broker: Broker, tmp_path: Path) -> AsyncIterator[Station]:
    db = tmp_path / "station.sqlite"
    clip, still = media_files(tmp_path)
    receiver = Receiver(StationSettings(broker.host, broker.port, db))
    connected = asyncio.Event()
    task = asyncio.create_task(receiver.run(connected.set), name="station")
    await asyncio.wait_for(connected.wait(), 10)
    store = StationStore(db)
    store.open()
    with store.transaction() as tx:
        oplog.set_operator(tx, OPERATOR, PASSWORD)
    port = free_port()
    page = OperatorPage(store, "127.0.0.1", port, poll_s=0.05)
    await page.start()
    box = Device(broker)
    await box.start()
    await box.online()
    await until(lambda: receiver.store.devices(), "the station to hear the box")
    try:
        yield Station(receiver, page, box, f"http://127.0.0.1:{port}", clip, still)
    finally:
        await box.stop()
        await page.stop()
        store.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def logged_in(base: str) -> aiohttp.ClientSession:
    """A client logged in, sending the session's CSRF token with every request."""
    http = aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))  # an IP host
    async with http.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}) as r:
        assert r.status == 200
        http.headers["X-CSRF-Token"] = (await r.json())["csrf"]
    return http


async def test_login_is_required_and_checked(station: Station) -> None:
    async with aiohttp.ClientSession(station.base) as http:
        async with http.get("/api/queue") as r:
            assert r.status == 401
        async with http.get("/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/login?next=/"
        async with http.post("/api/login", json={"name": OPERATOR, "password": "wrong"}) as r:
            assert r.status == 401
        async with http.post("/api/login", json={"name": "bob", "password": PASSWORD}) as r:
            assert r.status == 401
        async with http.post("/api/login", data=b"not json") as r:
            assert r.status == 400
        for _ in range(3):  # five failures from one address, then a pause
            async with http.post("/api/login", json={"name": OPERATOR, "password": "x"}) as r:
                assert r.status == 401
        async with http.post("/api/login", json={"name": OPERATOR, "password": PASSWORD}) as r:
            assert r.status == 429
            assert await r.text() == "too many failed logins: try again in 300 s"


async def test_the_incident_its_media_and_the_main_courante(station: Station) -> None:
    await station.alarm("ev-fire", 1)
    http = await logged_in(station.base)
    try:
        async with http.get("/api/queue") as r:
            (row,) = (await r.json())["rows"]
        assert (row["category"], row["top"]["alarm_id"], row["media"]) == (
            "fire", "ev-fire", {"expected": 6, "ready": 6, "lost": 0},
        )  # fmt: skip
        incident = row["id"]
        async with http.get(f"/api/incidents/{incident}") as r:
            detail = await r.json()
        (alarm,) = detail["alarms"]
        ((plan,),) = [alarm["videos"]]
        assert [s["offset_s"] for s in plan["stills"]] == [-1, -0.5, 0, 0.5, 1]
        assert (plan["clip_id"], plan["pre_s"]) == ("ev-fire-clip", 5.0)
        assert {m["state"] for m in alarm["media"]} == {"ready"}
        assert alarm["zone"]["name"] == "Kitchen smoke" and alarm["cid"] == "1110"
        assert detail["boxes"][0]["device"] == "gw-1"
        for _ in range(3):  # a clip is fetched in ranges: one line in the courante
            async with http.get(f"/media/gw-1/ev-fire-clip?incident={incident}") as r:
                assert r.headers["Content-Type"] == "video/mp4"
                assert await r.read() == station.clip
        with station.page.store.transaction() as tx:
            access = oplog.accesses(tx)
        assert [(a["operator"], a["media_id"]) for a in access] == [(OPERATOR, "ev-fire-clip")] * 3
        steps = f"/api/incidents/{incident}/steps"
        for body, status in (
            ({"action": "comment", "text": "smoke seen on the stills"}, 200),
            ({"action": "comment", "text": "  "}, 400),
            ({"action": "delete"}, 400),
            ({"action": "call", "contact": "Paul", "phone": "1", "result": "reached"}, 409),
        ):
            async with http.post(steps, json=body) as r:
                assert r.status == status, body
        async with http.post(steps, data="action=comment") as r:
            assert r.status == 415  # a cross-site form cannot act for the operator
        async with http.post("/api/incidents/nope/steps", json={"action": "comment",
                                                                "text": "x"}) as r:  # fmt: skip
            assert r.status == 404
        async with http.get(f"/api/incidents/{incident}") as r:
            lines = (await r.json())["courante"]
        assert [(x["operator"], x["action"], x["text"]) for x in lines] == [
            ("", "opened", ""),
            (OPERATOR, "media_view", ""),
            (OPERATOR, "comment", "smoke seen on the stills"),
        ]
        assert lines[1]["words"] == "Séquence consultée : ev-fire-clip"  # French by default
    finally:
        await http.close()


async def test_new_alarms_are_pushed_to_open_pages(station: Station) -> None:
    http = await logged_in(station.base)
    try:
        async with http.get("/api/queue") as r:
            since = (await r.json())["v"]
        async with http.get(f"/api/stream?since={since}") as stream:
            await stream.content.readline()  # ": hello"
            box = station.box
            await box.send(box.topics.events, encode_event(fire_alarm("ev-live", 1)))
            got: dict[str, Any] = {}
            async with asyncio.timeout(10):
                while not got:
                    line = await stream.content.readline()
                    if line.startswith(b"data: "):
                        got = json.loads(line[6:])
        assert [(r["top"]["alarm_id"], r["category"]) for r in got["rows"]] == [("ev-live", "fire")]
        assert got["v"] > since
    finally:
        await http.close()


@pytest.mark.browser
@pytest.mark.slow
async def test_in_chromium_an_alarm_appears_without_reload_and_its_clip_plays(
    station: Station,
    browser: Tab,  # noqa: F811 (the fixture)
) -> None:
    tab = browser
    await tab.goto(station.base + "/")
    await tab.wait_for("location.pathname === '/login'", what="redirect to /login")
    assert await tab.eval("location.search") == "?next=/"
    await tab.wait_for("document.getElementById('submit').textContent !== ''", what="words")
    await tab.type("#name", OPERATOR)
    await tab.type("#password", "not the password")
    await tab.click("#submit")
    await tab.wait_for("document.getElementById('error').textContent !== ''", what="refusal")
    assert await tab.text("#error") == "Nom ou mot de passe incorrect."
    await tab.eval("document.getElementById('password').value = ''")
    await tab.type("#password", PASSWORD)
    await tab.click("#submit")
    await tab.wait_for("document.body.dataset.ready === '1'", what="the page after login")
    assert await tab.eval("document.querySelectorAll('#queue li').length") == 0
    await tab.eval("window.marker = 'no reload'")
    await station.alarm("ev-browser", 1)
    await tab.wait_for("document.querySelectorAll('#queue li').length === 1", what="the alarm")
    assert await tab.eval("window.marker") == "no reload"
    assert "p1" in await tab.eval("document.querySelector('#queue li').className")
    await tab.click("#queue li")
    await tab.wait_for(
        "document.querySelectorAll('#stills img.still').length === 5 && Array.from("
        "document.querySelectorAll('#stills img.still')).every(i => i.naturalWidth > 0)",
        what="the stills",
    )
    duration = await tab.wait_for(
        "(() => { const v = document.getElementById('clip'); "
        "return v && v.readyState >= 1 && isFinite(v.duration) && v.duration; })()",
        what="the clip's duration",
    )
    assert 1.5 <= duration <= 2.5
    await tab.type("#comment", "guard on the way")
    await tab.click("#add-comment")
    await tab.wait_for(
        "[...document.querySelectorAll('#log li')].some(l => l.innerText.includes('guard on'))",
        what="the comment in the courante",
    )
    assert await tab.text("#who") == "alice (opérateur)"
    await tab.goto(station.base + "/events/ev-browser")  # the DC-09 video reference
    await tab.wait_for("document.querySelectorAll('#stills img.still').length === 5", what="linked")
    await tab.click("#logout")
    await tab.wait_for("location.pathname === '/login'", what="logged out")
    assert station.page.gate.sessions.active(station.page.clock.monotonic()) == []
    with station.page.store.read() as db:
        entries = courante.page(db, courante.Filter(), None, 100)
    assert ("alice", "comment", "guard on the way") in [
        (e.operator, e.action, e.text) for e in entries
    ]
