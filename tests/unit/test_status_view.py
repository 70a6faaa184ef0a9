"""The status is a typed view built from the stages (edge/status.py, edge/snapshot.py):
every section validated by its model, the clock fields named with their source, an
unknown figure null (never 0), and the JSON shape the page reads."""

from __future__ import annotations

from pathlib import Path

from edge import snapshot
from edge.app import Box
from edge.clock import FakeClock
from edge.config import parse
from tests.conftest import DEMO_CONFIG


def _box(tmp_path: Path) -> Box:
    return Box(parse(DEMO_CONFIG.read_text(), "demo.toml"), tmp_path, FakeClock(1_800_000_000))


def test_a_box_s_status_is_every_section_typed(tmp_path: Path) -> None:
    box = _box(tmp_path)
    status = box.status.current()
    assert isinstance(status, snapshot.Status)
    assert status.device.id == "demo-box-01" and status.device.simulated_inputs
    assert [z.id for z in status.zones.zones][:3] == ["front-door", "hall-pir", "fire"]
    assert status.walktest == snapshot.WalkTest(running=False)
    assert status.cameras["entrance"].state == "stopped"
    assert status.outbox.depth == 0 and status.outbox.reserve_held is False  # not taken yet
    assert status.motion.enabled
    # the clock fields keep their names, with the source that said so
    system = status.system
    assert system.clock_synchronized in (True, False, None)
    assert system.clock_source in ("timesyncd", "adjtimex", None)
    if system.clock_source is None:
        assert system.clock_synchronized is None and system.clock_offset_ms is None
    # this process and its disk, read from /proc and statvfs
    assert system.process_rss_bytes is not None and system.process_rss_bytes > 10_000_000
    assert system.disk_free_bytes is not None and system.disk_free_bytes > 0


def test_the_json_the_page_reads(tmp_path: Path) -> None:
    box = _box(tmp_path)
    body = box.status.json()
    assert set(body) == set(snapshot.Status.model_fields)
    assert body["walktest"]["running"] is False
    assert body["healthy"] == (body["problems"] == {})
    # what the live inputs page reads: the zones and the walk test, nothing else
    inputs = box.status.inputs_json()
    assert set(inputs) == {"zones", "walktest"} and inputs["walktest"] == {"running": False}
    # the schema the OpenAPI document publishes is the same model's
    schema = snapshot.Status.model_json_schema()
    assert set(schema["required"]) == set(body)


def test_a_walk_test_shows_in_the_status(tmp_path: Path) -> None:
    box = _box(tmp_path)
    box.panel.start_walk(60)
    walk = box.status.current().walktest
    assert walk.running and walk.zones == ["front-door", "hall-pir"]
    assert walk.not_seen == ["front-door", "hall-pir"] and walk.remaining_s == 60
