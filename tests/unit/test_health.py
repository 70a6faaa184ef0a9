"""edge/health.py: sd_notify on a real datagram socket, the watchdog interval,
the health registry and the watchdog loop."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.health import Health, sd_notify, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound AF_UNIX datagram socket in tmp_path, as systemd's notify socket."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield sock, str(path)
    sock.close()


# -- sd_notify ---------------------------------------------------------------


def test_sd_notify_sends_the_exact_datagram(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": path}) is True
    assert sock.recv(4096) == b"READY=1"
    text = "STATUS=zone fire: alarm, état ok"
    assert sd_notify(text, {"NOTIFY_SOCKET": path}) is True
    assert sock.recv(4096) == text.encode("utf-8")


def test_sd_notify_reads_os_environ_when_no_mapping_is_given(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sd_notify("WATCHDOG=1") is True
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_sd_notify_supports_abstract_sockets() -> None:
    name = f"edge-test-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert sd_notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_sd_notify_without_notify_socket_is_false() -> None:
    assert sd_notify("READY=1", {}) is False
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": ""}) is False


def test_sd_notify_without_notify_socket_in_os_environ_is_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False


def test_sd_notify_to_a_socket_that_is_gone_is_false(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody reads: connection refused
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": str(path)}) is False
    path.unlink()  # no file at all
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": str(path)}) is False
    abstract = f"@edge-test-nobody-{uuid.uuid4().hex}"
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": abstract}) is False


# -- watchdog_interval_s -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "3000000"}, 1.5),
        ({"WATCHDOG_USEC": "1000000"}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ""}, 15.0),
        ({}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "not-a-pid"}, None),
        ({"WATCHDOG_USEC": "thirty seconds"}, None),
        ({"WATCHDOG_USEC": "1.5e6"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-1000000"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval_s(env) == expected


def test_watchdog_interval_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None


# -- Health ------------------------------------------------------------------


def _broken() -> str | None:
    raise RuntimeError("sensor bus wedged")


def test_problems_lists_failing_and_raising_checks_only() -> None:
    health = Health()
    health.check("ok", lambda: None)
    health.check("empty", lambda: "")
    health.check("uplink", lambda: "broker unreachable")
    health.check("camera", _broken)
    assert health.problems() == {
        "uplink": "broker unreachable",
        "camera": "check failed: RuntimeError('sensor bus wedged')",
    }


def test_problems_is_empty_when_every_check_passes() -> None:
    health = Health()
    assert health.problems() == {}
    health.check("a", lambda: None)
    health.check("b", lambda: None)
    assert health.problems() == {}


# -- run_watchdog --------------------------------------------------------------


async def _recv(sock: socket.socket, timeout_s: float = 2.0) -> str:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout_s)
    return data.decode()


async def test_run_watchdog_pings_only_while_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    problem: list[str] = []
    health = Health()
    health.check("uplink", lambda: problem[0] if problem else None)
    task = asyncio.create_task(health.run_watchdog(0.01), name="watchdog")
    try:
        assert [await _recv(sock) for _ in range(3)] == ["WATCHDOG=1"] * 3

        problem.append("broker unreachable")
        # Pings already queued before the change may still be read; then only STATUS.
        for _ in range(50):
            first = await _recv(sock)
            if first != "WATCHDOG=1":
                break
        assert first == "STATUS=unhealthy: uplink: broker unreachable"
        assert [await _recv(sock) for _ in range(5)] == [first] * 5

        problem.clear()
        for _ in range(50):
            again = await _recv(sock)
            if again != first:
                break
        assert again == "STATUS=running"  # the stale unhealthy text is replaced
        assert [await _recv(sock) for _ in range(3)] == ["WATCHDOG=1"] * 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sock.close()


async def test_a_storage_fault_never_stops_the_watchdog_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk makes the box unhealthy, but a restart by systemd would lose the
    alarms it holds in memory: the pings go on and STATUS= says what is wrong."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    problem: list[str] = []
    health = Health()
    health.check("outbox", lambda: problem[0] if problem else None, watchdog=False)
    health.check("tasks", lambda: None)
    problem.append("disk full: 2 event(s) held in memory")
    task = asyncio.create_task(health.run_watchdog(0.01), name="watchdog")
    try:
        got = [await _recv(sock) for _ in range(8)]
        assert got[0] == "STATUS=unhealthy: outbox: disk full: 2 event(s) held in memory"
        assert got[1:] == ["WATCHDOG=1"] * 7  # the status once, the pings every time
        assert health.problems() == {"outbox": "disk full: 2 event(s) held in memory"}
        assert health.problems(watchdog_only=True) == {}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sock.close()


async def test_run_watchdog_status_is_capped_and_names_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    health = Health()
    health.check("camera", _broken)
    health.check("outbox", lambda: "x" * 1000)
    task = asyncio.create_task(health.run_watchdog(0.01), name="watchdog")
    try:
        status = await _recv(sock)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sock.close()
    assert status.startswith(
        "STATUS=unhealthy: camera: check failed: RuntimeError('sensor bus wedged'); outbox: xxx"
    )
    assert len(status) == 400
