"""The technician's page and JSON API on a running box (in this process, mock pins).

No broker is needed: the box points at a port nobody listens on, and the web
page must work all the same (it is how a technician finds out why the link is down).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest

from edge.config import parse
from edge.protocol import parse_iso_ms
from edge.web.hooks import Hooks
from edge.web.openapi import document
from edge.web.server import WebServer, WebSettings
from tests.conftest import BOX_AUTH, free_port
from tests.integration.test_end_to_end import RunningBox, demo_text

MAX_BODY = 64 * 1024


class Page:
    """An HTTP client for one box's web page."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.session.get(self.base + path) as r:
            return r.status, r.content_type, await r.text()

    async def status(self) -> dict[str, Any]:
        async with self.session.get(self.base + "/api/status") as r:
            assert r.status == 200
            body: dict[str, Any] = await r.json()
            return body

    async def post(
        self, path: str, data: bytes, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        async with self.session.post(self.base + path, data=data, headers=headers) as r:
            text = await r.text()
            if r.content_type == "application/json":
                return r.status, json.loads(text)
            return r.status, text


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    web_port = free_port()
    cfg = parse(demo_text(free_port(), web_port), "web.toml")  # no broker there
    async with (
        RunningBox(cfg, tmp_path / "box"),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5), headers=BOX_AUTH) as session,
    ):
        yield Page(session, f"http://127.0.0.1:{web_port}")


