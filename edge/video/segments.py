"""Recording segments: one camera's packets muxed into MP4 files (capture thread).

Fragmented MP4, so a file cut short (power cut, full disk) plays up to its last
complete fragment. A camera with ``audio = true`` gets an AAC track too: its
sound lives and dies with its pictures (same files, same retention). Every
byte goes through :func:`open_segment_file`, the recorder's one file-writing
seam.
"""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import av

from edge.video.codec import EncodedPacket, VideoError, add_streams, to_packet

if TYPE_CHECKING:
    from edge.video.recorder import Recorder

RETRY_MIN_MS = 1000  # after a failed write, the next try (camera time), doubling
RETRY_MAX_MS = 60_000
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


@dataclass(frozen=True)
class Segment:
    camera: str
    path: Path
    start_ms: int
    end_ms: int
    size: int


class SegmentWriter:
    """Muxes one camera's packets into segment files (capture thread).

    A failed write (disk full, folder not writable) never reaches the pipeline:
    the segment is salvaged up to its last complete fragment, the recorder
    raises its trouble once, and writing is tried again after a backoff (camera
    time, 1 s doubling to 60 s) at the next keyframe."""

    def __init__(
        self, recorder: Recorder, camera: str, width: int, height: int, audio: bool = False
    ) -> None:
        self.recorder = recorder
        self.camera = camera
        self.width, self.height = width, height
        self.audio = audio
        self._sound: Any = None
        self._last_audio = -1
        self.folder = recorder.settings.root / camera
        self._out: Any = None
        self._file: BinaryIO | None = None
        self._stream: Any = None
        self._part: Path | None = None
        self._first: EncodedPacket | None = None
        self._last: EncodedPacket | None = None
        self._retry_ms: int | None = None  # camera time of the next try after a failure
        self._backoff_ms = RETRY_MIN_MS

    def resize(self, width: int, height: int) -> None:
        """A copied stream's size (before its first packet)."""
        self.width, self.height = width, height

    def __call__(self, packet: EncodedPacket) -> None:
        if self._retry_ms is not None and packet.pts_ms < self._retry_ms:
            return  # backing off after a failed write
        try:
            self.write(packet)
        except (VideoError, OSError, av.FFmpegError) as exc:
            self._fail(packet, exc)

    def write(self, packet: EncodedPacket) -> None:
        if packet.audio:
            self._hear(packet)
            return
        if self.recorder.yielding:  # an alarm's media wait for room: no footage meanwhile
            raise OSError(errno.ENOSPC, "an alarm's still or clip is waiting for disk space")
        first = self._first
        if first is None:
            if packet.keyframe:
                self._open(packet)
            return
        length_ms = self.recorder.settings.segment_s * 1000
        if packet.keyframe and packet.pts_ms - first.pts_ms >= length_ms:
            self._finish()  # a failure is the caller's (salvage, trouble, backoff)
            self._open(packet)
            return
        self._mux(packet)
        if packet.keyframe:  # the fragment before it is on disk
            self._written(packet.wall_ms)

    def _open(self, packet: EncodedPacket) -> None:
        self.recorder.room_for_segment(packet.wall_ms)  # keep_free_bytes, alarm media first
        self.folder.mkdir(parents=True, exist_ok=True)
        self._part = self.folder / f"{packet.wall_ms}.mp4.part"
        self._file = self.recorder.opener(self._part)
        # fragmented: a power cut leaves a playable file up to the last keyframe
        self._out = av.open(self._file, "w", format="mp4", options=FRAGMENTED)
        self._stream, self._sound = add_streams(self._out, self.width, self.height, self.audio)
        self._last_audio = -1
        self._first = packet
        self._mux(packet)

    def _mux(self, packet: EncodedPacket) -> None:
        assert self._first is not None
        self._out.mux(to_packet(packet, packet.pts_ms - self._first.pts_ms, self._stream))
        self._last = packet

    def _hear(self, packet: EncodedPacket) -> None:
        """Sound of the open segment's time (before its first picture: left out)."""
        if self._sound is None or self._first is None:
            return
        pts = packet.pts_ms - self._first.pts_ms
        if pts > self._last_audio:
            self._out.mux(to_packet(packet, pts, self._sound))
            self._last_audio = pts

    def close(self) -> None:
        """Finish the open segment and hand it to the recorder. Never raises: a segment
        that cannot be finished (a full disk at stop) is salvaged as a write failure."""
        last_packet = self._last or self._first
        try:
            self._finish()
        except (VideoError, OSError, av.FFmpegError) as exc:
            if last_packet is not None:
                self._fail(last_packet, exc)

    def _finish(self) -> None:
        if self._out is None or self._first is None or self._part is None:
            return
        self._out.close()
        if self._file is not None:
            self._file.close()
        last = self._last or self._first
        period = round(1000 / self.recorder.fps_of(self.camera))
        end_ms = self._first.wall_ms + (last.pts_ms - self._first.pts_ms) + period
        final = self.folder / f"{self._first.wall_ms}-{end_ms}.mp4"
        self._part.replace(final)
        self._reset()
        self._written(last.wall_ms)
        self.recorder.closed(
            Segment(self.camera, final, int(final.name.split("-")[0]), end_ms, final.stat().st_size)
        )

    def _written(self, at_ms: int) -> None:
        self._retry_ms, self._backoff_ms = None, RETRY_MIN_MS
        self.recorder.written(self.camera, at_ms)

    def _fail(self, packet: EncodedPacket, exc: Exception) -> None:
        part = self._part
        self._abort()
        segment = self.recorder.salvage(part) if part is not None else None
        if segment is not None:
            self.recorder.closed(segment)
        self._retry_ms = packet.pts_ms + self._backoff_ms
        self._backoff_ms = min(RETRY_MAX_MS, self._backoff_ms * 2)
        self.recorder.failed(self.camera, exc, packet.wall_ms)

    def _abort(self) -> None:
        """Drop the open segment's muxer and file (the part stays for salvage)."""
        if self._out is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._out.close()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._reset()

    def _reset(self) -> None:
        self._out = self._file = self._first = self._last = self._part = self._sound = None


def open_segment_file(path: Path) -> BinaryIO:
    """The recorder's one file-writing seam: unbuffered, so a full disk shows at once."""
    return path.open("wb", buffering=0)  # closed by the writer
