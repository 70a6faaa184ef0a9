"""Input replay: the box's input trace through the zone state machine, on a virtual clock.

The trace (:mod:`edge.inputs.trace`) holds every change the box handed its
zones, and the ticks of their timers. Here they go through the same code as in
``edge run`` (``zone_level``, the walk test's exclusion, and the pure ``step``
in its explaining form), so the events come out as the box made them, to the
millisecond, each with its reason, and every change that made none says why
(glitch, hold window, swinger shutdown, disarmed...). A trace without ticks
(or its end) gets a virtual one at every timer the zones ask for; the stamps
may then differ from the box's by a millisecond (its wall and monotonic clocks
are read apart).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edge.config import EdgeConfig, ZoneConfig
from edge.inputs.trace import Edge, Gap, Record, Resume, TickSeen, TraceError
from edge.inputs.zones import (
    US_PER_S,
    Note,
    PanelState,
    Tick,
    explain,
    next_deadline,
    resume,
    zone_level,
)
from edge.model import Event, ZoneChanged
from edge.protocol import iso_ms

COLUMNS = (
    "row",
    "mono_s",
    "at",
    "zone",
    "input",
    "what",
    "kind",
    "cid",
    "sia",
    "armed",
    "reason",
    "text",
    "after_trace",
)


@dataclass
class Replay:
    """What a replay found: rows in order, and the events alone."""

    rows: list[dict[str, Any]]
    events: list[Event]


class _Clock:
    """Wall time for a tick, from the last change seen (monotonic -> UTC ms)."""

    def __init__(self) -> None:
        self.at_s = 0.0
        self.wall_ms = 0

    def see(self, change: ZoneChanged) -> None:
        self.at_s, self.wall_ms = change.at_s, change.wall_ms

    def wall(self, at_s: float) -> int:
        return self.wall_ms + round((at_s - self.at_s) * 1000)


def replay(records: Sequence[Record], cfg: EdgeConfig, tail_s: float = 60.0) -> Replay:
    """Run ``records`` through the zones of ``cfg``; timers due up to ``tail_s`` after
    the last change fire too (marked ``after_trace``)."""
    _check(records, cfg)
    zones = {z.id: z for z in cfg.zones}
    inputs_of = {z.id: [i.name for i in cfg.inputs if i.zone == z.id] for z in cfg.zones}
    out = Replay([], [])
    panel, clock = PanelState(), _Clock()
    levels: dict[str, bool] = {}
    last_s: float | None = None
    virtual = not any(isinstance(r, TickSeen) for r in records)
    for record in records:
        if isinstance(record, Resume):  # the box (re)started: its timers died with it
            panel, levels = resume(record.kinds, zones), {}
            out.rows.append(_row("start", None, None, "", "", "resume", "box started", ""))
            continue
        if isinstance(record, Gap):  # chatter the box did not trace edge by edge
            text = (
                f"{record.skipped} edges of {record.input} not traced (chatter, rate-limited "
                "by the box): events of this zone around here may differ from the box's"
            )
            out.rows.append(
                _row("gap", record.until_s, None, record.zone, record.input, "gap", text)
            )
            continue
        if isinstance(record, TickSeen):
            panel, events, notes = explain(panel, record.tick, zones)
            _report(out, events, notes, "", False, clock)
            clock.at_s, clock.wall_ms = record.tick.at_s, record.tick.wall_ms
            last_s = record.tick.at_s
            continue
        change = record.change
        if virtual:
            panel = _ticks(panel, change.at_s, False, clock, zones, out)
        clock.see(change)
        last_s = change.at_s
        levels, leveled = zone_level(levels, change, inputs_of[change.zone])
        if leveled is None:
            text = "another input of the zone is still active: the zone's level is unchanged"
            out.rows.append(_ignored(change, "other_input", text))
            continue
        if record.walk:
            out.rows.append(_ignored(change, "walk_test", "walk test: recorded as seen, no event"))
            continue
        panel, events, notes = explain(panel, leveled, zones)
        _report(out, events, notes, change.input, False, clock)
    if last_s is not None:
        _ticks(panel, last_s + tail_s, True, clock, zones, out)
    return out


def _ticks(
    panel: PanelState,
    until_s: float,
    after: bool,
    clock: _Clock,
    zones: dict[str, ZoneConfig],
    out: Replay,
) -> PanelState:
    """A tick at each timer due before ``until_s``, as the box's zones task gives them."""
    while True:
        due_s = next_deadline(panel)
        if due_s is None or due_s >= until_s or clock.wall_ms == 0:
            return panel
        panel, events, notes = explain(panel, Tick(due_s, clock.wall(due_s)), zones)
        _report(out, events, notes, "", after, clock)


