"""Sound: a camera's audio track (or a microphone) rides in the pre-alarm ring and comes
out of clips and recordings as AAC, the tone it carried still in it; off unless a
camera asks for it. The microphone's ALSA device is the hardware seam: here FFmpeg's
generated tone (lavfi) stands in for it, read the same way."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from edge.clock import FakeClock, SystemClock
from edge.config.schema import CameraConfig
from edge.video.audio import Microphone
from edge.video.avcamera import AvCamera
from edge.video.camera import Pipeline
from edge.video.clips import ClipJob
from edge.video.codec import AUDIO_RATE, mp4_bytes, read_mp4
from edge.video.recorder import Recorder, RecorderSettings
from edge.video.runner import CameraRunner
from edge.video.sources import RawFrame, SyntheticCamera
from tests.unit.test_video_pipeline import camera
from tests.unit.videofiles import check_clip, ffmpeg, h264_file


def tone_of(path: Path) -> float:
    """The loudest frequency of a file's sound (Hz)."""
    with av.open(str(path)) as src:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in src.decode(audio=0)]).astype(
            float
        )
        rate = src.streams.audio[0].rate
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.fixture(scope="module")
def with_sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IP camera's stream: H.264 and G.711 carrying a 1 kHz tone."""
    folder = tmp_path_factory.mktemp("sound")
    return h264_file(folder / "camera.mkv", "320x240", 10, 5, gop=10, tone_hz=1000)


def run_clip(cfg: CameraConfig, tmp: Path) -> tuple[ClipJob, Path, float, Pipeline]:
    """The file read as the runner reads it (sound before each picture), an alarm at
    2.5 s, its clip."""
    source = AvCamera(cfg, FakeClock())
    pipe = Pipeline(cfg, pre_roll_s=1.5, post_roll_s=1.5)
    clips: list[ClipJob] = []
    pipe.on_clip = clips.append
    runner = CameraRunner(source, pipe, lambda *_: None)
    source.open()
    runner._opened()
    try:
        for n in range(45):
            if source.copies:
                copied = source.read_copied()
                at_ms = copied.packet.pts_ms
            else:
                frame = source.read()
                at_ms = round(frame.at_s * 1000)
            for packet in source.take_audio():
                pipe.push_packet(packet)
            if n == 25:
                plan = pipe.alarm("ev", at_ms, 1)
            pipe.push_copied(copied) if source.copies else pipe.push(frame)
    finally:
        source.close()
    clip = tmp / "clip.mp4"
    clip.write_bytes(mp4_bytes(clips[0].packets, *pipe.size))
    assert runner.status.audio == ("on" if cfg.audio else "off")
    return clips[0], clip, plan.pre_s + plan.post_s, pipe


def test_a_cameras_sound_is_in_its_clips(with_sound: Path, tmp_path: Path) -> None:
    cfg = camera(source="file", path=with_sound, width=320, height=240, audio=True)
    _job, clip, seconds, pipe = run_clip(cfg, tmp_path)
    assert pipe.copies  # the pictures passed through, the sound made AAC
    info = check_clip(clip, seconds, audio=True)
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert int(audio["sample_rate"]) == AUDIO_RATE and audio["channels"] == 1
    assert tone_of(clip) == pytest.approx(1000, abs=15)
    held = pipe.ring.figures  # the ring's bytes count the sound too
    assert held.bytes > sum(len(p.data) for p in pipe.ring.since(0) if not p.audio)


def test_sound_is_off_unless_the_camera_asks(with_sound: Path, tmp_path: Path) -> None:
    cfg = camera(source="file", path=with_sound, width=320, height=240)
    _job, clip, seconds, pipe = run_clip(cfg, tmp_path)
    check_clip(clip, seconds, audio=False)  # privacy: the track is never read
    assert not any(p.audio for p in pipe.ring.since(0))


def test_a_re_encoded_camera_keeps_its_sound(tmp_path: Path) -> None:
    path = tmp_path / "camera.avi"  # MPEG-4 Part 2 and the tone: decoded and encoded
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=5", "-f", "lavfi",
           "-i", "sine=frequency=440:sample_rate=22050", "-shortest", "-c:v", "mpeg4",
           "-c:a", "pcm_s16le", str(path))  # fmt: skip
    cfg = camera(source="file", path=path, width=320, height=240, audio=True)
    _job, clip, seconds, pipe = run_clip(cfg, tmp_path)
    assert not pipe.copies
    check_clip(clip, seconds, audio=True)
    assert tone_of(clip) == pytest.approx(440, abs=15)


