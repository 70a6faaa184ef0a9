"""A camera's sound: AAC in the pre-alarm ring, the clips and the recordings.

Sound comes from the camera's own stream (an RTSP camera's audio track, a
file's; read by :class:`~edge.video.sources.AvCamera`) or from a microphone
(:class:`Microphone`: ALSA through PyAV, e.g. a USB microphone, on a thread
of its own). Whatever its codec (G.711, AAC, PCM), it is decoded and encoded
again by :class:`AacEncoder` as AAC-LC, mono, ``AUDIO_RATE`` Hz: a few kbit/s
and a little CPU, and every clip has the one format a browser's <video>
plays. Packets carry times on the box's monotonic clock, like the video's.
Off by default (``audio = true`` per camera): privacy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av

from edge.clock import Clock
from edge.video.codec import AUDIO_RATE, EncodedPacket, VideoError
from edge.video.timing import StreamClock

log = logging.getLogger(__name__)
RESYNC_S = 0.5  # sound this far from where its samples say: a gap, times start again
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0


class AacEncoder:
    """Decoded sound in (any rate, layout, format), AAC packets out, timed on the box's
    monotonic clock from the first frame's time and the samples since."""

    def __init__(self, bitrate_kbps: int) -> None:
        self.bitrate_kbps = bitrate_kbps
        self._ctx: Any = None
        self._resampler: Any = None
        self._samples = 0  # samples handed to the encoder so far
        self._base: tuple[float, int, int] | None = None  # (at_s, wall_ms, sample) of a sync

    def _open(self) -> None:
        try:
            ctx: Any = av.CodecContext.create("aac", "w")
            ctx.sample_rate, ctx.layout, ctx.format = AUDIO_RATE, "mono", "fltp"
            ctx.bit_rate = self.bitrate_kbps * 1000
            ctx.time_base = Fraction(1, AUDIO_RATE)
            ctx.open()
        except av.FFmpegError as exc:
            raise VideoError(f"AAC encoder: {exc}") from exc
        self._ctx = ctx
        self._resampler = av.AudioResampler(
            format="fltp", layout="mono", rate=AUDIO_RATE, frame_size=ctx.frame_size
        )

    def encode(self, frame: Any, at_s: float, wall_ms: int) -> list[EncodedPacket]:
        """One decoded frame that began at monotonic ``at_s`` (wall ``wall_ms``)."""
        if self._ctx is None:
            self._open()
        base = self._base
        due_s = None if base is None else base[0] + (self._samples - base[2]) / AUDIO_RATE
        if due_s is None or abs(at_s - due_s) > RESYNC_S:
            self._base = (at_s, wall_ms, self._samples)
        frame.pts = None  # the resampler times its own output
        out: list[EncodedPacket] = []
        try:
            for chunk in self._resampler.resample(frame):
                chunk.pts, chunk.time_base = self._samples, self._ctx.time_base
                self._samples += chunk.samples
                out += [self._packet(p) for p in self._ctx.encode(chunk)]
        except av.FFmpegError as exc:
            raise VideoError(f"AAC encoder: {exc}") from exc
        return out

    def _packet(self, p: Any) -> EncodedPacket:
        assert self._base is not None
        at_s, wall_ms, sample = self._base
        offset_s = (int(p.pts) - sample) / AUDIO_RATE
        return EncodedPacket(
            bytes(p), round((at_s + offset_s) * 1000), wall_ms + round(offset_s * 1000), False, True
        )


class Microphone:
    """A microphone read through PyAV on its own thread; AAC packets go to ``sink``
    (the camera pipeline's audio queue). On the box ``fmt`` is ``alsa`` and
    ``device`` e.g. ``hw:1,0``; anything FFmpeg reads as a live input will do (the
    tests give it a generated tone). A lost microphone is logged and retried with
    backoff; the video goes on without sound."""

    def __init__(
        self,
        device: str,
        bitrate_kbps: int,
        clock: Clock,
        sink: Callable[[EncodedPacket], None],
        fmt: str = "alsa",
    ) -> None:
        self.device = device
        self.fmt = fmt
        self.bitrate_kbps = bitrate_kbps
        self.clock = clock
        self.sink = sink
        self.state = "stopped"  # stopped | running | lost
        self.error = ""
        self.packets = 0
        self.stop_flag = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, name: str) -> None:
        self.thread = threading.Thread(target=self.run, name=f"microphone.{name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(5)

    def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self.stop_flag.is_set():
            try:
                self._capture()
                backoff = BACKOFF_MIN_S
            except (av.FFmpegError, VideoError, OSError) as exc:
                self.state, self.error = "lost", f"microphone {self.device}: {exc}"
                log.error("%s", self.error)
            self.stop_flag.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        self.state = "stopped"

    def _capture(self) -> None:
        options = {"sample_rate": str(AUDIO_RATE), "channels": "1"} if self.fmt == "alsa" else {}
        encoder = AacEncoder(self.bitrate_kbps)
        timing = StreamClock(live=True)
        with av.open(self.device, format=self.fmt, options=options) as source:
            for frame in source.decode(audio=0):
                if self.stop_flag.is_set():
                    return
                now = self.clock.monotonic()
                at = timing.at(None if frame.time is None else float(frame.time), now)
                wall = timing.wall_ms(at, now, self.clock.time())
                for packet in encoder.encode(frame, at, wall):
                    self.packets += 1
                    self.sink(packet)
                self.state, self.error = "running", ""
        raise VideoError("the sound ended")
