"""The raw input trace: every input change the zones see, one line each. Pure, but for logging.

The box logs each change as it hands it to the zone state machine (after the
edge relay, so dropped edges are not in it and re-read levels are), each tick
of the zones' timers, and a line when the zones resume at start-up, on the
logger ``edge.inputs.trace``. While the zones are busy (chatter) the lines
are gathered and logged as one record of many lines when they catch up
(:class:`TraceLog`), so tracing costs a string per edge, not a log record::

    input edge in=in1 zone=front-door level=1 mono=1234.567890 wall=1764350000123
    input edge in=in6 zone=armed level=0 mono=1200.000001 wall=1764349965556 initial
    zones resume: front-door=alarm panel-tamper=tamper
    zones tick mono=1235.587901 wall=1764350001024

``level`` is the zone's input active (1) or quiet (0); ``mono`` the monotonic
seconds and ``wall`` the UTC milliseconds of the edge; ``initial`` marks the
level read at start-up, ``walk`` a change the walk test took. A tick is the zones'
timer running (a glitch filter or a restore wait ending) then. Under systemd a
record carries ``EDGE_TRACE_LINES`` (how many lines are in its message).

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
GAP = "input trace gap"
_EDGE = re.compile(
    r"input edge in=(?P<input>\S+) zone=(?P<zone>\S+) level=(?P<level>[01]) "
    r"mono=(?P<mono>\d+(?:\.\d+)?) wall=(?P<wall>\d+)(?P<flags>(?: (?:initial|walk))*)\s*$"
)
_TICK = re.compile(r"zones tick mono=(?P<mono>\d+(?:\.\d+)?) wall=(?P<wall>\d+)\s*$")
_GAP = re.compile(
    r"input trace gap in=(?P<input>\S+) zone=(?P<zone>\S+) skipped=(?P<skipped>\d+) "
    r"until=(?P<until>\d+(?:\.\d+)?)\s*$"
)
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


@dataclass(frozen=True)
class Gap:
    """Edges of a chattering input left out of the trace (the box's rate limit)."""

    input: str
    zone: str
    skipped: int
    until_s: float
    line: int = 0


Record = Edge | Resume | TickSeen | Gap


def edge_line(change: ZoneChanged, walk: bool = False) -> str:
    flags = (" initial" if change.initial else "") + (" walk" if walk else "")
    return (
        f"{EDGE} in={change.input} zone={change.zone} level={int(change.active)} "
        f"mono={change.at_s:.6f} wall={change.wall_ms}{flags}"
    )


def resume_line(kinds: Mapping[str, Kind]) -> str:
    return RESUME + "".join(f" {zone}={kind.value}" for zone, kind in sorted(kinds.items()))


def gap_line(last: ZoneChanged, skipped: int) -> str:
    return f"{GAP} in={last.input} zone={last.zone} skipped={skipped} until={last.at_s:.6f}"


def tick_line(tick: Tick) -> str:
    return f"{TICK} mono={tick.at_s:.6f} wall={tick.wall_ms}"


@dataclass
class _Window:
    start_s: float
    count: int = 0
    skipped: int = 0
    last: ZoneChanged | None = None  # the last change not logged
    last_walk: bool = False


class TraceLog:
    """Trace lines gathered while the zones are busy; :meth:`flush` logs them as one record.

    The zones task flushes whenever its queue is empty (so a quiet box logs each
    edge at once) and every ``max_lines`` lines. An input chattering faster than
    ``per_input_s`` edges a second is not traced edge by edge (it would wash the
    days of journal away): once its second is over, a gap line says how many
    edges were left out, followed by the last of them (the level it ended at).
    """

    def __init__(self, max_lines: int = 500, per_input_s: int = 20) -> None:
        self.max_lines = max_lines
        self.per_input_s = per_input_s
        self.lines: list[str] = []
        self.latest_s = 0.0
        self._windows: dict[str, _Window] = {}
        self._skipping: set[str] = set()  # inputs with a gap not yet logged

    def edge(self, change: ZoneChanged, walk: bool = False) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        self._advance(change.at_s)
        window = self._windows.get(change.input)
        if window is None or change.at_s - window.start_s >= 1.0:
            if window is not None:
                self._close(window)
            window = self._windows[change.input] = _Window(change.at_s)
        window.count += 1
        if window.count > self.per_input_s and not change.initial:
            window.skipped += 1
            window.last, window.last_walk = change, walk
            self._skipping.add(change.input)
            return
        self._add(edge_line(change, walk))

    def tick(self, tick: Tick) -> None:
        if log.isEnabledFor(logging.INFO):
            self._advance(tick.at_s)
            self._add(tick_line(tick))

    def resume(self, kinds: Mapping[str, Kind]) -> None:
        self.flush()
        log.info("%s", resume_line(kinds))

    def flush(self) -> None:
        self._advance(self.latest_s)
        if self.lines:
            lines, self.lines = self.lines, []
            log.info("%s", "\n".join(lines), extra={"journal": {"EDGE_TRACE_LINES": len(lines)}})

    def _advance(self, at_s: float) -> None:
        """Time is ``at_s``: gaps whose second is over go in first (lines stay in order)."""
        self.latest_s = max(self.latest_s, at_s)
        for name in sorted(self._skipping):
            window = self._windows[name]
            if self.latest_s - window.start_s >= 1.0:
                self._close(window)

    def _close(self, window: _Window) -> None:
        last = window.last
        if window.skipped and last is not None:
            self.lines.append(gap_line(last, window.skipped))
            self.lines.append(edge_line(last, window.last_walk))
            self._skipping.discard(last.input)
        window.skipped, window.last = 0, None

    def _add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= self.max_lines:
            self.flush()


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
        for part in text.splitlines():  # a JSON entry holds one record: maybe many lines
            if EDGE in part:
                out.append(_edge(part, name, number))
            elif RESUME in part:
                out.append(_resume(part, name, number))
            elif TICK in part:
                out.append(_tick(part, name, number))
            elif GAP in part:
                out.append(_gap(part, name, number))
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


def _gap(text: str, name: str, number: int) -> Gap:
    found = _GAP.search(text)
    if found is None:
        raise TraceError(f"{name}:{number}: malformed gap {text[:120]!r}")
    return Gap(found["input"], found["zone"], int(found["skipped"]), float(found["until"]), number)


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
