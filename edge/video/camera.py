"""One camera's pipeline: mask, encode, ring, lores fan-out, clips and stills.

:class:`Pipeline` is synchronous and clock-free: ``push(frame)`` does the work
of one frame, so tests drive it frame by frame. :class:`CameraRunner` runs a
source into it on a thread of its own (capture and encoding never block the
event loop), paces sources that do not pace themselves, and turns camera
loss into a trouble, a backoff and a restore.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.config import CameraConfig
from edge.model import Frame, new_event_id
from edge.video import masks
from edge.video.clips import ClipJob, StillJob, VideoPlan, nearest
from edge.video.codec import EncodedPacket, EncoderSettings, H264Encoder, VideoError, Yuv
from edge.video.ring import PacketRing
from edge.video.sources import RawFrame, Source, SourceStatus, lores_step

log = logging.getLogger(__name__)
RECENT_STEP_MS = 250  # a full frame kept this often for stills before an alarm
RECENT_KEEP_MS = 1500
STILL_TOLERANCE_MS = 400  # a kept frame this close to a still's time stands for it
BACKOFF_MIN_S = 1.0
MAX_BEHIND_S = 0.5  # a live camera's frames this late are dropped, not encoded
BACKOFF_MAX_S = 60.0

LoresSink = Callable[[Frame], None]
PacketSink = Callable[[EncodedPacket], None]


@dataclass(frozen=True)
class StillTaken:
    event_id: str
    media_id: str
    index: int
    pts_ms: int
    yuv: Yuv


class Pipeline:
    def __init__(
        self, cfg: CameraConfig, pre_roll_s: float, post_roll_s: float, preset: str = "veryfast"
    ) -> None:
        self.cfg = cfg
        self.post_roll_s = post_roll_s
        self.settings = EncoderSettings(
            cfg.width, cfg.height, cfg.fps, cfg.keyframe_interval_s, cfg.bitrate_kbps, preset
        )
        self.encoder = H264Encoder(self.settings)
        self.ring = PacketRing(pre_roll_s)
        polygons = [tuple(p) for p in cfg.privacy_masks]
        self.mask = masks.rasterise(polygons, cfg.width, cfg.height)
        self.chroma = masks.chroma_mask(self.mask) if self.mask is not None else None
        self.lock = threading.Lock()  # ring, jobs and latest frames: capture thread vs loop
        self.size = (cfg.width, cfg.height)  # of the H.264 stream (a copied one may differ)
        self.size_listeners: list[Callable[[int, int], None]] = []
        self.lores_sinks: list[LoresSink] = []
        self.packet_sinks: list[PacketSink] = []
        self.on_clip: Callable[[ClipJob], None] = lambda job: None
        self.on_still: Callable[[StillTaken], None] = lambda still: None
        self.latest: RawFrame | None = None
        self.latest_lores: Frame | None = None
        self.frames = 0
        self._recent: deque[tuple[int, Yuv]] = deque()
        self._clip: ClipJob | None = None
        self._stills: list[StillJob] = []
        self._step = lores_step(cfg.width)

    # -- capture thread ------------------------------------------------------

    def set_size(self, width: int, height: int) -> None:
        """The size of a copied stream, before its first packet."""
        self.size = (width, height)
        for listener in self.size_listeners:
            listener(width, height)

    def push(self, frame: RawFrame, encode: bool = True) -> None:
        """One raw frame: mask, encode, fan out. Runs on the capture thread.
        ``encode=False`` (a motion scan) fans out the lores frame without encoding."""
        if self.mask is not None and self.chroma is not None:
            masks.apply(frame.yuv, self.mask, self.chroma)  # before anything sees it
        pts = round(frame.at_s * 1000)
        packets = self.encoder.encode(frame.yuv, pts, frame.wall_ms) if encode else []
        self.observe(frame, packets)

    def push_copied(self, packet: EncodedPacket, frame: RawFrame | None) -> None:
        """A packet the camera encoded itself (stream copy, never with masks), with its
        decoded picture for the lores stream and stills when there is one."""
        if frame is None:
            self.push_packet(packet)
        else:
            self.observe(frame, [packet])

    def observe(self, frame: RawFrame, packets: list[EncodedPacket]) -> None:
        """Lores fan-out, stills and the packets of this frame."""
        pts = round(frame.at_s * 1000)
        gray = np.ascontiguousarray(frame.yuv[: self.cfg.height : self._step, :: self._step])
        lores = Frame(self.cfg.id, self.frames, frame.at_s, frame.wall_ms, gray)
        self.frames += 1
        with self.lock:
            self.latest, self.latest_lores = frame, lores
            if not self._recent or pts - self._recent[-1][0] >= RECENT_STEP_MS:
                self._recent.append((pts, frame.yuv))
            while self._recent and pts - self._recent[0][0] > RECENT_KEEP_MS:
                self._recent.popleft()
            taken = self._take_stills(pts, frame.yuv)
        for packet in packets:
            self.push_packet(packet)
        for still in taken:
            self.on_still(still)
        for sink in self.lores_sinks:
            sink(lores)

    def push_packet(self, packet: EncodedPacket) -> None:
        """An encoded packet (from our encoder, or a camera that encodes itself)."""
        finished = None
        with self.lock:
            self.ring.append(packet)
            clip = self._clip
            if clip is not None and clip.add(packet):
                finished, self._clip = clip, None
        for sink in self.packet_sinks:
            sink(packet)
        if finished is not None:
            self.on_clip(finished)

    def _take_stills(self, pts: int, yuv: Yuv) -> list[StillTaken]:
        taken = []
        for job in self._stills:
            for index, target in sorted(job.targets.items()):
                if pts >= target:
                    del job.targets[index]
                    taken.append(StillTaken(job.event_id, job.ids[index], index, pts, yuv))
        self._stills = [j for j in self._stills if j.targets]
        return taken

    # -- event loop ----------------------------------------------------------

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
            past = list(self._recent)
            if self.latest is not None:
                past.append((round(self.latest.at_s * 1000), self.latest.yuv))
            newest = past[-1][0] if past else None
            taken = []
            for index, target in sorted(job.targets.items()):
                if newest is not None and target <= newest:
                    found = nearest(past, target)
                    # a stale picture (camera lost before the alarm) is no still of it
                    if found is not None and abs(found[0] - target) <= STILL_TOLERANCE_MS:
                        del job.targets[index]
                        taken.append(StillTaken(event_id, ids[index], index, found[0], found[1]))
            if job.targets:
                self._stills.append(job)
        for still in taken:
            self.on_still(still)
        pre_s = max(0.0, (alarm_ms - start_ms) / 1000)
        start_wall = wall_ms - round(pre_s * 1000)
        return VideoPlan(
            self.cfg.id, clip.clip_id, clip.event_id, pre_s, self.post_roll_s, start_wall, ids
        )

    def flush(self) -> ClipJob | None:
        """At stop: the clip being collected, cut where the video ends."""
        with self.lock:
            clip, self._clip = self._clip, None
            self._stills = []
        return clip if clip is not None and clip.packets else None


class CameraRunner:
    """Runs a source into a pipeline on its own thread; reports loss and restore."""

    def __init__(
        self,
        source: Source,
        pipeline: Pipeline,
        trouble: Callable[[bool, str], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.cfg = pipeline.cfg
        self.trouble = trouble  # (lost, text), called from the capture thread
        self.monotonic = monotonic
        self.status = SourceStatus(width=pipeline.cfg.width, height=pipeline.cfg.height)
        self.stop_flag = threading.Event()
        self.thread: threading.Thread | None = None
        self.lost = False

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.run, name=f"camera.{self.pipeline.cfg.id}", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(10)

    def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self.stop_flag.is_set():
            frames_before = self.status.frames
            try:
                self.source.open()
                if self.source.copies:
                    self.pipeline.set_size(*self.source.size)
                self._capture()
            except VideoError as exc:
                self._lose(str(exc))
            except Exception as exc:
                log.exception("camera %s failed", self.pipeline.cfg.id)
                self._lose(f"camera {self.pipeline.cfg.id}: {exc!r}")
            finally:
                self.source.close()
            if self.stop_flag.is_set():
                break
            if self.status.frames > frames_before:  # it gave pictures: backoff from the start
                backoff = BACKOFF_MIN_S
            self.stop_flag.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        self.status.state = "stopped"

    def _capture(self) -> None:
        cfg = self.pipeline.cfg
        fps = cfg.fps
        fps_file = getattr(self.source, "file_fps", None)
        period_s = 1.0 / (fps_file or fps)
        started = self.monotonic()
        count = 0
        while not self.stop_flag.is_set():
            copied = None
            if self.source.copies:
                copied, frame = self.source.read_copied()
            else:
                frame = self.source.read()
            if count == 0:
                self.status.state = "running"
                if self.lost:
                    self.lost = False
                    self.trouble(False, f"camera {cfg.id} restored")
            if copied is not None:
                self.pipeline.push_copied(copied, frame)
            elif getattr(self.source, "behind_s", 0.0) > MAX_BEHIND_S:
                self.status.dropped += 1  # late: skip its encoding to catch up, never block
            elif frame is not None:
                self.pipeline.push(frame)
            count += 1
            self.status.frames += 1
            elapsed = self.monotonic() - started
            self.status.fps = round(count / elapsed, 1) if elapsed > 0 else 0.0
            ring = self.pipeline.ring.figures
            self.status.ring_bytes, self.status.ring_seconds = ring.bytes, round(ring.seconds, 2)
            if not self.source.paced:
                self.stop_flag.wait(max(0.0, started + count * period_s - self.monotonic()))

    def _lose(self, text: str) -> None:
        self.status.state = "lost"
        self.status.error = text
        if not self.lost:
            self.lost = True
            log.error("%s", text)
            self.trouble(True, text)
