"""edge diag replay and the input trace: explain() decides as step(); reasons for what the
zones ignored; the trace read from the text log and from journalctl -o json; bad traces."""

from __future__ import annotations

import itertools
import json
import logging
import random
from pathlib import Path

import pytest

from edge.__main__ import main
from edge.config import EdgeConfig, parse
from edge.errors import EdgeError
from edge.inputs import trace
from edge.inputs.zones import PanelState, Tick, explain, next_deadline, step
from edge.model import ZoneChanged
from edge.tools import replay
from tests.conftest import REPO

FAST = "glitch_ms = 20\nrestore_ms = 100\nhold_s = 1\nswinger_limit = 2\n"
WALL0 = 1_800_000_000_000


def config_text() -> str:
    text = (REPO / "config" / "demo.toml").read_text()
    key = 'id = "front-door"\n'
    return text.replace(key, key + FAST, 1)


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    path = tmp_path / "box.toml"
    path.write_text(config_text())
    return path


def cfg() -> EdgeConfig:
    return parse(config_text(), "box.toml")


def edge(name: str, zone: str, active: bool, at_s: float, **kw: bool) -> ZoneChanged:
    return ZoneChanged(name, zone, active, 100.0 + at_s, WALL0 + round(at_s * 1000), **kw)


def test_explain_decides_exactly_as_step() -> None:
    """Random edges and ticks on every zone: same events, same states."""
    zones = {z.id: z for z in cfg().zones}
    inputs = {i.zone: i.name for i in cfg().inputs}
    rng = random.Random(7)
    counter = itertools.count()
    a = b = PanelState()
    t, made = 0.0, 0
    for _ in range(3000):
        t += rng.choice((0.001, 0.01, 0.03, 0.2, 1.5))
        if rng.random() < 0.2 and (due := next_deadline(a)) is not None:
            change: ZoneChanged | Tick = Tick(max(t, due), WALL0)
        else:
            zone = rng.choice(list(zones))
            change = edge(inputs[zone], zone, rng.random() < 0.5, t)
        n = next(counter)  # the same event ids on both sides
        a, events_a = step(a, change, zones, lambda _ms, n=n: f"x{n}")
        b, events_b, notes = explain(b, change, zones, lambda _ms, n=n: f"x{n}")
        assert a == b and events_a == events_b
        assert {n.event_id for n in notes if n.event_id} == {e.id for e in events_b}
        made += len(events_a)
    assert made > 50


