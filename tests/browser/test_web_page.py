"""The technician's page in a real headless Chromium, against a real box on mock pins.

No broker: the box points at a closed port (the page must work while the link
is down). Screenshots land in build/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge import app
from edge.config import parse
from edge.web import auth
from tests.browser.conftest import Tab
from tests.conftest import BOX_AUTH, free_port
from tests.integration.test_end_to_end import RunningBox, demo_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"  # the test box's


@dataclass
class Site:
    box: app.Box
    base: str

    async def api(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession(headers=BOX_AUTH) as http,
            http.get(self.base + path) as r,
        ):
            assert r.status == 200, path
            return await r.json()


OVERLAYS = """
[[motion.cameras]]
camera = "entrance"
zones = [{ name = "door", corners = [[300, 40], [620, 40], [620, 340], [300, 340]] }]
masks = [{ name = "tree", corners = [[0, 300], [80, 300], [80, 360], [0, 360]] }]
"""
MASK = "fps = 10\nprivacy_masks = [[[540, 0], [640, 0], [640, 60], [540, 60]]]\n"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    web_port = free_port()
    text = demo_text(free_port(), web_port).replace("fps = 10\n", MASK, 1) + OVERLAYS
    cfg = parse(text, "browser.toml")
    state = tmp_path / "box"
    auth.write_password(state / "web", PASSWORD)
    async with RunningBox(cfg, state) as box:
        yield Site(box, f"http://127.0.0.1:{web_port}")


async def log_in(tab: Tab, site: Site) -> None:
    await tab.goto(site.base + "/")
    await tab.wait_for("location.pathname === '/login'", what="redirect to /login")
    await tab.type("#password", PASSWORD)
    await tab.click("#submit")
    await tab.wait_for("document.body.dataset.ready === '1'", what="the page after login")


async def test_login_refuses_a_wrong_password_then_shows_the_overview(
    browser: Tab, site: Site
) -> None:
    await browser.goto(site.base + "/")
    await browser.wait_for("location.pathname === '/login'", what="redirect to /login")
    await browser.type("#password", "not the password")
    await browser.click("#submit")
    await browser.wait_for(
        "document.getElementById('err').textContent.includes('wrong password')",
        what="the refusal shown",
    )
    await browser.screenshot("login-refused")
    await browser.type("#password", PASSWORD)
    await browser.click("#submit")
    await browser.wait_for("document.body.dataset.ready === '1'", what="the page after login")
    status = await site.api("/api/status")
    await browser.wait_for(
        "document.querySelector('#ov-box td[data-key=device]')?.textContent === "
        + json.dumps(status["device"]["id"]),
        what="the overview filled in",
    )
    shown = await browser.eval(
        "Object.fromEntries([...document.querySelectorAll('#ov-box td, #ov-outbox td, "
        "#ov-uplink td')].map(td => [td.dataset.key, td.textContent]))"
    )
    assert shown["device"] == status["device"]["id"]
    assert shown["account"] == status["device"]["account"]
    assert shown["site"] == status["device"]["site"]
    assert shown["version"] == status["device"]["version"]
    assert shown["depth"] == str(status["outbox"]["depth"])
    assert shown["connected"] == "false"
    assert shown["broker"] == status["uplink"]["broker"]
    await browser.screenshot("overview")


async def test_an_input_driven_on_the_mock_pin_shows_live(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    await browser.goto(site.base + "/#inputs")
    await browser.wait_for("document.body.dataset.ready === '1'")
    row = "document.querySelector('#zone-front-door')"
    await browser.wait_for(f"{row}?.children[3].textContent === 'quiet'", what="front door quiet")
    await browser.eval("window.notReloaded = true")
    site.box.inputs.simulate("in1", True)  # the front door's panel output, on the mock pin
    await browser.wait_for(
        f"{row}?.children[3].textContent === 'ACTIVE'", what="front door ACTIVE, live"
    )
    assert await browser.eval("window.notReloaded === true")  # pushed, not reloaded
    assert await browser.eval(f"{row}.className") == "active"
    await browser.screenshot("inputs-live")
    site.box.inputs.simulate("in1", False)
    await browser.wait_for(f"{row}?.children[3].textContent === 'quiet'", what="quiet again")


async def test_walk_test_runs_to_its_summary(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    await browser.goto(site.base + "/#walktest")
    await browser.wait_for("document.body.dataset.ready === '1'")
    await browser.type("#wt-minutes", "5")
    await browser.click("#wt-start")
    await browser.wait_for(
        "document.getElementById('wt-missing').textContent.includes('front-door')",
        what="front-door not yet seen",
    )
    site.box.inputs.simulate("in1", True)
    await browser.wait_for(
        "document.getElementById('wt-seen').textContent.includes('front-door')",
        what="front-door seen",
    )
    assert "hall-pir" in await browser.text("#wt-missing")
    await browser.screenshot("walktest-running")
    await browser.click("#wt-stop")
    summary = await browser.wait_for(
        "document.getElementById('wt-summary').textContent", what="the summary"
    )
    assert "front-door" in summary and "hall-pir" in summary
    await browser.wait_for("document.getElementById('wt-state').textContent.startsWith('No walk')")
    assert await browser.text("#wt-seen") == "front-door"  # the summary's lists stay shown
    assert await browser.text("#wt-missing") == "hall-pir"
    await browser.screenshot("walktest-summary")
    assert site.box.panel.walk is None


async def test_a_post_without_the_csrf_token_is_refused(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    answer = await browser.eval(
        "fetch('/api/walktest', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({minutes: 5})}).then(async r => [r.status, await r.json()])"
    )
    assert answer == [403, {"error": "missing or wrong CSRF token"}]
    forged = await browser.eval(
        "fetch('/api/walktest', {method: 'POST', headers: {'Content-Type': 'application/json',"
        " 'X-CSRF-Token': 'forged'}, body: JSON.stringify({minutes: 5})}).then(r => r.status)"
    )
    assert forged == 403
    assert site.box.panel.walk is None  # nothing started
    good = await browser.eval(
        "api('POST', '/api/walktest', {minutes: 5}).then(r => r.status)"  # the page's own call
    )
    assert good == 201


async def test_a_bad_config_upload_shows_the_check_config_errors(
    browser: Tab, site: Site, tmp_path: Path
) -> None:
    bad = tmp_path / "upload.toml"
    text = demo_text(1883, 8080).replace("account = ", "acount = ", 1)
    bad.write_text(text)
    await log_in(browser, site)
    await browser.goto(site.base + "/#config")
    await browser.wait_for(
        "document.getElementById('cfg-current').textContent.includes('[device]')",
        what="the running config shown",
    )
    assert "demo-api-token" not in await browser.text("#cfg-current")  # redacted
    await browser.set_files("#cfg-file", [bad])
    await browser.click("#cfg-check")
    problems = await browser.wait_for(
        "[...document.querySelectorAll('#cfg-problems li')].map(li => li.textContent)",
        what="the problems listed",
    )
    want = site.box.web.hooks.config.check(text, "upload.toml")  # type: ignore[union-attr]
    assert problems == want and want
    assert any("acount" in p for p in problems)
    await browser.screenshot("config-refused")


async def test_the_camera_view_shows_the_picture(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    await browser.goto(site.base + "/#camera")
    size = await browser.wait_for(
        "(() => { const i = document.getElementById('cam-img-entrance');"
        " return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null;"
        " })()",
        timeout_s=20,
        what="a camera frame drawn",
    )
    assert size[0] >= 160 and size[1] >= 90
    svg = "document.getElementById('cam-svg-entrance')"
    assert await browser.eval(f"{svg}.getAttribute('viewBox')") == "0 0 640 360"
    assert await browser.eval(f"{svg}.querySelector('polygon.mask').getAttribute('points')") == (
        "540,0 640,0 640,60 540,60"
    )
    assert await browser.eval(f"{svg}.querySelector('text.zone-name').textContent") == "door"
    assert await browser.eval(f"{svg}.querySelectorAll('polygon.ignored').length") == 1
    # the synthetic scene has a moving block: the motion stage's boxes are drawn
    await browser.wait_for(
        f"{svg}.querySelectorAll('rect.motion').length > 0", timeout_s=20, what="motion boxes"
    )
    await browser.screenshot("camera")


async def test_a_test_event_appears_in_the_journal(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    await browser.goto(site.base + "/#events")
    await browser.wait_for("document.body.dataset.ready === '1'")
    await browser.click("#ev-test")
    sent = await browser.wait_for(
        "document.getElementById('ev-sent').textContent", what="the test event's id"
    )
    event_id = sent.removeprefix("sent: ")
    row = f"document.querySelector('#ev-table tr[data-id=\"{event_id}\"]')"
    cells = await browser.wait_for(
        f"{row} && [...{row}.children].map(td => td.textContent)", what="its row"
    )
    assert cells[2] == "test" and cells[3] == "1601"  # kind, Contact ID
    assert cells[6] in ("queued", "sent")  # no broker here: never acknowledged
    journal = await site.api("/api/events")
    assert journal["events"][0]["id"] == event_id
    counts = await browser.text("#ev-counts")
    assert counts.endswith("in the journal") and "0 acknowledged" in counts  # from its file
    assert await browser.eval("document.getElementById('ev-older').disabled") is True
    await browser.screenshot("events")
    # From a time to come: the page asks for events since then (ISO, with zone): none
    await browser.eval("document.getElementById('ev-since').value = '2099-01-01T00:00'")
    await browser.click("#ev-refresh")
    await browser.wait_for(
        "document.querySelectorAll('#ev-table tbody tr').length === 0", what="no events"
    )
