"""One camera's pipeline: mask, encode (or pass through), ring, lores fan-out, clips, stills.

:class:`Pipeline` is synchronous and clock-free: ``push(frame)`` (a raw frame:
masked and encoded) or ``push_copied(copied)`` (the camera's own H.264 packet)
does the work of one frame, so tests drive it frame by frame. The encoder
holds its bitrate by the frames' own times and is told the rate they really
come at (:class:`RateMeter`), so keyframes stay ``keyframe_interval_s`` apart
whatever the camera's rate. Sound (AAC packets) joins the
same ring, clips and recordings. :class:`CameraRunner` (in
:mod:`edge.video.runner`) runs a source into it on a thread of its own.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from edge.config import CameraConfig
from edge.model import Frame, Gray, new_event_id
from edge.video import masks
from edge.video.clips import ClipJob, StillJob, VideoPlan, nearest
from edge.video.codec import EncodedPacket, EncoderSettings, H264Encoder, Yuv, pictures
from edge.video.encoders import Probe, choose, probe_hardware
from edge.video.frames import Copied, RawFrame, lores_step
from edge.video.ring import PacketRing
from edge.video.timing import RateMeter, follow_rate

log = logging.getLogger(__name__)
RECENT_STEP_MS = 250  # a full frame kept this often for stills before an alarm
RECENT_KEEP_MS = 1500
STILL_TOLERANCE_MS = 400  # a kept frame this close to a still's time stands for it
REOPEN_AFTER_S = 10.0  # the encoder follows a changed rate at most this often
AUDIO_QUEUE = 256  # AAC packets of a microphone waiting for the capture thread (16 s)

LoresSink = Callable[[Frame], None]
PacketSink = Callable[[EncodedPacket], None]


@dataclass(frozen=True)
class StillTaken:
    """A still's picture, or the packets to decode it from (a camera whose main
    stream is passed through and not decoded: one with a sub-stream)."""

    event_id: str
    media_id: str
    index: int
    pts_ms: int
    yuv: Yuv | None
    packets: tuple[EncodedPacket, ...] = field(default=(), repr=False)

    def picture(self) -> Yuv:
        """The still's picture (decoding its packets here: call it off the loop)."""
        if self.yuv is not None:
            return self.yuv
        return pictures(list(self.packets), [self.pts_ms])[self.pts_ms][1]


