"""A real headless Chromium driven over the Chrome DevTools Protocol (no extra package).

``browser`` starts Debian's ``/usr/bin/chromium`` with a fresh profile and the
flags that keep it off the network, and gives a :class:`Tab` that navigates,
evaluates JavaScript, types and clicks with real input events, and saves
screenshots to ``build/screenshots/`` (the test artefacts).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "build" / "screenshots"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--password-store=basic",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
)


class CdpError(Exception):
    pass


class Tab:
    """One page of the browser, attached with a flat CDP session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: str) -> None:
        self.ws = ws
        self.session = session
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read(), name="cdp.reader")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(CdpError(str(data["error"])))
                else:
                    future.set_result(data.get("result", {}))
            elif data.get("method") == "Runtime.consoleAPICalled":
                args = data["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", "")) for a in args))

    async def send(self, method: str, timeout_s: float = 10.0, **params: Any) -> Any:
        msg_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        body = {"id": msg_id, "method": method, "params": params, "sessionId": self.session}
        await self.ws.send_str(json.dumps(body))
        return await asyncio.wait_for(future, timeout_s)

    async def eval(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited); its JSON value."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 10.0, what: str = "") -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            with contextlib.suppress(CdpError):
                value = await self.eval(expression)
                if value:
                    return value
            if loop.time() > deadline:
                await self.screenshot("timeout")
                pytest.fail(f"timed out after {timeout_s} s waiting for {what or expression}")
            await asyncio.sleep(0.05)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", what=f"{url} loaded")

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || !e.offsetParent) return null; e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()",
            what=f"{selector} visible",
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    async def type(self, selector: str, text: str) -> None:
        """Focus the field, clear it and type ``text`` as keyboard input."""
        await self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); e.select && e.select(); })()"
        )
        await self.send("Input.insertText", text=text)

    async def text(self, selector: str) -> str:
        value = await self.eval(
            f"document.querySelector({json.dumps(selector)})?.textContent ?? null"
        )
        return str(value) if value is not None else ""

    async def set_files(self, selector: str, paths: list[Path]) -> None:
        doc = await self.send("DOM.getDocument")
        node = await self.send("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector=selector)
        await self.send(
            "DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(p) for p in paths]
        )

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Size the page as a phone (``mobile``: touch, its viewport meta honoured) or a
        desktop window."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
        )
        await self.send("Emulation.setTouchEmulationEnabled", enabled=mobile)

    async def screenshot(self, name: str, full: bool = False) -> Path:
        """The page as shown (``full``: all of it, down to its end)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
            width = max(size["width"], await self.eval("window.innerWidth"))
            clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
            params |= {"captureBeyondViewport": True, "clip": clip}
        shot = await self.send("Page.captureScreenshot", **params)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


async def _devtools_url(profile: Path, proc: subprocess.Popen[bytes]) -> str:
    port_file = profile / "DevToolsActivePort"
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail(f"chromium exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            text = await asyncio.to_thread(port_file.read_text)
            port, path = text.split("\n")[:2]
            return f"ws://127.0.0.1:{int(port)}{path}"
        await asyncio.sleep(0.05)
    pytest.fail("chromium did not open its DevTools port in 15 s")


@dataclass
class Chromium:
    proc: subprocess.Popen[bytes]
    profile: Path


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    """A headless Chromium process with a fresh profile, off the network."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield Chromium(proc, profile)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def browser(chromium: Chromium) -> AsyncIterator[Tab]:
    """A blank tab of ``chromium``, attached over DevTools."""
    url = await _devtools_url(chromium.profile, chromium.proc)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws,
    ):
        target = await _call(ws, "Target.createTarget", url="about:blank")
        attached = await _call(
            ws, "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        tab = Tab(ws, attached["sessionId"])
        await tab.send("Page.enable")
        await tab.send("Runtime.enable")
        try:
            yield tab
        finally:
            await tab.close()


async def _call(ws: aiohttp.ClientWebSocketResponse, method: str, **params: Any) -> Any:
    """A browser-level command, before the tab's reader runs."""
    await ws.send_str(json.dumps({"id": 0, "method": method, "params": params}))
    while True:
        data = json.loads(await asyncio.wait_for(ws.receive_str(), 10))
        if data.get("id") == 0:
            if "error" in data:
                raise CdpError(str(data["error"]))
            return data["result"]
