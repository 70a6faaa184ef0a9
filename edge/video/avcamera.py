"""V4L2, RTSP/HTTP cameras and video files through PyAV (FFmpeg).

A camera that sends H.264 (no B-frames) and has no privacy masks is recorded
as it comes (``copies``): its packets go to the ring, clips and recordings
untouched, in Annex B like our encoder's, and only what motion and stills need
is decoded: every picture's luma, thinned to about ``fps`` frames a second for
motion (the pictures must all be decoded anyway: each depends on the one
before), and the full picture only when a still asks for it. With a
``substream`` the main stream is not decoded at all (a second
:class:`AvCamera` reads the sub-stream for motion). Any other camera is
decoded and handed over as raw frames to mask and encode.

Every time is the frame's own (its PTS through a :class:`StreamClock`): a file
with a variable rate, a gap, or a header that says otherwise keeps its real
times; a file loops on with times that keep counting. The camera's sound
(``audio = true``, a track of the same stream) is encoded to AAC on the way
(:meth:`take_audio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.clock import Clock
from edge.config import CameraConfig
from edge.video.audio import AacEncoder
from edge.video.codec import EncodedPacket, VideoError, has_sps
from edge.video.frames import Copied, RawFrame, StreamEnded, luma
from edge.video.timing import LoresGate, StreamClock

READ_TIMEOUT_S = 5.0  # a live camera silent this long is lost


def passthrough(cfg: CameraConfig, codec: str, b_frames: bool) -> tuple[bool, str]:
    """Whether a camera's packets are recorded as they come, and why (or why not)."""
    if cfg.privacy_masks:
        return False, "privacy masks are burnt in before encoding: re-encoded"
    if not cfg.passthrough:
        return False, "passthrough = false in the config: re-encoded"
    if codec != "h264":
        return False, f"the camera sends {codec or 'raw frames'}, not H.264: re-encoded"
    if b_frames:
        return False, "the camera's H.264 has B-frames: re-encoded"
    return True, "the camera's own H.264, recorded as it comes"


