"""The video stage as the box sees it: cameras, alarm clips and stills, recorder.

Wired by ``app.py`` through callbacks only (``put_media`` into the outbox,
``trouble`` and ``raise_event`` for box events), so this package imports no
other stage. Threads: each camera captures and encodes on its own thread;
everything here runs on the event loop, CPU work (JPEG, MP4) in worker
threads.

API for the other stages (motion, web):
- ``add_lores_sink(fn)``: ``fn(frame: Frame)`` on the event loop for every lores
  frame; if the loop falls behind by ``LORES_BACKLOG`` frames for that sink,
  frames are dropped for it (counted in ``lores_dropped``), capture never waits.
- ``latest_lores(camera)``: the newest lores ``Frame`` or None.
- ``await snapshot_jpeg(camera)``: a full-size JPEG of the newest frame (masked).
- ``status()``: per camera state, fps, frames, ring bytes/seconds, the path its
  video takes (passthrough or encode, and why), the encoder (and why), the rate
  frames really come at, sound; recorder figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.clock import Clock, ms
from edge.config import EdgeConfig
from edge.errors import DiskFull
from edge.model import Event, Frame, MediaDue
from edge.video.audio import Microphone
from edge.video.camera import Pipeline, StillTaken
from edge.video.clips import STILL_OFFSETS_MS, ClipJob, VideoPlan
from edge.video.codec import EncodedPacket, VideoError, jpeg, mp4_bytes, pictures
from edge.video.recorder import Recorder, RecorderSettings, SegmentWriter
from edge.video.runner import CameraRunner
from edge.video.sources import AvCamera, make_source

log = logging.getLogger(__name__)
LORES_BACKLOG = 4
SWEEP_EVERY_S = 3600.0
FORGET_AFTER_MS = 15 * 60_000  # longer than the longest clip (MAX_CLIP_S + pre-roll)
MEDIA_WAIT_S = 600.0  # an alarm's still or clip waits this long for room on a full disk
MEDIA_RETRY_MAX_S = 10.0
MAX_PENDING_STILLS = 100  # stills being encoded or waiting for the outbox (about 35 MB at 720p)

PutMedia = Callable[[Event, str, str, str, bytes], Awaitable[Any]]
PutLost = Callable[[Event, str, str, str], Awaitable[Any]]  # event, media id, kind, why
Trouble = Callable[[bool, str], Awaitable[Any]]


@dataclass
class _Camera:
    pipeline: Pipeline
    runner: CameraRunner
    writer: SegmentWriter | None
    microphone: Microphone | None = None


class VideoService:
    def __init__(
        self,
        cfg: EdgeConfig,
        state_dir: Path,
        clock: Clock,
        put_media: PutMedia,
        trouble: Trouble,
        preset: str = "veryfast",
        put_lost: PutLost | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.put_media = put_media
        self.put_lost = put_lost
        self.trouble = trouble
        rec = cfg.recording
        self.recorder = Recorder(
            RecorderSettings(
                root=state_dir / "recordings",
                mode=rec.mode,
                segment_s=rec.segment_s,
                retention_days=rec.retention_days,
                max_bytes=int(rec.max_bytes) if rec.max_bytes is not None else None,
                pre_roll_s=rec.pre_roll_s,
                post_roll_s=rec.post_roll_s,
                keep_free_bytes=int(rec.keep_free_bytes),
            ),
            {c.id: c.fps for c in cfg.cameras},
            trouble=self._trouble_from_thread,  # disk full or not writable: one trouble
        )
        self.cameras: dict[str, _Camera] = {}
        for c in cfg.cameras:
            pipeline = Pipeline(c, rec.pre_roll_s, rec.post_roll_s, preset)
            sub = AvCamera(c, clock, target=c.substream) if c.substream else None
            runner = CameraRunner(
                make_source(c, clock), pipeline, self._trouble_from_thread, clock.monotonic, sub
            )
            writer = None
            if rec.enabled:
                writer = self.recorder.writer(c.id, c.width, c.height, audio=c.audio)
                pipeline.packet_sinks.append(writer)
                pipeline.size_listeners.append(writer.resize)
            mic = None
            if c.audio and c.audio_device is not None:
                mic = Microphone(c.audio_device, c.audio_bitrate_kbps, clock, pipeline.offer_audio)
                runner.microphone = mic
            self.cameras[c.id] = _Camera(pipeline, runner, writer, mic)
        self.events: dict[str, Event] = {}  # events whose media are still being made
        self.lores_dropped = 0
        self.media_failed = 0
        self.media_lost = 0
        self.stills_pending = 0
        self.media_waiting: set[str] = set()  # waiting for room on a full disk
        self.first_still_ms: dict[str, int] = {}  # event id -> when its first still was queued
        self.clip_queued_ms: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        recovered, removed = self.recorder.recover_parts()
        if recovered or removed:
            log.warning("segments cut short by the last run: %d kept, %d empty", recovered, removed)
        for cid, cam in self.cameras.items():
            cam.pipeline.on_still = self._hop_still(cid)
            cam.pipeline.on_clip = self._hop_clip(cid)
            cam.runner.start()
            if cam.microphone is not None:
                cam.microphone.start(cid)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Stop capture, send the clips cut short, close the open segments. Never raises:
        a camera or a disk that fails here is logged and the stop goes on; media still
        waiting after ``timeout_s`` are owed to the station (``media_due``) and made
        from the recordings, or told lost, at the next start."""
        for cid, cam in self.cameras.items():
            try:
                if cam.microphone is not None:
                    await asyncio.to_thread(cam.microphone.stop)
                await asyncio.to_thread(cam.runner.stop)
                job = cam.pipeline.flush()
                if job is not None:
                    self._clip(cid, job)
                if cam.writer is not None:
                    await asyncio.to_thread(cam.writer.close)
            except Exception:
                log.exception("camera %s did not stop cleanly", cid)
        try:
            await asyncio.to_thread(self.recorder.settle)
        except OSError as exc:
            log.error("recorder: pending segments not settled at stop: %s", exc)
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d media job(s) cut short by the stop: made at next start", len(late))
                await asyncio.wait(late, timeout=1.0)

    async def run_retention(self) -> None:
        while True:
            try:
                gone = await asyncio.to_thread(self.recorder.sweep, ms(self.clock.time()))
                if gone:
                    log.info("retention deleted %d segment(s)", len(gone))
            except (OSError, VideoError) as exc:
                log.error("retention sweep failed: %s", exc)
            await asyncio.sleep(SWEEP_EVERY_S)

    # -- alarms ------------------------------------------------------------------

    def plan(self, event: Event, cameras: tuple[str, ...]) -> tuple[Event, tuple[MediaDue, ...]]:
        """Start the clip and stills of ``event`` on ``cameras``; the event gains
        their ids and pre/post seconds in ``extra``, and the media it announces are
        returned (for the outbox to remember with it). Never waits."""
        plans: list[VideoPlan] = []
        now_mono, now_wall = self.clock.monotonic(), ms(self.clock.time())
        alarm_mono_ms = round((now_mono - (now_wall - event.occurred_at_ms) / 1000) * 1000)
        for camera in cameras:
            cam = self.cameras.get(camera)
            if cam is None:
                continue
            plans.append(cam.pipeline.alarm(event.id, alarm_mono_ms, event.occurred_at_ms))
            why = "motion" if event.kind.value == "motion" else "alarm"
            self.recorder.mark(camera, event.occurred_at_ms, why)
        if not plans:
            return event, ()
        self._forget_older_than(now_wall - FORGET_AFTER_MS)
        extra = dict(event.extra)
        due: list[MediaDue] = []
        post_ms = round(self.cfg.recording.post_roll_s * 1000)
        for plan in plans:
            prefix = "" if len(plans) == 1 else f"{plan.camera}:"
            extra.update({prefix + k: v for k, v in plan.extra().items()})
            end = event.occurred_at_ms + post_ms
            due.append(
                MediaDue(
                    plan.clip_id, plan.clip_event, "clip", plan.camera, plan.start_wall_ms, end
                )
            )
            for still_id, offset in zip(plan.still_ids, STILL_OFFSETS_MS, strict=True):
                at = event.occurred_at_ms + offset
                due.append(MediaDue(still_id, event.id, "still", plan.camera, at, at))
        planned = Event(**{**event.__dict__, "extra": extra})
        self.events[event.id] = planned
        return planned, tuple(due)

    def _forget_older_than(self, cutoff_ms: int) -> None:
        """Events whose media are long done: their bookkeeping goes (memory stays bounded)."""
        old = [i for i, e in self.events.items() if e.occurred_at_ms < cutoff_ms]
        for event_id in old:
            del self.events[event_id]
            self.first_still_ms.pop(event_id, None)
            self.clip_queued_ms.pop(event_id, None)

    def mark_motion(self, camera: str, at_ms: int) -> None:
        """Motion seen (from the motion stage): kept on disk in ``motion`` mode."""
        self.recorder.mark(camera, at_ms, "motion")

    # -- commands ------------------------------------------------------------------

    async def snapshot_jpeg(self, camera: str) -> bytes:
        cam = self.cameras.get(camera)
        if cam is not None and cam.pipeline.stills_from_ring:  # full size: from the ring
            packets = cam.pipeline.newest_packets()
            if packets:
                return await asyncio.to_thread(_newest_jpeg, packets)
        frame = cam.pipeline.latest if cam is not None else None
        if frame is None:
            raise VideoError(f"camera {camera} has no picture (offline or starting)")
        return await asyncio.to_thread(jpeg, frame.yuv)

    async def export_clip(self, camera: str, from_ms: int, to_ms: int, who: str) -> bytes:
        """Recorded video of ``[from_ms, to_ms]`` (wall ms) as MP4, no re-encoding: from
        the segments on disk, else from the pre-alarm ring (the last seconds)."""
        cam = self.cameras.get(camera)
        if cam is None:
            raise VideoError(f"no camera {camera}")
        now = ms(self.clock.time())
        try:
            data, _first, _last = await asyncio.to_thread(
                self.recorder.export, camera, from_ms, to_ms, who, "operator request", now
            )
            return data
        except VideoError:
            with cam.pipeline.lock:
                held = cam.pipeline.ring.since(-(2**62))
            packets = _window(held, from_ms, to_ms)
            if not packets:
                raise
        data = await asyncio.to_thread(mp4_bytes, packets, *cam.pipeline.size)
        footage = f"camera {camera} {packets[0].wall_ms}..{packets[-1].wall_ms} (memory)"
        await asyncio.to_thread(
            self.recorder.access.write, now, who, "export", footage, "operator request"
        )
        return data

    async def hold(
        self, camera: str, from_ms: int, to_ms: int, until_ms: int, who: str, why: str, hold_id: str
    ) -> int:
        """An incident hold on recorded footage (see ``Recorder.hold``); VideoError when
        this box does not record, or holds nothing of that camera and range."""
        if camera not in self.cameras:
            raise VideoError(f"no camera {camera}")
        if not self.cfg.recording.enabled:
            raise VideoError("unavailable: recording is off on this box, nothing to hold")
        now = ms(self.clock.time())
        covered = await asyncio.to_thread(
            self.recorder.hold, camera, from_ms, to_ms, who, why, now, until_ms, hold_id
        )
        log.warning(
            "hold %s by %s: camera %s %d..%d (%s)", hold_id, who, camera, from_ms, to_ms, why
        )
        return covered

    async def release(self, hold_id: str, who: str, why: str) -> None:
        """End an incident hold (logged); VideoError when there is no such hold."""
        now = ms(self.clock.time())
        await asyncio.to_thread(self.recorder.release, hold_id, who, why, now)
        log.warning("hold %s released by %s (%s)", hold_id, who, why)

    def camera_ids(self) -> list[str]:
        return list(self.cameras)

    def latest_jpeg(self, camera: str) -> bytes | None:
        """The newest full-size frame as JPEG (a few ms of CPU), or None."""
        cam = self.cameras.get(camera)
        frame = cam.pipeline.latest if cam is not None else None
        return jpeg(frame.yuv) if frame is not None else None

    def masks(self, camera: str) -> list[list[list[int]]]:
        cam = self.cameras.get(camera)
        if cam is None:
            return []
        return [[list(c) for c in poly] for poly in cam.pipeline.cfg.privacy_masks]

    def latest_lores(self, camera: str) -> Frame | None:
        cam = self.cameras.get(camera)
        return cam.pipeline.latest_lores if cam is not None else None

    def add_lores_sink(self, fn: Callable[[Frame], None]) -> None:
        backlog = [0]

        def on_loop(frame: Frame) -> None:
            backlog[0] -= 1
            fn(frame)

        def from_thread(frame: Frame) -> None:
            loop = self._loop  # set by start(); sinks may be added before
            if loop is None or backlog[0] >= LORES_BACKLOG:
                self.lores_dropped += 1
                return
            backlog[0] += 1
            loop.call_soon_threadsafe(on_loop, frame)

        for cam in self.cameras.values():
            cam.pipeline.lores_sinks.append(from_thread)

    def status(self) -> dict[str, Any]:
        cams = {}
        for cid, cam in self.cameras.items():
            st = cam.runner.status
            ring = cam.pipeline.ring.figures
            cams[cid] = {
                "state": st.state,
                "error": st.error,
                "frames": st.frames,
                "fps": st.fps,
                "width": st.width,
                "height": st.height,
                "ring_bytes": ring.bytes,
                "ring_seconds": round(ring.seconds, 2),
                "path": st.path,
                "path_reason": st.path_reason,
                "encoder": st.encoder,
                "encoder_reason": st.encoder_reason,
                "source_fps": st.source_fps,
                "fps_note": st.fps_note,
                "audio": st.audio,
                "substream": st.substream,
            }
        return {
            "cameras": cams,
            "lores_dropped": self.lores_dropped,
            "media_failed": self.media_failed,
            "recorder": {
                "mode": self.recorder.settings.mode,
                "kept": self.recorder.kept,
                "failing": self.recorder.failing,
            },
        }

    # -- from the capture threads ------------------------------------------------------

    def _hop_still(self, camera: str) -> Callable[[StillTaken], None]:
        loop = self._loop
        assert loop is not None

        def hop(still: StillTaken) -> None:
            loop.call_soon_threadsafe(self._still, camera, still)

        return hop

    def _hop_clip(self, camera: str) -> Callable[[ClipJob], None]:
        loop = self._loop
        assert loop is not None

        def hop(job: ClipJob) -> None:
            loop.call_soon_threadsafe(self._clip, camera, job)

        return hop

    def _trouble_from_thread(self, lost: bool, text: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, self.trouble(lost, text))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _still(self, _camera: str, still: StillTaken) -> None:
        event = self.events.get(still.event_id)
        if event is None:
            return
        if self.stills_pending >= MAX_PENDING_STILLS:  # a burst of alarms: memory stays bounded
            why = (
                f"skipped: {self.stills_pending} stills of other alarms of the same moments "
                "were still being made"
            )
            self._spawn(self._lose(event, still.media_id, "still", why))
            return
        self.stills_pending += 1
        self._spawn(self._put_still(event, still))

    async def _put_still(self, event: Event, still: StillTaken) -> None:
        try:
            await self._make_still(event, still)
        finally:
            self.stills_pending -= 1

    async def _make_still(self, event: Event, still: StillTaken) -> None:
        try:
            data = await asyncio.to_thread(lambda: jpeg(still.picture()))
        except Exception as exc:
            log.exception("still %s of event %s not made", still.media_id, event.id)
            await self._lose(event, still.media_id, "still", f"not made: {exc}")
            return
        if await self._queue(event, still.media_id, "still", "image/jpeg", data):
            self.first_still_ms.setdefault(event.id, ms(self.clock.time()))

    def _clip(self, camera: str, job: ClipJob) -> None:
        event = self.events.get(job.event_id)
        cam = self.cameras.get(camera)
        if event is None or cam is None:
            return
        self._spawn(self._put_clip(event, job, *cam.pipeline.size))

    async def _put_clip(self, event: Event, job: ClipJob, width: int, height: int) -> None:
        try:
            data = await asyncio.to_thread(mp4_bytes, job.packets, width, height)
        except Exception as exc:
            log.exception("clip %s of event %s not made", job.clip_id, event.id)
            await self._lose(event, job.clip_id, "clip", f"not made: {exc}")
            return
        if await self._queue(event, job.clip_id, "clip", "video/mp4", data):
            self.clip_queued_ms[event.id] = ms(self.clock.time())
            log.info("clip %s of event %s queued (%d bytes)", job.clip_id, event.id, len(data))

    async def _queue(self, event: Event, media_id: str, kind: str, ctype: str, data: bytes) -> bool:
        """Queue an alarm's media; on a full disk, recording yields and the oldest footage
        makes room, again and again, for up to ``MEDIA_WAIT_S``; then a lost notice."""
        waited_s, delay_s = 0.0, 0.5
        try:
            while True:
                try:
                    await self.put_media(event, media_id, kind, ctype, data)
                    return True
                except DiskFull as exc:
                    if media_id not in self.media_waiting:
                        log.error(
                            "%s %s of event %s waits for disk space: %s",
                            kind,
                            media_id,
                            event.id,
                            exc,
                        )
                        self.media_waiting.add(media_id)
                        self.recorder.yield_to(media_id, True)
                    if waited_s >= MEDIA_WAIT_S:
                        await self._lose(event, media_id, kind, f"disk full for {waited_s:.0f} s")
                        return False
                    now = ms(self.clock.time())
                    await asyncio.to_thread(
                        self.recorder.free_bytes_for, now, len(data) + (1 << 20)
                    )
                    await asyncio.sleep(delay_s)
                    waited_s += delay_s
                    delay_s = min(MEDIA_RETRY_MAX_S, delay_s * 2)
                except Exception as exc:
                    log.exception("%s %s of event %s not queued", kind, media_id, event.id)
                    await self._lose(event, media_id, kind, f"not stored: {exc}")
                    return False
        finally:
            if media_id in self.media_waiting:
                self.media_waiting.discard(media_id)
                self.recorder.yield_to(media_id, False)

    async def _lose(self, event: Event, media_id: str, kind: str, why: str) -> None:
        """The station is told that this media will never come (a lost notice)."""
        self.media_failed += 1
        if self.put_lost is None:
            return
        try:
            await self.put_lost(event, media_id, kind, why)
            self.media_lost += 1
        except Exception:
            log.exception("lost notice of %s %s not queued: made at next start", kind, media_id)

    # -- after a restart ---------------------------------------------------------------

    async def cut(self, due: MediaDue) -> tuple[str, bytes]:
        """A media an event announced, cut from the recordings on disk after a restart:
        (content type, bytes). VideoError when no recording covers it."""
        now = ms(self.clock.time())
        who, why = "box", f"{due.kind} {due.id} of event {due.event_id}, after a restart"
        if due.kind == "clip":
            data, _first, _last = await asyncio.to_thread(
                self.recorder.export, due.camera, due.from_ms, due.to_ms, who, why, now
            )
            return "video/mp4", data
        yuv = await asyncio.to_thread(self.recorder.frame_at, due.camera, due.from_ms)
        return "image/jpeg", await asyncio.to_thread(jpeg, yuv)

    def free_disk(self, need_bytes: int, near: Path) -> int:
        """Delete the oldest unheld footage for ``need_bytes`` when the recordings share
        ``near``'s file system (otherwise deleting them frees nothing there)."""
        root = self.recorder.settings.root
        try:
            if not root.is_dir() or root.stat().st_dev != near.stat().st_dev:
                return 0
        except OSError:
            return 0
        return self.recorder.free_bytes_for(ms(self.clock.time()), need_bytes)


def _newest_jpeg(packets: list[EncodedPacket]) -> bytes:
    """The newest picture of a passed-through camera, decoded from its last keyframe."""
    last = packets[-1].pts_ms
    return jpeg(pictures(packets, [last])[last][1])


def _window(packets: list[EncodedPacket], from_ms: int, to_ms: int) -> list[EncodedPacket]:
    """Packets from the keyframe at or before wall ``from_ms`` up to ``to_ms``."""
    start = None
    for i, p in enumerate(packets):
        if p.wall_ms > from_ms and start is not None:
            break
        if p.keyframe:
            start = i
    if start is None:
        return []
    return [p for p in packets[start:] if p.wall_ms <= to_ms]
