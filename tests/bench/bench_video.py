"""Video: CPU per frame of capture + mask + encode + ring against the ffmpeg CLI
encoding the same raw frames with the same libx264 options in the same run; ring
memory for 10 s against the encoded bytes it holds; alarm to first still and to
clip in the outbox against their bars (1 s; post_roll_s + 2 s)."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.clock import FakeClock, SystemClock
from edge.codes import Condition
from edge.config import parse
from edge.config.schema import CameraConfig
from edge.model import box_event
from edge.outbox.aio import AsyncOutbox
from edge.outbox.store import Outbox
from edge.video.camera import Pipeline
from edge.video.service import VideoService
from edge.video.sources import RawFrame, SyntheticCamera

REPO = Path(__file__).resolve().parent.parent.parent
FPS = 15


def _camera(width: int, height: int) -> CameraConfig:
    return CameraConfig(
        id="bench", source="synthetic", width=width, height=height, fps=FPS, bitrate_kbps=2000
    )


def _frames(cfg: CameraConfig, n: int) -> list[np.ndarray]:
    cam = SyntheticCamera(cfg, FakeClock())
    return [cam.render(i) for i in range(n)]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _encode_case(width: int, height: int, n: int) -> list[tuple[str, float, float, str, str]]:
    cfg = _camera(width, height)
    frames = _frames(cfg, n)
    pipe = Pipeline(cfg, pre_roll_s=10.0, post_roll_s=10.0)
    period = 1 / FPS
    cpu0 = time.process_time()
    for i, yuv in enumerate(frames):
        pipe.push(RawFrame(yuv.copy(), 1000 + i * period, 1_800_000_000_000 + i * 66))
    ours = (time.process_time() - cpu0) / n * 1000
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "frames.yuv"
        with raw.open("wb") as f:
            for yuv in frames:
                f.write(yuv.tobytes())
        opts = pipe.settings.x264_options()
        cmd = ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p"]
        cmd += ["-s", f"{width}x{height}", "-r", str(FPS), "-i", str(raw), "-c:v", "libx264"]
        for key, value in opts.items():
            cmd += [f"-{key}", value]
        cmd += ["-b:v", f"{cfg.bitrate_kbps}k", "-f", "null", "-"]
        cpu1 = _children_cpu()
        subprocess.run(cmd, check=True)
        floor = (_children_cpu() - cpu1) / n * 1000
    return [(f"CPU/frame {width}x{height}", ours, floor, "ms", "ffmpeg CLI, same x264 options")]


def _ring_case() -> list[tuple[str, float, float, str, str]]:
    cfg = _camera(1280, 720)
    frames = _frames(cfg, 30)
    pipe = Pipeline(cfg, pre_roll_s=10.0, post_roll_s=10.0)
    for i in range(round(FPS * 13)):  # 13 s: the ring is full and trimming
        yuv = frames[i % len(frames)].copy()
        yuv[:720:8] = (i * 3) % 255  # keep the encoder busy: no two frames alike
        pipe.push(RawFrame(yuv, 1000 + i / FPS, 1_800_000_000_000 + i * 66))
    held = pipe.ring.since(-(2**62))
    encoded = sum(len(p.data) for p in held)
    deep = sum(sys.getsizeof(p) + sys.getsizeof(p.data) + 2 * sys.getsizeof(p.pts_ms) for p in held)
    deep += sys.getsizeof(pipe.ring._packets)
    seconds = pipe.ring.figures.seconds
    return [
        ("ring memory 10 s 720p", deep / 1024, encoded / 1024, "KiB", "encoded bytes held"),
        ("ring seconds held", seconds, 10.0, "s", "pre_roll_s asked"),
    ]


async def _latency(tmp: Path) -> tuple[float, float, float]:
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace("pre_roll_s = 5\npost_roll_s = 5", "pre_roll_s = 3\npost_roll_s = 2")
    cfg = parse(text, "bench.toml")
    clock = SystemClock()
    outbox = AsyncOutbox(Outbox(tmp / "outbox.sqlite"), clock)
    await outbox.open()
    video = VideoService(cfg, tmp, clock, outbox.put_media, _no_trouble)
    video.start()
    await asyncio.sleep(3.5)  # the ring fills
    event = box_event(Condition.FIRE, False, "bench alarm", round(time.time() * 1000))
    planned, due = video.plan(event, ("entrance",))
    await outbox.put(planned, event.occurred_at_ms, due)
    while event.id not in video.clip_queued_ms:  # noqa: ASYNC110 (a figure, not an event)
        await asyncio.sleep(0.01)
    await video.stop()
    await outbox.close()
    still_s = (video.first_still_ms[event.id] - event.occurred_at_ms) / 1000
    clip_s = (video.clip_queued_ms[event.id] - event.occurred_at_ms) / 1000
    return still_s, clip_s, cfg.recording.post_roll_s


async def _no_trouble(lost: bool, text: str) -> None:
    print(f"camera trouble during the bench: {text}", file=sys.stderr)


def _latency_case() -> list[tuple[str, float, float, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        still_s, clip_s, post_s = asyncio.run(_latency(Path(tmp)))
    return [
        ("alarm -> first still queued", still_s, 1.0, "s", "bar"),
        ("alarm -> clip queued", clip_s, post_s + 2, "s", "bar: post_roll_s + 2"),
    ]


CASES = [
    ("video.encode_360p", lambda: _encode_case(640, 360, 300)),
    ("video.encode_720p", lambda: _encode_case(1280, 720, 150)),
    ("video.ring", _ring_case),
    ("video.alarm_media", _latency_case),
]
