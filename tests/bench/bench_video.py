"""Video: CPU per frame of capture + mask + encode + ring against the ffmpeg CLI
encoding the same raw frames with the same libx264 options in the same run; ring
memory for 10 s against the encoded bytes it holds; alarm to first still and to
clip in the outbox against their bars (1 s; post_roll_s + 2 s).

Issue 19 (a Pi-sized video stage), on a real H.264 1280x720 25 fps stream (the
bgslibrary road footage scaled up and encoded as an IP camera would: no B-frames,
a keyframe every 2 s; a generated scene if the footage is absent), read as an RTSP
camera would be, as fast as it decodes:
- CPU per second of recorded video, passthrough (recording only; with motion
  decoding the main stream; with a 640x360 sub-stream instead) against today's
  decode + libx264 encode of the same stream, with the recorder writing segments;
- the clip's bitrate (ffprobe) against bitrate_kbps for cameras at 10, 15, 25 and
  30 fps configured as 15;
- the box's resident memory (a VideoService in a process of its own) with two
  passthrough cameras and one raw camera, 10 s pre-roll each, against the same
  three cameras all decoded and encoded (today's path)."""

from __future__ import annotations

import asyncio
import os
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
from edge.video.sources import RawFrame, StreamEnded, SyntheticCamera

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


# -- issue 19: passthrough, bitrate, memory -------------------------------------------

DATA = REPO.parent / "shared" / "data" / "video"
CAMERA_FPS = 25


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _streams(folder: Path) -> tuple[Path, Path, str]:
    """The camera's main stream (1280x720) and its sub-stream (640x360), and what they are."""
    footage = DATA / "bgslibrary_video.avi"
    main, sub = folder / "main.mp4", folder / "sub.mp4"
    if footage.is_file():
        source, what = ["-i", str(footage)], "real footage (bgslibrary road)"
    else:
        source = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=12"]
        what = "generated scene (no footage)"
    camera = ["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", str(2 * CAMERA_FPS)]
    for path, size, rate in ((main, "1280:720", "2M"), (sub, "640:360", "512k")):
        _ffmpeg(
            *source,
            "-vf",
            f"scale={size},fps={CAMERA_FPS}",
            *camera,
            "-b:v",
            rate,
            "-pix_fmt",
            "yuv420p",
            str(path),
        )
    return main, sub, what


def _cpu_per_video_s(
    cfg: CameraConfig, folder: Path, sub: Path | None = None, decode: bool = True
) -> float:
    """CPU ms per second of video: the stream read to its end through the pipeline, the
    recorder writing its segments (``decode=False``: the main stream is not decoded,
    motion left out; ``sub``: motion decodes that sub-stream instead)."""
    from edge.video.avcamera import AvCamera
    from edge.video.recorder import Recorder, RecorderSettings

    settings = RecorderSettings(folder / "rec", "continuous", 10, 30, None, 10.0, 10.0)
    writer = Recorder(settings, {cfg.id: CAMERA_FPS}).writer(cfg.id, cfg.width, cfg.height)
    pipe = Pipeline(cfg, pre_roll_s=10.0, post_roll_s=10.0)
    pipe.packet_sinks.append(writer)
    source, substream = AvCamera(cfg, FakeClock()), None
    source.loops = False
    if sub is not None:
        substream = AvCamera(cfg, FakeClock(), target=str(sub))
        substream.loops = False
        substream.open()
    source.decodes = decode and sub is None
    first = last = None
    cpu0 = time.process_time()
    source.open()
    pipe.copies = source.copies
    try:
        while True:
            try:
                if source.copies:
                    copied = source.read_copied()
                    at = copied.packet.at_s
                    pipe.push_copied(copied)
                    if substream is not None:
                        pipe.push_sub(substream.read())
                else:
                    frame = source.read()
                    at = frame.at_s
                    pipe.push(frame)
            except StreamEnded:
                break
            first = at if first is None else first
            last = at
    finally:
        source.close()
        if substream is not None:
            substream.close()
        writer.close()
    cpu = time.process_time() - cpu0
    assert first is not None and last is not None
    return cpu / (last - first + 1 / CAMERA_FPS) * 1000


