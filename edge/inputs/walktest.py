"""Walk test: a technician walks the site and trips each detector in turn.

While a walk test runs, the intrusion zones (intrusion, entry/exit) it covers
are not evaluated as alarms: each activation is recorded as "seen" instead.
24-hour zones (fire, panic, hold-up, tamper, technical, power) keep reporting
for real: a walk test must never hide a fire. The test ends by itself after
its duration, or when stopped, with a summary of the zones seen and not seen.

Pure: times are arguments (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from edge.codes import ZoneType
from edge.config import ZoneConfig
from edge.model import ZoneChanged

COVERED = frozenset({ZoneType.INTRUSION, ZoneType.ENTRY_EXIT})
MAX_DURATION_S = 4 * 3600


@dataclass(frozen=True)
class WalkTest:
    """A walk test in progress (or finished): which covered zones were seen, when."""

    started_s: float
    ends_s: float
    zones: tuple[str, ...]  # the zones under test, in config order
    seen: Mapping[str, float] = field(default_factory=dict)  # zone -> first activation
    activations: int = 0

    def covers(self, zone: str) -> bool:
        return zone in self.zones

    @property
    def not_seen(self) -> tuple[str, ...]:
        return tuple(z for z in self.zones if z not in self.seen)


@dataclass(frozen=True)
class Summary:
    seen: tuple[str, ...]
    not_seen: tuple[str, ...]
    activations: int
    duration_s: float
    ended_by: str  # "timeout" or "stopped"

    @property
    def text(self) -> str:
        seen = ", ".join(self.seen) or "none"
        missing = ", ".join(self.not_seen) or "none"
        return (
            f"walk test {self.ended_by} after {self.duration_s:.0f} s: "
            f"{len(self.seen)} zone(s) seen ({seen}); not seen: {missing}"
        )


def start(zones: Mapping[str, ZoneConfig], now_s: float, duration_s: float) -> WalkTest:
    """Begin a walk test of every intrusion and entry/exit zone."""
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration must be between 0 and {MAX_DURATION_S} s")
    covered = tuple(z.id for z in zones.values() if z.type in COVERED)
    return WalkTest(now_s, now_s + duration_s, covered)


def observe(test: WalkTest, change: ZoneChanged) -> WalkTest:
    """Record a change of a covered zone (an activation counts as seen)."""
    if not change.active or not test.covers(change.zone):
        return test
    seen = dict(test.seen)
    seen.setdefault(change.zone, change.at_s)
    return replace(test, seen=seen, activations=test.activations + 1)


def expired(test: WalkTest, now_s: float) -> bool:
    return now_s >= test.ends_s


def finish(test: WalkTest, now_s: float, ended_by: str) -> Summary:
    seen = tuple(z for z in test.zones if z in test.seen)
    return Summary(seen, test.not_seen, test.activations, now_s - test.started_s, ended_by)
