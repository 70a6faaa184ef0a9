"""A config applied from the page: restart, then kept if healthy, else rolled back."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge import app
from edge.boxweb import config_file as boxweb
from edge.config import load
from edge.web import auth
from tests.conftest import BOX_AUTH, Broker, edge_cmd, free_port
from tests.integration.test_end_to_end import demo_text

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def config_text(broker_port: int, web_port: int, site: str = "Demo site") -> str:
    text = demo_text(broker_port, web_port).replace(
        f"port = {web_port}\n", f"port = {web_port}\napply_confirm_s = 1\n"
    )
    return text.replace('site = "Demo site (simulated panel)"', f'site = "{site}"')


async def run_box(
    path: Path, state: Path, ready: Callable[[app.Box], None] | None = None
) -> asyncio.Task[bool]:
    return asyncio.create_task(app.run(load(path), state, config_path=path, ready=ready))


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=BOX_AUTH) as http,
        http.post(url, json=body) as r,
    ):
        return r.status, await r.json()


async def until(predicate: Callable[[], object], timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {predicate}")


async def apply_new_site(broker: Broker, tmp_path: Path) -> tuple[Path, Path, str, str, int]:
    """Start a box from a file, apply a config with a new site; the box asks to restart."""
    web_port = free_port()
    path, state = tmp_path / "edge.toml", tmp_path / "state"
    old = config_text(broker.port, web_port)
    new = config_text(broker.port, web_port, site="New site")
    path.write_text(old)
    auth.write_password(state / "web", "a long enough password")
    stopped: list[app.Box] = []
    task = await run_box(path, state, stopped.append)
    await until(lambda: bool(stopped))
    url = f"http://127.0.0.1:{web_port}/api/config/apply"
    bad = new.replace("port = ", "port = -", 1)
    code, answer = await post(url, {"text": bad})
    assert code == 422 and answer["problems"]  # refused, nothing written
    assert path.read_text() == old
    code, answer = await post(url, {"text": new})
    assert code == 202 and answer["ok"] is True
    assert await asyncio.wait_for(task, 20) is True  # it stopped, asking for a restart
    assert path.read_text() == new
    assert (tmp_path / "edge.toml.previous").read_text() == old
    return path, state, old, new, web_port


async def test_an_applied_config_is_kept_when_the_box_stays_healthy(
    broker: Broker, tmp_path: Path
) -> None:
    path, state, _old, new, _ = await apply_new_site(broker, tmp_path)
    boxes: list[app.Box] = []
    task = await run_box(path, state, boxes.append)
    await until(lambda: bool(boxes))
    assert boxes[0].cfg.device.site == "New site"
    marker = state / "web" / boxweb.APPLY_MARKER
    assert marker.exists()
    await until(lambda: not marker.exists())  # confirmed after apply_confirm_s, healthy
    assert path.read_text() == new
    assert boxes[0].restart_requested is False
    assert boxes[0].stop_event is not None
    boxes[0].stop_event.set()
    assert await asyncio.wait_for(task, 20) is False


async def test_an_applied_config_is_rolled_back_when_the_box_is_unhealthy(
    broker: Broker, tmp_path: Path
) -> None:
    path, state, old, _new, _ = await apply_new_site(broker, tmp_path)

    def break_it(box: app.Box) -> None:
        box.health.check("test", lambda: "something the new config broke")

    task = await run_box(path, state, break_it)
    assert await asyncio.wait_for(task, 20) is True  # restarts itself ...
    assert path.read_text() == old  # ... with the previous config back
    assert not (state / "web" / boxweb.APPLY_MARKER).exists()


def test_a_config_that_does_not_load_is_rolled_back_at_start(tmp_path: Path) -> None:
    path, state = tmp_path / "edge.toml", tmp_path / "state"
    good = config_text(free_port(), free_port())
    previous = tmp_path / "edge.toml.previous"
    previous.write_text(good)
    path.write_text(good.replace("[device]", "[devise]"))
    (state / "web").mkdir(parents=True)
    (state / "web" / boxweb.APPLY_MARKER).write_text(f'{{"previous": "{previous}"}}')
    result = subprocess.run(
        [*edge_cmd("run", "--config", str(path), "--state-dir", str(state))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 75, result.stderr  # systemd restarts it
    assert path.read_text() == good
    assert "rolled back" in result.stderr
    # without a pending apply, a bad config is just an error (exit 2), nothing touched
    path.write_text(good.replace("[device]", "[devise]"))
    result = subprocess.run(
        [*edge_cmd("run", "--config", str(path), "--state-dir", str(state))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "[devise]" in path.read_text()
