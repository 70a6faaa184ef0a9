"""The raw input trace: every input change the zones see, one log line each. Pure, but for logging.

The box logs each change as it hands it to the zone state machine (after the
edge relay, so dropped edges are not in it and re-read levels are), and a line
when the zones resume at start-up, on the logger ``edge.inputs.trace``::

    input edge in=in1 zone=front-door level=1 mono=1234.567890 wall=1764350000123
    input edge in=in6 zone=armed level=0 mono=1200.000001 wall=1764349965556 initial
    zones resume: front-door=alarm panel-tamper=tamper
    zones tick mono=1235.587901 wall=1764350001024

``level`` is the zone's input active (1) or quiet (0); ``mono`` the monotonic
seconds and ``wall`` the UTC milliseconds of the edge; ``initial`` marks the
level read at start-up, ``walk`` a change the walk test took. A tick is the zones'
timer running (a glitch filter or a restore wait ending) then. Under systemd the
same values are journal fields too (``EDGE_INPUT``, ``EDGE_LEVEL``, ...).

:func:`parse` reads them back from the text log (``edge run`` on a terminal,
or ``journalctl -u edge -o cat``/``-o short``) or from ``journalctl -o json``;
other lines are skipped. ``edge diag replay`` feeds the result to the zones.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edge.codes import Kind
from edge.errors import EdgeError
from edge.inputs.zones import Tick
from edge.model import ZoneChanged

log = logging.getLogger("edge.inputs.trace")
EDGE = "input edge"
RESUME = "zones resume:"
TICK = "zones tick"
_EDGE = re.compile(
    r"input edge in=(?P<input>\S+) zone=(?P<zone>\S+) level=(?P<level>[01]) "
    r"mono=(?P<mono>\d+(?:\.\d+)?) wall=(?P<wall>\d+)(?P<flags>(?: (?:initial|walk))*)\s*$"
)
_TICK = re.compile(r"zones tick mono=(?P<mono>\d+(?:\.\d+)?) wall=(?P<wall>\d+)\s*$")
_RESUME = re.compile(r"zones resume:(?P<pairs>(?: \S+=\S+)*)\s*$")


class TraceError(EdgeError):
    """A trace file that cannot be read as the box's input trace."""


@dataclass(frozen=True)
class Edge:
    change: ZoneChanged
    walk: bool = False  # the walk test took it: the zones never saw it
    line: int = 0


@dataclass(frozen=True)
class Resume:
    """The box (re)started: the zones resumed from these last kinds."""

    kinds: Mapping[str, Kind]
    line: int = 0


@dataclass(frozen=True)
class TickSeen:
    """The zones' timer ran at this time (the box's own tick)."""

    tick: Tick
    line: int = 0


Record = Edge | Resume | TickSeen


def edge_line(change: ZoneChanged, walk: bool = False) -> str:
    flags = (" initial" if change.initial else "") + (" walk" if walk else "")
    return (
        f"{EDGE} in={change.input} zone={change.zone} level={int(change.active)} "
        f"mono={change.at_s:.6f} wall={change.wall_ms}{flags}"
    )


def resume_line(kinds: Mapping[str, Kind]) -> str:
    return RESUME + "".join(f" {zone}={kind.value}" for zone, kind in sorted(kinds.items()))


def tick_line(tick: Tick) -> str:
    return f"{TICK} mono={tick.at_s:.6f} wall={tick.wall_ms}"


def record_tick(tick: Tick) -> None:
    log.info("%s", tick_line(tick))


def record_edge(change: ZoneChanged, walk: bool = False) -> None:
    """Log one change (INFO on ``edge.inputs.trace``)."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "EDGE_INPUT": change.input,
        "EDGE_ZONE": change.zone,
        "EDGE_LEVEL": int(change.active),
        "EDGE_MONO": f"{change.at_s:.6f}",
        "EDGE_WALL_MS": change.wall_ms,
    }
    log.info("%s", edge_line(change, walk), extra={"journal": fields})


def record_resume(kinds: Mapping[str, Kind]) -> None:
    log.info("%s", resume_line(kinds))


def parse(lines: Iterable[str], name: str = "trace") -> list[Record]:
    """The trace's records in order; TraceError naming the line on a malformed one.

    A JSON line (``journalctl -o json``) is read by its ``MESSAGE``; any other line
    is searched for the trace's text. Lines that are not part of the trace are
    skipped; a file without a single trace line is an error.
    """
    out: list[Record] = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if text.startswith("{"):
            text = _message(text, name, number)
        if EDGE in text:
            out.append(_edge(text, name, number))
        elif RESUME in text:
            out.append(_resume(text, name, number))
        elif TICK in text:
            out.append(_tick(text, name, number))
    if not out:
        raise TraceError(
            f"{name}: no input trace in it (lines like '{EDGE} in=in1 zone=door level=1 "
            "mono=12.5 wall=1764350000123', from the box's log or journalctl -o json)"
        )
    return out


def _message(text: str, name: str, number: int) -> str:
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{name}:{number}: not a JSON journal entry: {exc}") from exc
    message = entry.get("MESSAGE") if isinstance(entry, dict) else None
    if isinstance(message, list):  # journald gives non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int)).decode("utf-8", "replace")
    return message if isinstance(message, str) else ""


def _edge(text: str, name: str, number: int) -> Edge:
    found = _EDGE.search(text)
    if found is None:
        raise TraceError(
            f"{name}:{number}: malformed input edge {text[text.index(EDGE) :][:120]!r}"
        )
    change = ZoneChanged(
        input=found["input"],
        zone=found["zone"],
        active=found["level"] == "1",
        at_s=float(found["mono"]),
        wall_ms=int(found["wall"]),
        initial="initial" in found["flags"],
    )
    return Edge(change, "walk" in found["flags"], number)


def _tick(text: str, name: str, number: int) -> TickSeen:
    found = _TICK.search(text)
    if found is None:
        raise TraceError(f"{name}:{number}: malformed tick {text[:120]!r}")
    return TickSeen(Tick(float(found["mono"]), int(found["wall"])), number)


def _resume(text: str, name: str, number: int) -> Resume:
    found = _RESUME.search(text)
    if found is None:
        raise TraceError(f"{name}:{number}: malformed resume line {text[:120]!r}")
    kinds: dict[str, Kind] = {}
    for pair in found["pairs"].split():
        zone, _, kind = pair.partition("=")
        try:
            kinds[zone] = Kind(kind)
        except ValueError as exc:
            raise TraceError(f"{name}:{number}: unknown event kind {kind!r}") from exc
    return Resume(kinds, number)
