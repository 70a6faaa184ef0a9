"""PyAV at the edge of the video stage: H.264 encoding, JPEG stills, MP4 muxing.

Packets are plain :class:`EncodedPacket` values (bytes and times), so the ring,
the clips and the recorder never hold PyAV objects. SPS/PPS travel in-band on
every keyframe (no global header), so any keyframe can start a clip or a
segment and the MP4 muxer builds its ``avcC`` from the first one. A camera's
sound rides along as AAC packets (``audio=True``, AAC-LC mono at
``AUDIO_RATE``, made by :mod:`edge.video.audio`) and becomes the MP4's second
track.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt
from av.bitstream import BitStreamFilterContext

from edge.errors import HardwareError
from edge.video.encoders import SOFTWARE, EncoderChoice, fallback

MS = Fraction(1, 1000)  # packet times are integer milliseconds
AUDIO_RATE = 16_000  # Hz, mono: speech, what a levée de doute needs
JPEG_Q = 5  # mjpeg quantiser: 2 (best) .. 31; 5 is a sharp, compact still
Yuv = npt.NDArray[np.uint8]  # I420 as one (height * 3/2, width) array


class VideoError(HardwareError):
    """A video file, stream or codec could not be used."""


@dataclass(frozen=True)
class EncodedPacket:
    """One H.264 access unit with its times: ``pts_ms`` on the camera's
    monotonic clock (ms), ``wall_ms`` UTC ms."""

    data: bytes = field(repr=False)
    pts_ms: int
    wall_ms: int
    keyframe: bool
    audio: bool = False  # an AAC packet of the camera's sound, not video

    @property
    def at_s(self) -> float:
        return self.pts_ms / 1000


@dataclass(frozen=True)
class EncoderSettings:
    width: int
    height: int
    fps: float
    keyframe_interval_s: float
    bitrate_kbps: int
    preset: str = "veryfast"
    codec: str = SOFTWARE  # or HARDWARE (the Pi 4's h264_v4l2m2m)

    @property
    def gop(self) -> int:
        return max(1, round(self.fps * self.keyframe_interval_s))

    def x264_options(self) -> dict[str, str]:
        """The libx264 options; the benchmark gives the ffmpeg CLI the same ones.

        Rate control by the frames' own times (``force-cfr=0``): FFmpeg's wrapper
        otherwise has x264 spend ``bitrate / fps`` per frame, so a camera faster than
        its configured ``fps`` got that much more (25 for 15: 1.7x, and the VBV-less
        start 2.6x). The VBV (one second's worth) holds the rate over a clip's seconds.
        ``fps`` still sets the keyframe interval in frames: the pipeline tells the
        encoder the rate frames really come at. x264 times a picture by the next one's
        stamp, so it holds one picture back (``flush`` gives it at the end)."""
        return {
            "preset": self.preset,
            "tune": "zerolatency",  # no lookahead, no B-frames: a frame in, a packet out
            "g": str(self.gop),
            "keyint_min": str(self.gop),
            "sc_threshold": "0",  # keyframes exactly every gop: predictable pre-roll
            "maxrate": f"{self.bitrate_kbps}k",
            "bufsize": f"{self.bitrate_kbps}k",
            "x264-params": "force-cfr=0",
        }


class H264Encoder:
    """Raw I420 frames in, H.264 packets out: libx264, or the Pi 4's hardware encoder.
    ``choose`` decides which when the first frame comes (it may probe the hardware);
    ``choice`` then says which and why. A hardware encoder that fails to open falls
    back to libx264, and ``choice`` says so."""

    def __init__(
        self, settings: EncoderSettings, choose: Callable[[], EncoderChoice] | None = None
    ) -> None:
        self.settings = settings
        self.choice: EncoderChoice | None = None
        self._choose = choose or (lambda: EncoderChoice(SOFTWARE, "libx264"))
        self._ctx: Any = None
        self._used = False
        self._headers = b""  # SPS/PPS of a hardware encoder that keeps them out of band
        self._wall: dict[int, int] = {}

    @property
    def idle(self) -> bool:
        """No frame encoded yet."""
        return not self._used

    def open(self) -> None:
        self.choice = choice = self.choice or self._choose()
        self.settings = s = replace(self.settings, codec=choice.codec)
        try:
            self._ctx = self._open(choice.codec)
        except av.FFmpegError as exc:
            if choice.codec == SOFTWARE:
                raise VideoError(f"H.264 encoder: {exc}") from exc
            self.choice = fallback(choice, str(exc))
            self.settings = replace(s, codec=SOFTWARE)
            try:
                self._ctx = self._open(SOFTWARE)
            except av.FFmpegError as again:
                raise VideoError(f"H.264 encoder: {again}") from again
        extradata = bytes(self._ctx.extradata or b"")
        self._headers = extradata if extradata.startswith((b"\0\0\0\1", b"\0\0\1")) else b""

    def _open(self, codec: str) -> Any:
        s = self.settings
        ctx: Any = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = s.width, s.height, "yuv420p"
        ctx.time_base = MS
        ctx.framerate = Fraction(s.fps).limit_denominator(1000)
        ctx.gop_size = s.gop
        ctx.bit_rate = s.bitrate_kbps * 1000
        if codec == SOFTWARE:
            ctx.options = s.x264_options()
        ctx.open()
        return ctx

    def encode(self, yuv: Yuv, pts_ms: int, wall_ms: int) -> list[EncodedPacket]:
        if self._ctx is None:
            self.open()
        self._used = True
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts_ms
        frame.time_base = MS
        self._wall[pts_ms] = wall_ms
        return self._packets(self._ctx.encode(frame))

    def flush(self) -> list[EncodedPacket]:
        if self._ctx is None:
            return []
        packets = self._packets(self._ctx.encode(None))
        self._ctx = None
        return packets

    def _packets(self, packets: Iterable[Any]) -> list[EncodedPacket]:
        out = []
        for p in packets:
            pts = int(p.pts)
            data = bytes(p)
            if p.is_keyframe and self._headers and not has_sps(data):
                data = self._headers + data  # in-band, so any keyframe starts a clip
            out.append(EncodedPacket(data, pts, self._wall.pop(pts, 0), bool(p.is_keyframe)))
        return out


def has_sps(data: bytes) -> bool:
    """An Annex B access unit carries a sequence parameter set (NAL type 7)."""
    at = data.find(b"\0\0\1")
    while at >= 0 and at + 3 < len(data):
        if data[at + 3] & 0x1F == 7:
            return True
        at = data.find(b"\0\0\1", at + 3)
    return False


def jpeg(yuv: Yuv) -> bytes:
    """One I420 frame as a baseline JPEG (FFmpeg's mjpeg encoder)."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    ctx: Any = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = Fraction(1, 1)
    ctx.qmin = ctx.qmax = JPEG_Q
    ctx.open()
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    frame.pts = 0
    return b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])