def zone(status: dict[str, Any], zone_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [z for z in status["zones"]["zones"] if z["id"] == zone_id]
    assert len(found) == 1, zone_id
    return found[0]


async def test_answers_are_what_the_openapi_document_says(page: Page) -> None:
    """The real box's status, health and inputs validate against the response schemas
    the document publishes (made from the same models), with an independent validator."""
    components = document()["components"]
    for path, model in (
        ("/api/status", "Status"),
        ("/healthz", "Healthz"),
        ("/api/inputs", "Inputs"),
    ):
        code, _type, text = await page.get(path)
        assert code in (200, 503), path
        schema = {"$ref": f"#/components/schemas/{model}", "components": components}
        jsonschema_rs.validator_for(schema).validate(json.loads(text))
    # and a wrong body is caught: the check can fail
    status = json.loads((await page.get("/api/status"))[2])
    status["outbox"]["depth"] = "many"
    schema = {"$ref": "#/components/schemas/Status", "components": components}
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validator_for(schema).validate(status)


async def test_status_has_every_section(page: Page) -> None:
    code, content_type, text = await page.get("/api/status")
    assert (code, content_type) == (200, "application/json")
    status = json.loads(text)
    assert {"device", "uplink", "outbox", "zones", "cameras"} <= set(status)
    assert status["device"]["id"] == "demo-box-01"
    assert status["device"]["account"] == "1234"
    assert status["device"]["simulated_inputs"] is True
    assert status["uplink"]["connected"] is False
    assert status["uplink"]["broker"].startswith("mqtt://127.0.0.1:")
    assert set(status["outbox"]) == {
        *("depth", "oldest_age_s", "media", "media_bytes", "peak_depth"),
        *("held_in_memory", "reserve_held"),
    }
    assert status["outputs"] == {"path_fault": False, "delivery_failure": False}
    assert [z["id"] for z in status["zones"]["zones"]] == [
        "front-door",
        "hall-pir",
        "fire",
        "panic",
        "panel-tamper",
        "armed",
        "mains",
    ]
    assert set(status["cameras"]) == {"entrance"}
    # no broker: never "healthy"; the path to the station is what is wrong
    assert status["healthy"] is False and "path" in status["problems"]
    assert status["verdict"]["check"] == "path" and status["faults"][0] == status["verdict"]


async def test_index_is_the_html_page(page: Page) -> None:
    code, content_type, text = await page.get("/")
    assert (code, content_type) == (200, "text/html")
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert "/static/app.js" in text


async def link_down(page: Page) -> dict[str, Any]:
    """The status once the link's first attempt has failed (no broker): its verdict named."""
    for _ in range(100):
        status = await page.status()
        if status["verdict"]["key"] == "box.health.link_down":
            return status
        await asyncio.sleep(0.05)
    pytest.fail(f"the verdict never named the link: {status['verdict']}")


async def test_healthz_gives_the_page_s_verdict(page: Page) -> None:
    """No broker: /healthz is 503 with the same verdict, in the same words, as the page."""
    status = await link_down(page)
    code, content_type, text = await page.get("/healthz")
    assert (code, content_type) == (503, "application/json")
    health = json.loads(text)
    assert health["healthy"] is False and set(health["problems"]) == set(status["problems"])
    verdict = health["verdict"]
    assert verdict["key"] == status["verdict"]["key"] == "box.health.link_down"
    assert verdict["level"] == "warning" and verdict["check"] == "path"
    assert verdict["text"].startswith("No link to the station for ")
    assert verdict["text"].endswith(" — events are kept and will be sent")
    assert "Connection refused" in verdict["values"]["error"]
    assert health["faults"][0]["key"] == "box.health.link_down"


NOT_JSON = {
    "garbage": (b"{not json", "application/json"),
    "empty": (b"", "application/json"),
    "truncated": (b'{"active": tru', "application/json"),
    "not-utf8": (b'{"active": \xff}', "application/json"),
    "unknown-charset": (b'{"active": true}', "application/json; charset=no-such-charset"),
}
NOT_A_BOOL: list[Any] = [{"active": "yes"}, {"active": 1}, {"active": None}, {}, [True], True]
REFUSED = {"error": 'body must be JSON: {"active": true|false}'}


async def test_simulate_refuses_a_body_that_is_not_json(page: Page) -> None:
    for name, (body, content_type) in NOT_JSON.items():
        code, answer = await page.post("/api/sim/inputs/in1", body, content_type)
        assert (code, answer) == (400, REFUSED), name
    assert zone(await page.status(), "front-door")["active"] is False


async def test_simulate_refuses_active_that_is_not_a_bool(page: Page) -> None:
    for body in NOT_A_BOOL:
        code, answer = await page.post("/api/sim/inputs/in1", json.dumps(body).encode())
        assert (code, answer) == (400, REFUSED), body
    assert zone(await page.status(), "front-door")["active"] is False


async def test_simulate_unknown_input_is_404(page: Page) -> None:
    code, answer = await page.post("/api/sim/inputs/in99", b'{"active": true}')
    assert code == 404
    assert answer == {"error": "no input named 'in99'"}


async def wait_zone(page: Page, zone_id: str, active: bool, timeout_s: float = 5.0) -> None:
    """Poll /api/status until the zone reads ``active``; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while zone(await page.status(), zone_id)["active"] is not active:
        if loop.time() > deadline:
            pytest.fail(f"zone {zone_id} not active={active} in /api/status after {timeout_s} s")
        await asyncio.sleep(0.02)


async def test_simulate_drives_the_zone(page: Page) -> None:
    assert zone(await page.status(), "front-door")["active"] is False
    code, answer = await page.post("/api/sim/inputs/in1", b'{"active": true}')
    assert (code, answer) == (200, {"input": "in1", "active": True})
    await wait_zone(page, "front-door", True)
    assert zone(await page.status(), "hall-pir")["active"] is False
    code, answer = await page.post("/api/sim/inputs/in1", b'{"active": false}')
    assert (code, answer) == (200, {"input": "in1", "active": False})
    await wait_zone(page, "front-door", False)
    assert zone(await page.status(), "front-door")["changes"] >= 2


async def test_simulate_refuses_an_oversized_body(page: Page) -> None:
    body = json.dumps({"active": True, "pad": "x" * MAX_BODY}).encode()
    assert len(body) > MAX_BODY
    code, _ = await page.post("/api/sim/inputs/in1", body)
    assert code == 413
    # Refused, not half-applied; and the page still answers.
    assert zone(await page.status(), "front-door")["active"] is False
    code, _ = await page.post("/api/sim/inputs/in1", b'{"active": true}')
    assert code == 200
    await wait_zone(page, "front-door", True)


async def test_simulate_is_404_on_real_pins() -> None:
    """A box on real GPIO has no simulator: the endpoint says so, and nothing is driven."""
    port = free_port()
    hooks = Hooks(status=lambda: {"healthy": False, "problems": {"x": "y"}})
    token = BOX_AUTH["Authorization"].removeprefix("Bearer ")
    server = WebServer(WebSettings("127.0.0.1", port, api_token=token), hooks)
    await server.start()
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5), headers=BOX_AUTH
        ) as session:
            page = Page(session, f"http://127.0.0.1:{port}")
            code, answer = await page.post("/api/sim/inputs/in1", b'{"active": true}')
            assert code == 404
            assert "gpio.backend = 'mock'" in answer["error"]
            code, _, text = await page.get("/healthz")
            assert code == 503
            fault = {
                "check": "x",
                "level": "fault",
                "key": "box.health.other",
                "values": {"name": "x", "problem": "y"},
                "text": "x: y",
            }
            assert json.loads(text) == {
                "healthy": False,
                "problems": {"x": "y"},
                "verdict": fault,
                "faults": [fault],
            }
    finally:
        await server.stop()


# --- pulse trains on simulated inputs -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"count": 3, "on_ms": 10}',
        b'{"count": 0, "on_ms": 10, "off_ms": 10}',
        b'{"count": 100001, "on_ms": 10, "off_ms": 10}',
        b'{"count": 3, "on_ms": 0, "off_ms": 10}',
        b'{"count": 3, "on_ms": 10, "off_ms": -1}',
        b'{"count": true, "on_ms": 10, "off_ms": 10}',
        b'{"count": 3, "on_ms": "10", "off_ms": 10}',
        b'{"count": 3, "on_ms": 10, "off_ms": 10, "extra": 1}',
    ],
)
async def test_pulses_refuse_bad_bodies(page: Page, body: bytes) -> None:
    code, answer = await page.post("/api/sim/inputs/in3/pulses", body)
    assert code == 400 and "count" in answer["error"]


async def test_pulses_of_an_unknown_input_are_404(page: Page) -> None:
    body = b'{"count": 2, "on_ms": 5, "off_ms": 5}'
    code, answer = await page.post("/api/sim/inputs/nope/pulses", body)
    assert code == 404 and "nope" in answer["error"]


async def test_a_pulse_train_drives_the_input_and_one_at_a_time(page: Page) -> None:
    before = zone(await page.status(), "fire")["changes"]
    body = b'{"count": 4, "on_ms": 20, "off_ms": 20}'
    code, answer = await page.post("/api/sim/inputs/in3/pulses", body)
    assert (code, answer) == (202, {"input": "in3", "count": 4})
    code, answer = await page.post("/api/sim/inputs/in3/pulses", body)
    assert code == 409  # one train per input at a time
    for _ in range(100):
        if zone(await page.status(), "fire")["changes"] >= before + 8:
            break
        await asyncio.sleep(0.05)
    assert zone(await page.status(), "fire")["changes"] == before + 8


# --- walk test ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"{}", b'{"minutes": 0}', b'{"minutes": 241}', b'{"minutes": "5"}', b"nope"]
)
async def test_walk_test_refuses_bad_durations(page: Page, body: bytes) -> None:
    code, answer = await page.post("/api/walktest", body)
    assert code == 400 and "minutes" in answer["error"]


async def test_walk_test_records_intrusion_zones_instead_of_alarming(page: Page) -> None:
    await page.post("/api/sim/inputs/in6", b'{"active": true}')  # arm the panel
    for _ in range(50):  # armed, and the arm event (401) stored
        status = await page.status()
        if status["zones"]["armed"] == {"1": True} and status["outbox"]["depth"] == 1:
            break
        await asyncio.sleep(0.05)
    depth = (await page.status())["outbox"]["depth"]
    assert depth == 1
    code, answer = await page.post("/api/walktest", b'{"minutes": 5}')
    assert code == 201 and answer["running"]["zones"] == ["front-door", "hall-pir"]
    code, _ = await page.post("/api/walktest", b'{"minutes": 5}')
    assert code == 409
    await page.post("/api/sim/inputs/in1", b'{"active": true}')  # armed: would alarm
    for _ in range(50):
        if (await page.status())["walktest"].get("seen") == ["front-door"]:
            break
        await asyncio.sleep(0.05)
    status = await page.status()
    assert status["walktest"]["not_seen"] == ["hall-pir"]
    assert status["outbox"]["depth"] == depth  # no alarm queued
    async with page.session.delete(page.base + "/api/walktest") as r:
        assert r.status == 200
        summary = (await r.json())["summary"]
    assert summary["seen"] == ["front-door"] and summary["not_seen"] == ["hall-pir"]
    # the summary goes to the station as a manual test (601), and the front door,
    # still open after the walk test, now alarms: the panel is armed
    for _ in range(50):
        if (await page.status())["outbox"]["depth"] >= depth + 2:
            break
        await asyncio.sleep(0.05)
    after = await page.status()
    assert after["walktest"] == {"running": False}
    assert after["outbox"]["depth"] == depth + 2
    async with page.session.delete(page.base + "/api/walktest") as r:
        assert r.status == 409


async def test_dropped_edges_are_recovered_by_reading_the_pins(tmp_path: Path) -> None:
    cfg = parse(demo_text(free_port(), free_port()), "resync.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        device = box.inputs._devices["in3"]  # the fire panel's input
        callbacks = device.when_activated, device.when_deactivated
        device.when_activated = device.when_deactivated = None  # its edge is "lost"
        box.inputs.simulate("in3", True)
        device.when_activated, device.when_deactivated = callbacks
        await asyncio.sleep(0.1)
        assert not box.panel.state.zone("fire").active
        box.panel.on_edges([], 1)  # what the relay reports when its buffer overflowed
        for _ in range(100):
            if box.panel.state.zone("fire").reported:
                break
            await asyncio.sleep(0.02)
        assert box.panel.state.zone("fire").reported  # the alarm was raised after all
        assert box.status.current().zones.edges_dropped == 1


async def test_system_figures_of_the_overview(page: Page) -> None:
    status = await page.status()
    system = status["system"]
    assert system["retention_days"] == 7  # config/demo.toml
    assert system["memory_total_bytes"] > system["memory_used_bytes"] > 0
    assert system["disk_total_bytes"] > system["disk_used_bytes"] > 0
    assert system["load_1m"] >= 0
    assert system["clock_synchronized"] in (True, False, None)
    assert system["oldest_recording_at"] is None or system["oldest_recording_at"].endswith("Z")
    uplink = status["uplink"]
    assert uplink["profile"] and uplink["connected_since"] is None
    assert 0 <= uplink["margin_s"] <= uplink["path_loss_s"]
    assert status["outbox"]["peak_depth"] == 0
    assert all("last_change_at" in z for z in status["zones"]["zones"])


async def test_the_event_journal_survives_a_restart(tmp_path: Path) -> None:
    web_port = free_port()
    cfg = parse(demo_text(free_port(), web_port), "journal.toml")  # no broker there
    base = f"http://127.0.0.1:{web_port}"
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, headers=BOX_AUTH) as http:
        async with RunningBox(cfg, tmp_path / "box"):
            async with http.post(base + "/api/events/test") as r:
                event_id = (await r.json())["id"]
            async with http.get(base + "/api/events?kind=test") as r:
                before = (await r.json())["events"]
        async with RunningBox(cfg, tmp_path / "box"):  # the box restarted
            async with http.get(base + "/api/events?kind=test") as r:
                after = (await r.json())["events"]
            async with http.get(base + "/api/status") as r:
                journal = (await r.json())["journal"]
    assert before[0]["id"] == event_id and before[0]["queued_at"] is not None
    assert after[0]["id"] == event_id
    assert after[0]["queued_at"] == before[0]["queued_at"]
    assert journal["durable"] is True and journal["problem"] is None
    assert journal["file"] == str(tmp_path / "box" / "journal.sqlite")


# --- the status pushed, holds, media, walk test results, config names -------------------


async def events_of(page: Page, stream: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` Server-Sent Events of ``stream``."""
    found: list[dict[str, Any]] = []
    async with page.session.get(page.base + stream) as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        async for line in r.content:
            if line.startswith(b"data: "):
                found.append(json.loads(line[6:]))
                if len(found) == count:
                    break
    return found


async def test_the_status_is_pushed_with_its_verdict(page: Page) -> None:
    await link_down(page)
    reading = asyncio.create_task(events_of(page, "/api/status/stream", 3))
    await asyncio.sleep(0.1)
    await page.post("/api/sim/inputs/in5", b'{"active": true}')  # the panel's tamper loop
    pushed = await asyncio.wait_for(reading, 5)
    assert pushed[0]["verdict"]["key"] == "box.health.link_down"
    assert set(pushed[0]) == set(await page.status())  # the whole status, as /api/status
    # a panel tamper shows in the faults of a later one, below the path's
    later = [f["key"] for f in pushed[-1]["faults"]]
    assert later[0] == "box.health.link_down", later
    for _ in range(40):
        faults = [f["key"] for f in (await page.status())["faults"]]
        if "box.health.zone_panel_tamper" in faults:
            break
        await asyncio.sleep(0.05)
    assert "box.health.zone_panel_tamper" in faults


async def test_incident_holds_are_placed_and_listed(page: Page) -> None:
    for _ in range(100):  # the camera's first recording file is being written
        if (await page.status())["cameras"]["entrance"]["frames"] > 20:
            break
        await asyncio.sleep(0.05)
    code, listed = await page.post("/api/holds", b"{}")
    assert code == 400 and "minutes" in listed["error"]
    for body in (
        {"camera": "entrance", "minutes": 7, "keep_days": 7, "why": "x"},  # not a choice
        {"camera": "entrance", "minutes": 5, "keep_days": 7, "why": " "},
        {"camera": "entrance", "minutes": 5, "keep_days": True, "why": "x"},
    ):
        code, _ = await page.post("/api/holds", json.dumps(body).encode())
        assert code == 400, body
    body = {"camera": "nope", "minutes": 5, "keep_days": 7, "why": "x"}
    code, _ = await page.post("/api/holds", json.dumps(body).encode())
    assert code == 404
    body = {"camera": "entrance", "minutes": 15, "keep_days": 30, "why": "break-in, case 42"}
    code, placed = await page.post("/api/holds", json.dumps(body).encode())
    assert code == 201, placed
    hold = placed["hold"]
    assert hold["segments"] >= 1 and hold["who"] == "technician (box page)"
    assert _ms(hold["to_at"]) - _ms(hold["from_at"]) == 15 * 60_000
    assert _ms(hold["until_at"]) - _ms(hold["to_at"]) == 30 * 86_400_000
    code, _, text = await page.get("/api/holds")
    assert code == 200
    assert [h["why"] for h in json.loads(text)["holds"]] == ["break-in, case 42"]


def _ms(iso: str) -> int:
    return parse_iso_ms(iso)


async def test_an_alarm_s_stills_and_clip_are_shown_while_they_are_on_the_box(
    tmp_path: Path,
) -> None:
    web_port = free_port()
    text = demo_text(free_port(), web_port).replace("post_roll_s = 5", "post_roll_s = 1")
    async with (
        RunningBox(parse(text, "media.toml"), tmp_path / "box") as box,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5), headers=BOX_AUTH) as s,
    ):
        page = Page(s, f"http://127.0.0.1:{web_port}")
        box.inputs.simulate("in6", True)  # armed
        for _ in range(100):
            if box.panel.state.armed.get(1):
                break
            await asyncio.sleep(0.02)
        box.inputs.simulate("in1", True)  # the front door: an alarm with the entrance camera
        media: list[dict[str, Any]] = []
        for _ in range(200):
            _code, _, body = await page.get("/api/events?kind=alarm")
            events = json.loads(body)["events"]
            media = events[0]["media"] if events else []
            if media and all(m["state"] == "here" for m in media):
                break
            await asyncio.sleep(0.05)
        assert [m["kind"] for m in media] == ["still"] * 5 + ["clip"], media
        assert all(m["state"] == "here" and m["camera"] == "entrance" for m in media), media
        still, clip = media[0], media[-1]
        async with s.get(page.base + "/api/media/" + still["id"]) as r:
            assert (r.status, r.content_type) == (200, "image/jpeg")
            assert (await r.read())[:2] == b"\xff\xd8"
        async with s.get(page.base + "/api/media/" + clip["id"]) as r:
            assert (r.status, r.content_type) == (200, "video/mp4")
            assert len(await r.read()) == clip["size"]
        # the station has the still (what the sender does on its completion): gone from the box
        assert await box.outbox.media_progress(still["id"], 1, True)
        _code, _, body = await page.get("/api/events?kind=alarm")
        after = {m["id"]: m["state"] for m in json.loads(body)["events"][0]["media"]}
        assert after[still["id"]] == "gone" and after[clip["id"]] == "here"
        async with s.get(page.base + "/api/media/" + still["id"]) as r:
            assert r.status == 404
        async with s.get(page.base + "/api/media/no-such-media") as r:
            assert r.status == 404


