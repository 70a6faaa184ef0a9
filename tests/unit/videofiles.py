"""Video files made with the real ffmpeg for the video tests, and the real ffprobe's
view of a clip (every stream, every video frame and packet)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import av

from edge.video.codec import EncodedPacket


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def h264_file(
    path: Path,
    size: str = "320x240",
    fps: float = 10,
    seconds: float = 4,
    gop: int = 10,
    tone_hz: int | None = None,
    bitrate: str | None = None,
) -> Path:
    """What an IP camera sends: H.264 without B-frames (and a sine tone as its sound)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps:g}:duration={seconds:g}"]
    if tone_hz is not None:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=8000"]
        args += ["-c:a", "pcm_mulaw", "-shortest"]  # G.711, as many cameras send
    rate = ["-b:v", bitrate] if bitrate else ["-crf", "30"]
    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", str(gop)]
    ffmpeg(*args, *codec, *rate, "-pix_fmt", "yuv420p", str(path))
    return path


def vfr_file(path: Path, gap_s: float = 20.0) -> Path:
    """A camera that froze: 3 s at 10 fps, ``gap_s`` without a picture, 3 s more. In an
    AVI (``.avi``) the header then declares the frames of the whole constant-rate grid
    (260) though the file holds 60: a header that over-declares frames."""
    times = f"(N+{round(gap_s * 10)}*gte(N\\,30))/(10*TB)"  # whole tenths: exact stamps
    source = "testsrc2=size=160x120:rate=10:duration=6"
    h264 = path.with_suffix(".mkv")
    ffmpeg("-f", "lavfi", "-i", source, "-vf", f"setpts='{times}'", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-bf", "0", "-g", "10", "-pix_fmt", "yuv420p", str(h264))  # fmt: skip
    if path.suffix == ".avi":  # the same pictures at the same times, in an AVI
        ffmpeg("-i", str(h264), "-fps_mode", "passthrough", "-r", "10", "-c:v", "mpeg4",
               "-q:v", "5", str(path))  # fmt: skip
        h264.unlink()
    return path


def probe(path: Path) -> dict[str, Any]:
    """ffprobe: every stream (``streams``), the video's frames (``frames``) and every
    packet (``packets``)."""
    entries = "stream:frame=media_type,key_frame,pts_time:packet=codec_type,pts_time,flags"
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(out.stdout)
    both = info.pop("packets_and_frames", [])
    info["frames"] = [f for f in both if f.get("type") == "frame"]
    info["packets"] = [p for p in both if p.get("type") == "packet"]
    return dict(info)


def check_clip(path: Path, expect_s: float, audio: bool) -> dict[str, Any]:
    """codec h264, first picture a keyframe, times strictly increasing, duration within
    0.5 s, an AAC track exactly when ``audio``; every picture decodes."""
    info = probe(path)
    kinds = {s["codec_type"]: s for s in info["streams"]}
    assert kinds["video"]["codec_name"] == "h264"
    assert abs(float(kinds["video"]["duration"]) - expect_s) <= 0.5, (kinds, expect_s)
    assert ("audio" in kinds) == audio, kinds.keys()
    if audio:
        assert kinds["audio"]["codec_name"] == "aac"
        assert abs(float(kinds["audio"]["duration"]) - expect_s) <= 0.6
    frames = [f for f in info["frames"] if f["media_type"] == "video"]
    assert frames and frames[0]["key_frame"] == 1
    for kind in ("video", "audio"):
        times = [float(p["pts_time"]) for p in info["packets"] if p["codec_type"] == kind]
        assert times == sorted(times) and len(set(times)) == len(times), kind
    with av.open(str(path)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == len(frames)
    return info


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, start codes left out."""
    units, at = [], data.find(b"\0\0\1")
    while at >= 0:
        end = data.find(b"\0\0\1", at + 3)
        unit = data[at + 3 : end if end >= 0 else len(data)]
        units.append(unit.rstrip(b"\0") if end >= 0 else unit)
        at = end
    return units


def slices(data: bytes) -> list[bytes]:
    """The coded picture of an access unit: its slices (parameter sets and delimiters,
    which a muxer may move, left out)."""
    return [u for u in nal_units(data) if u and u[0] & 0x1F in (1, 5)]


def annexb_packets(path: Path) -> list[bytes]:
    """The video packets of a file in Annex B, as ffmpeg's own bitstream filter gives."""
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        out = []
        for pkt in src.demux(stream):
            if pkt.size:
                out += [bytes(p) for p in bsf.filter(pkt)]
        return out


def video_only(packets: list[EncodedPacket]) -> list[EncodedPacket]:
    return [p for p in packets if not p.audio]