def passthrough_cpu() -> list[tuple[str, float, float, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        main, sub, what = _streams(folder)
        print(f"(1280x720 {CAMERA_FPS} fps H.264 camera: {what})")
        base = {"id": "ipcam", "source": "file", "path": main, "width": 1280, "height": 720}
        cfg = CameraConfig(**base, fps=CAMERA_FPS)  # type: ignore[arg-type]
        today = _cpu_per_video_s(cfg.model_copy(update={"passthrough": False}), folder)
        recording = _cpu_per_video_s(cfg, folder, decode=False)
        with_sub = _cpu_per_video_s(cfg, folder, sub)
        with_main = _cpu_per_video_s(cfg, folder)
        floor = "decode+encode (today)"
        return [
            ("CPU/s passthrough, record", recording, today, "ms/s", floor),
            ("CPU/s pass + sub motion", with_sub, today, "ms/s", floor),
            ("CPU/s pass + main motion", with_main, today, "ms/s", floor),
        ]


def _clip_kbps(rate: float, frames: list[np.ndarray], folder: Path) -> float:
    """An alarm's clip (5 s before, 5 s after) from a camera at ``rate`` configured as 15;
    its video bitrate as ffprobe reads it."""
    from edge.video.codec import mp4_bytes

    cfg = CameraConfig(id="cam", source="synthetic", width=1280, height=720, fps=15)
    pipe = Pipeline(cfg, pre_roll_s=5.0, post_roll_s=5.0)
    clips: list[object] = []
    pipe.on_clip = clips.append
    for i in range(round(rate * 16)):
        at = 1000 + i / rate
        if i == round(rate * 8):
            pipe.alarm("bench", round(at * 1000), 0)
        pipe.push(RawFrame(frames[i % len(frames)].copy(), at, round(at * 1000)))
    clip = folder / f"clip{rate:g}.mp4"
    clip.write_bytes(mp4_bytes(clips[0].packets, 1280, 720))  # type: ignore[attr-defined]
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=bit_rate",
            "-of",
            "csv=p=0",
            str(clip),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip()) / 1000


def bitrate_held() -> list[tuple[str, float, float, str, str]]:
    import av

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        main, _sub, _what = _streams(folder)
        with av.open(str(main)) as src:  # real pictures, 12 s of them
            frames = [f.to_ndarray(format="yuv420p") for f in src.decode(video=0)]
        return [
            (
                f"clip kbps, camera {rate} fps",
                _clip_kbps(rate, frames, folder),
                2000,
                "kbit/s",
                "bitrate_kbps (config fps 15)",
            )
            for rate in (10, 15, 25, 30)
        ]


RSS_SECONDS = 14.0  # the 10 s pre-roll full, and some


def box_rss() -> list[tuple[str, float, float, str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        main, _sub, _what = _streams(folder)
        rows = []
        for label, passthrough in (("2 passthrough + 1 raw", True), ("3 decoded+encoded", False)):
            out = subprocess.run(
                [sys.executable, __file__, "--rss", str(main), str(folder), str(passthrough)],
                check=True,
                capture_output=True,
                text=True,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            figures = dict(line.split("=", 1) for line in out.stdout.split())
            rows.append((label, float(figures["hwm_mib"]), float(figures["cpu_pct"])))
        (mine, mine_cpu), (today, today_cpu) = rows[0][1:], rows[1][1:]
        return [
            ("box RSS 2 pass + 1 raw", mine, today, "MiB", "3 decoded+encoded (today)"),
            ("box CPU 2 pass + 1 raw", mine_cpu, today_cpu, "% core", "3 decoded+encoded"),
        ]


async def _rss_child(main: Path, folder: Path, passthrough: bool) -> None:
    from edge.config import parse as parse_config

    cams = "".join(
        f'[[cameras]]\nid = "ip{i}"\nsource = "file"\npath = "{main}"\nfps = {CAMERA_FPS}\n'
        f"passthrough = {str(passthrough).lower()}\n\n"
        for i in (1, 2)
    )
    cams += '[[cameras]]\nid = "raw"\nsource = "synthetic"\nwidth = 1280\nheight = 720\n\n'
    text = (
        '[device]\nid = "bench"\n[station]\naccount = "1234"\n'
        '[uplink]\nbroker = "mqtt://127.0.0.1:1883"\n'
        f"{cams}[recording]\npre_roll_s = 10\npost_roll_s = 10\n"
    )
    cfg = parse_config(text, "rss.toml")
    video = VideoService(
        cfg, folder / f"state-{passthrough}", SystemClock(), _no_media, _no_trouble
    )
    seen = [0]
    video.add_lores_sink(lambda frame: seen.__setitem__(0, seen[0] + 1))
    cpu0 = time.process_time()
    video.start()
    await asyncio.sleep(RSS_SECONDS)
    cpu = time.process_time() - cpu0
    rings = [c["ring_seconds"] for c in video.status()["cameras"].values()]
    await video.stop()
    hwm = _hwm_kib()
    assert min(rings) >= 9.5, rings  # every ring full
    print(f"hwm_mib={hwm / 1024:.1f} cpu_pct={cpu / RSS_SECONDS * 100:.1f} lores={seen[0]}")


def _hwm_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


async def _no_media(*_args: object) -> None:
    return None


CASES = [
    ("video.encode_360p", lambda: _encode_case(640, 360, 300)),
    ("video.encode_720p", lambda: _encode_case(1280, 720, 150)),
    ("video.ring", _ring_case),
    ("video.alarm_media", _latency_case),
    ("video.passthrough_cpu", passthrough_cpu),
    ("video.bitrate_held", bitrate_held),
    ("video.box_rss", box_rss),
]


if __name__ == "__main__" and sys.argv[1:2] == ["--rss"]:
    asyncio.run(_rss_child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "True"))