def test_a_camera_without_sound_says_so(tmp_path: Path) -> None:
    path = h264_file(tmp_path / "mute.mp4", "320x240", 10, 2)
    cfg = camera(source="file", path=path, width=320, height=240, audio=True)
    source = AvCamera(cfg, FakeClock())
    runner = CameraRunner(source, Pipeline(cfg, 1.0, 1.0), lambda *_: None)
    source.open()
    runner._opened()
    source.close()
    assert runner.status.audio == "no sound"


def test_recordings_keep_the_sound_with_the_pictures(with_sound: Path, tmp_path: Path) -> None:
    """Same files, so the same retention cap and holds; an export keeps the sound."""
    cfg = camera(source="file", path=with_sound, width=320, height=240, audio=True)
    settings = RecorderSettings(tmp_path / "rec", "continuous", 10, 30, None, 1.0, 1.0)
    recorder = Recorder(settings, {"cam": 10})
    writer = recorder.writer("cam", 320, 240, audio=True)
    source = AvCamera(cfg, FakeClock())
    source.open()
    try:
        for _ in range(40):
            copied = source.read_copied()
            for packet in source.take_audio():
                writer(packet)
            writer(copied.packet)
    finally:
        source.close()
    writer.close()
    (segment,) = recorder.segments("cam")
    check_clip(segment.path, 3.9, audio=True)
    assert any(p.audio for p in read_mp4(segment.path, segment.start_ms))
    data, _first, _last = recorder.export(
        "cam", segment.start_ms, segment.end_ms, "test", "export", segment.end_ms
    )
    exported = tmp_path / "export.mp4"
    exported.write_bytes(data)
    check_clip(exported, 3.9, audio=True)
    assert tone_of(exported) == pytest.approx(1000, abs=15)


def test_a_microphone_is_heard_in_the_clip(tmp_path: Path) -> None:
    """A live input read on its own thread (the tone, paced in real time, stands in for
    the ALSA device): its packets join the camera's at the capture thread."""
    cfg = camera(width=320, height=240, fps=10)
    pipe = Pipeline(cfg, pre_roll_s=5.0, post_roll_s=0.5)
    clock = SystemClock()
    mic = Microphone(
        "sine=frequency=700:sample_rate=44100,arealtime", 32, clock, pipe.offer_audio, fmt="lavfi"
    )
    scene = SyntheticCamera(cfg, FakeClock())
    mic.start("cam")
    try:
        for i in range(25):
            pipe.push(RawFrame(scene.render(i), clock.monotonic(), round(clock.time() * 1000)))
            time.sleep(0.1)
    finally:
        mic.stop()
    assert mic.state == "stopped" and mic.packets > 20
    clip = tmp_path / "mic.mp4"
    clip.write_bytes(mp4_bytes(pipe.ring.since(0), 320, 240))
    info = check_clip(clip, 2.5, audio=True)
    assert tone_of(clip) == pytest.approx(700, abs=15)
    sound = [float(p["pts_time"]) for p in info["packets"] if p["codec_type"] == "audio"]
    assert sound[0] < 0.5 and sound[-1] > 1.8  # with the pictures, not after them


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source": "synthetic", "audio": True}, "needs audio_device"),
        ({"source": "v4l2", "device": "/dev/video0", "audio": True}, "needs audio_device"),
        ({"source": "v4l2", "audio_device": "hw 1"}, "an ALSA device name"),
        ({"source": "synthetic", "substream": "rtsp://x/2"}, "only an rtsp camera"),
        ({"source": "rtsp", "url": "rtsp://x/1", "substream": "http://x/2"}, "rtsp://"),
        ({"source": "rtsp", "url": "rtsp://x/1", "encoder": "nvenc"}, "'auto', 'libx264'"),
    ],
)
def test_sound_and_stream_settings_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraConfig(id="cam", **changes)  # type: ignore[arg-type]
    good = CameraConfig(id="cam", source="v4l2", device="/dev/video0", audio=True,
                        audio_device="plughw:CARD=Mic,DEV=0")  # fmt: skip
    assert good.audio and not CameraConfig(id="cam", source="rtsp", url="rtsp://x").audio
