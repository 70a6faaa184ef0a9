"""`edge demo` prints the page's address and the demo credentials, and they work."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from edge.web import auth
from tests.conftest import DEMO_CONFIG, REPO, edge_cmd, free_port, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def read_banner(proc: subprocess.Popen[str], timeout_s: float = 40.0) -> str:
    """The demo's output up to the end of its banner."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(" Stop:"):
            return "".join(seen)
        if time.monotonic() > deadline:
            break
    pytest.fail("no demo banner:\n" + "".join(seen[-30:]))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """``edge demo`` on free ports: (web port, its banner)."""
    web_port, broker_port = free_port(), free_port()
    config = tmp_path / "demo.toml"
    text = DEMO_CONFIG.read_text().replace("port = 8080", f"port = {web_port}")
    config.write_text(text.replace("127.0.0.1:18830", f"127.0.0.1:{broker_port}"))
    proc = subprocess.Popen(
        edge_cmd("demo", "--config", str(config), "--work-dir", str(tmp_path / "demo")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        yield web_port, read_banner(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_the_demo_prints_the_page_and_a_password_that_logs_in(
    demo: tuple[int, str],
) -> None:
    web_port, banner = demo
    assert f"Technician page: http://127.0.0.1:{web_port}/" in banner
    found = re.search(r"log in with the demo password: (\S+)", banner)
    assert found is not None, banner
    base = f"http://127.0.0.1:{web_port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(base + "/api/status") as r:
            assert r.status == 401
        async with http.post(base + "/api/login", json={"password": found[1]}) as r:
            assert r.status == 200
        async with http.get(base + "/api/status") as r:
            assert (await r.json())["device"]["id"] == "demo-box-01"


def test_set_password_stores_a_hash_and_refuses_a_short_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = edge_cmd("set-password", "--config", str(DEMO_CONFIG), "--state-dir", str(state))
    short = subprocess.run(argv, input="short\n", capture_output=True, text=True, check=False)
    assert short.returncode == 1
    assert "10 to 256 characters" in short.stderr
    assert not (state / "web" / "password").exists()
    good = subprocess.run(
        argv, input="a fine long password\n", capture_output=True, text=True, check=False
    )
    assert good.returncode == 0, good.stderr
    stored = auth.read_password(state / "web")
    assert stored is not None and auth.verify_password("a fine long password", stored)
    assert "a fine long password" not in (state / "web" / "password").read_text()


def test_the_demo_with_a_backup_broker_carries_an_alarm_over_it_when_the_primary_is_cut(
    tmp_path: Path,
) -> None:
    """``edge demo --backup``: a second broker and receiver, the box with a backup route;
    the primary broker frozen as the banner says, an alarm reaches the station anyway."""
    web_port, broker_port = free_port(), free_port()
    config = tmp_path / "demo.toml"
    text = DEMO_CONFIG.read_text().replace("port = 8080", f"port = {web_port}")
    config.write_text(text.replace("127.0.0.1:18830", f"127.0.0.1:{broker_port}"))
    work = tmp_path / "demo"
    proc = subprocess.Popen(
        edge_cmd("demo", "--config", str(config), "--work-dir", str(work), "--backup"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        banner = read_banner(proc)
        assert proc.stdout is not None
        more = [proc.stdout.readline() for _ in range(4)]
        found = re.search(r"kill -STOP (\d+)", "".join(more))
        assert found is not None, banner + "".join(more)
        primary = int(found[1])
        station = work / "station.sqlite"

        def alarms(zone: str) -> int:
            con = sqlite3.connect(f"file:{station}?mode=ro", uri=True, timeout=10)
            try:
                sql = "SELECT COUNT(*) FROM events WHERE zone_id = ? AND kind = 'alarm'"
                return int(con.execute(sql, (zone,)).fetchone()[0])
            finally:
                con.close()

        wait_for(lambda: station.exists() and alarms("fire") >= 1, 30, "the demo's own alarm")
        os.kill(primary, signal.SIGSTOP)  # the primary path goes silent
        try:
            cut = time.monotonic()
            subprocess.run(
                edge_cmd("simulate", "--config", str(work / "demo-backup.toml"), "trip", "panic"),
                check=True,
                capture_output=True,
                cwd=REPO,
            )
            wait_for(lambda: alarms("panic") >= 1, 5 + 5, "the panic over the backup")
            print(f"panic at the station {time.monotonic() - cut:.1f} s after the cut")
        finally:
            os.kill(primary, signal.SIGCONT)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
