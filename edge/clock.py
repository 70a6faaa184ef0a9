"""Time as an input: every stage takes a clock; tests pass a fake one."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock UTC seconds since the epoch (for timestamps on the wire)."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back (for durations and timeouts)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._wall = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a fake clock does not go back")
        self._wall += seconds
        self._mono += seconds


def ms(seconds: float) -> int:
    """Epoch seconds to integer milliseconds, as the wire carries them."""
    return round(seconds * 1000)
