"""A stream's own clock: frame times, the real frame rate, which frames motion sees.

Pure and clock-free: every function takes the times it needs.

- :class:`StreamClock` maps each frame's own timestamp (PTS) onto the box's
  monotonic clock, so a variable-rate file or a camera that skips frames
  keeps its real times; a live stream whose clock jumps is re-anchored.
- :class:`RateMeter` measures the rate frames really come at, from their
  own times; the encoder is told it (its keyframe interval is in frames)
  and the status says when it differs from the config's ``fps``.
- :class:`LoresGate` lets through at most about ``fps`` frames per second
  to the motion stage (every Nth frame of a faster camera).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

REANCHOR_S = 10.0  # "behind" by more than this is a jump of the camera's clock, not lag
AHEAD_S = 1.0  # a live frame stamped this far in the future: the camera's clock jumped
BACK_S = 1.0  # a file's stamp this far back is a jump (else a repeated stamp)
RATE_WINDOW_S = 4.0  # the real rate is measured over the last seconds
RATE_MIN_SPAN_S = 1.5  # and said only once this much is seen
RATE_GAP_S = 2.0  # no frame for this long: a stall, not a rate
RATE_TOLERANCE = 0.10  # the encoder follows the real rate when it is off by more
RATE_NOTE = 0.15  # the status notes a real rate this far from the config's


@dataclass
class StreamClock:
    """Frame times (monotonic s) from the stream's own seconds.

    ``live``: anchored at the first frame's arrival; ``behind_s`` says how far
    reading lags the camera; a jump of the camera's clock (or a lag beyond
    ``REANCHOR_S``) re-anchors. A file: anchored at its first frame, its
    times as they are (a repeated stamp is put 1 ms after the one before; a
    jump back carries on one ``period_s`` after the last).
    """

    live: bool
    period_s: float = 0.1  # a step when a frame has no time of its own
    anchor: tuple[float, float] | None = None  # (monotonic s, stream s)
    last_s: float | None = None
    behind_s: float = 0.0

    def at(self, stream_s: float | None, now_s: float) -> float:
        """The monotonic time of a frame stamped ``stream_s``, read at ``now_s``."""
        if stream_s is None:
            t = now_s if self.live or self.last_s is None else self.last_s + self.period_s
            self.last_s = t
            return t
        if self.anchor is None:
            self.anchor = (now_s, stream_s)
        t = self.anchor[0] + stream_s - self.anchor[1]
        if self.live:
            lag = now_s - t
            if not -AHEAD_S <= lag <= REANCHOR_S:
                self.anchor, t, lag = (now_s, stream_s), now_s, 0.0
            self.behind_s = max(0.0, lag)
        elif self.last_s is not None and t <= self.last_s:
            if self.last_s - t > BACK_S:  # its clock went back: carry on from here
                t = self.last_s + self.period_s
                self.anchor = (t, stream_s)
            else:  # a repeated or crossed stamp: just after the one before
                t = self.last_s + 0.001
        self.last_s = t
        return t

    def wall_ms(self, at_s: float, now_s: float, now_wall_s: float) -> int:
        """The UTC ms of a frame at monotonic ``at_s`` (the same offset as now)."""
        return round((now_wall_s + at_s - now_s) * 1000)


@dataclass
class RateMeter:
    """Frames per second from the frames' own times, over the last ``window_s``."""

    window_s: float = RATE_WINDOW_S
    times: deque[float] = field(default_factory=deque)

    def add(self, at_s: float) -> None:
        if self.times and not 0 <= at_s - self.times[-1] <= RATE_GAP_S:
            self.times.clear()  # a jump back, or a stall: measured again from here
        self.times.append(at_s)
        while len(self.times) > 2 and at_s - self.times[1] >= self.window_s:
            self.times.popleft()

    @property
    def fps(self) -> float | None:
        """The measured rate, or None until ``RATE_MIN_SPAN_S`` of frames is seen."""
        if len(self.times) < 3:
            return None
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span >= RATE_MIN_SPAN_S else None


def follow_rate(current_fps: float, measured: float | None) -> float | None:
    """The rate to reopen the encoder at (its keyframe interval counts frames at the
    rate it is told), or None to keep it: only when off by ``RATE_TOLERANCE``."""
    if measured is None or measured <= 0:
        return None
    if abs(measured / current_fps - 1) <= RATE_TOLERANCE:
        return None
    return round(measured, 2)


def rate_note(config_fps: float, measured: float | None) -> str | None:
    """What the status says when the camera's real rate differs from the config's."""
    if measured is None or abs(measured / config_fps - 1) <= RATE_NOTE:
        return None
    return (
        f"the camera delivers {measured:.1f} frames/s, the config says {config_fps:g}: "
        "times and bitrate follow the camera"
    )


@dataclass
class LoresGate:
    """At most about ``fps`` frames per second go to motion: every Nth frame of a faster
    camera, by the frames' own times (so a variable rate is thinned evenly)."""

    fps: float
    last_s: float | None = None

    def due(self, at_s: float) -> bool:
        step = 0.9 / self.fps  # 10 % slack: a 15 fps camera's jitter still gives 15
        if self.last_s is None or at_s - self.last_s >= step or at_s < self.last_s:
            self.last_s = at_s
            return True
        return False
