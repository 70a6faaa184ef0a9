"""edge diag clip: the clip and stills of an alarm at T, through the box's camera pipeline;
checked with the same ffprobe checks as live clips."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from edge.__main__ import main
from tests.unit.test_tools_motion import DATA, FPS, config, config_text, synthetic_video
from tests.unit.test_video_pipeline import check_clip
from tests.unit.videofiles import annexb_packets, slices

FRAMES = 120  # 12 s at 10 fps


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_video(tmp_path_factory.mktemp("clip") / "scene.avi", FRAMES, FRAMES)


def cut(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[list[dict], str]:
    assert main(["diag", "clip", *args]) == 0
    out, err = capsys.readouterr()
    return [json.loads(line) for line in out.splitlines()], err


def check_stills(rows: list[dict], alarm_s: float) -> None:
    stills = [r for r in rows if r["media"] == "still"]
    assert [r["offset_s"] for r in stills] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    for row in stills:
        assert abs(row["t_s"] - (alarm_s + row["offset_s"])) <= 0.4  # STILL_TOLERANCE_MS
        with av.open(row["path"]) as jpeg:
            assert next(jpeg.decode(video=0)).width == 160


def test_clip_of_an_alarm_passes_the_live_clip_checks(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)  # pre_roll_s = post_roll_s = 5 (the demo's)
    rows, err = cut(
        [str(video), "--config", str(path), "--at", "6", "--out", str(tmp_path)], capsys
    )
    clip = rows[0]
    assert clip["media"] == "clip"
    assert clip["pre_s"] == pytest.approx(5.0, abs=0.11)  # keyframes every second
    assert clip["post_s"] == pytest.approx(5.0, abs=0.11)
    info = check_clip(Path(clip["path"]), clip["pre_s"] + clip["post_s"])
    assert len(info["frames"]) == clip["frames"]
    check_stills(rows, 6.0)
    assert "5.00 s after (asked 5)" in err and "5 of 5 stills" in err


def test_file_ending_early_delivers_less_post_roll(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    rows, _err = cut(
        [str(video), "--config", str(path), "--at", "10", "--out", str(tmp_path)], capsys
    )
    clip = rows[0]
    assert clip["post_s"] == pytest.approx((FRAMES - 1) / FPS - 10, abs=0.01)
    check_clip(Path(clip["path"]), clip["pre_s"] + clip["post_s"])


def test_h264_file_is_stream_copied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An H.264 file goes the stream-copy way (no re-encoding), as such a camera would."""
    source = synthetic_video(tmp_path / "scene.avi", 60, 60)
    h264 = tmp_path / "scene.mp4"
    with av.open(str(source)) as src, av.open(str(h264), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"g": str(FPS), "bf": "0"}  # as IP cameras send: no B-frames
        for frame in src.decode(video=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _cfg, path = config(tmp_path)
    rows, _err = cut(
        [str(h264), "--config", str(path), "--at", "3", "--out", str(tmp_path)], capsys
    )
    clip = rows[0]
    assert clip["pre_s"] == pytest.approx(3.0, abs=0.11)  # the file starts 3 s before
    check_clip(Path(clip["path"]), clip["pre_s"] + clip["post_s"])
    theirs = [slices(p) for p in annexb_packets(h264)]
    mine = [slices(p) for p in annexb_packets(Path(clip["path"]))]
    assert mine == theirs[: len(mine)]  # the file's own pictures, byte for byte


@pytest.mark.slow  # 300 frames of 640x360 encoded
def test_real_footage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "bgslibrary_video.avi"
    if not path.is_file():
        pytest.skip(f"real footage not present in {DATA}")
    _cfg, cfg_path = config(tmp_path, config_text(640, 360))
    args = [str(path), "--config", str(cfg_path), "--at", "7", "--out", str(tmp_path)]
    rows, _err = cut([*args, "--start", "2026-11-28T03:00:00Z"], capsys)
    clip = rows[0]
    assert clip["pre_s"] == pytest.approx(5.0, abs=0.11)
    check_clip(Path(clip["path"]), clip["pre_s"] + clip["post_s"])
    assert len([r for r in rows if r["media"] == "still"]) == 5


def test_bad_input(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _cfg, path = config(tmp_path)
    base = ["diag", "clip", str(video), "--config", str(path), "--out", str(tmp_path)]
    assert main([*base, "--at", "30"]) == 2
    assert "after the end of the file" in capsys.readouterr().err
    assert main([*base, "--at", "-1"]) == 2
    assert "not negative" in capsys.readouterr().err
    truncated = tmp_path / "half.avi"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    args = ["diag", "clip", str(truncated), "--config", str(path), "--out", str(tmp_path / "t")]
    assert main([*args, "--at", "1"]) == 1
    assert "truncated" in capsys.readouterr().err