class AvCamera:
    """V4L2, RTSP/HTTP or a file through PyAV; ``target`` reads the sub-stream instead."""

    def __init__(self, cfg: CameraConfig, clock: Clock, target: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.sub = target is not None  # the sub-stream: decoded pictures at their own size
        self.target = target
        self.live = cfg.source != "file"  # live sources deliver at their own rate
        self.paced = self.live
        self.file_fps: float | None = None  # what the stream declares
        self.loops = True  # a file starts again at its end (the field tools stop there)
        self.copies = False
        self.path_reason = ""
        self.decodes = True  # copy path: decode the main stream for motion and stills
        self.size = (cfg.width, cfg.height)
        self.timing = StreamClock(live=self.live)
        self.gate = LoresGate(cfg.fps)
        self._container: Any = None
        self._stream: Any = None
        self._sound: Any = None
        self._aac: AacEncoder | None = None
        self._audio: list[EncodedPacket] = []
        self._annexb: Any = None
        self._headers = b""
        self._packets: Any = None
        self._pending: list[Any] = []
        self._offset_s = 0.0  # a looping file's times go on counting
        self._last_s: float | None = None
        self._first_s: float | None = None

    @property
    def behind_s(self) -> float:
        return self.timing.behind_s

    @property
    def has_audio(self) -> bool:
        return self._aac is not None

    def _open_args(self) -> tuple[str, dict[str, Any]]:
        cfg = self.cfg
        if self.target is not None:
            opts = {"rtsp_transport": "tcp"} if cfg.source == "rtsp" else {}
            return self.target, {"options": opts}
        if cfg.source == "v4l2":
            size = f"{cfg.width}x{cfg.height}"
            options = {"video_size": size, "framerate": str(cfg.fps)}
            return str(cfg.device), {"format": "v4l2", "options": options}
        if cfg.source == "rtsp":
            return str(cfg.url), {"options": {"rtsp_transport": "tcp"}}
        return str(cfg.path), {}

    def open(self) -> None:
        import av

        target, kwargs = self._open_args()
        if self.cfg.source == "file" and not Path(target).is_file():
            raise VideoError(f"camera {self.cfg.id}: no such file {target}")
        try:
            self._container = av.open(target, timeout=(READ_TIMEOUT_S, READ_TIMEOUT_S), **kwargs)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError) as exc:
            raise VideoError(f"camera {self.cfg.id}: cannot open {target}: {exc}") from exc
        rate = stream.average_rate or stream.guessed_rate
        self.file_fps = float(rate) if rate else None
        self.timing = StreamClock(live=self.live, period_s=1 / (self.file_fps or self.cfg.fps))
        self.gate = LoresGate(self.cfg.fps)
        self._stream = stream
        ctx = stream.codec_context
        self.size = (int(ctx.width), int(ctx.height))
        if self.sub:
            self.copies, self.path_reason = False, "sub-stream: decoded for motion"
        else:
            self.copies, self.path_reason = passthrough(self.cfg, ctx.name, bool(ctx.has_b_frames))
        if self.copies:
            from av.bitstream import BitStreamFilterContext

            self._annexb = BitStreamFilterContext("h264_mp4toannexb", stream)
            extradata = bytes(ctx.extradata or b"")  # an RTSP camera's SPS/PPS from its SDP
            self._headers = extradata if extradata.startswith((b"\0\0\0\1", b"\0\0\1")) else b""
        self._open_sound()
        self._demux()

    def _open_sound(self) -> None:
        """The camera's own sound, when it is wanted and the stream has some."""
        self._sound = self._aac = None
        cfg = self.cfg
        if self.sub or not cfg.audio or cfg.audio_device is not None:
            return
        if self._container.streams.audio:
            self._sound = self._container.streams.audio[0]
            self._aac = AacEncoder(cfg.audio_bitrate_kbps)

    def _demux(self) -> None:
        streams = [self._stream] if self._sound is None else [self._stream, self._sound]
        self._packets = self._container.demux(*streams)

    def _next_video(self) -> Any:
        """The next video packet with a size; sound met on the way is encoded."""
        import av

        if self._container is None:
            raise VideoError(f"camera {self.cfg.id}: not open")
        try:
            while True:
                packet = next(self._packets, None)
                if packet is None and not self.live and self.loops:
                    self._loop()
                    packet = next(self._packets, None)
                if packet is None:
                    raise StreamEnded(f"camera {self.cfg.id}: stream ended")
                if not packet.size:
                    continue
                if self._sound is not None and packet.stream_index == self._sound.index:
                    self._hear(packet)
                    continue
                return packet
        except av.FFmpegError as exc:
            raise VideoError(f"camera {self.cfg.id}: {exc}") from exc

    def _loop(self) -> None:
        """A file at its end starts again; its times go on from where it ended."""
        if self._last_s is not None and self._first_s is not None:
            self._offset_s += self._last_s - self._first_s + self.timing.period_s
        self._first_s = self._last_s = None
        self._container.seek(0)
        self._demux()

    def _stream_s(self, time: Any) -> float | None:
        """A frame's or packet's own time in seconds, looping offset added."""
        if time is None:
            return None
        raw = float(time)
        if self._first_s is None:
            self._first_s = raw
        self._last_s = raw
        return raw + self._offset_s

    def _times(self, time: Any) -> tuple[float, int]:
        now = self.clock.monotonic()
        at = self.timing.at(self._stream_s(time), now)
        return at, self.timing.wall_ms(at, now, self.clock.time())

    def _hear(self, packet: Any) -> None:
        assert self._aac is not None
        anchor = self.timing.anchor
        for frame in self._sound.codec_context.decode(packet):
            time = _seconds(frame.pts, self._sound.time_base)
            if anchor is None or time is None:
                continue  # before the first picture: no clip starts there
            at = anchor[0] + time + self._offset_s - anchor[1]
            now = self.clock.monotonic()
            wall = self.timing.wall_ms(at, now, self.clock.time())
            self._audio += self._aac.encode(frame, at, wall)

    def take_audio(self) -> list[EncodedPacket]:
        """AAC packets of the camera's sound read since the last call."""
        audio, self._audio = self._audio, []
        return audio

    def read_copied(self) -> Copied:
        """The next H.264 packet (Annex B, as our encoder gives) and what motion and stills
        get of it: the luma when due and a way to the full picture."""
        packet = self._next_video()
        at, wall = self._times(_seconds(packet.pts, self._stream.time_base))
        key = bool(packet.is_keyframe)  # before the filter takes the packet
        lores, picture = None, None
        if self.decodes:
            import av

            try:
                decoded = self._stream.codec_context.decode(packet)
            except av.FFmpegError:
                decoded = []  # a damaged picture: recorded as it came, not analysed
            if decoded:
                frame = decoded[-1]
                if self.gate.due(at):
                    lores = luma(frame)
                picture = _picture(frame)
        data = b"".join(bytes(p) for p in self._annexb.filter(packet))
        if key and self._headers and not has_sps(data):
            data = self._headers + data  # in-band, so any keyframe starts a clip
        copied = EncodedPacket(data, round(at * 1000), wall, key)
        return Copied(copied, lores, picture)

    def read(self) -> RawFrame:
        """The next decoded picture, at the camera's configured size (the sub-stream's:
        at its own)."""
        import av

        if self._stream is None:
            raise VideoError(f"camera {self.cfg.id}: not open")
        ctx = self._stream.codec_context
        while not self._pending:
            try:
                packet = self._next_video()
            except StreamEnded:
                self._pending += _flush(ctx)  # the decoder's last pictures
                if not self._pending:
                    raise
                break
            try:
                self._pending += ctx.decode(packet)
            except av.FFmpegError as exc:
                raise VideoError(f"camera {self.cfg.id}: {exc}") from exc
        frame = self._pending.pop(0)
        at, wall = self._times(_seconds(frame.pts, self._stream.time_base))
        width, height = (frame.width, frame.height) if self.sub else self.size_wanted
        out = frame.reformat(width, height, "yuv420p")
        return RawFrame(np.ascontiguousarray(out.to_ndarray()), at, wall)

    @property
    def size_wanted(self) -> tuple[int, int]:
        return self.cfg.width, self.cfg.height

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._sound = self._annexb = self._packets = None
        self._pending, self._audio = [], []
        self._offset_s, self._first_s, self._last_s = 0.0, None, None


def _picture(frame: Any) -> Any:
    """The full picture of a decoded frame, converted to I420 only when called."""
    from edge.video.codec import yuv420

    return lambda: yuv420(frame)


def _seconds(pts: int | None, time_base: Any) -> float | None:
    """A timestamp in seconds (its stream's time base: flushed pictures have none)."""
    return None if pts is None or not time_base else float(pts * time_base)


def _flush(ctx: Any) -> list[Any]:
    import av

    if ctx is None:
        return []
    try:
        return list(ctx.decode(None))
    except av.FFmpegError:
        return []  # flushed already
