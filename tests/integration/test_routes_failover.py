"""Two transmission paths (issue 18): the primary's cable is cut, the backup carries the alarm.

The primary broker runs in a network namespace of its own, reached through a veth
pair (:mod:`tests.netpath`): taking the pair's host end down cuts the path as a
pulled cable does (no reset, the box's TCP connection just stops answering). The backup broker is on
loopback. The station runs one receiver per broker on one store, as a centre with
two ingress points does. Needs root (network namespaces); skips otherwise.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.config import parse
from edge.mqttio import LinkSettings, MqttLink
from tests import netpath
from tests.conftest import Broker, free_port
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    device_states,
    station_rows,
    until,
    without_video,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(240)]
Spawn = Callable[..., subprocess.Popen[bytes]]
CutPath = netpath.CutPath
FAILOVER_S = 3


@pytest.fixture
def cut_path(tmp_path: Path) -> Iterator[CutPath]:
    try:
        with netpath.cut_path(tmp_path) as path:
            yield path
    except netpath.Unavailable as exc:
        pytest.skip(str(exc))


def two_route_config(primary: CutPath, backup: Broker, web_port: int) -> str:
    text = without_video(demo_text(backup.port, web_port, ack_timeout_s=5))
    text = text.replace(f'broker = "mqtt://127.0.0.1:{backup.port}"', f'broker = "{primary.url}"')
    text = text.replace("ack_timeout_s = 5\n", "ack_timeout_s = 5\nkeepalive_s = 30\n")
    return (
        text
        + f"""
[[routes]]
name = "4g"
type = "mqtt"
broker = "mqtt://127.0.0.1:{backup.port}"
heartbeat_s = 5
path_loss_s = 60

[delivery]
failover_s = {FAILOVER_S}
"""
    )


def start_receivers(spawn: Spawn, db: Path, *brokers: str) -> None:
    for n, url in enumerate(brokers):
        spawn(
            f"station-{n}",
            "station",
            "run",
            "--broker",
            url,
            "--db",
            str(db),
            "--client-id",
            f"station-receiver-{n}",
        )


async def test_a_fire_goes_over_the_backup_when_the_primary_is_cut(
    cut_path: CutPath, broker: Broker, spawn: Spawn, tmp_path: Path
) -> None:
    station_db = tmp_path / "station.sqlite"
    start_receivers(spawn, station_db, cut_path.url, broker.url)
    cfg = parse(two_route_config(cut_path, broker, free_port()), "two-routes.toml")
    async with RunningBox(cfg, tmp_path / "box") as box:
        backup = box.routes.mqtt[0]
        await until(lambda: box.link.status.connected and backup.link.status.connected, 15)
        await until(lambda: device_states(station_db).get("demo-box-01") == "online", 15)
        box.inputs.simulate("in4", True)  # a panic before the cut: over the primary
        await until(lambda: station_rows(station_db, kind="alarm"), 10, "the panic")
        await until(lambda: box.outbox.depth == 0, 10, "acknowledged on the primary")

        cut_path.cut()  # the cable is pulled: no reset, the primary just goes silent
        tripped = time.monotonic()
        box.inputs.simulate("in3", True)  # the fire
        await until(
            lambda: [r for r in station_rows(station_db, kind="alarm") if r["cid"] == "1110"],
            FAILOVER_S + 2,
            "the fire over the backup within failover_s + 2 s",
        )
        took = time.monotonic() - tripped
        print(f"fire at the station {took:.2f} s after the trip (failover_s {FAILOVER_S})")
        box.inputs.simulate("in3", False)  # its restore, while the primary is still cut
        # (the fire zone holds its alarm 10 s: the restore comes after, then failover_s)
        await until(lambda: station_rows(station_db, kind="restore"), 20, "the restore")
        await until(lambda: box.outbox.depth == 0, 20, "everything acknowledged (backup)")
        # the station does not take the box for offline: its backup says it is online
        assert device_states(station_db).get("demo-box-01") == "online"

        cut_path.mend()  # the primary comes back: what it still held goes once, no more
        await until(lambda: box.link.status.connected, 90, "the primary back")
        await until(lambda: box.outbox.depth == 0, 20, "nothing left")
    rows = station_rows(station_db)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))  # each event once at the station
    fires = [r["kind"] for r in rows if r["cid"][1:] == "110"]
    assert fires == ["alarm", "restore"]
    copies = {r["id"]: r["deliveries"] for r in rows if r["cid"][1:] == "110"}
    print(f"deliveries of the fire's events (copies heard, stored once): {copies}")
    # the backup's copy, and at most the one the primary still had in flight: once each
    assert all(1 <= n <= 2 for n in copies.values()), copies


def test_a_link_bound_to_an_interface_leaves_by_it(cut_path: CutPath) -> None:
    """SO_BINDTODEVICE really applies: bound to the veth, the broker behind it answers;
    bound to loopback, the same address cannot be reached."""
    import asyncio

    async def connects(interface: str) -> bool:
        link = MqttLink(
            LinkSettings(
                cut_path.address,
                cut_path.port,
                f"bind-{interface}",
                bind_interface=interface,
                connect_timeout_s=2.0,
                reconnect_max_s=1.0,
            )
        )
        await link.start()
        try:
            return await link.wait_connected(4)
        finally:
            await link.stop()

    assert asyncio.run(connects(cut_path.host_end))
    assert not asyncio.run(connects("lo"))
