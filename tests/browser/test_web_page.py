"""The technician's page in a real headless Chromium, against a real box on mock pins.

No broker: the box points at a closed port (the page must work while the link
is down, and say so). The badge's test stops a real mosquitto. Screenshots, in
French and English, at 390x844 (a phone) and 1280x800, land in build/screenshots/.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge import app, i18n
from edge.config import parse
from edge.web import auth
from tests.browser.conftest import Tab
from tests.conftest import BOX_AUTH, Broker, free_port, start_broker
from tests.integration.test_end_to_end import RunningBox, demo_text, until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"  # the test box's
PAGES = ("overview", "inputs", "walktest", "camera", "events", "config", "diagnostics")
PHONE, DESKTOP = (390, 844, True), (1280, 800, False)


@dataclass
class Site:
    box: app.Box
    base: str

    async def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession(headers=BOX_AUTH) as http,
            http.request(method, self.base + path, json=body) as r,
        ):
            assert r.status < 300, (path, r.status, await r.text())
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
    await tab.wait_for("document.getElementById('submit').textContent !== ''", what="words")
    await tab.type("#password", PASSWORD)
    await tab.click("#submit")
    await ready(tab)


async def ready(tab: Tab) -> None:
    await tab.wait_for("document.body.dataset.ready === '1'", what="the page after login")


async def open_page(tab: Tab, site: Site, page: str, lang: str = "fr") -> None:
    await tab.goto(f"{site.base}/?lang={lang}#{page}")
    await ready(tab)
    await tab.wait_for("document.getElementById('health').dataset.key", what="the verdict")


def words(key: str, lang: str = "fr", **values: Any) -> str:
    return i18n.t(lang, key, **values)


def before_placeholder(key: str, lang: str = "fr") -> str:
    """A catalogue text up to its first placeholder: what a page shows, whatever the values."""
    return i18n.catalogue(lang)[key].split("{", 1)[0]


# What a phone must not have: a page wider than the screen, a word broken mid-letter or
# sticking out of its box, a touch target smaller than 44 px.
LAYOUT = """(() => {
  const found = [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.className && typeof e.className === "string" ? "." + e.className.split(" ")[0] : "");
  const doc = document.scrollingElement;
  const width = Math.min(window.innerWidth, doc.clientWidth);  // less a scroll bar, if any
  if (doc.scrollWidth > width) found.push(`page ${doc.scrollWidth} px wide in ${width}`);
  for (const e of document.querySelectorAll("body *")) {
    if (!e.getClientRects().length || e.closest("svg")) continue;  // not shown; drawings
    const s = getComputedStyle(e);
    const breaking = ["anywhere", "break-word"].includes(s.overflowWrap);
    if (breaking || ["break-all", "break-word"].includes(s.wordBreak)) {
      found.push(`${name(e)} may break words mid-letter`);
    }
    if (s.overflowX === "visible" && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
      found.push(`${name(e)}: its content sticks out (${e.scrollWidth} > ${e.clientWidth})`);
    }
  }
  if (window.innerWidth < 600) {
    for (const e of document.querySelectorAll("button, a.button, nav a, select, input, summary")) {
      if (!e.getClientRects().length) continue;
      const h = e.getBoundingClientRect().height;
      if (h < 43.5) found.push(`${name(e)}: a touch target ${h.toFixed(0)} px high`);
    }
  }
  return found;
})()"""


async def test_login_in_french_then_the_header_names_the_fault(browser: Tab, site: Site) -> None:
    await browser.viewport(*PHONE)
    await browser.goto(site.base + "/")
    await browser.wait_for("location.pathname === '/login'", what="redirect to /login")
    assert await browser.eval("document.documentElement.lang") == "fr"
    await browser.wait_for(
        f"document.getElementById('submit').textContent === {json.dumps(words('common.log_in'))}",
        what="the login page in French",
    )
    await browser.type("#password", "not the password")
    await browser.click("#submit")
    await browser.wait_for(
        "document.getElementById('err').dataset.status === '401'", what="the refusal shown"
    )
    assert await browser.text("#err") == words("box.login.wrong_password")
    await browser.screenshot("fr-phone-login-refused")
    await browser.type("#password", PASSWORD)
    await browser.click("#submit")
    await ready(browser)
    # no broker: the link is down, and every page's header says so in words
    await browser.wait_for(
        "document.getElementById('health').dataset.key === 'box.health.link_down'",
        what="the link's fault named",
    )
    status = await site.api("/api/status")
    assert status["verdict"]["key"] == "box.health.link_down" and not status["healthy"]
    shown = await browser.text("#verdict")
    assert shown.startswith(before_placeholder("box.health.link_down")), shown
    assert await browser.eval("document.getElementById('health').dataset.level") == "warning"
    assert await browser.text("#title") == status["device"]["id"]
    # the overview, in words: no true/false, no seconds count, no UTC ISO time
    dd = "document.querySelector('#ov-box dd[data-key=uptime]')?.textContent"
    await browser.wait_for(dd, what="the overview filled in")
    assert await browser.eval(
        "document.querySelector('#ov-link dd[data-key=connected]').textContent"
    ) == words("box.link.down")
    shown_all = await browser.eval("document.querySelector('main').innerText")
    for enum in ("true", "false", "trouble_restore", "uptime_s", "Z\n"):
        assert enum not in shown_all, enum
    assert await browser.eval(
        "document.getElementById('ov-drain-box').hidden || "
        "document.getElementById('ov-drain-box').classList.contains('hidden')"
    )
    await browser.screenshot("fr-phone-overview-link-down", full=True)


async def test_every_page_fits_a_phone_and_a_desktop_in_both_languages(
    browser: Tab, site: Site
) -> None:
    """At 390x844 and 1280x800, in French and English, every page with content in it:
    no sideways scrolling, no word broken or sticking out, large touch targets."""
    await site.api("/api/events/test", "POST")
    site.box.inputs.simulate("in6", True)  # armed: the front door alarms, with stills
    await until(lambda: site.box.panel.state.armed.get(1), what="armed")
    site.box.inputs.simulate("in1", True)
    await site.api("/api/walktest", "POST", {"minutes": 5})
    await site.api("/api/walktest", "DELETE")
    await browser.viewport(*PHONE)
    await log_in(browser, site)
    problems: dict[str, list[str]] = {}
    for lang in ("fr", "en"):
        for size in (PHONE, DESKTOP):
            await browser.viewport(*size)
            form = "phone" if size is PHONE else "desktop"
            for page in PAGES:
                await open_page(browser, site, page, lang)
                await filled(browser, page)
                found = await browser.eval(LAYOUT)
                if found:
                    problems[f"{lang} {form} {page}"] = found
                await browser.screenshot(f"{lang}-{form}-{page}", full=True)
    assert problems == {}


async def filled(tab: Tab, page: str) -> None:
    """Wait until ``page`` shows what it is about."""
    ready_when = {
        "overview": "!!document.querySelector('#ov-system dd')",
        "inputs": "!!document.querySelector('#in-zones li')",
        "walktest": "!document.getElementById('wt-result').classList.contains('hidden')",
        "camera": "document.getElementById('cam-img-entrance')?.naturalWidth > 0 &&"
        " !!document.querySelector('#hold-days option')",
        "events": "document.querySelector('#ev-list li.event img')?.naturalWidth > 0",
        "config": "document.getElementById('cfg-current').textContent.includes('[device]')",
        "diagnostics": "true",
    }
    await tab.wait_for(ready_when[page], timeout_s=15, what=f"the {page} page filled in")


async def test_an_input_driven_on_the_mock_pin_shows_live(browser: Tab, site: Site) -> None:
    await log_in(browser, site)
    await open_page(browser, site, "inputs")
    card = "document.querySelector('#zone-front-door')"
    await browser.wait_for(f"{card}?.dataset.active === '0'", what="front door quiet")
    assert (await browser.text("#zone-front-door h3")) == "Zone 1 · Front door"  # its name
    assert words("box.zone.quiet") in await browser.text("#zone-front-door .pill")
    await browser.eval("window.notReloaded = true")
    site.box.inputs.simulate("in1", True)  # the front door's panel output, on the mock pin
    await browser.wait_for(f"{card}?.dataset.active === '1'", what="front door active, live")
    assert await browser.eval("window.notReloaded === true")  # pushed, not reloaded
    assert await browser.text("#zone-front-door .pill") == words("box.zone.active")
    assert "active" in await browser.eval(f"{card}.className")
    await browser.screenshot("fr-desktop-inputs-live")
    site.box.inputs.simulate("in1", False)
    await browser.wait_for(f"{card}?.dataset.active === '0'", what="quiet again")


async def test_walk_test_runs_to_a_result_to_read_out(browser: Tab, site: Site) -> None:
    await browser.viewport(*PHONE)
    await log_in(browser, site)
    await open_page(browser, site, "walktest")
    state = "document.getElementById('wt-state')"
    await browser.wait_for(f"{state}.dataset.running === '0'", what="idle")
    assert await browser.text("#wt-state") == words("box.wt.idle")
    assert await browser.eval("document.getElementById('wt-stop').disabled")
    await browser.eval("document.getElementById('wt-minutes').value = '5'")
    await browser.click("#wt-start")
    await browser.wait_for(f"{state}.dataset.running === '1'", what="running")
    running = await browser.text("#wt-state")
    assert running.startswith(before_placeholder("box.wt.running")), running
    await browser.wait_for(
        "document.getElementById('wt-missing').textContent.includes('Front door')",
        what="the front door not yet seen, by its name",
    )
    site.box.inputs.simulate("in1", True)
    await browser.wait_for(
        "document.getElementById('wt-seen').textContent.includes('Zone 1 · Front door')",
        what="front door seen",
    )
    assert "Zone 2 · Hall motion detector" in await browser.text("#wt-missing")
    await browser.screenshot("fr-phone-walktest-running", full=True)
    await browser.click("#wt-stop")
    await browser.wait_for(f"{state}.dataset.running === '0'", what="idle again")
    readout = await browser.wait_for(
        "[...document.querySelectorAll('#wt-list li')].map(li => li.textContent)",
        what="the result to read out",
    )
    assert readout == [
        words("box.wt.item_seen", zone="Zone 1 · Front door"),
        words("box.wt.item_missing", zone="Zone 2 · Hall motion detector"),
    ]
    assert await browser.text("#wt-sent") == words("box.wt.sent")
    # the same result went to the station: the manual test (601) the box queued
    event_id = await browser.eval("document.getElementById('wt-result').dataset.event")
    journal = await site.api("/api/events?kind=test")
    sent = [e for e in journal["events"] if e["id"] == event_id]
    assert sent and "front-door" in sent[0]["text"] and sent[0]["cid"] == "1601"
    await browser.screenshot("fr-phone-walktest-result", full=True)
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


async def test_config_errors_name_the_file_and_apply_asks_first(
    browser: Tab, site: Site, tmp_path: Path
) -> None:
    name = "config site (2) été.toml"  # as a phone names a downloaded file
    bad = tmp_path / name
    text = demo_text(1883, 8080).replace("account = ", "acount = ", 1)
    bad.write_text(text)
    good = tmp_path / "edge.toml"
    good.write_text(demo_text(1883, 8080))
    await browser.viewport(*PHONE)
    await log_in(browser, site)
    await open_page(browser, site, "config")
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
    want = site.box.web.hooks.config.check(text, name)  # type: ignore[union-attr]
    assert problems == want and want
    assert all(p.startswith(name) for p in problems), problems  # the file's own name
    assert await browser.text("#cfg-result") == words("box.cfg.problems", name=name)
    await browser.screenshot("fr-phone-config-refused", full=True)
    # a valid file: apply asks first, saying the box restarts and rolls back if unhealthy
    await browser.set_files("#cfg-file", [good])
    await browser.click("#cfg-apply")
    await browser.wait_for("document.getElementById('cfg-confirm').open", what="the question")
    question = await browser.text("#cfg-confirm-text")
    assert question == words("box.cfg.confirm_text", name="edge.toml", confirm="1\u00a0min")
    await browser.screenshot("fr-phone-config-confirm")
    await browser.click("#cfg-confirm button[value=cancel]")
    not_applied = json.dumps(words("box.cfg.not_applied"))
    await browser.wait_for(
        f"document.getElementById('cfg-result').textContent === {not_applied}", what="cancelled"
    )
    assert not await browser.eval("document.getElementById('cfg-confirm').open")
    assert site.box.restart_requested is False


async def test_the_camera_page_shows_when_what_is_drawn_and_holds_footage(
    browser: Tab, site: Site
) -> None:
    await browser.viewport(*PHONE)
    await log_in(browser, site)
    await open_page(browser, site, "camera")
    size = await browser.wait_for(
        "(() => { const i = document.getElementById('cam-img-entrance');"
        " return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null;"
        " })()",
        timeout_s=20,
        what="a camera frame drawn",
    )
    assert size == [640, 360]
    # when the picture was taken: local time, the offset and UTC on hover
    taken = await browser.wait_for(
        "document.querySelector('#cam-at-entrance time')?.getAttribute('datetime')",
        what="the picture's time",
    )
    assert abs(time.time() - _epoch(taken)) < 10
    assert "UTC" in await browser.eval(
        "document.querySelector('#cam-at-entrance time').getAttribute('title')"
    )
    assert await browser.text("#cam-rec-entrance") == words(
        "box.cam.recording", state=words("box.rec.mode_continuous")
    )
    svg = "document.getElementById('cam-svg-entrance')"
    assert await browser.eval(f"{svg}.getAttribute('viewBox')") == "0 0 640 360"
    assert await browser.eval(f"{svg}.querySelector('polygon.mask').getAttribute('points')") == (
        "540,0 640,0 640,60 540,60"
    )
    assert await browser.eval(f"{svg}.querySelector('text.zone-name').textContent") == "door"
    assert await browser.eval(f"{svg}.querySelectorAll('polygon.ignored').length") == 1
    await browser.wait_for(
        f"{svg}.querySelectorAll('rect.motion').length > 0", timeout_s=20, what="motion boxes"
    )
    legend = await browser.eval(
        "[...document.querySelectorAll('#cam-legend li')].map(li =>"
        " [li.querySelector('.swatch').className, li.textContent])"
    )
    assert legend == [
        ["swatch motion", words("box.cam.legend_motion")],
        ["swatch zone", words("box.cam.legend_zone")],
        ["swatch ignored", words("box.cam.legend_ignored")],
        ["swatch mask", words("box.cam.legend_mask")],
    ]
    # an incident hold, placed from the page, listed, and in the recorder's book
    await browser.wait_for("!!document.querySelector('#hold-days option')", what="choices")
    assert not await browser.eval(
        "document.getElementById('hold-none').classList.contains('hidden')"
    )
    await browser.eval("document.getElementById('hold-minutes').value = '15'")
    await browser.type("#hold-why", "effraction, plainte n° 42")
    await browser.click("#hold-place")
    await browser.wait_for("!!document.querySelector('#hold-list li')", what="the hold listed")
    holds = site.box.video.recorder.holds()
    assert [(h.camera, h.why, h.to_ms - h.from_ms) for h in holds] == [
        ("entrance", "effraction, plainte n° 42", 15 * 60_000)
    ]
    assert "effraction, plainte n° 42" in await browser.text("#hold-list li")
    await browser.screenshot("fr-phone-camera", full=True)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_events_arrive_live_with_their_state_media_and_codes(
    browser: Tab, site: Site
) -> None:
    await browser.viewport(*PHONE)
    await log_in(browser, site)
    await open_page(browser, site, "events")
    await browser.wait_for("document.getElementById('ev-counts').textContent", what="counts")
    await browser.eval("window.notReloaded = true")
    # an alarm at the front door, armed: it shows by itself, with its stills
    site.box.inputs.simulate("in6", True)
    await until(lambda: site.box.panel.state.armed.get(1), what="armed")
    site.box.inputs.simulate("in1", True)
    card = "document.querySelector('#ev-list li[data-kind=alarm]')"
    await browser.wait_for(f"!!{card}", timeout_s=10, what="the alarm, live")
    assert await browser.eval("window.notReloaded === true")
    title = await browser.text("#ev-list li[data-kind=alarm] h3")
    assert title == f"{words('box.kind.alarm')} — {words('box.cid.130')}"
    assert await browser.text("#ev-list li[data-kind=alarm] .zone") == "Zone 1 · Front door"
    assert await browser.eval(f"{card}.dataset.state") in ("queued", "sent")  # no broker
    delivery = await browser.text("#ev-list li[data-kind=alarm] .delivery")
    assert delivery.startswith(words("box.delivery.queued_at")) or delivery.startswith(
        before_placeholder("box.delivery.sent_at")
    )
    # its stills, still in the outbox (no station), shown on the page
    await browser.wait_for(
        f"[...{card}.querySelectorAll('li.media-still img')].filter(i => i.naturalWidth > 0)"
        ".length >= 3",
        timeout_s=15,
        what="the alarm's stills drawn",
    )
    # codes on demand
    assert not await browser.eval(f"{card}.querySelector('details.codes').open")
    await browser.click("#ev-list li[data-kind=alarm] details.codes summary")
    codes = await browser.text("#ev-list li[data-kind=alarm] details.codes p")
    assert codes == words("box.ev.codes_line", cid="1130", sia="BA", seq=1) or codes.startswith(
        "Contact ID 1130 · SIA BA"
    )
    await browser.screenshot("fr-phone-events-alarm", full=True)
    # filters are choices: the kind, the zone by its name
    options = await browser.eval(
        "[...document.getElementById('ev-zone').options].map(o => o.textContent)"
    )
    assert "Zone 1 · Front door" in options
    await browser.eval(
        "const k = document.getElementById('ev-kind'); k.value = 'test';"
        " k.dispatchEvent(new Event('change', {bubbles: true}))"
    )
    await browser.wait_for(
        "!document.querySelector('#ev-list li[data-kind=alarm]')", what="only test events"
    )
    await browser.click("#ev-test")
    await browser.wait_for("!!document.querySelector('#ev-list li[data-kind=test]')", what="test")
    assert await browser.text("#ev-sent") == words("box.ev.test_sent")


async def test_the_badge_names_the_lost_link_within_the_path_loss_time(
    browser: Tab, broker: Broker, tmp_path: Path
) -> None:
    """A real mosquitto, a 10 s path loss: the page open on the walk test (not the
    overview) turns from healthy to a named fault when the broker stops, then to the
    station's "box lost" once supervision says so; /healthz says the same."""
    web_port = free_port()
    text = demo_text(broker.port, web_port).replace(
        "heartbeat_s = 30\npath_loss_s = 90", "heartbeat_s = 5\npath_loss_s = 10"
    )
    state = tmp_path / "box"
    auth.write_password(state / "web", PASSWORD)
    async with RunningBox(parse(text, "badge.toml"), state) as box:
        site = Site(box, f"http://127.0.0.1:{web_port}")
        await browser.viewport(*PHONE)
        await log_in(browser, site)
        await open_page(browser, site, "walktest")
        health = "document.getElementById('health')"
        await browser.wait_for(f"{health}.dataset.level === 'ok'", timeout_s=15, what="healthy")
        assert await browser.text("#verdict") == words("box.health.ok")
        stopped = time.monotonic()
        broker.stop()
        await browser.wait_for(
            f"{health}.dataset.key === 'box.health.link_down'", timeout_s=10, what="named"
        )
        named_s = time.monotonic() - stopped
        shown = await browser.text("#verdict")
        assert shown.startswith(before_placeholder("box.health.link_down")), shown
        await browser.screenshot("fr-phone-badge-link-down")
        await browser.goto(f"{site.base}/?lang=en#events")  # another page, another language
        await ready(browser)
        await browser.wait_for(
            f"{health}.dataset.key === 'box.health.path_lost'", timeout_s=14, what="box lost"
        )
        lost_s = time.monotonic() - stopped
        assert await browser.eval(f"{health}.dataset.level") == "fault"
        assert (await browser.text("#verdict")).startswith(
            before_placeholder("box.health.path_lost", "en")
        )
        await browser.screenshot("en-phone-badge-path-lost")
        async with aiohttp.ClientSession() as http, http.get(site.base + "/healthz") as r:
            assert r.status == 503
            verdict = (await r.json())["verdict"]
        assert verdict["key"] == "box.health.path_lost" and verdict["level"] == "fault"
        assert verdict["text"].startswith("No link to the station for 1")
    print(
        f"badge named the fault {named_s:.1f} s after the broker stopped, path lost {lost_s:.1f} s"
    )
    assert named_s < 10 and lost_s < 13  # the path-loss time is 10 s


