"""The recorder on a synthetic camera, frame by frame: segments cut on keyframes,
exports across segments without re-encoding (ffprobe), retention by age and quota
with incident holds (placed, released, expired), alarms-only mode, and the
append-only access log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.video.camera import Pipeline
from edge.video.codec import VideoError
from edge.video.recorder import DAY_MS, Recorder, RecorderSettings
from tests.unit.test_video_pipeline import Drive, camera, check_clip


def recorder(root: Path, mode: str = "continuous", **changes: object) -> Recorder:
    settings = {
        "root": root,
        "mode": mode,
        "segment_s": 1,
        "retention_days": 30,
        "max_bytes": None,
        "pre_roll_s": 1.0,
        "post_roll_s": 1.0,
    }
    settings.update(changes)
    return Recorder(RecorderSettings(**settings), {"cam": 10.0})  # type: ignore[arg-type]


def record(rec: Recorder, seconds: float) -> Drive:
    pipe = Pipeline(camera(), pre_roll_s=1.0, post_roll_s=1.0)
    writer = rec.writer("cam", 160, 120)
    pipe.packet_sinks.append(writer)
    drive = Drive(pipe)
    drive.run(seconds)
    writer.close()
    return drive


def test_segments_are_cut_on_keyframes_and_each_plays(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    record(rec, 3.5)
    segments = rec.segments("cam")
    assert len(segments) == 4  # 1 s, 1 s, 1 s and the last half second
    for seg in segments[:3]:
        assert seg.end_ms - seg.start_ms == 1000
        check_clip(seg.path, 1.0)
    assert [s.start_ms for s in segments] == sorted(s.start_ms for s in segments)


def test_export_of_a_range_spans_segments_without_reencoding(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    drive = record(rec, 4.0)
    start = rec.segments("cam")[0].start_ms
    data, first, last = rec.export("cam", start + 1500, start + 3200, "op7", "check", 1)
    assert first == start + 1000  # the keyframe at or before the start of the range
    assert last <= start + 3200
    path = tmp_path / "export.mp4"
    path.write_bytes(data)
    check_clip(path, (last - first) / 1000 + 0.1)
    [entry] = rec.access.entries()
    assert entry["who"] == "op7" and entry["action"] == "export" and entry["why"] == "check"
    assert drive.pipeline.frames == 40


def test_retention_by_age_and_quota_spares_held_footage(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_bytes=None, retention_days=7)
    record(rec, 3.0)
    segments = rec.segments("cam")
    first = segments[0]
    rec.hold("cam", first.start_ms, first.end_ms, "gendarmerie", "incident 42", 1)
    now = segments[-1].end_ms + 8 * DAY_MS  # everything is 8 days old
    gone = rec.sweep(now)
    assert [g.path for g in gone] == [s.path for s in segments[1:]]
    assert [s.path for s in rec.segments()] == [first.path]  # held: never deleted
    log = rec.access.entries()
    assert [e["action"] for e in log] == ["hold", "delete", "delete"]
    assert log[1]["who"] == "retention" and "older than 7 days" in log[1]["why"]


def test_quota_deletes_the_oldest_first(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    record(rec, 4.0)
    segments = rec.segments("cam")
    total = sum(s.size for s in segments)
    rec.settings = RecorderSettings(**{**rec.settings.__dict__, "max_bytes": total - 1})
    gone = rec.sweep(segments[-1].end_ms)
    assert [g.path for g in gone] == [segments[0].path]
    assert "disk quota" in rec.access.entries()[0]["why"]


def test_alarms_mode_keeps_only_the_footage_around_alarms(tmp_path: Path) -> None:
    rec = recorder(tmp_path, mode="alarms")
    pipe = Pipeline(camera(), pre_roll_s=1.0, post_roll_s=1.0)
    writer = rec.writer("cam", 160, 120)
    pipe.packet_sinks.append(writer)
    drive = Drive(pipe)
    drive.run(3.0)
    rec.mark("cam", round(drive.clock.time() * 1000), "alarm")  # an alarm at 3 s
    drive.run(7.0)
    writer.close()
    rec.settle()
    kept = rec.segments("cam")
    assert kept and rec.dropped >= 4
    alarm_ms = kept[0].start_ms
    assert all(s.start_ms <= alarm_ms + 4000 for s in kept)
    assert rec.access.entries() == []  # footage never kept is not a deletion of record


def test_a_segment_cut_short_by_a_power_cut_is_recovered_up_to_its_last_fragment(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path, segment_s=10)
    pipe = Pipeline(camera(), pre_roll_s=1.0, post_roll_s=1.0)
    writer = rec.writer("cam", 160, 120)
    pipe.packet_sinks.append(writer)
    Drive(pipe).run(3.05)  # three keyframes written, the file never closed
    [part] = list((tmp_path / "cam").glob("*.part"))
    copy = part.with_name("copy.bin")
    copy.write_bytes(part.read_bytes())  # what the disk holds at the power cut
    writer._abort()
    copy.rename(part)
    (tmp_path / "cam" / "0.mp4.part").write_bytes(b"")  # cut before its first byte
    assert rec.recover_parts() == (1, 1)
    [segment] = rec.segments("cam")
    check_clip(segment.path, (segment.end_ms - segment.start_ms) / 1000)
    assert segment.end_ms - segment.start_ms >= 2000


def test_motion_keeps_footage_in_motion_mode_only(tmp_path: Path) -> None:
    kept = {}
    for mode in ("motion", "alarms"):
        rec = recorder(tmp_path / mode, mode=mode)
        pipe = Pipeline(camera(), pre_roll_s=1.0, post_roll_s=1.0)
        writer = rec.writer("cam", 160, 120)
        pipe.packet_sinks.append(writer)
        drive = Drive(pipe)
        drive.run(3.0)
        rec.mark("cam", round(drive.clock.time() * 1000), "motion")
        drive.run(5.0)
        writer.close()
        rec.settle()
        kept[mode] = len(rec.segments("cam"))
    assert kept["motion"] >= 2 and kept["alarms"] == 0


def test_a_hold_outlasts_age_and_quota_until_released_and_both_ends_are_logged(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path, retention_days=7)
    record(rec, 3.0)
    segments = rec.segments("cam")
    middle = segments[1]
    covered = rec.hold(
        "cam", middle.start_ms + 10, middle.end_ms - 10, "cmd c1", "case 9", 1, None, "c1"
    )
    assert covered == 1
    total = sum(s.size for s in segments)
    rec.settings = RecorderSettings(**{**rec.settings.__dict__, "max_bytes": 1})
    later = segments[-1].end_ms + 40 * DAY_MS  # past the legal cap, and over quota
    rec.sweep(later)
    assert [s.path for s in rec.segments()] == [middle.path]  # held: never deleted
    assert total > middle.size
    held = rec.release("c1", "cmd c2", "case closed", later + 1)
    assert held.id == "c1"
    assert rec.holds() == []
    gone = rec.sweep(later + 2)
    assert [g.path for g in gone] == [middle.path]  # released: retention applies again
    log = [(e["action"], e["who"]) for e in rec.access.entries()]
    assert log[0] == ("hold", "cmd c1") and ("release", "cmd c2") in log
    assert log[-1] == ("delete", "retention")
    release = next(e for e in rec.access.entries() if e["action"] == "release")
    assert "case closed" in release["why"] and str(middle.start_ms + 10) in release["footage"]


def test_a_hold_ends_by_itself_at_its_until_time_logged_as_expiry(tmp_path: Path) -> None:
    rec = recorder(tmp_path, retention_days=1)
    record(rec, 2.0)
    first, second = rec.segments("cam")
    until = first.end_ms + 3 * DAY_MS
    rec.hold("cam", first.start_ms, first.end_ms, "cmd h", "case 3", 1, until, "h")
    assert rec.sweep(until - 1) == [second]  # held one stays
    assert [h.id for h in rec.holds()] == ["h"]
    assert [g.path for g in rec.sweep(until)] == [first.path]
    expiry = [e for e in rec.access.entries() if e["action"] == "release"]
    assert len(expiry) == 1 and expiry[0]["who"] == "hold expiry"
    rec.sweep(until + 1)
    assert len([e for e in rec.access.entries() if e["action"] == "release"]) == 1


def test_a_replayed_hold_is_placed_once_and_an_unknown_release_or_empty_range_fails(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path)
    record(rec, 2.0)
    first = rec.segments("cam")[0]
    for _ in range(2):
        rec.hold("cam", first.start_ms, first.end_ms, "cmd a", "case", 1, None, "a")
    assert len(rec.holds()) == 1
    assert [e["action"] for e in rec.access.entries()] == ["hold"]
    with pytest.raises(VideoError, match="no active hold 'b'"):
        rec.release("b", "cmd x", "why", 2)
    with pytest.raises(VideoError, match="no recording of camera cam"):
        rec.hold("cam", 1000, 2000, "cmd z", "case", 3, None, "z")
    rec.release("a", "cmd r", "done", 4)
    with pytest.raises(VideoError, match="no active hold 'a'"):
        rec.release("a", "cmd r", "again", 5)
    assert [e["action"] for e in rec.access.entries()] == ["hold", "release"]


def test_holds_written_before_they_had_ids_are_still_honoured(tmp_path: Path) -> None:
    rec = recorder(tmp_path, retention_days=1)
    record(rec, 2.0)
    first = rec.segments("cam")[0]
    line = {
        "camera": "cam",
        "from_ms": first.start_ms,
        "to_ms": first.end_ms,
        "who": "w",
        "why": "old",
    }
    (tmp_path / "holds.jsonl").write_text(json.dumps(line) + "\n")
    rec.sweep(first.end_ms + 5 * DAY_MS)
    assert [s.path for s in rec.segments()] == [first.path]
    rec.release("hold-1", "tech", "old case closed", 9)
    assert rec.holds() == []
