"""The local recorder: MP4 segments on disk, retention, holds, exports, access log.

Segments are cut on keyframes every ``segment_s`` from the encoded stream
(no second encoder) and named ``<first wall ms>-<end wall ms>.mp4`` under
``recordings/<camera>/``, so the folder is its own index. In ``alarms`` and
``motion`` modes a closed segment waits until no alarm (or motion) could
still claim it as pre-roll, then is kept or dropped.

Retention deletes segments older than ``retention_days`` (at most 30, the
legal cap) and, over ``max_bytes``, the oldest first; footage under an
incident hold is never deleted, and the outbox's media live in the outbox's
own folder, which the recorder never touches. Every export and deletion is
appended (and fsynced) to ``access.log``: when, who, what, which footage, why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from edge.video.codec import MS, EncodedPacket, VideoError, read_mp4, write_mp4

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


@dataclass(frozen=True)
class Segment:
    camera: str
    path: Path
    start_ms: int
    end_ms: int
    size: int


@dataclass(frozen=True)
class RecorderSettings:
    root: Path
    mode: str  # alarms | motion | continuous
    segment_s: int
    retention_days: int
    max_bytes: int | None
    pre_roll_s: float
    post_roll_s: float


class AccessLog:
    """Append-only JSON lines, each fsynced: exports and deletions of footage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, at_ms: int, who: str, action: str, footage: str, why: str) -> None:
        line = json.dumps(
            {"at_ms": at_ms, "who": who, "action": action, "footage": footage, "why": why}
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


class SegmentWriter:
    """Muxes one camera's packets into segment files (capture thread)."""

    def __init__(self, recorder: Recorder, camera: str, width: int, height: int) -> None:
        self.recorder = recorder
        self.camera = camera
        self.width, self.height = width, height
        self.folder = recorder.settings.root / camera
        self._out: Any = None
        self._stream: Any = None
        self._part: Path | None = None
        self._first: EncodedPacket | None = None
        self._last: EncodedPacket | None = None

    def resize(self, width: int, height: int) -> None:
        """A copied stream's size (before its first packet)."""
        self.width, self.height = width, height

    def __call__(self, packet: EncodedPacket) -> None:
        try:
            self.write(packet)
        except (VideoError, OSError, av.FFmpegError) as exc:
            log.error("recording %s: %s", self.camera, exc)
            self._abort()

    def write(self, packet: EncodedPacket) -> None:
        first = self._first
        if first is None:
            if packet.keyframe:
                self._open(packet)
            return
        length_ms = self.recorder.settings.segment_s * 1000
        if packet.keyframe and packet.pts_ms - first.pts_ms >= length_ms:
            self.close()
            self._open(packet)
            return
        self._mux(packet)

    def _open(self, packet: EncodedPacket) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._part = self.folder / f"{packet.wall_ms}.mp4.part"
        # fragmented: a power cut leaves a playable file up to the last keyframe
        self._out = av.open(str(self._part), "w", format="mp4", options=FRAGMENTED)
        stream: Any = self._out.add_stream("h264")
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = MS
        self._stream = stream
        self._first = packet
        self._mux(packet)

    def _mux(self, packet: EncodedPacket) -> None:
        assert self._first is not None
        pkt = av.Packet(packet.data)
        pkt.pts = pkt.dts = packet.pts_ms - self._first.pts_ms
        pkt.time_base = MS
        pkt.stream = self._stream
        if packet.keyframe:
            pkt.is_keyframe = True
        self._out.mux(pkt)
        self._last = packet

    def close(self) -> None:
        """Finish the open segment and hand it to the recorder."""
        if self._out is None or self._first is None or self._part is None:
            return
        self._out.close()
        last = self._last or self._first
        period = round(1000 / self.recorder.fps_of(self.camera))
        end_ms = self._first.wall_ms + (last.pts_ms - self._first.pts_ms) + period
        final = self.folder / f"{self._first.wall_ms}-{end_ms}.mp4"
        self._part.replace(final)
        self._out = self._first = self._last = self._part = None
        self.recorder.closed(
            Segment(self.camera, final, int(final.name.split("-")[0]), end_ms, final.stat().st_size)
        )

    def _abort(self) -> None:
        if self._out is not None:
            with contextlib.suppress(av.FFmpegError):
                self._out.close()
        if self._part is not None:
            self._part.unlink(missing_ok=True)
        self._out = self._first = self._last = self._part = None


class Recorder:
    def __init__(self, settings: RecorderSettings, fps: dict[str, float]) -> None:
        self.settings = settings
        self.access = AccessLog(settings.root / "access.log")
        self._fps = fps
        self._lock = threading.Lock()
        self._pending: list[Segment] = []
        self._keep: list[tuple[str | None, int, int]] = []  # (camera or all, from, to)
        self.kept = 0
        self.dropped = 0

    def fps_of(self, camera: str) -> float:
        return self._fps.get(camera, 15.0)

    def writer(self, camera: str, width: int, height: int) -> SegmentWriter:
        return SegmentWriter(self, camera, width, height)

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

    # -- footage on disk ---------------------------------------------------------

    def recover_parts(self) -> tuple[int, int]:
        """At start: segments cut short by a crash or power loss are fragmented MP4,
        playable up to their last fragment: renamed into place with the end they
        really have; an empty one is removed. Returns (recovered, removed)."""
        root = self.settings.root
        recovered = removed = 0
        for part in sorted(root.glob("*/*.mp4.part")) if root.is_dir() else []:
            start = int(part.name.split(".")[0])
            try:
                last = max((p.wall_ms for p in read_mp4(part, start)), default=None)
            except VideoError:
                last = None
            if last is None:
                part.unlink(missing_ok=True)
                removed += 1
                continue
            period = round(1000 / self.fps_of(part.parent.name))
            part.replace(part.with_name(f"{start}-{last + period}.mp4"))
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

    def hold(self, camera: str, from_ms: int, to_ms: int, who: str, why: str, now_ms: int) -> None:
        """An incident hold: this footage is never deleted by retention."""
        line = json.dumps(
            {"camera": camera, "from_ms": from_ms, "to_ms": to_ms, "who": who, "why": why}
        )
        path = self.settings.root / "holds.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.access.write(now_ms, who, "hold", _footage(camera, from_ms, to_ms), why)

    def holds(self) -> list[tuple[str | None, int, int]]:
        path = self.settings.root / "holds.jsonl"
        if not path.exists():
            return []
        out: list[tuple[str | None, int, int]] = []
        for line in path.read_text().splitlines():
            if line:
                h = json.loads(line)
                out.append((h["camera"], int(h["from_ms"]), int(h["to_ms"])))
        return out

    def sweep(self, now_ms: int) -> list[Segment]:
        """Retention: by age, then by quota, oldest first; held footage stays."""
        s = self.settings
        holds = self.holds()
        segments = [g for g in self.segments() if not _overlaps(g, holds)]
        cutoff = now_ms - s.retention_days * DAY_MS
        doomed = [(g, f"older than {s.retention_days} days") for g in segments if g.end_ms < cutoff]
        if s.max_bytes is not None:
            total = sum(g.size for g in self.segments())
            total -= sum(g.size for g, _ in doomed)
            for g in segments:
                if total <= s.max_bytes:
                    break
                if g.end_ms >= cutoff:
                    doomed.append((g, f"disk quota {s.max_bytes} bytes reached"))
                    total -= g.size
        for g, why in doomed:
            g.path.unlink(missing_ok=True)
            self.access.write(
                now_ms, "retention", "delete", _footage(g.camera, g.start_ms, g.end_ms), why
            )
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
                    break
                if p.keyframe and p.wall_ms <= from_ms:
                    packets = []  # a later keyframe still at or before the start
                if packets or p.keyframe:
                    # one time line across files: wall time is the common clock
                    packets.append(EncodedPacket(p.data, p.wall_ms + offset, p.wall_ms, p.keyframe))
        if not packets:
            raise VideoError(f"no recording of camera {camera} in that range on disk")
        width, height = _size(chosen[0].path)
        data = _mux(packets, width, height)
        first, last = packets[0].wall_ms, packets[-1].wall_ms
        self.access.write(now_ms, who, "export", _footage(camera, first, last), why)
        return data, first, last


def _mux(packets: list[EncodedPacket], width: int, height: int) -> bytes:
    import io

    buf = io.BytesIO()
    write_mp4(packets, buf, width, height)
    return buf.getvalue()


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as src:
        ctx = src.streams.video[0].codec_context
        return int(ctx.width), int(ctx.height)


def _overlaps(seg: Segment, windows: list[tuple[str | None, int, int]]) -> bool:
    return any(
        (cam is None or cam == seg.camera) and seg.start_ms < to and seg.end_ms > frm
        for cam, frm, to in windows
    )


def _footage(camera: str, from_ms: int, to_ms: int) -> str:
    return f"camera {camera} {from_ms}..{to_ms}"