class Pipeline:
    def __init__(
        self,
        cfg: CameraConfig,
        pre_roll_s: float,
        post_roll_s: float,
        preset: str = "veryfast",
        hardware: Probe = probe_hardware,
    ) -> None:
        self.cfg = cfg
        self.post_roll_s = post_roll_s
        self.settings = EncoderSettings(
            cfg.width, cfg.height, cfg.fps, cfg.keyframe_interval_s, cfg.bitrate_kbps, preset
        )
        self._choose = lambda: choose(cfg.encoder, hardware)  # at the first raw frame
        self.encoder = H264Encoder(self.settings, choose=self._choose)
        self.meter = RateMeter()
        self._reopened_s: float | None = None
        self.ring = PacketRing(pre_roll_s)
        polygons = [tuple(p) for p in cfg.privacy_masks]
        self.mask = masks.rasterise(polygons, cfg.width, cfg.height)
        self.chroma = masks.chroma_mask(self.mask) if self.mask is not None else None
        self.lock = threading.Lock()  # ring, jobs and latest frames: capture thread vs loop
        self.size = (cfg.width, cfg.height)  # of the H.264 stream (a copied one may differ)
        self.copies = False  # the camera's own packets (set by the runner once open)
        self.stills_from_ring = False  # main stream not decoded: stills decode the ring
        self.size_listeners: list[Callable[[int, int], None]] = []
        self.lores_sinks: list[LoresSink] = []
        self.packet_sinks: list[PacketSink] = []
        self.on_clip: Callable[[ClipJob], None] = lambda job: None
        self.on_still: Callable[[StillTaken], None] = lambda still: None
        self.latest: RawFrame | None = None
        self.latest_lores: Frame | None = None
        self.frames = 0
        self._recent: deque[tuple[int, Yuv]] = deque()
        self._newest: tuple[int, Callable[[], Yuv]] | None = None  # a copied camera's
        self._clip: ClipJob | None = None
        self._stills: list[StillJob] = []
        self._audio: deque[EncodedPacket] = deque(maxlen=AUDIO_QUEUE)
        self._step = lores_step(cfg.width)

    # -- capture thread ------------------------------------------------------

    def set_size(self, width: int, height: int) -> None:
        """The size of a copied stream, before its first packet."""
        self.size = (width, height)
        for listener in self.size_listeners:
            listener(width, height)

    def set_rate(self, fps: float | None) -> None:
        """The rate the source declares, before its first frame (the encoder starts
        there rather than at the config's ``fps``)."""
        if fps and self.encoder.idle and follow_rate(self.settings.fps, fps) is not None:
            self.settings = replace(self.settings, fps=round(fps, 2))
            self.encoder = H264Encoder(self.settings, choose=self._choose)

    def push(self, frame: RawFrame, encode: bool = True) -> None:
        """One raw frame: mask, encode, fan out. Runs on the capture thread.
        ``encode=False`` (a motion scan) fans out the lores frame without encoding."""
        if self.mask is not None and self.chroma is not None:
            masks.apply(frame.yuv, self.mask, self.chroma)  # before anything sees it
        self.meter.add(frame.at_s)
        packets: list[EncodedPacket] = []
        if encode:
            packets = self._follow_rate(frame.at_s)
            packets += self.encoder.encode(frame.yuv, round(frame.at_s * 1000), frame.wall_ms)
        gray = frame.yuv[: self.cfg.height : self._step, :: self._step]
        self.observe(frame.at_s, frame.wall_ms, np.ascontiguousarray(gray), frame.yuv, packets)

    def _follow_rate(self, at_s: float) -> list[EncodedPacket]:
        """Reopen the encoder at the rate frames really come at, when it is off by more than
        10 % (at most every ``REOPEN_AFTER_S``): its keyframe interval is in frames."""
        rate = follow_rate(self.settings.fps, self.meter.fps)
        if rate is None or (
            self._reopened_s is not None and at_s - self._reopened_s < REOPEN_AFTER_S
        ):
            return []
        log.info("camera %s: frames come at %.2f/s, the encoder follows", self.cfg.id, rate)
        flushed = self.encoder.flush()
        chosen = self.encoder.choice
        self.settings = replace(self.settings, fps=rate)
        again = self._choose if chosen is None else (lambda: chosen)
        self.encoder = H264Encoder(self.settings, choose=again)
        self._reopened_s = at_s
        return flushed

    def push_copied(self, copied: Copied) -> None:
        """A packet the camera encoded itself (never with masks), with the luma of its
        picture when motion is due one, and its full picture on demand."""
        packet = copied.packet
        self.meter.add(packet.at_s)
        self.observe(packet.at_s, packet.wall_ms, copied.lores, copied.picture, [packet])

    def push_sub(self, frame: RawFrame) -> None:
        """A picture of the camera's sub-stream: motion's lores, and the live view."""
        step = lores_step(frame.yuv.shape[1])
        height = frame.yuv.shape[0] * 2 // 3
        gray = np.ascontiguousarray(frame.yuv[:height:step, ::step])
        self.observe(frame.at_s, frame.wall_ms, gray, None, [])
        with self.lock:
            self.latest = frame

    def offer_audio(self, packet: EncodedPacket) -> None:
        """A microphone's AAC packet (any thread): it joins at the next video packet."""
        self._audio.append(packet)

    def observe(
        self,
        at_s: float,
        wall_ms: int,
        gray: Gray | None,
        picture: Yuv | Callable[[], Yuv] | None,
        packets: list[EncodedPacket],
    ) -> None:
        """Lores fan-out, stills and the packets of one picture. ``picture`` is the full
        frame, or a way to it (converted only when a still or the live view wants it)."""
        pts = round(at_s * 1000)
        lores = None
        if gray is not None:
            lores = Frame(self.cfg.id, self.frames, at_s, wall_ms, gray)
        self.frames += 1
        with self.lock:
            if lores is not None:
                self.latest_lores = lores
            recent_due = not self._recent or pts - self._recent[-1][0] >= RECENT_STEP_MS
            yuv = None
            if callable(picture):
                self._newest = (pts, picture)  # converted only if an alarm wants it
            if picture is not None and (not callable(picture) or recent_due or self._due(pts)):
                yuv = picture() if callable(picture) else picture
                self.latest = RawFrame(yuv, at_s, wall_ms)
                if recent_due:
                    self._recent.append((pts, yuv))
            while self._recent and pts - self._recent[0][0] > RECENT_KEEP_MS:
                self._recent.popleft()
            taken = self._take_stills(pts, yuv) if yuv is not None else []
        for packet in packets:
            self.push_packet(packet)
        for still in taken:
            self.on_still(still)
        if lores is not None:
            for sink in self.lores_sinks:
                sink(lores)

    def push_packet(self, packet: EncodedPacket) -> None:
        """An encoded packet (from our encoder, the camera, or its sound)."""
        if not packet.audio:
            while self._audio and self._audio[0].pts_ms <= packet.pts_ms:
                self.push_packet(self._audio.popleft())  # a microphone's, in time order
        finished = None
        with self.lock:
            self.ring.append(packet)
            clip = self._clip
            if clip is not None and clip.add(packet):
                finished, self._clip = clip, None
            taken = [] if packet.audio or not self.stills_from_ring else self._ring_stills(packet)
        for sink in self.packet_sinks:
            sink(packet)
        for still in taken:
            self.on_still(still)
        if finished is not None:
            self.on_clip(finished)

    def _due(self, pts: int) -> bool:
        return any(t <= pts for job in self._stills for t in job.targets.values())

    def _take_stills(self, pts: int, yuv: Yuv) -> list[StillTaken]:
        taken = []
        for job in self._stills:
            for index, target in sorted(job.targets.items()):
                if pts >= target:
                    del job.targets[index]
                    taken.append(StillTaken(job.event_id, job.ids[index], index, pts, yuv))
        self._stills = [j for j in self._stills if j.targets]
        return taken

    def _ring_stills(self, packet: EncodedPacket) -> list[StillTaken]:
        """Stills due by this packet's time, as the ring's packets to decode them from."""
        taken = []
        for job in self._stills:
            for index, target in sorted(job.targets.items()):
                if packet.pts_ms >= target:
                    del job.targets[index]
                    taken.append(self._from_ring(job, index, target))
        self._stills = [j for j in self._stills if j.targets]
        return taken

    def _from_ring(self, job: StillJob, index: int, target: int) -> StillTaken:
        held = tuple(p for p in self.ring.since(target) if not p.audio)
        return StillTaken(job.event_id, job.ids[index], index, target, None, held)

    # -- event loop ----------------------------------------------------------

    def newest_packets(self) -> list[EncodedPacket]:
        """From the newest keyframe on: what the newest picture decodes from."""
        with self.lock:
            held = self.ring.since(2**62)
        return [p for p in held if not p.audio]

    def alarm(self, event_id: str, alarm_ms: int, wall_ms: int) -> VideoPlan:
        """Start (or extend) the clip and the stills of an alarm at camera time ``alarm_ms``."""
        post_ms = round(self.post_roll_s * 1000)
        ids = tuple(new_event_id(wall_ms) for _ in range(5))
        with self.lock:
            clip = self._clip
            if clip is not None and alarm_ms <= clip.end_ms:
                clip.extend(alarm_ms + post_ms)
                clip.events.append(event_id)
            else:
                pre_ms = round(self.ring.pre_roll_s * 1000)
                packets = self.ring.since(alarm_ms - pre_ms)
                clip = ClipJob(
                    new_event_id(wall_ms), event_id, alarm_ms, alarm_ms + post_ms, packets
                )
                clip.events.append(event_id)
                self._clip = clip
            start_ms = clip.start_ms
            job = StillJob.around(event_id, ids, alarm_ms)
            taken = self._past_stills(job, ids)
            if job.targets:
                self._stills.append(job)
        for still in taken:
            self.on_still(still)
        pre_s = max(0.0, (alarm_ms - start_ms) / 1000)
        start_wall = wall_ms - round(pre_s * 1000)
        return VideoPlan(
            self.cfg.id, clip.clip_id, clip.event_id, pre_s, self.post_roll_s, start_wall, ids
        )

    def _past_stills(self, job: StillJob, ids: tuple[str, ...]) -> list[StillTaken]:
        """The stills of an alarm whose time has passed: from the frames kept (or the ring)."""
        taken = []
        if self.stills_from_ring:
            video = [p for p in self.ring.since(2**62) if not p.audio]
            newest = video[-1].pts_ms if video else None
            for index, target in sorted(job.targets.items()):
                if newest is not None and target <= newest:
                    del job.targets[index]
                    taken.append(self._from_ring(job, index, target))
            return taken
        past = list(self._recent)
        if self.latest is not None:
            past.append((round(self.latest.at_s * 1000), self.latest.yuv))
        if self._newest is not None and (not past or self._newest[0] > past[-1][0]):
            past.append((self._newest[0], self._newest[1]()))
        newest = past[-1][0] if past else None
        for index, target in sorted(job.targets.items()):
            if newest is not None and target <= newest:
                found = nearest(past, target)
                # a stale picture (camera lost before the alarm) is no still of it
                if found is not None and abs(found[0] - target) <= STILL_TOLERANCE_MS:
                    del job.targets[index]
                    taken.append(StillTaken(job.event_id, ids[index], index, found[0], found[1]))
        return taken

    def flush(self) -> ClipJob | None:
        """At stop (capture over): the encoder's last pictures (it holds one back to time
        it), then the clip being collected, cut where the video ends."""
        for packet in self.encoder.flush():
            self.push_packet(packet)
        with self.lock:
            clip, self._clip = self._clip, None
            self._stills = []
        return clip if clip is not None and clip.packets else None
