"""The local recorder: MP4 segments on disk, retention, holds, exports, access log.

Segments are cut on keyframes every ``segment_s`` from the encoded stream
(no second encoder) and named ``<first wall ms>-<end wall ms>.mp4`` under
``recordings/<camera>/``, so the folder is its own index. In ``alarms`` and
``motion`` modes a closed segment waits until no alarm (or motion) could
still claim it as pre-roll, then is kept or dropped.

Retention deletes segments older than ``retention_days`` (at most 30, the
legal cap) and, over ``max_bytes``, the oldest first; footage under an
incident hold (the explicit exception to the cap, see ``records.py``) is
never deleted, and the outbox's media live in the outbox's own folder, which
the recorder never touches. Every export, deletion, hold and release is
appended (and fsynced) to ``access.log``: when, who, what, which footage, why.

A segment that cannot be written (full disk, folder not writable) is one
trouble for the whole recorder, sent through ``trouble`` from the capture
thread, and its restore once every camera has written for ``RESTORE_QUIET_MS``
without a failure (one trouble/restore pair per episode, not one per retry);
on a full disk the oldest unheld segments make room. A new segment is begun
only with ``keep_free_bytes`` free on the disk (the oldest footage goes
first), and none while an alarm's still or clip waits for room (``yield_to``):
alarm media outrank recording. Capture, the pre-alarm ring and alarm clips
never wait for the recorder's disk.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av

from edge.video.codec import EncodedPacket, VideoError, Yuv, frame_at, read_mp4, write_mp4
from edge.video.records import AccessLog, Hold, HoldBook, footage
from edge.video.segments import Segment, SegmentWriter, open_segment_file

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
RESTORE_QUIET_MS = 60_000  # writing again this long (camera time) before the restore


Trouble = Callable[[bool, str], None]
__all__ = [
    "AccessLog",
    "Hold",
    "Recorder",
    "RecorderSettings",
    "Segment",
    "SegmentWriter",
    "open_segment_file",
]


@dataclass(frozen=True)
class RecorderSettings:
    root: Path
    mode: str  # alarms | motion | continuous
    segment_s: int
    retention_days: int
    max_bytes: int | None
    pre_roll_s: float
    post_roll_s: float
    keep_free_bytes: int = 0


class Recorder:
    def __init__(
        self,
        settings: RecorderSettings,
        fps: dict[str, float],
        trouble: Trouble = lambda failing, text: None,
        opener: Callable[[Path], BinaryIO] = open_segment_file,
    ) -> None:
        self.settings = settings
        self.access = AccessLog(settings.root / "access.log")
        self.book = HoldBook(settings.root / "holds.jsonl", self.access)
        self.trouble = trouble  # (failing, text), from the capture threads
        self.opener = opener
        self._fps = fps
        self._lock = threading.Lock()
        self._delete_lock = threading.Lock()  # retention and make_room, one at a time
        self._failing: dict[str, str] = {}  # camera -> why its segments are not written
        self._episode: str | None = None  # the trouble sent, until its restore
        self._clear_since_ms: int | None = None  # every camera writing since (camera ms)
        self._yielding: set[str] = set()  # alarm media waiting for room on the disk
        self._pending: list[Segment] = []
        self._keep: list[tuple[str | None, int, int]] = []  # (camera or all, from, to)
        self.kept = 0
        self.dropped = 0

    def fps_of(self, camera: str) -> float:
        return self._fps.get(camera, 15.0)

    def writer(self, camera: str, width: int, height: int, audio: bool = False) -> SegmentWriter:
        return SegmentWriter(self, camera, width, height, audio)

    # -- modes -----------------------------------------------------------------

    def mark(self, camera: str | None, at_ms: int, why: str) -> None:
        """An alarm (or motion) at wall ``at_ms``: keep footage around it in filtered modes."""
        if self.settings.mode == "continuous" or (
            why == "motion" and self.settings.mode != "motion"
        ):
            return
        s = self.settings
        window = (
            camera,
            at_ms - round(s.pre_roll_s * 1000) - 1000,
            at_ms + round(s.post_roll_s * 1000) + 1000,
        )
        with self._lock:
            self._keep.append(window)

    def closed(self, segment: Segment) -> None:
        if self.settings.mode == "continuous":
            self.kept += 1
            return
        with self._lock:
            self._pending.append(segment)
            horizon = segment.end_ms - round(self.settings.pre_roll_s * 1000) - 2000
            decide = [p for p in self._pending if p.end_ms < horizon]
            self._pending = [p for p in self._pending if p.end_ms >= horizon]
            keep = list(self._keep)
        for seg in decide:
            if _overlaps(seg, keep):
                self.kept += 1
            else:
                self.dropped += 1
                seg.path.unlink(missing_ok=True)  # never kept: not footage on record

    def settle(self) -> None:
        """At stop: decide every pending segment now (a later alarm cannot claim them)."""
        with self._lock:
            decide, self._pending = self._pending, []
            keep = list(self._keep)
        for seg in decide:
            if _overlaps(seg, keep):
                self.kept += 1
            else:
                self.dropped += 1
                seg.path.unlink(missing_ok=True)

    # -- write failures -----------------------------------------------------------

    def failed(self, camera: str, exc: Exception, at_ms: int) -> None:
        """A segment of ``camera`` could not be written: one trouble for the recorder
        (not one per retry), and on a full disk the oldest footage makes room."""
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        what = "disk full" if full else "cannot write"
        text = (
            f"recorder: {what} in {self.settings.root} (camera {camera}: {exc}); "
            "pre-alarm video and alarm clips go on, retrying"
        )
        with self._lock:
            self._failing[camera] = text
            self._clear_since_ms = None
            first = self._episode is None
            if first:
                self._episode = text
        log.error("%s", text)
        if first:
            self.trouble(True, text)
        if full and not self._yielding:
            self.make_room(at_ms)

    def written(self, camera: str, at_ms: int) -> None:
        """A fragment of ``camera`` is on disk. The restore comes once every camera has
        written for ``RESTORE_QUIET_MS`` with no failure: one pair per episode."""
        with self._lock:
            self._failing.pop(camera, None)
            if self._episode is None or self._failing:
                return
            if self._clear_since_ms is None:
                self._clear_since_ms = at_ms
                return
            if at_ms - self._clear_since_ms < RESTORE_QUIET_MS:
                return
            self._episode = self._clear_since_ms = None
        text = f"recorder: segments written again in {self.settings.root}"
        log.warning("%s", text)
        self.trouble(False, text)

    @property
    def failing(self) -> str | None:
        """Why segments are not being written (or the episode not yet over), or None."""
        with self._lock:
            return next(iter(self._failing.values()), self._episode)

    # -- room on the disk ---------------------------------------------------------

    def yield_to(self, media_id: str, waiting: bool) -> None:
        """An alarm's still or clip is waiting for room (or no longer): no new segment
        is begun meanwhile, so recording cannot take the room made for it."""
        with self._lock:
            if waiting:
                self._yielding.add(media_id)
            else:
                self._yielding.discard(media_id)

    @property
    def yielding(self) -> bool:
        with self._lock:
            return bool(self._yielding)

    def room_for_segment(self, now_ms: int) -> None:
        """Before a new segment: OSError(ENOSPC) when it may not begin (alarm media wait
        for room, or ``keep_free_bytes`` cannot be kept free even by deleting footage)."""
        if self.yielding:
            raise OSError(errno.ENOSPC, "an alarm's still or clip is waiting for disk space")
        keep = self.settings.keep_free_bytes
        if keep <= 0:
            return
        missing = keep - _free_bytes(self.settings.root)
        if missing > 0:
            self.make_room(now_ms, missing)
            missing = keep - _free_bytes(self.settings.root)
        if missing > 0:
            raise OSError(errno.ENOSPC, f"less than keep_free_bytes ({keep}) free")

    def make_room(self, now_ms: int, need_bytes: int | None = None) -> list[Segment]:
        """The disk is full: delete the oldest footage, never held, at least
        ``need_bytes`` (default: as much as the largest segment on disk, room for the
        next one). The outbox's media live in the outbox's own folder and are never
        touched here."""
        with self._delete_lock:
            holds = [h.window() for h in self.book.active()]
            segments = self.segments()
            need = (
                need_bytes if need_bytes is not None else max((g.size for g in segments), default=0)
            )
            doomed: list[Segment] = []
            for g in segments:
                if sum(d.size for d in doomed) >= need:
                    break
                if not _overlaps(g, holds):
                    doomed.append(g)
            for g in doomed:
                self._delete(g, now_ms, "disk full: room for new recording or alarm media")
        if not doomed and need_bytes is None:  # the recorder's own need, not a caller's
            log.error("disk full and no footage may be deleted (none, or all held)")
        return doomed

    def free_bytes_for(self, now_ms: int, need_bytes: int) -> int:
        """Delete the oldest unheld footage to free ``need_bytes`` for someone else (the
        outbox); returns the bytes freed."""
        return sum(g.size for g in self.make_room(now_ms, need_bytes))

    def _delete(self, g: Segment, now_ms: int, why: str) -> None:
        g.path.unlink(missing_ok=True)
        self.access.write(
            now_ms, "retention", "delete", footage(g.camera, g.start_ms, g.end_ms), why
        )

    # -- footage on disk ---------------------------------------------------------

    def salvage(self, part: Path) -> Segment | None:
        """A segment cut short (write failure, crash, power cut) is fragmented MP4,
        playable up to its last complete fragment: renamed into place with the end
        it really has. An empty one is removed (None)."""
        start = int(part.name.split(".")[0])
        last = None
        with contextlib.suppress(VideoError):
            for p in read_mp4(part, start):
                if not p.audio:
                    last = p.wall_ms if last is None else max(last, p.wall_ms)
        if last is None:
            part.unlink(missing_ok=True)
            return None
        end = last + round(1000 / self.fps_of(part.parent.name))
        final = part.with_name(f"{start}-{end}.mp4")
        part.replace(final)
        return Segment(part.parent.name, final, start, end, final.stat().st_size)

    def recover_parts(self) -> tuple[int, int]:
        """At start: segments cut short by a crash or power loss are fragmented MP4,
        playable up to their last fragment: renamed into place with the end they
        really have; an empty one is removed. Returns (recovered, removed)."""
        root = self.settings.root
        recovered = removed = 0
        for part in sorted(root.glob("*/*.mp4.part")) if root.is_dir() else []:
            if self.salvage(part) is None:
                removed += 1
            else:
                recovered += 1
        return recovered, removed

    def segments(self, camera: str | None = None) -> list[Segment]:
        root = self.settings.root
        if not root.is_dir():
            return []
        found = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if camera is not None and folder.name != camera:
                continue
            for path in folder.glob("*-*.mp4"):
                start, _, end = path.stem.partition("-")
                if start.isdigit() and end.isdigit():
                    found.append(
                        Segment(folder.name, path, int(start), int(end), path.stat().st_size)
                    )
        return sorted(found, key=lambda s: s.start_ms)

    def hold(
        self,
        camera: str,
        from_ms: int,
        to_ms: int,
        who: str,
        why: str,
        now_ms: int,
        until_ms: int | None = None,
        hold_id: str | None = None,
    ) -> int:
        """An incident hold: this footage is never deleted by retention until the hold
        is released or ``until_ms`` passes (the explicit exception to the legal cap).
        A hold id already active is a replay: nothing new is written. Returns the
        number of segments (closed or being written) it covers; VideoError (and no
        hold) when none is on disk."""
        hold = Hold(hold_id or f"hold-{now_ms}", camera, from_ms, to_ms, until_ms, who, why)
        covered = [g for g in self.segments(camera) if _overlaps(g, [hold.window()])]
        folder = self.settings.root / camera
        parts = [
            p
            for p in (folder.glob("*.mp4.part") if folder.is_dir() else [])
            if p.name.split(".")[0].isdigit() and int(p.name.split(".")[0]) <= to_ms
        ]
        if not covered and not parts:
            raise VideoError(f"no recording of camera {camera} in that range on disk: no hold")
        self.book.place(hold, now_ms)
        with self._lock:
            self._keep.append(hold.window())  # segments not yet decided in filtered modes
        return len(covered) + len(parts)

    def release(self, hold_id: str, who: str, why: str, now_ms: int) -> Hold:
        """End a hold (logged); VideoError when no active hold has that id."""
        return self.book.release(hold_id, who, why, now_ms)

    def holds(self) -> list[Hold]:
        return self.book.active()

    def sweep(self, now_ms: int) -> list[Segment]:
        """Retention: holds past their end are released, then by age, then by quota,
        oldest first; held footage stays."""
        s = self.settings
        with self._delete_lock:
            for hold in self.book.expire(now_ms):
                log.info(
                    "hold %s ended at %d: its footage is under retention again", hold.id, now_ms
                )
            holds = [h.window() for h in self.book.active()]
            every = self.segments()
            segments = [g for g in every if not _overlaps(g, holds)]
            cutoff = now_ms - s.retention_days * DAY_MS
            doomed = [
                (g, f"older than {s.retention_days} days") for g in segments if g.end_ms < cutoff
            ]
            if s.max_bytes is not None:
                total = sum(g.size for g in every) - sum(g.size for g, _ in doomed)
                for g in segments:
                    if total <= s.max_bytes:
                        break
                    if g.end_ms >= cutoff:
                        doomed.append((g, f"disk quota {s.max_bytes} bytes reached"))
                        total -= g.size
            for g, why in doomed:
                self._delete(g, now_ms, why)
        return [g for g, _ in doomed]

    def export(
        self, camera: str, from_ms: int, to_ms: int, who: str, why: str, now_ms: int
    ) -> tuple[bytes, int, int]:
        """An MP4 of ``[from_ms, to_ms]`` from the segments still on disk, without
        re-encoding: from the keyframe at or before ``from_ms``. Returns the bytes and
        the wall times it really covers. VideoError when nothing of it is on disk."""
        chosen = [g for g in self.segments(camera) if g.end_ms > from_ms and g.start_ms <= to_ms]
        packets: list[EncodedPacket] = []
        offset = 0
        for g in chosen:
            for p in read_mp4(g.path, g.start_ms):
                if p.wall_ms > to_ms:
                    if p.audio:
                        continue
                    break
                if p.keyframe and p.wall_ms <= from_ms:
                    packets = []  # a later keyframe still at or before the start
                if packets or p.keyframe:
                    # one time line across files: wall time is the common clock
                    packets.append(
                        EncodedPacket(p.data, p.wall_ms + offset, p.wall_ms, p.keyframe, p.audio)
                    )
        if not packets:
            raise VideoError(f"no recording of camera {camera} in that range on disk")
        width, height = _size(chosen[0].path)
        data = _mux(packets, width, height)
        first, last = packets[0].wall_ms, packets[-1].wall_ms
        self.access.write(now_ms, who, "export", footage(camera, first, last), why)
        return data, first, last

    def frame_at(self, camera: str, at_ms: int) -> Yuv:
        """The recorded picture of ``camera`` nearest to wall ``at_ms`` (within two frame
        periods); VideoError when no segment on disk holds one."""
        tolerance = max(100, round(2000 / self.fps_of(camera)))
        for g in self.segments(camera):
            if g.start_ms - tolerance <= at_ms <= g.end_ms + tolerance:
                with contextlib.suppress(VideoError):
                    return frame_at(g.path, g.start_ms, at_ms, tolerance)
        raise VideoError(f"no recording of camera {camera} at {at_ms} on disk")


def _mux(packets: list[EncodedPacket], width: int, height: int) -> bytes:
    import io

    buf = io.BytesIO()
    write_mp4(packets, buf, width, height)
    return buf.getvalue()


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as src:
        ctx = src.streams.video[0].codec_context
        return int(ctx.width), int(ctx.height)


def _free_bytes(folder: Path) -> int:
    """Free bytes for an unprivileged writer on ``folder``'s file system (its nearest
    existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def _overlaps(seg: Segment, windows: list[tuple[str | None, int, int]]) -> bool:
    return any(
        (cam is None or cam == seg.camera) and seg.start_ms < to and seg.end_ms > frm
        for cam, frm, to in windows
    )
