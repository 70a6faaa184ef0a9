"""The login lockout as kept across restarts: its snapshot in wall-clock time,
restored on another monotonic clock, and the file it is written to."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from edge.web import auth

WALL = 1_800_000_000.0


def restored(data: dict[str, Any], now: float, wall: float) -> auth.Lockout:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    lock.restore(data, now, wall)
    return lock


def test_a_client_lock_survives_on_another_monotonic_clock() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for _ in range(3):
        lock.failed("a", 100.0)
    lock.failed("b", 100.0)
    data = json.loads(json.dumps(lock.snapshot(102.0, WALL + 2)))  # as the file holds it
    again = restored(data, 5.0, WALL + 6)  # 6 s after the lock, on a fresh boot's clock
    assert again.retry_after_s("a", 5.0) == 4
    assert again.retry_after_s("b", 5.0) == 0
    again.failed("b", 5.0)
    again.failed("b", 5.0)  # b's first failure was kept: three in a row
    assert again.retry_after_s("b", 5.0) == 10
    for _ in range(3):
        again.failed("a", 10.0)
    assert again.retry_after_s("a", 10.0) == 20  # a's lockout count was kept: doubled


def test_the_box_wide_lock_survives() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for n in range(30):  # 10 clients' worth, each below its own limit
        lock.failed(f"client-{n}", 0.0)
    again = restored(lock.snapshot(1.0, WALL + 1), 500.0, WALL + 2)
    assert again.retry_after_s("fresh", 500.0) == 8
    assert again.retry_after_s("fresh", 508.0) == 0


def test_a_clock_set_back_never_lengthens_a_lock() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for _ in range(3):
        lock.failed("a", 0.0)
    for n in range(30):
        lock.failed(f"client-{n}", 0.0)
    lock.lock_box(0.0)
    again = restored(lock.snapshot(0.0, WALL), 0.0, WALL - 86_400)  # a day back
    assert again.retry_after_s("a", 0.0) == 10
    assert again.retry_after_s("fresh", 0.0) == 10
    assert again.retry_after_s("fresh", 10.0) == 0


def test_a_lost_file_locks_the_whole_box_once() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    lock.lock_box(50.0)
    assert lock.retry_after_s("anyone", 55.0) == 5
    again = restored(lock.snapshot(55.0, WALL), 0.0, WALL + 1)
    assert again.retry_after_s("anyone", 0.0) == 4
    assert again.retry_after_s("anyone", 4.0) == 0


def test_a_success_is_noted_and_forgets_the_client() -> None:
    changes: list[str] = []
    lock = auth.Lockout(max_failures=3, lockout_s=10, on_change=lambda: changes.append("x"))
    lock.failed("a", 0.0)
    lock.succeeded("a")
    lock.succeeded("b")  # nothing to forget: nothing to write
    assert changes == ["x", "x"]
    assert lock.snapshot(0.0, WALL)["clients"] == {}


def test_the_clients_kept_are_bounded() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for _ in range(3):
        lock.failed("locked", 0.0)
    for n in range(auth.MAX_CLIENTS + 50):
        lock.failed(f"client-{n}", float(n) / 1000)
        lock.recent.clear()  # not the box-wide cap under test here
    clients = lock.snapshot(1.0, WALL)["clients"]
    assert len(clients) == auth.MAX_CLIENTS
    assert "locked" in clients  # a lock in force is never forgotten
    assert "client-0" not in clients and f"client-{auth.MAX_CLIENTS + 49}" in clients


BAD: list[Any] = [
    [],
    {},
    {"version": 2, "box_until": 0, "recent": [], "clients": {}},
    {"version": 1, "box_until": "soon", "recent": [], "clients": {}},
    {"version": 1, "box_until": math.inf, "recent": [], "clients": {}},
    {"version": 1, "box_until": 0, "recent": [math.nan], "clients": {}},
    {"version": 1, "box_until": 0, "recent": {}, "clients": {}},
    {"version": 1, "box_until": 0, "recent": [], "clients": []},
    {"version": 1, "box_until": 0, "recent": [], "clients": {"a": {"failures": 1}}},
    {
        "version": 1,
        "box_until": 0,
        "recent": [],
        "clients": {"a": {"failures": -1, "lockouts": 0, "locked_until": 0, "last_failed": 0}},
    },
    {
        "version": 1,
        "box_until": 0,
        "recent": [],
        "clients": {"a": {"failures": True, "lockouts": 0, "locked_until": 0, "last_failed": 0}},
    },
]


@pytest.mark.parametrize("data", BAD)
def test_a_snapshot_of_the_wrong_shape_is_refused_whole(data: Any) -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    lock.failed("a", 0.0)
    before = lock.snapshot(0.0, WALL)
    with pytest.raises(auth.AuthError, match="lockout"):
        lock.restore(data, 0.0, WALL)
    assert lock.snapshot(0.0, WALL) == before  # nothing half-restored


def test_the_file_is_written_whole_and_read_back(tmp_path: Path) -> None:
    web_dir = tmp_path / "web"
    assert auth.read_lockout(web_dir) is None  # never written
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for _ in range(3):
        lock.failed("a", 0.0)
    auth.write_lockout(web_dir, lock.snapshot(0.0, WALL))
    path = web_dir / auth.LOCKOUT_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in web_dir.iterdir()] == [auth.LOCKOUT_FILE]  # no temporary left
    assert auth.read_lockout(web_dir) == lock.snapshot(0.0, WALL)
    path.write_text("{")
    with pytest.raises(auth.AuthError, match=r"lockout\.json"):
        auth.read_lockout(web_dir)
