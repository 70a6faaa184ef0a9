"""The recorder when its disk is full or its folder cannot be written: one trouble,
the pre-alarm ring and alarm clips unaffected, retries with backoff, the oldest
unheld footage freed, and the restore once segments are written again."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
from pathlib import Path
from typing import BinaryIO

from edge.video.camera import Pipeline
from edge.video.codec import mp4_bytes
from edge.video.recorder import RESTORE_QUIET_MS, Recorder, RecorderSettings, open_segment_file
from tests.unit.test_video_pipeline import Drive, camera, check_clip


class Disk:
    """The recorder's one file-writing seam (``Recorder.opener``), with a switch that
    makes every write fail as a full disk does (OSError ENOSPC). This is the hardware
    seam of the recorder: as root, a read-only folder is still writable, and no small
    filesystem can be mounted here, so a full disk is injected at the file."""

    def __init__(self) -> None:
        self.full = False
        self.opened = 0

    def __call__(self, path: Path) -> BinaryIO:
        self.opened += 1
        return _File(self, open_segment_file(path))  # type: ignore[return-value]


class _File(io.RawIOBase):
    def __init__(self, disk: Disk, raw: BinaryIO) -> None:
        self.disk, self.raw = disk, raw

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.raw.write(data)  # type: ignore[arg-type]

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


def setup(
    root: Path, disk: Disk | None = None
) -> tuple[Recorder, Drive, list[tuple[bool, str]], object]:
    troubles: list[tuple[bool, str]] = []
    settings = RecorderSettings(root, "continuous", 1, 30, None, 1.0, 1.0)
    opener = disk if disk is not None else open_segment_file
    rec = Recorder(settings, {"cam": 10.0}, lambda f, t: troubles.append((f, t)), opener)
    pipe = Pipeline(camera(), pre_roll_s=1.0, post_roll_s=1.0)
    writer = rec.writer("cam", 160, 120)
    pipe.packet_sinks.append(writer)
    return rec, Drive(pipe), troubles, writer


def test_full_disk_one_trouble_frees_the_oldest_unheld_keeps_clips_then_restores(
    tmp_path: Path,
) -> None:
    disk = Disk()
    rec, drive, troubles, _writer = setup(tmp_path, disk)
    drive.run(4.0)
    before = rec.segments("cam")
    assert len(before) == 3
    held, oldest_free = before[0], before[1]
    rec.hold("cam", held.start_ms, held.end_ms, "police", "case 7", 1, None, "h1")
    full_ms = drive.now_ms
    disk.full = True
    drive.run(1.55)
    plan = drive.pipeline.alarm("ev-1", drive.now_ms, 1)  # an alarm while the disk is full
    drive.run(8.0)
    # one trouble, however many retries
    assert len(troubles) == 1 and troubles[0][0] is True
    assert "disk full" in troubles[0][1] and str(tmp_path) in troubles[0][1]
    assert rec.failing == troubles[0][1]
    # retried with backoff (1, 2, 4 s of camera time), not at each of the 9 keyframes
    assert disk.opened - 4 == 3
    # room made from the oldest footage that is not held; the hold stays
    on_disk = [s.path for s in rec.segments("cam")]
    assert held.path in on_disk and oldest_free.path not in on_disk
    deletions = [e for e in rec.access.entries() if e["action"] == "delete"]
    assert deletions and all("disk full" in e["why"] for e in deletions)
    assert str(oldest_free.start_ms) in deletions[0]["footage"]
    # the segment open when the disk filled was salvaged up to its last fragment, or dropped
    assert not list((tmp_path / "cam").glob("*.part"))
    # the ring and the alarm clip never needed the recorder's disk
    assert drive.pipeline.ring.figures.bytes > 0
    assert len(drive.stills) == 5  # 2 before, 1 at, 2 after the alarm
    [clip] = drive.clips
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4_bytes(clip.packets, 160, 120))
    check_clip(path, plan.pre_s + plan.post_s)
    # disk freed: the next retry writes again; the restore once it has written for a
    # minute (hysteresis: one trouble/restore pair per episode), and only once
    disk.full = False
    drive.run(8.5)
    assert [f for f, _ in troubles] == [True]
    assert rec.failing is not None  # the episode is not over yet
    drive.run(RESTORE_QUIET_MS / 1000 + 1)
    assert [f for f, _ in troubles] == [True, False]
    assert "written again" in troubles[1][1] and rec.failing is None
    after = [s for s in rec.segments("cam") if s.start_ms > full_ms + 9000]
    assert len(after) >= 2
    check_clip(after[0].path, (after[0].end_ms - after[0].start_ms) / 1000)


def test_recordings_folder_replaced_by_a_file_is_a_trouble_until_it_is_a_folder(
    tmp_path: Path,
) -> None:
    """A real unwritable path: the camera's folder is a file (mkdir fails)."""
    root = tmp_path / "recordings"
    rec, drive, troubles, _writer = setup(root)
    root.mkdir()
    (root / "cam").write_text("not a folder")
    drive.run(3.0)
    assert len(troubles) == 1 and troubles[0][0] is True
    assert "cannot write" in troubles[0][1] and "File exists" in troubles[0][1]
    assert rec.segments() == [] and rec.access.entries() == []  # nothing deleted for it
    (root / "cam").unlink()
    drive.run(6.0)  # the next retry (4 s backoff at most) finds a folder
    drive.run(RESTORE_QUIET_MS / 1000 + 1)
    assert [f for f, _ in troubles] == [True, False]
    assert len(rec.segments("cam")) >= 2


