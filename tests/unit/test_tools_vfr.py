"""The field tools read any file's clock: each picture keeps its own time (a camera that
froze for 20 s, a variable rate), a header that declares more frames than the file holds
is no truncation (judged by the duration), and a file that really is cut short prints
the rows that were read before its error, which counts them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.__main__ import main
from tests.unit.test_tools_motion import config, synthetic_video
from tests.unit.videofiles import probe, vfr_file


@pytest.fixture(scope="module", params=["mkv", "avi"])
def frozen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s, a 20 s freeze, 3 s: H.264 in Matroska (passed through), or MPEG-4 in AVI
    (re-encoded) whose header declares the 260 frames of the constant-rate grid."""
    return vfr_file(tmp_path_factory.mktemp("vfr") / f"frozen.{request.param}")


def rows_of(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_the_files_are_what_they_say(frozen: Path) -> None:
    info = probe(frozen)
    frames = [f for f in info["frames"] if f["media_type"] == "video"]
    assert len(frames) == 60
    assert float(frames[30]["pts_time"]) - float(frames[29]["pts_time"]) == pytest.approx(20.1)
    if frozen.suffix == ".avi":  # the header over-declares: 260 frames
        assert next(s for s in info["streams"] if s["codec_type"] == "video")["nb_frames"] == "260"


def test_motion_rows_carry_each_pictures_own_time(
    frozen: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    code, rows, err = rows_of(["diag", "motion", str(frozen), "--config", str(path)], capsys)
    assert code == 0, err
    assert "truncated" not in err
    assert len(rows) == 60  # every real picture, none invented for the declared 260
    times = [r["t_s"] for r in rows]
    assert times[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert times[30] == pytest.approx(23.0, abs=0.001)  # not 3.0: the freeze is kept
    assert times[-1] == pytest.approx(25.9, abs=0.001)
    assert rows[30]["at"] == "2027-01-15T08:00:23.000Z"


def test_a_clip_after_the_freeze_is_cut_at_the_right_time(
    frozen: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)  # pre_roll_s = post_roll_s = 5
    out = tmp_path / "cut"
    args = ["diag", "clip", str(frozen), "--config", str(path), "--at", "24", "--out", str(out)]
    code, rows, err = rows_of(args, capsys)
    assert code == 0, err
    stills = {r["offset_s"]: r["t_s"] for r in rows if r["media"] == "still"}
    assert stills[0.0] == pytest.approx(24.0, abs=0.01)
    assert stills[-1.0] == pytest.approx(23.0, abs=0.01)
    clip = next(r for r in rows if r["media"] == "clip")
    assert clip["t_s"] == 2.0  # the keyframe at or before 19 s: the last before the freeze
    assert clip["frames"] == 40  # 10 before the freeze, 30 after
    assert clip["pre_s"] == pytest.approx(22.0)


def test_a_truncated_file_prints_the_rows_read_then_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, path = config(tmp_path)
    whole = synthetic_video(tmp_path / "scene.avi", 110, 200)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, rows, err = rows_of(["diag", "motion", str(cut), "--config", str(path)], capsys)
    assert code == 1
    assert 0 < len(rows) < 110  # what could be read, printed
    assert "truncated" in err and f"the {len(rows)} row(s) above" in err
