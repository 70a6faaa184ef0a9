"""The status is a typed view built from the stages (edge/status.py, edge/snapshot.py):
every section validated by its model, the clock fields named with their source, an
unknown figure null (never 0), and the JSON shape the page reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge import i18n, snapshot
from edge.app import Box
from edge.clock import FakeClock
from edge.config import parse
from edge.inputs.zones import ZoneState
from edge.provision import Provisioning
from edge.status import CAMERA_START_S, duration_en
from edge.uplink.supervision import Watch
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


# -- the verdict: healthy only when the path, the outbox, the inputs and the cameras are --


def _running(box: Box) -> Box:
    """What a started box with a broker looks like: the link up, the camera giving pictures."""
    box.link.status.connected = True
    box.link.status.connects = 1
    assert box.outbox.reserve is not None and box.outbox.reserve.ensure()  # taken at open
    for cam in box.video.cameras.values():
        cam.runner.status.state = "running"
    return box


def test_a_box_is_healthy_only_when_every_part_is(tmp_path: Path) -> None:
    box = _running(_box(tmp_path))
    status = box.status.current()
    assert status.healthy and status.problems == {} and status.faults == []
    assert status.verdict.level == "ok" and status.verdict.key == "box.health.ok"
    assert status.verdict.text == i18n.t("en", "box.health.ok")


def test_just_built_it_is_starting_not_healthy(tmp_path: Path) -> None:
    box = _box(tmp_path)  # nothing started: no picture yet, the link's first connection
    assert box.outbox.reserve is not None and box.outbox.reserve.ensure()
    status = box.status.current()
    assert not status.healthy
    assert [(f.check, f.level, f.key) for f in status.faults] == [
        ("path", "starting", "box.health.connecting"),
        ("cameras", "starting", "box.health.camera_starting"),
    ]
    assert box.status.settling()
    assert box._probation_problems() == {}  # a config on probation waits for it


def test_a_link_down_is_named_with_how_long_and_a_restart_would_not_cure_it(
    tmp_path: Path,
) -> None:
    box = _running(_box(tmp_path))
    box.link.status.connected = False
    box.link.status.last_error = "cannot connect to 127.0.0.1:1883: refused"
    box.supervisor.watch = Watch(down_since_s=box.clock.monotonic())
    box.clock.advance(240)
    status = box.status.current()
    verdict = status.verdict
    assert (verdict.check, verdict.level, verdict.key) == (
        "path",
        "warning",
        "box.health.link_down",
    )
    assert verdict.values == {"down_s": 240, "error": "cannot connect to 127.0.0.1:1883: refused"}
    assert verdict.text == "No link to the station for 4 min — events are kept and will be sent"
    assert status.problems == {"path": verdict.text} and not status.healthy
    assert box.health.problems(watchdog_only=True) == {}  # only a dead task stops the pings
    assert box._probation_problems() == {"path": verdict.text}  # a bad broker rolls back
    # /api/status and /healthz read the same body
    body = box.status.json()
    assert body["verdict"] == verdict.model_dump(mode="json")


def test_faults_come_worst_first_and_the_path_before_the_rest(tmp_path: Path) -> None:
    box = _running(_box(tmp_path))
    box.clock.advance(60)
    cam = box.video.cameras["entrance"].runner.status
    cam.state, cam.error = "lost", "no frame for 5 s"
    box.panel.state.zones["panel-tamper"] = ZoneState(active=True)
    box.link.status.connected = False
    box.supervisor.watch = Watch(down_since_s=box.clock.monotonic() - 95, path_lost=True)
    found = [(f.check, f.level, f.key) for f in box.status.current().faults]
    assert found == [
        ("path", "fault", "box.health.path_lost"),
        ("inputs", "warning", "box.health.zone_panel_tamper"),
        ("cameras", "warning", "box.health.camera_lost"),
    ]
    texts = box.status.current().faults
    assert texts[1].text == "Panel tamper: Panel tamper loop"  # the zone's name, not its id
    assert texts[2].values == {"camera": "entrance", "error": "no frame for 5 s"}


def test_a_box_its_station_has_not_provisioned_says_so_first(tmp_path: Path) -> None:
    box = _running(_box(tmp_path))
    box.provisioning = Provisioning("unprovisioned", ("no certificate in /etc/edge",))
    verdict = box.status.current().verdict
    assert (verdict.level, verdict.key) == ("fault", "box.health.unprovisioned")
    assert "no certificate in /etc/edge" in verdict.text
    assert box._probation_problems() == {}  # no config cures it: not rolled back for it


def test_a_camera_still_without_a_picture_long_after_the_start_is_silent(
    tmp_path: Path,
) -> None:
    box = _running(_box(tmp_path))
    box.video.cameras["entrance"].runner.status.state = "stopped"
    assert box.status.current().verdict.key == "box.health.camera_starting"
    box.clock.advance(CAMERA_START_S)
    verdict = box.status.current().verdict
    assert (verdict.level, verdict.key) == ("warning", "box.health.camera_silent")
    assert not box.status.settling()
    assert box._probation_problems() == {"cameras": verdict.text}


def test_outbox_and_swinger_faults_and_another_check_in_its_own_words(tmp_path: Path) -> None:
    box = _running(_box(tmp_path))
    box.outbox.held.error = "disk full"
    box.outbox.held.by_id["e-1"] = None  # type: ignore[assignment]  # one held event
    box.panel.state.zones["hall-pir"] = ZoneState(suppressed=True)
    box.health.check("test", lambda: "something else", watchdog=False)
    found = box.status.current().faults
    assert [(f.check, f.level, f.key) for f in found] == [
        ("outbox", "fault", "box.health.held"),
        ("test", "fault", "box.health.other"),
        ("inputs", "warning", "box.health.zone_suppressed"),
    ]
    assert found[0].values == {"events": 1, "error": "disk full"}
    assert found[1].text == "test: something else"
    assert found[2].text == "Zone “Hall motion detector” shut down after too many alarms"


def test_only_the_tasks_check_stops_the_watchdog(tmp_path: Path) -> None:
    box = _box(tmp_path)  # starting: path and cameras fail, and do not stop the pings
    assert box.health.problems() and box.health.problems(watchdog_only=True) == {}
    done: asyncio.Future[None] = asyncio.Future(loop=asyncio.new_event_loop())
    done.set_result(None)
    box.tasks["zones"] = done  # type: ignore[assignment]
    assert set(box.health.problems(watchdog_only=True)) == {"tasks"}
    assert box.status.current().verdict.key == "box.health.tasks"


def test_durations_in_words_as_the_page_says_them() -> None:
    assert [duration_en(s) for s in (0, 12, 60, 245, 3900, 90_000)] == [
        "0 s",
        "12 s",
        "1 min",
        "4 min 05 s",
        "1 h 05 min",
        "1 d 1 h",
    ]


def test_with_a_backup_route_a_primary_down_is_a_warning_naming_what_carries_the_events(
    tmp_path: Path,
) -> None:
    text = DEMO_CONFIG.read_text() + (
        '\n[[routes]]\nname = "4g"\ntype = "mqtt"\nbroker = "mqtt://10.64.0.1:1883"\n'
        "path_loss_s = 120\n"
    )
    box = _running(Box(parse(text, "demo.toml"), tmp_path, FakeClock(1_800_000_000)))
    backup = box.routes.mqtt[0]
    backup.link.status.connected = True
    assert box.status.current().healthy
    uplink = box.status.current().uplink
    assert [(r.number, r.name, r.connected) for r in uplink.routes] == [
        (1, "primary", True),
        (2, "4g", True),
    ]
    assert uplink.category.startswith("DP")

    box.link.status.connected = False  # the primary's cable pulled: the backup carries on
    box.link.status.last_error = "connection lost"
    box.supervisor.watch = Watch(down_since_s=box.clock.monotonic())
    box.clock.advance(90)
    verdict = box.status.current().verdict
    assert (verdict.level, verdict.key) == ("warning", "box.health.primary_down")
    assert verdict.values == {"down_s": 90, "routes": "4g"}
    assert verdict.text == "No link over the primary path for 1 min 30 s: events go over 4g"

    backup.link.status.connected = False  # and then the backup too: a fault, not a warning
    backup.supervisor.watch = Watch(path_lost=True)
    box.supervisor.watch = Watch(down_since_s=box.clock.monotonic() - 90, path_lost=True)
    faults = [(f.level, f.key) for f in box.status.current().faults]
    assert faults == [
        ("fault", "box.health.path_lost"),
        ("warning", "box.health.route_lost"),
    ]
    lost = box.status.current().faults[1]
    assert lost.text == "Backup route 2 (4g) lost: no answer for 2 min"
