"""PyAV at the edge of the video stage: H.264 encoding, JPEG stills, MP4 muxing.

Packets are plain :class:`EncodedPacket` values (bytes and times), so the ring,
the clips and the recorder never hold PyAV objects. SPS/PPS travel in-band on
every keyframe (no global header), so any keyframe can start a clip or a
segment and the MP4 muxer builds its ``avcC`` from the first one.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import numpy.typing as npt
from av.bitstream import BitStreamFilterContext

from edge.errors import HardwareError

MS = Fraction(1, 1000)  # packet times are integer milliseconds
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

    @property
    def gop(self) -> int:
        return max(1, round(self.fps * self.keyframe_interval_s))

    def x264_options(self) -> dict[str, str]:
        """The libx264 options; the benchmark gives the ffmpeg CLI the same ones."""
        return {
            "preset": self.preset,
            "tune": "zerolatency",  # no lookahead, no B-frames: a frame in, a packet out
            "g": str(self.gop),
            "keyint_min": str(self.gop),
            "sc_threshold": "0",  # keyframes exactly every gop: predictable pre-roll
        }


class H264Encoder:
    """Raw I420 frames in, H.264 packets out (libx264, or what the settings name)."""

    def __init__(self, settings: EncoderSettings) -> None:
        self.settings = settings
        self._ctx: Any = None
        self._wall: dict[int, int] = {}

    def open(self) -> None:
        s = self.settings
        try:
            ctx = av.CodecContext.create("libx264", "w")
            ctx.width, ctx.height, ctx.pix_fmt = s.width, s.height, "yuv420p"
            ctx.time_base = MS
            ctx.framerate = Fraction(s.fps).limit_denominator(1000)
            ctx.gop_size = s.gop
            ctx.bit_rate = s.bitrate_kbps * 1000
            ctx.options = s.x264_options()
            ctx.open()
        except av.FFmpegError as exc:
            raise VideoError(f"H.264 encoder: {exc}") from exc
        self._ctx = ctx

    def encode(self, yuv: Yuv, pts_ms: int, wall_ms: int) -> list[EncodedPacket]:
        if self._ctx is None:
            self.open()
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
            out.append(EncodedPacket(bytes(p), pts, self._wall.pop(pts, 0), bool(p.is_keyframe)))
        return out


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


def write_mp4(
    packets: list[EncodedPacket], target: Path | BinaryIO, width: int, height: int
) -> None:
    """Mux packets (first one a keyframe) into an MP4, times rebased to 0; no re-encode."""
    if not packets or not packets[0].keyframe:
        raise VideoError("a clip must start with a keyframe")
    first = packets[0].pts_ms
    dest: Any = str(target) if isinstance(target, Path) else target
    # faststart (index first, for players that stream) needs a named file to rewrite
    opts = {"movflags": "+faststart"} if isinstance(target, Path) else {}
    try:
        with av.open(dest, "w", format="mp4", options=opts) as out:
            stream: Any = out.add_stream("h264")
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = MS
            last = -1
            for p in packets:
                pts = max(p.pts_ms - first, last + 1)  # strictly increasing, never back
                last = pts
                pkt = av.Packet(p.data)
                pkt.pts = pkt.dts = pts
                pkt.time_base = MS
                pkt.stream = stream
                if p.keyframe:
                    pkt.is_keyframe = True
                out.mux(pkt)
    except av.FFmpegError as exc:
        raise VideoError(f"writing MP4: {exc}") from exc


def mp4_bytes(packets: list[EncodedPacket], width: int, height: int) -> bytes:
    buf = io.BytesIO()
    write_mp4(packets, buf, width, height)
    return buf.getvalue()


def read_mp4(path: Path, start_wall_ms: int) -> Iterator[EncodedPacket]:
    """The packets of one of our MP4 files, with wall times from the file's start."""

    try:
        with av.open(str(path)) as src:
            stream = src.streams.video[0]
            base = stream.time_base or MS
            annexb = BitStreamFilterContext("h264_mp4toannexb", stream)  # as the encoder gives
            for pkt in _annexb(annexb, src, stream):
                if pkt.size == 0 or pkt.pts is None:
                    continue
                pts_ms = round(pkt.pts * base * 1000)
                yield EncodedPacket(
                    bytes(pkt), pts_ms, start_wall_ms + pts_ms, bool(pkt.is_keyframe)
                )
    except av.FFmpegError as exc:
        raise VideoError(f"reading {path.name}: {exc}") from exc


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


def _annexb(bsf: Any, src: Any, stream: Any) -> Iterator[Any]:
    for pkt in src.demux(stream):
        if pkt.size:
            yield from bsf.filter(pkt)
    yield from bsf.filter(None)
