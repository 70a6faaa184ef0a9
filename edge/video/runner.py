"""A camera's capture thread: a source into its pipeline, loss and restore, pacing.

:class:`CameraRunner` reads a source on a thread of its own (capture, decoding
and encoding never block the event loop), paces sources that do not pace
themselves by the frames' own times, and turns camera loss into a trouble, a
backoff and a restore. A passed-through camera with a ``substream`` gets a
:class:`SubRunner` too: the sub-stream is decoded for motion and the live
view, the main stream only recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.video.audio import Microphone
from edge.video.camera import Pipeline
from edge.video.codec import VideoError
from edge.video.sources import Source, SourceStatus
from edge.video.timing import rate_note

log = logging.getLogger(__name__)
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
MAX_BEHIND_S = 0.5  # a live camera's frames this late are dropped, not encoded


class CameraRunner:
    """Runs a source into a pipeline on its own thread; reports loss and restore."""

    def __init__(
        self,
        source: Source,
        pipeline: Pipeline,
        trouble: Callable[[bool, str], None],
        monotonic: Callable[[], float] = time.monotonic,
        sub: Source | None = None,
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
        self.sub = SubRunner(sub, pipeline, self.stop_flag, monotonic) if sub else None
        self.microphone: Microphone | None = None  # a camera's ALSA microphone, if any
        if sub is not None:
            source.decodes = False  # motion and the live view come from the sub-stream

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self.run, name=f"camera.{self.pipeline.cfg.id}", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(10)
        if self.sub is not None and self.sub.thread is not None:
            self.sub.thread.join(10)
            self.status.substream = self.sub.state

    def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self.stop_flag.is_set():
            frames_before = self.status.frames
            try:
                self.source.open()
                self._opened()
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

    def _opened(self) -> None:
        """The source is open: it says which path its frames take."""
        source, pipe, st = self.source, self.pipeline, self.status
        pipe.copies = source.copies
        st.path = "passthrough" if source.copies else "encode"
        st.path_reason = source.path_reason
        if source.copies:
            pipe.set_size(*source.size)
            st.width, st.height = source.size
            st.encoder, st.encoder_reason = None, "not encoded: passed through"
            if self.sub is not None:
                pipe.stills_from_ring = True
                self.sub.start(self.cfg.id)
        else:
            pipe.set_rate(getattr(source, "file_fps", None))
        audio = self.cfg.audio
        if audio and self.cfg.audio_device is None:
            st.audio = "on" if getattr(source, "has_audio", False) else "no sound"
        elif audio:
            st.audio = "on"

    def _capture(self) -> None:
        cfg = self.pipeline.cfg
        count = 0
        first_at: float | None = None
        started = self.monotonic()
        while not self.stop_flag.is_set():
            copied = frame = None
            if self.source.copies:
                copied = self.source.read_copied()
                at_s = copied.packet.at_s
            else:
                frame = self.source.read()
                at_s = frame.at_s
            for packet in self.source.take_audio():  # heard before this picture
                self.pipeline.push_packet(packet)
            if count == 0:
                self.status.state = "running"
                first_at = at_s
                if self.lost:
                    self.lost = False
                    self.trouble(False, f"camera {cfg.id} restored")
            if copied is not None:
                self.pipeline.push_copied(copied)
            elif getattr(self.source, "behind_s", 0.0) > MAX_BEHIND_S:
                self.status.dropped += 1  # late: skip its encoding to catch up, never block
            elif frame is not None:
                self.pipeline.push(frame)
            count += 1
            self._figures(count, started)
            if not self.source.paced and first_at is not None:  # a file: at its own times
                self.stop_flag.wait(max(0.0, started + at_s - first_at - self.monotonic()))

    def _figures(self, count: int, started: float) -> None:
        st, pipe = self.status, self.pipeline
        st.frames += 1
        elapsed = self.monotonic() - started
        st.fps = round(count / elapsed, 1) if elapsed > 0 else 0.0
        ring = pipe.ring.figures
        st.ring_bytes, st.ring_seconds = ring.bytes, round(ring.seconds, 2)
        measured = pipe.meter.fps
        st.source_fps = None if measured is None else round(measured, 2)
        st.fps_note = rate_note(self.cfg.fps, measured)
        choice = pipe.encoder.choice
        if not pipe.copies and choice is not None:
            st.encoder, st.encoder_reason = choice.codec, choice.reason
        if self.sub is not None:
            st.substream = self.sub.state
        mic = self.microphone
        if mic is not None:
            st.audio = "on" if mic.state == "running" else f"{mic.state}: {mic.error}".rstrip(": ")

    def _lose(self, text: str) -> None:
        self.status.state = "lost"
        self.status.error = text
        if not self.lost:
            self.lost = True
            log.error("%s", text)
            self.trouble(True, text)


class SubRunner:
    """Reads a passed-through camera's sub-stream on its own thread: pictures for motion
    and the live view. A lost sub-stream is logged and retried with backoff (its state
    is in the camera's status); recording goes on meanwhile."""

    def __init__(
        self,
        source: Source,
        pipeline: Pipeline,
        stop_flag: threading.Event,
        monotonic: Callable[[], float],
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.stop_flag = stop_flag
        self.monotonic = monotonic
        self.state = "stopped"  # stopped | running | lost: why
        self.thread: threading.Thread | None = None

    def start(self, camera: str) -> None:
        if self.thread is None or not self.thread.is_alive():
            name = f"camera.{camera}.sub"
            self.thread = threading.Thread(target=self.run, name=name, daemon=True)
            self.thread.start()

    def run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self.stop_flag.is_set():
            try:
                self.source.open()
                self._read()
            except VideoError as exc:
                if self.state != f"lost: {exc}":
                    log.error("sub-stream: %s", exc)
                self.state = f"lost: {exc}"
            finally:
                self.source.close()
            self.stop_flag.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        self.state = "stopped"

    def _read(self) -> None:
        started = self.monotonic()
        first_at: float | None = None
        while not self.stop_flag.is_set():
            frame = self.source.read()
            self.state = "running"
            self.pipeline.push_sub(frame)
            first_at = frame.at_s if first_at is None else first_at
            if not self.source.paced:
                self.stop_flag.wait(max(0.0, started + frame.at_s - first_at - self.monotonic()))
