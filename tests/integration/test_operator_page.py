"""The operator page against a real broker, receiver and store; in real headless Chromium too.

A simulated box (an MQTT client speaking the box's protocol) sends an alarm
with five stills (their offsets in the event) and an H.264 clip made by
ffmpeg; the page must show it without a reload and play the clip.
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

from edge import codes
from edge.codes import Condition, ZoneType
from edge.model import Event, ZoneRef
from edge.protocol import EventMessage, encode_event
from edge.station import oplog
from edge.station.receiver import Receiver, StationSettings
from edge.station.store import StationStore
from edge.station.web.server import OperatorPage
from tests.browser.conftest import Tab, browser, chromium  # noqa: F401 (fixtures)
from tests.conftest import Broker, free_port
from tests.integration.test_station import Device, complete, until
from tests.unit.test_station_store import T0

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]

OPERATOR, PASSWORD = "alice", "correct horse battery"
OFFSETS = ("-1", "-0.5", "0", "0.5", "1")


def fire_alarm(event_id: str, seq: int) -> EventMessage:
    event = Event(
        id=event_id,
        kind=codes.kind(Condition.FIRE, False),
        condition=Condition.FIRE,
        codes=codes.codes(Condition.FIRE, False),
        occurred_at_ms=T0,
        partition=1,
        armed=False,
        zone=ZoneRef("kitchen", "Kitchen smoke", ZoneType.FIRE, 4),
        text="Kitchen smoke: alarm",
        extra={
            "still_ids": " ".join(f"{event_id}-s{i}" for i in range(5)),
            "still_offsets_s": " ".join(OFFSETS),
        },
    )
    return EventMessage(event, seq, "gw-1", "1234", T0 + 50, False)


def evidence(event_id: str, alarm_id: str, seq: int) -> EventMessage:
    """The box's motion evidence for an alarm (PROTOCOL.md, motion events)."""
    event = Event(
        id=event_id,
        kind=codes.kind(Condition.VIDEO_MOTION, False),
        condition=Condition.VIDEO_MOTION,
        codes=codes.codes(Condition.VIDEO_MOTION, False),
        occurred_at_ms=T0 + 3_000,
        partition=0,
        armed=None,
        extra={"reason": "evidence", "alarm_id": alarm_id, "camera": "cam-1",
               "seen": "true", "areas": "kitchen"},
    )  # fmt: skip
    return EventMessage(event, seq, "gw-1", "1234", T0 + 3_050, False)


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
    page = OperatorPage(store, "127.0.0.1", port, poll_s=0.1)
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
        async with http.get("/api/alarms") as r:
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


async def test_alarm_detail_media_and_the_logs(station: Station) -> None:
    await station.alarm("ev-fire", 1)
    box = station.box
    await box.send(box.topics.events, encode_event(evidence("ev-motion", "ev-fire", 2)))
    await box.until(lambda a: "ev-motion" in a.ids)
    http = await logged_in(station.base)
    try:
        async with http.get("/api/alarms") as r:
            motion, row = await r.json()
        assert (motion["id"], motion["kind"], motion["priority"]) == ("ev-motion", "motion", 4)
        assert (row["id"], row["kind"], row["priority"], row["media"]) == ("ev-fire", "alarm", 1, 6)
        async with http.get("/api/events/ev-fire") as r:
            detail = await r.json()
        stills = [m for m in detail["media"] if m["kind"] == "still"]
        assert [m["offset_s"] for m in stills] == [-1, -0.5, 0, 0.5, 1]
        assert detail["event"]["zone"]["name"] == "Kitchen smoke"
        assert detail["site"] == {"device": "gw-1", "account": "1234"}
        assert detail["device"]["device"] == "gw-1"
        assert [(x["id"], x["camera"], x["seen"]) for x in detail["evidence"]] == [
            ("ev-motion", "cam-1", "true")
        ]
        clip = next(m for m in detail["media"] if m["kind"] == "clip")
        async with http.get(clip["url"]) as r:
            assert r.headers["Content-Type"] == "video/mp4"
            assert await r.read() == station.clip
        with station.page.store.transaction() as tx:
            (access,) = oplog.accesses(tx)
        assert (access["operator"], access["media_id"]) == (OPERATOR, "ev-fire-clip")
        for body, status in (
            ({"action": "ack", "comment": "guard sent"}, 200),
            ({"action": "comment", "comment": "  "}, 400),
            ({"action": "delete"}, 400),
        ):
            async with http.post("/api/events/ev-fire/log", json=body) as r:
                assert r.status == status
        async with http.post("/api/events/ev-fire/log", data="action=ack") as r:
            assert r.status == 415  # a cross-site form cannot act for the operator
        async with http.post("/api/events/ev-nope/log", json={"action": "ack"}) as r:
            assert r.status == 404
        async with http.get("/api/events/ev-fire") as r:
            detail = await r.json()
        assert [(x["operator"], x["action"], x["comment"]) for x in detail["log"]] == [
            (OPERATOR, "ack", "guard sent")
        ]
        assert detail["row"]["acked"] is True
    finally:
        await http.close()


