"""``edge station bridge`` stopped while an event waits for its ACK, then started again.

The bridge runs as a real process; the receiver is pysiaalarm's TCP server,
told to hold back its answers for a while (it then hears messages, answers
nothing). The store is SQLite, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.station.inbound import EventReceived
from edge.station.store import StationStore
from tests.integration.conftest import HoldingReceiver
from tests.postgres import Postgres, postgres  # noqa: F401 (fixture)
from tests.unit.test_station_store import DEVICE, T0, event_message

ACCOUNT = "1234"
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """``--db`` (and ``--media``) of a new station store."""
    if request.param == "sqlite":
        return ["--db", str(tmp_path / "station.sqlite")]
    server: Postgres = request.getfixturevalue("postgres")
    return ["--db", server.fresh("station"), "--media", str(tmp_path / "media")]


def open_store(args: list[str]) -> StationStore:
    media = Path(args[3]) if len(args) > 2 else None
    store = StationStore(args[1] if media else Path(args[1]), media)
    store.open()
    return store


def forwarded(store: StationStore) -> dict[str, tuple[str, int]]:
    with store.transaction() as db:
        rows = db.execute("SELECT event_id, outcome, seq FROM forwarded").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(proc.wait, 15)


def seq_of(message: bytes) -> str:
    return message.split(b'"SIA-DCS"', 1)[1][:4].decode()


async def test_an_event_in_flight_at_sigterm_is_resent_with_its_number_after_a_restart(
    receiver: HoldingReceiver, store_args: list[str], spawn: Spawn, tmp_path: Path
) -> None:
    store = open_store(store_args)
    bridge = [
        *("station", "bridge", *store_args, "--receiver", f"127.0.0.1:{receiver.port}"),
        *("--account", ACCOUNT, "--null-every-s", "3600"),
    ]
    try:
        store.commit([EventReceived(DEVICE, event_message("ev-a", seq=1))], T0)
        first = spawn("bridge-1", *bridge)
        await until(lambda: "ev-a" in forwarded(store), "ev-a acked")
        receiver.hold = True  # the next message waits for an ACK that does not come
        store.commit([EventReceived(DEVICE, event_message("ev-b", seq=2))], T0 + 1)
        await until(lambda: len(receiver.heard) == 2, "ev-b at the receiver")
        assert await stop(first) == 0, (tmp_path / "bridge-1.log").read_text()
        assert "ev-b" not in forwarded(store)
        in_flight, before = receiver.heard[1], len(receiver.heard)
        assert seq_of(in_flight) == "0002"

        receiver.hold = False
        second = spawn("bridge-2", *bridge)
        await until(lambda: "ev-b" in forwarded(store), "ev-b acked after the restart")
        assert receiver.heard[before] == in_flight  # the same bytes: the same number, 0002
        store.commit([EventReceived(DEVICE, event_message("ev-c", seq=3))], T0 + 2)
        await until(lambda: "ev-c" in forwarded(store), "ev-c acked")
        assert await stop(second) == 0, (tmp_path / "bridge-2.log").read_text()
        assert forwarded(store) == {
            "ev-a": ("acked", 1),
            "ev-b": ("acked", 2),
            "ev-c": ("acked", 3),
        }
    finally:
        store.close()
    assert [seq_of(m) for m in receiver.heard[before:]] == ["0002", "0003"]
    assert [(e.code, e.sequence) for e in receiver.events] == [
        ("BA", "0001"),
        ("BA", "0002"),  # once held back, then resent by the restarted bridge: one number
        ("BA", "0003"),
    ]
