"""The operator's workstation in real headless Chromium.

Two operators race to take one alarm, each in a browser of their own; a fire alarm from
a real demo box is handled end to end (take, the instructions, the stills enlarged and
stepped with the keys, the clip at the alarm's instant, a fresh snapshot asked from the
box, the call list, the outcome, the close after the restore) and the main courante
holds every step; the page is laid out at 390 and 1920 px wide in French and English
without sideways scrolling or a word broken mid-letter. Screenshots go to
build/screenshots/.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.codes import Condition
from edge.station import courante, filing, sites
from edge.station.inbound import ChunkReceived
from edge.station.store import StationStore
from edge.station.web.server import OperatorPage
from tests.browser.conftest import Chromium, Tab, chromium  # noqa: F401 (fixture)
from tests.browser.workstation import (
    BREAKING_STYLES,
    BROKEN_WORDS,
    OVERFLOW,
    log_in,
    operator_tab,
    press,
    select,
    size,
)
from tests.conftest import REPO, Broker, free_port
from tests.deskkit import T0, event, file, operators, video_extra
from tests.integration.workstation import chain
from tests.unit.test_station_store import headers

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]


@dataclass
class Desk:
    store: StationStore
    page: OperatorPage
    base: str


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    tmp = tmp_path_factory.mktemp("media")
    clip, still = tmp / "clip.mp4", tmp / "still.jpg"
    for args in (
        ["-f", "lavfi", "-i", "testsrc=duration=10:size=640x360:rate=10", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(clip)],
        ["-f", "lavfi", "-i", "testsrc=size=640x360", "-frames:v", "1", str(still)],
    ):  # fmt: skip
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)
    return clip.read_bytes(), still.read_bytes()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    """The page on a store holding the demo site (its box: gw-1); no broker."""
    store = StationStore(tmp_path / "station.sqlite")
    store.open()
    operators(store)
    with store.transaction() as db:
        (site,) = sites.parse_file(REPO / "config" / "demo-site.toml")
        sites.put(db, site.model_copy(update={"devices": ("gw-1",)}), "sam", T0)
    port = free_port()
    page = OperatorPage(store, "127.0.0.1", port, poll_s=0.05)
    await page.start()
    try:
        yield Desk(store, page, f"http://127.0.0.1:{port}")
    finally:
        await page.stop()
        store.close()


def fire_with_media(store: StationStore, media: tuple[bytes, bytes], at_ms: int) -> None:
    clip, still = media
    file(store, event("ev-fire", 1, Condition.FIRE, extra=video_extra("ev-fire"),
                      occurred_ms=at_ms - 1000), at_ms=at_ms)  # fmt: skip
    items = [ChunkReceived("gw-1", "ev-fire", f"ev-fire-s{i}", c, data)
             for i in range(5) for c, data in headers(still, 64_000)]  # fmt: skip
    items += [ChunkReceived("gw-1", "ev-fire", "ev-fire-clip", c, data)
              for c, data in headers(clip, 256_000, kind="clip")]  # fmt: skip
    store.commit(items, at_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- take in charge: two operators, one alarm ------------------------------------------


async def test_two_operators_race_to_take_one_alarm(
    desk: Desk,
    chromium: Chromium,  # noqa: F811 (the fixture)
) -> None:
    file(desk.store, event("ev-race", 1, Condition.BURGLARY), at_ms=now_ms())
    async with operator_tab(chromium) as alice, operator_tab(chromium) as bob:
        for tab, name in ((alice, "alice"), (bob, "bob")):
            await log_in(tab, desk.base, name)
            await tab.click("#queue li")
            await tab.wait_for("!!document.getElementById('take')", what=f"{name}'s take button")
        await asyncio.gather(alice.click("#take"), bob.click("#take"))
        holder = ""
        for tab in (alice, bob):
            holder = await tab.wait_for(
                "(() => { const h = document.getElementById('d-holder').textContent;"
                " return h.includes('pris en charge par') && h; })()",
                what="the holder shown",
            )
        winner = "alice" if "alice" in holder else "bob"
        loser_tab = bob if winner == "alice" else alice
        refusal = await loser_tab.wait_for(
            "!document.getElementById('banner').hidden && "
            "document.getElementById('banner').textContent",
            what="the refusal, with who holds it",
        )
        assert refusal == f"Déjà pris en charge par {winner}."
        assert await loser_tab.eval("!!document.getElementById('take')") is False
        await loser_tab.screenshot("workstation-race-refused")
    with desk.store.read() as db:
        (incident,) = [r[0] for r in db.execute("SELECT id FROM incidents")]
        takes = [e.operator for e in courante.of_incident(db, incident) if e.action == "take"]
    assert takes == [winner]


# -- a fire alarm from the demo box, handled end to end -----------------------------------


async def test_a_fire_alarm_from_the_demo_box_handled_end_to_end(
    broker: Broker,
    tmp_path: Path,
    chromium: Chromium,  # noqa: F811 (the fixture)
) -> None:
    async with chain(broker, tmp_path) as line, operator_tab(chromium, 1920, 1080) as tab:
        await log_in(tab, line.base, "alice")
        line.box.inputs.simulate("in3", True)  # the fire panel's output
        await tab.wait_for("document.querySelectorAll('#queue li.p1').length === 1", what="fire")
        banner = await tab.text("#banner")
        assert banner == "Nouvelle alarme : Incendie — Boulangerie Martin"
        assert int(await tab.eval("document.body.dataset.beeps")) >= 1  # the audible alert
        await tab.click("#queue li")
        await tab.click("#take")
        await tab.wait_for("document.getElementById('d-holder').textContent"
                           " === 'pris en charge par alice'", what="taken")  # fmt: skip
        # the site's instructions for a fire, and its call list in order
        steps = await tab.eval("[...document.querySelectorAll('#steps li')].map(l => l.innerText)")
        assert steps[0].strip().startswith("Lever le doute par la vidéo") and len(steps) == 5
        await tab.click("#step-fire-0")
        await tab.wait_for("document.querySelector('#steps li').classList.contains('done')",
                           what="the instruction done")  # fmt: skip
        names = await tab.eval(
            "[...document.querySelectorAll('#calls > li b')].map(b => b.textContent)"
        )
        assert names[:2] == ["Paul Martin (gérant)", "Claire Martin"]
        # the stills, large; stepped with the keys; enlarged
        await tab.wait_for(
            "document.querySelectorAll('#stills img.still').length === 5 && [...document."
            "querySelectorAll('#stills img.still')].every(i => i.complete && i.naturalWidth > 0)",
            timeout_s=20, what="the five stills",
        )  # fmt: skip
        assert (
            await tab.eval("document.getElementById('still-img').getBoundingClientRect().width")
            > 600
        )
        await tab.eval("document.getElementById('still-viewer').focus()")
        assert await tab.eval("document.getElementById('still-viewer').dataset.at") == "2"
        await press(tab, "ArrowRight")
        assert (
            await tab.eval("document.getElementById('still-caption').textContent") == "4/5 · +0,5 s"
        )
        await tab.click("#still-enlarge")
        await tab.wait_for("!document.getElementById('viewer').hidden", what="the still enlarged")
        await press(tab, "ArrowLeft")
        await press(tab, "ArrowLeft")
        await tab.wait_for("document.getElementById('viewer').dataset.at === '1'", what="stepped")
        await tab.screenshot("workstation-still-enlarged")
        await press(tab, "Escape")
        await tab.wait_for("document.getElementById('viewer').hidden", what="closed")
        # the clip, the alarm's instant marked on its timeline, and the jump to it
        duration = await tab.wait_for(
            "(() => { const v = document.getElementById('clip'); "
            "return v && v.readyState >= 1 && isFinite(v.duration) && v.duration; })()",
            timeout_s=30, what="the clip",
        )  # fmt: skip
        alarm = await tab.eval("Detail.data.alarms[0].videos[0].pre_s")
        mark = await tab.eval("parseFloat(document.getElementById('alarm-mark').style.left)")
        assert mark == pytest.approx(alarm / duration * 100, abs=0.5)
        await tab.click("#jump-alarm")
        at = await tab.wait_for("document.getElementById('clip').currentTime", what="jumped")
        assert at == pytest.approx(alarm, abs=0.6)
        # a fresh still asked from the box, shown in place
        await tab.click("#ask-snapshot")
        await tab.wait_for(
            "(() => { const i = document.querySelector("
            "'#requests li[data-status=done] img.answer');"
            " return i && i.complete && i.naturalWidth > 0; })()",
            timeout_s=20, what="the box's snapshot in place",
        )  # fmt: skip
        # the call list, a dispatch, the outcome
        await tab.click("#calls > li .call-reached")
        await tab.wait_for("!!document.querySelector('#calls .tries li')", what="the call logged")
        await tab.click("#do-inform-fire_brigade")
        await select(tab, "#outcome", "real")
        await tab.type("#cause", "friteuse en feu, éteinte par le gérant")
        await tab.click("#set-outcome")
        await tab.wait_for("Detail.data.incident.outcome === 'real'", what="the outcome")
        # no close before the restore without a written reason
        await tab.click("#close")
        await tab.wait_for(
            "document.getElementById('banner').textContent.includes('sans retour à la normale')",
            what="the refusal to close without the restore or a reason",
        )
        line.box.inputs.simulate("in3", False)  # the panel's fire output back to normal
        await tab.wait_for(
            "document.getElementById('restore-state').textContent === "
            "'Toutes les zones sont revenues à la normale.'",
            timeout_s=15, what="the restore",
        )  # fmt: skip
        await tab.screenshot("workstation-fire-fr")
        await tab.click("#close")
        await tab.wait_for("document.querySelectorAll('#queue li').length === 0", what="closed")
        assert await tab.text("#banner") == "Alarme clôturée."
        # the main courante, printed for the shift
        await tab.goto(line.base + "/courante")
        await tab.wait_for("document.body.dataset.ready === '1'", what="the main courante")
        printed = await tab.eval(
            "[...document.querySelectorAll('#lines tbody tr')].map(r => r.dataset.action)"
        )
        await tab.screenshot("workstation-courante-fr")
        with line.store.read() as db:
            (incident,) = [r[0] for r in db.execute("SELECT id FROM incidents")]
            entries = courante.of_incident(db, incident)
    steps_done = [(e.operator, e.action) for e in entries]
    wanted = [("", "opened"), ("alice", "take"), ("alice", "instruction"),
              ("alice", "request"), ("alice", "answer"), ("alice", "call"), ("alice", "inform"),
              ("alice", "outcome"), ("", "restored"), ("alice", "closed")]  # fmt: skip
    assert [s for s in steps_done if s in wanted] == wanted
    views = {e.detail["media_id"] for e in entries if e.action == "media_view"}
    assert len(views) >= 7  # five stills, the clip, the snapshot: each seen, each logged
    closed = entries[-1]
    assert (closed.action, closed.detail, closed.text) == ("closed", {"restored": True}, "")
    assert {"opened", "take", "call", "closed", "media_view"} <= set(printed)


# -- the layout: a phone and a control-room screen, French and English ---------------------


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_layout_at_390_and_1920_px_without_sideways_scroll_or_broken_words(
    desk: Desk,
    media: tuple[bytes, bytes],
    chromium: Chromium,  # noqa: F811 (the fixture)
    lang: str,
) -> None:
    now = now_ms()
    fire_with_media(desk.store, media, now - 20_000)
    file(
        desk.store,
        event(
            "ev-late",
            7,
            Condition.BURGLARY,
            device="site-de-la-gare-nord-quai-3",
            historical=True,
            occurred_ms=now - 3_600_000,
        ),
        at_ms=now - 90_000,
    )
    with desk.store.transaction() as db:  # fmt: skip
        filing.file(db, [filing.of_station("lost-1", "gw-9", True, now - 5000)], now - 5000)
    async with operator_tab(chromium, 1920, 1080) as tab:
        await log_in(tab, desk.base, "sam")
        if lang == "en":  # the operator's switch, remembered
            await select(tab, "#lang", "en")
            await tab.wait_for("document.body.dataset.ready === '1' && "
                               "document.getElementById('tab-queue').textContent === 'Alarms'",
                               what="English")  # fmt: skip
        for width, height in ((1920, 1080), (1366, 768), (390, 844)):  # a laptop too
            await size(tab, width, height)
            await tab.goto(desk.base + "/")
            await tab.wait_for("document.body.dataset.ready === '1'", what="the page")
            await tab.wait_for("document.querySelectorAll('#queue li').length === 3", what="queue")
            categories = await tab.eval(
                "[...document.querySelectorAll('#queue li')].map(l => l.className.split(' ')[2])"
            )
            assert categories == ["cat-fire", "cat-intrusion", "cat-device_lost"]
            escalated = await tab.eval(  # waiting 90 s: past the 60 s nobody took it in
                "[...document.querySelectorAll('#queue li')].map(l => "
                "l.classList.contains('escalated'))"
            )
            assert escalated == [False, True, False]
            await check_layout(tab, f"queue {width} {lang}")
            await tab.screenshot(f"workstation-queue-{lang}-{width}")
            await tab.click("#queue li")
            await tab.wait_for("document.querySelectorAll('#stills img.still').length === 5 && "
                               "[...document.querySelectorAll('#stills img.still')]"
                               ".every(i => i.complete && i.naturalWidth > 0)",
                               what="the stills")  # fmt: skip
            await tab.wait_for("(() => { const v = document.getElementById('clip');"
                               " return v && v.readyState >= 1; })()", what="the clip")  # fmt: skip
            said = await tab.eval("document.querySelector('#evidence .person').textContent")
            person = {"fr": "personne vue (confiance 83 %)", "en": "person seen (confidence 83 %)"}
            assert said == " · " + person[lang]  # the box's person check, in words
            await check_layout(tab, f"detail {width} {lang}")
            await tab.screenshot(f"workstation-detail-{lang}-{width}")
        await size(tab, 1920, 1080)
        await tab.click("#tab-supervision")
        await tab.wait_for("!!document.getElementById('handlers')", what="who handles what")
        await tab.screenshot(f"workstation-supervision-{lang}-1920")
        await tab.click("#tab-sites")
        await tab.wait_for("!!document.querySelector('#site-list .edit')", what="the sites")
        await tab.click("#site-list .edit")
        await tab.wait_for("!!document.getElementById('site-save')", what="the site's form")
        await check_layout(tab, f"sites {lang}")


async def check_layout(tab: Tab, where: str) -> None:
    assert await tab.eval(OVERFLOW) <= 0, f"{where}: the page scrolls sideways"
    assert await tab.eval(BROKEN_WORDS) == [], f"{where}: words broken across lines"
    assert await tab.eval(BREAKING_STYLES) == [], f"{where}: a style that breaks words"
