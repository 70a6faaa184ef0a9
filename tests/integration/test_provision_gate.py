"""The uplink's gate in a running box: a box set up by first boot but not yet
provisioned by its station keeps its alarms in the outbox, does not connect, and
says why (journal line and the status section the web page shows)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edge import provision
from edge.codes import Condition
from tests.conftest import Broker
from tests.integration.test_end_to_end import RunningBox, demo_config, until

pytestmark = pytest.mark.broker


async def test_unprovisioned_box_keeps_alarms_but_does_not_connect(
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    etc = tmp_path / "etc-edge"
    provision.first_boot(provision.Paths(etc), None, serial="abc123")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(etc))
    caplog.set_level(logging.ERROR, logger="edge.app")
    async with RunningBox(demo_config(broker.port), tmp_path / "box") as box:
        assert box.provisioning.state == "unprovisioned"
        section = box.status.json()["provisioning"]
        assert section["uplink_allowed"] is False
        assert section["serial"] == "abc123"
        assert "not provisioned" in section["problems"][0]
        assert not [name for name in box.tasks if name.startswith("uplink.")]
        await box.raise_event(Condition.MANUAL_TEST, False, "kept while unprovisioned")
        await until(lambda: box.outbox.depth == 1, what="the event kept in the outbox")
        await asyncio.sleep(1.0)  # the broker is up: a connecting box would be in by now
        assert box.link.status.connects == 0
    assert any("uplink NOT started" in r.getMessage() for r in caplog.records)


async def test_box_without_identity_runs_its_uplink(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc-edge"))
    async with RunningBox(demo_config(broker.port), tmp_path / "box") as box:
        assert box.provisioning.state == "unmanaged"
        await until(lambda: box.link.status.connected, what="box connected")