def _report(
    out: Replay,
    events: list[Event],
    notes: list[Note],
    input_name: str,
    after: bool,
    clock: _Clock,
) -> None:
    by_id = {e.id: e for e in events}
    for note in notes:
        event = by_id.get(note.event_id or "")
        if event is None:
            out.rows.append(
                {
                    **_row(
                        "ignored",
                        note.at_us / US_PER_S,
                        clock.wall(note.at_us / US_PER_S),
                        note.zone,
                        input_name,
                    ),
                    "what": note.what,
                    "reason": note.text,
                }
            )
            continue
        out.events.append(event)
        row = _row("event", note.at_us / US_PER_S, event.occurred_at_ms, note.zone, input_name)
        row |= {
            "what": note.what,
            "kind": event.kind.value,
            "cid": event.codes.cid,
            "sia": event.codes.sia,
            "armed": event.armed,
            "reason": note.text,
            "text": event.text,
            "after_trace": after,
        }
        out.rows.append(row)


def _row(
    kind: str,
    mono_s: float | None,
    wall_ms: int | None,
    zone: str,
    input_name: str,
    what: str = "",
    reason: str = "",
    text: str = "",
) -> dict[str, Any]:
    return {
        "row": kind,
        "mono_s": None if mono_s is None else round(mono_s, 6),
        "at": None if wall_ms is None else iso_ms(wall_ms),
        "zone": zone,
        "input": input_name,
        "what": what,
        "reason": reason,
        "text": text,
    }


def _ignored(change: ZoneChanged, what: str, reason: str) -> dict[str, Any]:
    return _row("ignored", change.at_s, change.wall_ms, change.zone, change.input, what, reason)


def _check(records: Sequence[Record], cfg: EdgeConfig) -> None:
    zones = {z.id for z in cfg.zones}
    inputs = {i.name: i.zone for i in cfg.inputs}
    for record in records:
        if not isinstance(record, Edge):
            continue
        change = record.change
        if change.zone not in zones or inputs.get(change.input) != change.zone:
            raise TraceError(
                f"trace line {record.line}: input {change.input!r} of zone {change.zone!r} is "
                "not in this config (replay with the config the box ran)"
            )


def summary(result: Replay) -> Iterator[str]:
    """Short lines for a person: events by kind and zone, and why changes were ignored."""
    counts: dict[str, int] = {}
    for event in result.events:
        key = f"{event.kind.value} {event.zone.id if event.zone else '-'}"
        counts[key] = counts.get(key, 0) + 1
    ignored: dict[str, int] = {}
    for row in result.rows:
        if row["row"] == "ignored":
            ignored[row["what"]] = ignored.get(row["what"], 0) + 1
    yield f"{len(result.events)} event(s): " + (
        ", ".join(f"{n} x {k}" for k, n in counts.items()) or "none"
    )
    if ignored:
        yield "changes that made no event: " + ", ".join(f"{n} {k}" for k, n in ignored.items())
    gaps = [r for r in result.rows if r["row"] == "gap"]
    if gaps:
        yield f"{len(gaps)} gap(s) in the trace (chatter not traced edge by edge): see the gap rows"
