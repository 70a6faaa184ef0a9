"""The box and the station over TLS with client certificates, through the
production broker template and its per-device ACL."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import parse
from tests.conftest import free_port
from tests.integration.test_end_to_end import (
    RunningBox,
    demo_text,
    device_states,
    station_rows,
    until,
)
from tests.integration.tls import make_ca, make_client_cert, start_tls_broker

pytestmark = pytest.mark.broker


async def test_alarm_over_tls_with_client_certificates(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ca = make_ca(tmp_path / "pki")
    device = make_client_cert(ca, "demo-box-01")  # CN = device id = ACL user
    station_cert = make_client_cert(ca, "station")
    broker = start_tls_broker(tmp_path / "broker", ca)
    try:
        station_db = tmp_path / "station.sqlite"
        spawn(
            "station",
            "station",
            "run",
            "--broker",
            f"mqtts://127.0.0.1:{broker.port}",
            "--client-id",
            "station",
            "--ca-file",
            str(ca.cert),
            "--cert-file",
            str(station_cert.cert),
            "--key-file",
            str(station_cert.key),
            "--db",
            str(station_db),
        )
        text = demo_text(broker.port, free_port()).replace(
            f'broker = "mqtt://127.0.0.1:{broker.port}"',
            f'broker = "mqtts://127.0.0.1:{broker.port}"\n'
            f'ca_file = "{ca.cert}"\ncert_file = "{device.cert}"\nkey_file = "{device.key}"',
        )
        async with RunningBox(parse(text, "tls.toml"), tmp_path / "box") as box:
            await until(lambda: box.link.status.connected, 15, "box connected over TLS")
            await until(lambda: station_rows(station_db) or _online(station_db), 15, "station")
            box.inputs.simulate("in3", True)
            await until(lambda: station_rows(station_db, kind="alarm"), 15, "alarm at station")
            await until(lambda: box.outbox.depth == 0, 15, "ack back over TLS")
        (alarm,) = station_rows(station_db, kind="alarm")
        assert (alarm["device"], alarm["cid"]) == ("demo-box-01", "1110")
    finally:
        broker.stop()


def _online(db: Path) -> bool:
    return device_states(db).get("demo-box-01") == "online"
