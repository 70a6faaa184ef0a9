"""``edge run`` speaks systemd's notify protocol: READY=1, WATCHDOG=1 pings, STOPPING=1.

The test plays systemd: it binds the notify socket, starts the box with
NOTIFY_SOCKET and WATCHDOG_USEC (1 s, so a ping every 0.5 s) and reads the
datagrams. A dead uplink must not stop the pings: systemd would restart a box
that is doing its job (keeping events in the outbox) for a fault it cannot fix.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BOX_AUTH, REPO, Broker, edge_cmd, free_port, wait_for
from tests.integration.test_end_to_end import demo_text

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s
Popen = subprocess.Popen[bytes]


class Notify:
    """systemd's side of NOTIFY_SOCKET: every datagram the box sent, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[tuple[float, str]] = []

    def read_until(self, want: str, timeout_s: float) -> float:
        """Read datagrams until one equals ``want``; return when it came (monotonic)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {want!r} within {timeout_s} s; got {self.states()}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            at = time.monotonic()
            self.received.append((at, data.decode()))
            if data.decode() == want:
                return at

    def read_for(self, duration_s: float) -> None:
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            self.received.append((time.monotonic(), data.decode()))

    def states(self, after: float = 0.0) -> list[str]:
        return [text for at, text in self.received if at >= after]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Notify]:
    n = Notify(tmp_path / "notify.sock")
    yield n
    n.close()


def start_box(tmp_path: Path, broker_port: int, web_port: int, notify: Notify) -> Popen:
    config = tmp_path / "edge.toml"
    config.write_text(demo_text(broker_port, web_port), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "JOURNAL_STREAM")}
    env.update(
        NOTIFY_SOCKET=str(notify.path),
        WATCHDOG_USEC=str(WATCHDOG_USEC),
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "box.log").open("wb")
    try:
        return subprocess.Popen(
            edge_cmd("run", "--config", str(config), "--state-dir", str(tmp_path / "state")),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
    finally:
        log.close()


@pytest.fixture
def boxes() -> Iterator[list[Popen]]:
    """Processes to kill if a test fails before stopping them."""
    procs: list[Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def get_json(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=BOX_AUTH)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # /healthz answers 503 with its body
        return exc.code, json.loads(exc.read())


def box_log(tmp_path: Path) -> str:
    return (tmp_path / "box.log").read_text(errors="replace")


def stop(proc: Popen, notify: Notify, tmp_path: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    notify.read_until("STOPPING=1", 10)
    assert proc.wait(15) == 0, box_log(tmp_path)
    assert "Traceback" not in box_log(tmp_path)


@pytest.mark.broker
def test_ready_watchdog_and_stopping(
    broker: Broker, notify: Notify, boxes: list[Popen], tmp_path: Path
) -> None:
    web_port = free_port()
    proc = start_box(tmp_path, broker.port, web_port, notify)
    boxes.append(proc)
    ready_at = notify.read_until("READY=1", 20)
    assert "WATCHDOG=1" not in notify.states(), "pinged before it was ready"
    status_url = f"http://127.0.0.1:{web_port}/api/status"
    wait_for(lambda: get_json(status_url)[1]["uplink"]["connected"], 10, "box connected")
    # Two pings after READY, at the 0.5 s cadence (not a burst).
    notify.read_until("WATCHDOG=1", 3)
    second = notify.read_until("WATCHDOG=1", 3)
    pings = [at for at, text in notify.received if text == "WATCHDOG=1" and at >= ready_at]
    assert len(pings) >= 2 and second - pings[0] >= 0.25
    assert "STATUS=running, device demo-box-01" in notify.states()
    # unhealthy only while the first connection was being made (and, on a loaded
    # machine, while the camera had no first picture yet), running once connected
    said = [s for s in notify.states() if s.startswith("STATUS=")]
    starting = {"path: Connecting to the station…", "cameras: Camera entrance starting"}
    for status in set(said) - {"STATUS=running, device demo-box-01", "STATUS=running"}:
        assert status.startswith("STATUS=unhealthy: "), said
        assert set(status.removeprefix("STATUS=unhealthy: ").split("; ")) <= starting, said
    assert said[-1] == "STATUS=running", said

    stop(proc, notify, tmp_path)
    states = notify.states()
    assert states.index("READY=1") < states.index("STOPPING=1")


def test_dead_uplink_still_ready_and_pinging(
    notify: Notify, boxes: list[Popen], tmp_path: Path
) -> None:
    web_port = free_port()
    proc = start_box(tmp_path, free_port(), web_port, notify)  # nobody listens there
    boxes.append(proc)
    ready_at = notify.read_until("READY=1", 20)
    notify.read_for(2.5)  # several pings, and paho's first reconnect attempts
    pings = [at for at, text in notify.received if text == "WATCHDOG=1" and at >= ready_at]
    assert len(pings) >= 3, notify.states()  # a dead link never stops the watchdog's pings
    # but the box says it is not well, in words without a ticking duration
    said = [s for s in notify.states() if s.startswith("STATUS=unhealthy")]
    assert said[-1] == (
        "STATUS=unhealthy: path: No link to the station for … — events are kept and will be sent"
    ), said

    code, health = get_json(f"http://127.0.0.1:{web_port}/healthz")
    assert code == 503 and health["healthy"] is False
    assert health["verdict"]["key"] == "box.health.link_down"
    assert set(health["problems"]) == {"path"}
    code, status = get_json(f"http://127.0.0.1:{web_port}/api/status")
    assert code == 200
    assert status["uplink"]["connected"] is False
    assert status["uplink"]["connects"] == 0
    assert status["healthy"] is False

    stop(proc, notify, tmp_path)