async def test_new_alarms_are_pushed_to_open_pages(station: Station) -> None:
    http = await logged_in(station.base)
    try:
        async with http.get("/api/stream") as stream:
            await stream.content.readline()  # ": hello"
            box = station.box
            await box.send(box.topics.events, encode_event(fire_alarm("ev-live", 1)))
            got: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                while not got:
                    line = await stream.content.readline()
                    if line.startswith(b"data: "):
                        got = json.loads(line[6:])
        assert [r["id"] for r in got] == ["ev-live"]
    finally:
        await http.close()


@pytest.mark.browser
async def test_in_chromium_an_alarm_appears_without_reload_and_its_clip_plays(
    station: Station,
    browser: Tab,  # noqa: F811 (the fixture)
) -> None:
    tab = browser
    await tab.goto(station.base + "/")
    await tab.wait_for("location.pathname === '/login'", what="redirect to /login")
    assert await tab.eval("location.search") == "?next=/"
    await tab.type("#name", OPERATOR)
    await tab.type("#password", "not the password")
    await tab.click("#submit")
    await tab.wait_for("document.getElementById('error').textContent !== ''", what="refusal")
    assert await tab.text("#error") == "wrong name or password"
    await tab.eval("document.getElementById('password').value = ''")
    await tab.type("#password", PASSWORD)
    await tab.click("#submit")
    await tab.wait_for("document.body.dataset.ready === '1'", what="the page after login")
    assert await tab.eval("document.querySelectorAll('#list li').length") == 0
    await tab.eval("window.marker = 'no reload'")
    await station.alarm("ev-browser", 1)
    await tab.wait_for("!!document.getElementById('ev-ev-browser')", what="the alarm in the list")
    assert await tab.eval("window.marker") == "no reload"
    assert "p1" in await tab.eval("document.getElementById('ev-ev-browser').className")
    await tab.click("#ev-ev-browser")
    await tab.wait_for("document.querySelectorAll('#stills img').length === 5", what="stills")
    await tab.wait_for(
        "Array.from(document.querySelectorAll('#stills img')).every(i => i.naturalWidth > 0)",
        what="the stills to load",
    )
    duration = await tab.wait_for(
        "(() => { const v = document.getElementById('clip'); "
        "return v && v.readyState >= 1 && isFinite(v.duration) && v.duration; })()",
        what="the clip's duration",
    )
    assert 1.5 <= duration <= 2.5
    await tab.screenshot("operator-alarm")
    # acknowledging sends the session's CSRF token (the page read it from /api/session)
    await tab.eval("document.getElementById('comment').value = 'guard on the way'")
    await tab.click("#ack")
    await tab.wait_for("document.querySelectorAll('#log li').length === 1", what="the ack logged")
    assert "alice: ack guard on the way" in await tab.text("#log li")
    assert await tab.text("#who") == "alice (operator)"
    await tab.goto(station.base + "/events/ev-browser")  # the DC-09 video reference
    await tab.wait_for("document.querySelectorAll('#stills img').length === 5", what="linked")
    await tab.click("#logout")
    await tab.wait_for("location.pathname === '/login'", what="logged out")
    assert station.page.gate.sessions.active(station.page.clock.monotonic()) == []
    await until(lambda: station.receiver.stats.media_complete == 6, "media stored")