def gray_to_yuv(gray: npt.NDArray[np.uint8]) -> Yuv:
    """A grey picture as I420 with neutral chroma."""
    h, w = gray.shape
    yuv = np.empty((h * 3 // 2, w), dtype=np.uint8)
    yuv[:h] = gray
    yuv[h:] = 128
    return yuv


def add_streams(out: Any, width: int, height: int, audio: bool) -> tuple[Any, Any]:
    """The MP4's H.264 track (and AAC track) for packets muxed as they are."""
    video: Any = out.add_stream("h264")
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base = MS
    sound: Any = None
    if audio:
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        sound.time_base = MS
    return video, sound


def write_mp4(
    packets: list[EncodedPacket], target: Path | BinaryIO, width: int, height: int
) -> None:
    """Mux packets (the first video one a keyframe) into an MP4, times rebased to it;
    no re-encode. Audio packets, if any, are the second track (those before the first
    picture are left out)."""
    video = [p for p in packets if not p.audio]
    if not video or not video[0].keyframe:
        raise VideoError("a clip must start with a keyframe")
    first = video[0].pts_ms
    sound = [p for p in packets if p.audio and p.pts_ms >= first]
    dest: Any = str(target) if isinstance(target, Path) else target
    # faststart (index first, for players that stream) needs a named file to rewrite
    opts = {"movflags": "+faststart"} if isinstance(target, Path) else {}
    try:
        with av.open(dest, "w", format="mp4", options=opts) as out:
            streams = add_streams(out, width, height, bool(sound))
            last = [-1, -1]
            for p in sorted([*video, *sound], key=lambda p: (p.pts_ms, p.audio)):
                kind = int(p.audio)
                pts = max(p.pts_ms - first, last[kind] + 1)  # strictly increasing, never back
                last[kind] = pts
                out.mux(to_packet(p, pts, streams[kind]))
    except av.FFmpegError as exc:
        raise VideoError(f"writing MP4: {exc}") from exc


def to_packet(p: EncodedPacket, pts: int, stream: Any) -> Any:
    pkt = av.Packet(p.data)
    pkt.pts = pkt.dts = pts
    pkt.time_base = MS
    pkt.stream = stream
    if p.keyframe:
        pkt.is_keyframe = True
    return pkt


def mp4_bytes(packets: list[EncodedPacket], width: int, height: int) -> bytes:
    buf = io.BytesIO()
    write_mp4(packets, buf, width, height)
    return buf.getvalue()


def read_mp4(path: Path, start_wall_ms: int) -> Iterator[EncodedPacket]:
    """The packets of one of our MP4 files (video, and audio when it has sound), in file
    order, with wall times from the file's start."""

    try:
        with av.open(str(path)) as src:
            stream = src.streams.video[0]
            sound = src.streams.audio[0] if src.streams.audio else None
            annexb = BitStreamFilterContext("h264_mp4toannexb", stream)  # as the encoder gives
            for pkt in _annexb(annexb, src, stream, sound):
                if pkt.size == 0 or pkt.pts is None:
                    continue
                audio = sound is not None and pkt.stream_index == sound.index
                base = (sound.time_base if sound is not None and audio else stream.time_base) or MS
                pts_ms = round(pkt.pts * base * 1000)
                key = bool(pkt.is_keyframe) and not audio
                yield EncodedPacket(bytes(pkt), pts_ms, start_wall_ms + pts_ms, key, audio)
    except av.FFmpegError as exc:
        raise VideoError(f"reading {path.name}: {exc}") from exc


def pictures(packets: list[EncodedPacket], targets_ms: list[int]) -> dict[int, tuple[int, Yuv]]:
    """Decode H.264 packets (from a keyframe) and keep, per target time, the picture
    nearest to it: ``{target: (pts_ms, I420)}``. Stills of a camera whose main stream
    is recorded as it comes and never decoded otherwise (one with a sub-stream)."""
    best: dict[int, tuple[int, Any]] = {}
    try:
        ctx: Any = av.CodecContext.create("h264", "r")
        for p in packets:
            if p.audio:
                continue
            pkt = av.Packet(p.data)
            pkt.pts = pkt.dts = p.pts_ms
            for frame in ctx.decode(pkt):
                pts = p.pts_ms if frame.pts is None else int(frame.pts)
                for t in targets_ms:
                    if t not in best or abs(pts - t) < abs(best[t][0] - t):
                        best[t] = (pts, frame)
            if p.pts_ms > max(targets_ms):
                break
    except av.FFmpegError as exc:
        raise VideoError(f"decoding the ring for a still: {exc}") from exc
    return {t: (pts, yuv420(frame)) for t, (pts, frame) in best.items()}


def yuv420(frame: Any) -> Yuv:
    """A decoded picture as one I420 array."""
    return np.ascontiguousarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)


def frame_at(path: Path, start_wall_ms: int, at_ms: int, tolerance_ms: int) -> Yuv:
    """The decoded frame of one of our MP4 files nearest to wall ``at_ms`` (I420);
    VideoError when none lies within ``tolerance_ms``."""
    best: tuple[int, Yuv] | None = None
    try:
        with av.open(str(path)) as src:
            stream = src.streams.video[0]
            base = stream.time_base or MS
            for frame in src.decode(stream):
                if frame.pts is None:
                    continue
                off = abs(start_wall_ms + round(frame.pts * base * 1000) - at_ms)
                if best is None or off < best[0]:
                    best = (off, np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8))
                elif off > best[0]:
                    break  # frames only get further away
    except av.FFmpegError as exc:
        raise VideoError(f"reading {path.name}: {exc}") from exc
    if best is None or best[0] > tolerance_ms:
        raise VideoError(f"no picture within {tolerance_ms} ms of {at_ms} in {path.name}")
    return best[1]


def _annexb(bsf: Any, src: Any, stream: Any, sound: Any = None) -> Iterator[Any]:
    for pkt in src.demux(*([stream] if sound is None else [stream, sound])):
        if not pkt.size:
            continue
        if sound is not None and pkt.stream_index == sound.index:
            yield pkt
        else:
            yield from bsf.filter(pkt)
    yield from bsf.filter(None)