def rows_of(lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    path = tmp_path / "trace.log"
    path.write_text("\n".join(lines) + "\n")
    cfg_file = tmp_path / "box.toml"
    cfg_file.write_text(config_text())
    assert main(["diag", "replay", str(path), "--config", str(cfg_file)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def scripted() -> list[ZoneChanged]:
    return [
        edge("in6", "armed", False, 0.0, initial=True),
        edge("in1", "front-door", True, 1.0),
        edge("in1", "front-door", False, 1.005),  # 5 ms: a glitch
        edge("in1", "front-door", True, 2.0),  # disarmed: an intrusion zone does not report
        edge("in1", "front-door", False, 2.1),
        edge("in6", "armed", True, 3.0),  # arm
        edge("in1", "front-door", True, 4.0),  # alarm at 4.02
        edge("in1", "front-door", False, 4.1),
        edge("in1", "front-door", True, 4.5),  # within the hold: no new alarm
        edge("in1", "front-door", False, 4.6),  # restore at 5.02 (hold 1 s)
        edge("in1", "front-door", True, 6.0),  # second alarm
        edge("in1", "front-door", False, 6.1),
        edge("in1", "front-door", True, 8.0),  # third trip: swinger trouble
        edge("in1", "front-door", False, 8.1),
        edge("in1", "front-door", True, 9.0),  # silent: shut down
        edge("in1", "front-door", False, 9.1),
        edge("in6", "armed", False, 10.0),  # disarm ends the shutdown
    ]


def test_replay_gives_each_event_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        f"2026-11-28 03:00:00 INFO edge.inputs.trace: {trace.edge_line(c)}" for c in scripted()
    ]
    rows = rows_of([trace.resume_line({}), *lines], tmp_path, capsys)
    events = [(r["kind"], r["at"][-10:-1], r["what"]) for r in rows if r["row"] == "event"]
    assert events == [
        ("arm", "00:03.020", "arm"),
        ("alarm", "00:04.020", "alarm"),
        ("restore", "00:05.020", "restore"),
        ("alarm", "00:06.020", "alarm"),
        ("restore", "00:07.020", "restore"),
        ("trouble", "00:08.020", "swinger"),
        ("disarm", "00:10.020", "disarm"),
        ("trouble_restore", "00:10.020", "swinger"),
    ]
    ignored = [r["what"] for r in rows if r["row"] == "ignored"]
    assert ignored == ["initial", "glitch", "disarmed", "restore_wait", "hold", "suppressed"]
    reasons = {r["what"]: r["reason"] for r in rows}
    assert reasons["glitch"] == "glitch filtered: active 5 ms < glitch_ms 20"
    assert "hold window" in reasons["hold"] and "partition 1 disarmed" in reasons["disarmed"]
    assert (
        reasons["restore"] == "hold window ended (1 s after the alarm), input quiet"
    )  # the first: the hold ended it
    assert reasons["swinger"] == "partition disarmed"


def test_trace_from_journal_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """journalctl -o json lines; other entries and a non-UTF-8 MESSAGE are skipped."""
    entries = [{"MESSAGE": "box up", "SYSLOG_IDENTIFIER": "edge"}, {"MESSAGE": [255, 254]}]
    entries += [{"MESSAGE": trace.edge_line(c), "EDGE_INPUT": c.input} for c in scripted()]
    rows = rows_of([json.dumps(e) for e in entries], tmp_path, capsys)
    assert len([r for r in rows if r["row"] == "event"]) == 8


def test_trace_lines_read_back() -> None:
    changes = [*scripted(), edge("in2", "hall-pir", True, 11.0, initial=True)]
    lines = [trace.edge_line(c, walk=i == 3) for i, c in enumerate(changes)]
    tick = Tick(123.000045, WALL0 + 17)
    records = trace.parse([trace.resume_line({}), *lines, trace.tick_line(tick)])
    edges = [r for r in records if isinstance(r, trace.Edge)]
    assert [e.change for e in edges] == changes
    assert [e.walk for e in edges] == [i == 3 for i in range(len(changes))]
    assert records[-1] == trace.TickSeen(tick, len(lines) + 2)


def test_walk_test_and_restart_in_a_trace() -> None:
    """A change the walk test took makes no event; a restart resumes as the box did."""
    from edge.codes import Kind

    records: list[trace.Record] = [
        trace.Resume({}),
        trace.Edge(edge("in3", "fire", True, 1.0), walk=True),
        trace.Edge(edge("in3", "fire", False, 1.5), walk=True),
        trace.Resume({"fire": Kind.ALARM}),  # restarted with the fire in alarm
        trace.Edge(edge("in3", "fire", False, 0.1, initial=True)),  # found quiet: restore
    ]
    result = replay.replay(records, cfg(), tail_s=5)
    assert [r["what"] for r in result.rows if r["row"] == "ignored"] == ["walk_test"] * 2
    assert [e.kind.value for e in result.events] == ["restore"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just a log\nnothing else\n", "no input trace in it"),
        ("x input edge in=in1 zone=front-door level=2 mono=1 wall=2\n", "trace.log:1: malformed"),
        ('{"MESSAGE": "input edge in=in1"\n', "trace.log:1: not a JSON journal entry"),
        ("input edge in=in9 zone=front-door level=1 mono=1.0 wall=2\n", "not in this config"),
        ("zones resume: fire=exploded\n", "unknown event kind"),
        ("\x00\xff\xfe garbage \x01\n", "no input trace in it"),
    ],
)
def test_bad_trace_is_a_clear_error(
    content: str, message: str, cfg_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cfg_path.parent / "trace.log"
    path.write_text(content)
    assert main(["diag", "replay", str(path), "--config", str(cfg_path)]) == 1
    err = capsys.readouterr().err
    assert message in err, err


def test_missing_trace_file(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diag", "replay", str(cfg_path.parent / "nope"), "--config", str(cfg_path)]) == 1
    assert "cannot read the trace" in capsys.readouterr().err


def test_trace_error_is_an_edge_error() -> None:
    with pytest.raises(EdgeError):
        trace.parse(["nothing"])


def test_trace_log_batches_and_rate_limits_chatter(caplog: pytest.LogCaptureFixture) -> None:
    """Quiet: a record per flush. Chatter: 20 edges a second per input, then a gap line and
    the last level; the replay shows the gap and ends at the input's true level."""
    caplog.set_level(logging.INFO, logger="edge.inputs.trace")
    log = trace.TraceLog(per_input_s=20)
    log.resume({})
    changes = [edge("in1", "front-door", i % 2 == 0, i * 0.005) for i in range(101)]
    for change in changes:  # 101 edges in half a second, ending active
        log.edge(change)
    log.flush()  # the second is not over: no gap yet
    later = edge("in2", "hall-pir", True, 1.5)
    log.edge(later)
    log.flush()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and len(messages[1].splitlines()) == 20
    records = trace.parse("\n".join(messages).splitlines())
    gap = next(r for r in records if isinstance(r, trace.Gap))
    assert (gap.input, gap.skipped, gap.until_s) == ("in1", 81, changes[-1].at_s)
    edges = [r.change for r in records if isinstance(r, trace.Edge)]
    assert edges == [*changes[:20], changes[-1], later]
    rows = replay.replay(records, cfg()).rows
    assert [r["what"] for r in rows if r["row"] == "gap"] == ["gap"]
    assert "81 edges of in1 not traced" in next(r["reason"] for r in rows if r["row"] == "gap")