async def test_a_walk_test_that_runs_out_leaves_its_result(page: Page) -> None:
    code, _ = await page.post("/api/walktest", b'{"minutes": 0.02}')  # 1.2 s
    assert code == 201
    await page.post("/api/sim/inputs/in2", b'{"active": true}')  # the hall's detector
    last = None
    for _ in range(100):
        code, _, text = await page.get("/api/walktest")
        last = json.loads(text)["last"]
        if last is not None:
            break
        await asyncio.sleep(0.05)
    assert last is not None, "no result after the walk test's time"
    assert (last["ended_by"], last["seen"], last["not_seen"]) == (
        "timeout",
        ["hall-pir"],
        ["front-door"],
    )
    code, _, text = await page.get("/api/events?kind=test")
    sent = json.loads(text)["events"][0]
    assert sent["id"] == last["event_id"] and sent["text"] == last["text"]  # as the station got it


async def test_config_problems_name_the_file_as_the_technician_named_it(page: Page) -> None:
    bad = demo_text(1883, 8080).replace("account = ", "acount = ", 1)
    name = "config été (2).toml"
    body = json.dumps({"text": bad, "name": name}).encode()
    code, answer = await page.post("/api/config/check", body)
    assert code == 422 and answer["problems"]
    assert all(p.startswith(name) for p in answer["problems"]), answer
    for refused in ("../edge.toml", "a\\b.toml", "x" * 101, "bad\nname"):
        body = json.dumps({"text": bad, "name": refused}).encode()
        code, _ = await page.post("/api/config/check", body)
        assert code == 400, refused


async def test_a_frame_says_when_it_was_taken(page: Page) -> None:
    for _ in range(100):
        async with page.session.get(page.base + "/api/cameras/entrance/frame") as r:
            if r.status == 200:
                taken = r.headers["X-Frame-At"]
                break
        await asyncio.sleep(0.05)
    assert abs(_ms(taken) - time.time() * 1000) < 5000
    _code, _, text = await page.get("/api/cameras")
    camera = json.loads(text)["cameras"][0]
    assert camera["recording"] == {
        "enabled": True,
        "mode": "continuous",
        "failing": None,
        "yielding": False,
    }