async def test_a_box_with_a_backup_path_shows_each_path_and_keeps_calm_when_one_is_cut(
    browser: Tab, broker: Broker, tmp_path: Path
) -> None:
    """Two real brokers, the box with a backup route: the overview lists both paths and
    the EN 50136-1 category their supervision reaches; the primary's broker stopped, the
    badge warns that the events go over the backup (not a fault), and says it in words."""
    backup = start_broker(tmp_path)
    web_port = free_port()
    text = demo_text(broker.port, web_port) + (
        f'\n[[routes]]\nname = "4g"\ntype = "mqtt"\nbroker = "{backup.url}"\n'
        "heartbeat_s = 60\npath_loss_s = 1800\n"
    )
    state = tmp_path / "box"
    auth.write_password(state / "web", PASSWORD)
    try:
        async with RunningBox(parse(text, "routes.toml"), state) as box:
            site = Site(box, f"http://127.0.0.1:{web_port}")
            await browser.viewport(*PHONE)
            await log_in(browser, site)
            await open_page(browser, site, "overview")
            route = "document.querySelector('#ov-link dd[data-key=\"route-{}\"]')"
            await browser.wait_for(
                f"{route.format(2)} && {route.format(2)}.textContent.includes('en service')",
                timeout_s=15,
                what="the backup path working",
            )
            assert await browser.text('#ov-link dd[data-key="category"]') == words(
                "box.route.category", category="DP4"
            )  # the primary reported lost within 90 s, the backup within 5 h: DP4
            labels = await browser.eval("[...document.querySelectorAll('#ov-link dt')]"
                                        ".map(d => d.textContent)")  # fmt: skip
            assert words("box.ov.route_named", number=2, name="4g") in labels
            assert (await browser.eval(LAYOUT)) == []
            await browser.screenshot("fr-phone-overview-two-paths")

            broker.stop()  # the primary's path is cut: the backup carries on
            health = "document.getElementById('health')"
            await browser.wait_for(
                f"{health}.dataset.key === 'box.health.primary_down'", timeout_s=15, what="warned"
            )
            assert await browser.eval(f"{health}.dataset.level") == "warning"
            assert "4g" in await browser.text("#verdict")
            down = json.dumps(words("box.route.down", kind="MQTT"))
            await browser.wait_for(
                f"{route.format(1)}.textContent === {down}", what="the primary not connected"
            )
    finally:
        backup.stop()