def test_a_disk_that_fills_and_frees_again_and_again_is_one_trouble_and_one_restore(
    tmp_path: Path,
) -> None:
    """The fault campaign saw "recorder: disk full" and its restore 31 times in 284 s:
    continuous recording refilled what make_room freed. Two minutes of a disk that is
    full 3 s out of every 5 s now give one trouble, then one restore after a quiet
    minute."""
    disk = Disk()
    _rec, drive, troubles, _writer = setup(tmp_path, disk)
    drive.run(2.0)
    for _ in range(24):  # 120 s of flapping
        disk.full = True
        drive.run(3.0)
        disk.full = False
        drive.run(2.0)
    assert [f for f, _ in troubles] == [True]
    drive.run(RESTORE_QUIET_MS / 1000 + 5)
    assert [f for f, _ in troubles] == [True, False]


def test_recording_yields_to_alarm_media_waiting_for_room(tmp_path: Path) -> None:
    """While an alarm's still or clip waits for room on a full disk, no new segment is
    begun (continuous recording would take the room made for it); it resumes after."""
    rec, drive, _troubles, _writer = setup(tmp_path)
    drive.run(2.5)
    count = len(rec.segments("cam"))
    rec.yield_to("clip-1", True)
    drive.run(4.0)
    assert len(rec.segments("cam")) <= count + 1  # the open one is closed, nothing new
    assert not list((tmp_path / "cam").glob("*.part"))
    rec.yield_to("clip-1", False)
    drive.run(6.0)  # after the backoff, writing again
    assert len(rec.segments("cam")) >= count + 2


def test_a_new_segment_keeps_keep_free_bytes_free_by_deleting_the_oldest(
    tmp_path: Path,
) -> None:
    rec, drive, _troubles, _writer = setup(tmp_path)
    drive.run(4.0)
    segments = rec.segments("cam")
    assert len(segments) >= 3
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    # as if the disk had just one segment's worth less free than asked
    rec.settings = dataclasses.replace(rec.settings, keep_free_bytes=free + segments[0].size)
    drive.run(1.0)
    gone = [e for e in rec.access.entries() if e["action"] == "delete"]
    assert gone and str(segments[0].start_ms) in gone[0]["footage"]
    assert segments[0].path not in [g.path for g in rec.segments("cam")]
