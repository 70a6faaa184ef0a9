"""The walk test page's view of the panel stage (JSON-ready dictionaries).

Besides the running test, the page shows the last one's result as a list the
technician can read out: the zones seen and not seen, how it ended and the
event that carried it to the station. A test stopped from the page gives its
result directly; one that ran out of time ends inside the panel, which reports
only its summary text to the station: the Box hands that text here
(:meth:`WalkTestView.ended`) and it is read back into its lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from edge.inputs.panel import Panel
from edge.protocol import iso_ms

# edge.inputs.walktest.Summary.text: "walk test <how> after <n> s: <k> zone(s) seen
# (<a, b> or none); not seen: <c, d> or none"
SUMMARY = re.compile(
    r"walk test (?P<ended_by>\w+) after (?P<duration_s>\d+) s: \d+ zone\(s\) seen "
    r"\((?P<seen>[^)]*)\); not seen: (?P<not_seen>.*)"
)


class WalkTestView:
    def __init__(self, panel: Panel, wall_ms: Callable[[], int]) -> None:
        self.panel = panel
        self.wall_ms = wall_ms
        self.last: dict[str, Any] | None = None  # the last test's result, for the page

    def start_walk(self, duration_s: float) -> dict[str, Any]:
        return asdict(self.panel.start_walk(duration_s))

    def walk_status(self) -> dict[str, Any] | None:
        status = self.panel.walk_status()
        return None if status is None else asdict(status)

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None:
        result = await self.panel.stop_walk(ended_by)
        return None if result is None else asdict(result)

    def last_result(self) -> dict[str, Any] | None:
        return self.last

    def ended(self, text: str, event_id: str) -> None:
        """The panel's summary of a walk test, just sent to the station as ``event_id``."""
        result = parse_summary(text)
        if result is not None:
            self.last = {**result, "event_id": event_id, "ended_at": iso_ms(self.wall_ms())}


def parse_summary(text: str) -> dict[str, Any] | None:
    """The zones seen and not seen, how it ended and how long it ran, from the
    summary's text; None for another text."""
    found = SUMMARY.fullmatch(text)
    if found is None:
        return None

    def zones(part: str) -> list[str]:
        return [] if part == "none" else part.split(", ")

    return {
        "seen": zones(found["seen"]),
        "not_seen": zones(found["not_seen"]),
        "ended_by": found["ended_by"],
        "duration_s": int(found["duration_s"]),
        "text": text,
    }
