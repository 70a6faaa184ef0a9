"""The pre-alarm ring: encoded packets by duration, aligned on keyframes.

It keeps every packet from the newest keyframe at or before
``newest - pre_roll_s`` on, so a clip can always start ``pre_roll_s`` back
(within one keyframe interval more) without re-encoding. The camera's sound
(AAC packets) is kept beside it for the same seconds. Memory is the packets'
bytes plus a small per-packet overhead, reported as ``bytes``. Not
thread-safe by itself: the camera pipeline guards it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge.video.codec import EncodedPacket

PACKET_OVERHEAD = 120  # bytes of Python objects per packet, roughly (measured in the bench)


@dataclass(frozen=True)
class RingFigures:
    packets: int
    bytes: int
    seconds: float
    keyframes: int


class PacketRing:
    def __init__(self, pre_roll_s: float) -> None:
        self.pre_roll_s = pre_roll_s
        self._packets: deque[EncodedPacket] = deque()
        self._audio: deque[EncodedPacket] = deque()
        self._bytes = 0
        self._keyframes = 0

    def append(self, packet: EncodedPacket) -> None:
        if packet.audio:
            self._audio.append(packet)
            self._bytes += len(packet.data) + PACKET_OVERHEAD
            return
        self._packets.append(packet)
        self._bytes += len(packet.data) + PACKET_OVERHEAD
        self._keyframes += packet.keyframe
        self._trim(packet.pts_ms - round(self.pre_roll_s * 1000))
        oldest = self._packets[0].pts_ms if self._packets else packet.pts_ms
        while self._audio and self._audio[0].pts_ms < oldest:  # sound goes with its pictures
            self._bytes -= len(self._audio.popleft().data) + PACKET_OVERHEAD

    def _trim(self, keep_from_ms: int) -> None:
        """Drop whole keyframe intervals that end at or before ``keep_from_ms``."""
        packets = self._packets
        while self._keyframes > 1:
            second = _second_keyframe(packets)
            if second is None or packets[second].pts_ms > keep_from_ms:
                return
            for _ in range(second):
                old = packets.popleft()
                self._bytes -= len(old.data) + PACKET_OVERHEAD
                self._keyframes -= old.keyframe
        # before the first keyframe nothing is decodable: drop it
        while packets and not packets[0].keyframe:
            old = packets.popleft()
            self._bytes -= len(old.data) + PACKET_OVERHEAD

    def since(self, from_ms: int) -> list[EncodedPacket]:
        """Packets from the newest keyframe at or before ``from_ms`` (else the oldest one),
        with the sound from then on, in time order."""
        packets = list(self._packets)
        start = 0
        for i, p in enumerate(packets):
            if p.keyframe and p.pts_ms <= from_ms:
                start = i
            elif p.pts_ms > from_ms:
                break
        video = packets[start:]
        if not self._audio or not video:
            return video
        sound = [p for p in self._audio if p.pts_ms >= video[0].pts_ms]
        return sorted([*video, *sound], key=lambda p: (p.pts_ms, p.audio))

    def clear(self) -> None:
        self._packets.clear()
        self._audio.clear()
        self._bytes = 0
        self._keyframes = 0

    @property
    def figures(self) -> RingFigures:
        packets = self._packets
        seconds = (packets[-1].pts_ms - packets[0].pts_ms) / 1000 if packets else 0.0
        return RingFigures(len(packets), self._bytes, seconds, self._keyframes)


def _second_keyframe(packets: deque[EncodedPacket]) -> int | None:
    for i in range(1, len(packets)):
        if packets[i].keyframe:
            return i
    return None
