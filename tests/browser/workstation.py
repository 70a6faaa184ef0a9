"""Helpers for the workstation's browser tests: a tab in a browser context of its own (its
own cookies: another operator), real key presses, the operator's login, and the layout
checks (no sideways scrolling, no word broken across lines)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp

from tests.browser.conftest import Chromium, Tab, _call, _devtools_url
from tests.deskkit import PASSWORD

KEYS = {"ArrowLeft": 37, "ArrowRight": 39, "Enter": 13, "Escape": 27}


@contextlib.asynccontextmanager
async def operator_tab(
    chromium: Chromium, width: int = 1920, height: int = 1080
) -> AsyncIterator[Tab]:
    """A tab in a fresh browser context (as another person's browser), sized."""
    url = await _devtools_url(chromium.profile, chromium.proc)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws,
    ):
        context = await _call(ws, "Target.createBrowserContext")
        target = await _call(ws, "Target.createTarget", url="about:blank",
                             browserContextId=context["browserContextId"])  # fmt: skip
        attached = await _call(ws, "Target.attachToTarget", targetId=target["targetId"],
                               flatten=True)  # fmt: skip
        tab = Tab(ws, attached["sessionId"])
        await tab.send("Page.enable")
        await tab.send("Runtime.enable")
        await size(tab, width, height)
        try:
            yield tab
        finally:
            await tab.close()


async def size(tab: Tab, width: int, height: int) -> None:
    await tab.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                   deviceScaleFactor=1, mobile=width < 600)  # fmt: skip


async def press(tab: Tab, key: str) -> None:
    code = KEYS[key]
    for kind in ("keyDown", "keyUp"):
        await tab.send("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                       windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)  # fmt: skip


async def log_in(tab: Tab, base: str, name: str, lang: str = "fr") -> None:
    await tab.goto(f"{base}/login?lang={lang}")
    await tab.wait_for("document.getElementById('submit').textContent !== ''", what="words")
    await tab.type("#name", name)
    await tab.type("#password", PASSWORD)
    await tab.click("#submit")
    await tab.wait_for("document.body.dataset.ready === '1'", what=f"{name}'s workstation")


async def select(tab: Tab, selector: str, value: str) -> None:
    """Choose ``value`` in a <select>, as a person's choice would (a change event)."""
    await tab.eval(
        f"(() => {{ const s = document.querySelector({json.dumps(selector)});"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


OVERFLOW = "document.scrollingElement.scrollWidth - window.innerWidth"

# Words laid out on more than one line (a word broken mid-letter); long ids (.id) may be,
# and words with a hyphen or slash may wrap there.
BROKEN_WORDS = """(() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || parent.closest('.id, script, style, option, select, textarea')) continue;
    if (!parent.getClientRects().length) continue;
    const words = /\\S+/g;
    let m;
    while ((m = words.exec(node.data))) {
      if (/[-/\u2013\u2014]/.test(m[0])) continue;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0)
        .map((r) => Math.round(r.bottom)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
  return broken;
})()"""

# Elements whose style would break any word mid-letter.
BREAKING_STYLES = """[...document.querySelectorAll('*')].filter((e) => {
  const s = getComputedStyle(e);
  return s.overflowWrap === 'anywhere' || s.wordBreak === 'break-all';
}).map((e) => e.tagName + '#' + e.id + '.' + e.className)"""
