"""Clips and stills for alarms: what to cut, pure of any I/O.

A clip runs from the keyframe at or before ``t_alarm - pre_roll_s`` to
``t_alarm + post_roll_s``. An alarm while a clip is still being collected
shares that clip and extends its end (up to ``MAX_CLIP_S``), rather than
duplicating footage. Five stills: 1 s and 0.5 s before, at, 0.5 s and 1 s
after the alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.video.codec import EncodedPacket, Yuv

STILL_OFFSETS_MS = (-1000, -500, 0, 500, 1000)
MAX_CLIP_S = 300  # a clip extended by alarm after alarm is closed at this length


@dataclass(frozen=True)
class VideoPlan:
    """What an alarm's event says about its media, fixed when the event is stored."""

    camera: str
    clip_id: str
    clip_event: str  # the event whose media topic carries the clip (shared clips)
    pre_s: float  # seconds of clip before the alarm (actual, from the ring)
    post_s: float  # seconds after the alarm
    start_wall_ms: int
    still_ids: tuple[str, ...]

    def extra(self) -> dict[str, str]:
        """The event's ``extra`` annotations (strings, as the wire wants)."""
        return {
            "camera": self.camera,
            "clip_id": self.clip_id,
            "clip_event": self.clip_event,
            "clip_pre_s": f"{self.pre_s:.2f}",
            "clip_post_s": f"{self.post_s:.2f}",
            "clip_start_ms": str(self.start_wall_ms),
            "still_ids": " ".join(self.still_ids),
            "still_offsets_s": " ".join(f"{o / 1000:g}" for o in STILL_OFFSETS_MS),
        }


@dataclass
class ClipJob:
    """A clip being collected: packets so far and the time it ends (camera ms)."""

    clip_id: str
    event_id: str  # the first event; its media topic carries the clip
    alarm_ms: int
    end_ms: int
    packets: list[EncodedPacket]
    events: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def start_ms(self) -> int:
        return self.packets[0].pts_ms if self.packets else self.alarm_ms

    @property
    def frames(self) -> int:
        return sum(1 for p in self.packets if not p.audio)

    def add(self, packet: EncodedPacket) -> bool:
        """Take a packet; True once the clip is complete (a picture past its end)."""
        if packet.audio:  # sound within the clip's pictures' span
            if self.packets and self.start_ms <= packet.pts_ms <= self.end_ms:
                self.packets.append(packet)
            return False
        if not self.packets and not packet.keyframe:
            return False  # nothing before a keyframe is decodable
        if packet.pts_ms > self.end_ms and self.packets:
            self.done = True
            return True
        self.packets.append(packet)
        return False

    def extend(self, end_ms: int) -> None:
        self.end_ms = min(max(self.end_ms, end_ms), self.start_ms + MAX_CLIP_S * 1000)


@dataclass
class StillJob:
    """Stills still to take for one event: target times (camera ms) by index."""

    event_id: str
    ids: tuple[str, ...]
    targets: dict[int, int]  # index -> target ms, for the stills not yet taken

    @classmethod
    def around(cls, event_id: str, ids: tuple[str, ...], alarm_ms: int) -> StillJob:
        return cls(event_id, ids, {i: alarm_ms + o for i, o in enumerate(STILL_OFFSETS_MS)})


def nearest(frames: list[tuple[int, Yuv]], target_ms: int) -> tuple[int, Yuv] | None:
    """The frame closest in time to ``target_ms``."""
    if not frames:
        return None
    return min(frames, key=lambda f: abs(f[0] - target_ms))
