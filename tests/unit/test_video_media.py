"""An alarm's stills and clip on their way to the outbox (edge/video/service.py): they
wait for room on a full disk while recording yields, a burst of alarms keeps memory
bounded, and what cannot be made or stored becomes a lost notice. A real synthetic
camera and encoder; the outbox is the test's (the disk is the hardware seam)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.clock import SystemClock, ms
from edge.codes import Condition
from edge.config import parse
from edge.errors import DiskFull
from edge.model import Event, box_event
from edge.video import service
from edge.video.service import VideoService
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.timeout(60)


class Sink:
    """What the video service hands to the outbox: media and lost notices."""

    def __init__(self) -> None:
        self.media: list[tuple[str, str]] = []  # (media id, kind)
        self.lost: list[tuple[str, str, str]] = []  # (media id, kind, why)
        self.full = 0  # the next puts that find the disk full
        self.gate = asyncio.Event()
        self.gate.set()

    async def put_media(
        self, event: Event, media_id: str, kind: str, ctype: str, data: bytes
    ) -> None:
        await self.gate.wait()
        if self.full:
            self.full -= 1
            raise DiskFull("cannot write media: [Errno 28] No space left on device")
        self.media.append((media_id, kind))

    async def put_lost(self, event: Event, media_id: str, kind: str, why: str) -> None:
        self.lost.append((media_id, kind, why))


async def _trouble(lost: bool, text: str) -> None:
    pass


async def _video(tmp_path: Path, sink: Sink) -> VideoService:
    text = DEMO_CONFIG.read_text()
    for old, new in (
        ("width = 640\nheight = 360\nfps = 10", "width = 160\nheight = 120\nfps = 10"),
        ("pre_roll_s = 5\npost_roll_s = 5", "pre_roll_s = 1\npost_roll_s = 1"),
    ):
        text = text.replace(old, new)
    cfg = parse(text, "test.toml")
    video = VideoService(
        cfg, tmp_path, SystemClock(), sink.put_media, _trouble, put_lost=sink.put_lost
    )
    video.start()
    for _ in range(100):  # the ring holds a second or more
        if video.status()["cameras"]["entrance"]["ring_seconds"] >= 1:
            break
        await asyncio.sleep(0.05)
    return video


def _alarm() -> Event:
    return box_event(Condition.FIRE, False, "fire", ms(SystemClock().time()))


async def test_a_still_waits_for_room_while_recording_yields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MEDIA_RETRY_MAX_S", 0.2)
    sink = Sink()
    video = await _video(tmp_path, sink)
    try:
        sink.full = 3  # the disk is full for the first tries
        yielded = []
        _event, due = video.plan(_alarm(), ("entrance",))
        for _ in range(200):
            yielded.append(video.recorder.yielding)
            if len(sink.media) == 6:
                break
            await asyncio.sleep(0.02)
        assert sorted(k for _m, k in sink.media) == ["clip"] + ["still"] * 5
        assert {m for m, _k in sink.media} == {d.id for d in due}
        assert any(yielded) and not video.recorder.yielding  # yielded, then resumed
        assert sink.lost == [] and not video.media_waiting
    finally:
        await video.stop()


async def test_media_that_never_find_room_are_told_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MEDIA_WAIT_S", 0.6)
    monkeypatch.setattr(service, "MEDIA_RETRY_MAX_S", 0.2)
    sink = Sink()
    video = await _video(tmp_path, sink)
    try:
        sink.full = 10**6
        _event, due = video.plan(_alarm(), ("entrance",))
        for _ in range(200):
            if len(sink.lost) == 6:
                break
            await asyncio.sleep(0.02)
        assert {m for m, _k, _w in sink.lost} == {d.id for d in due}
        assert all(why.startswith("disk full for") for _m, _k, why in sink.lost)
        assert not video.recorder.yielding
    finally:
        await video.stop()


async def test_a_burst_of_alarms_keeps_the_stills_in_memory_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_PENDING_STILLS", 12)
    sink = Sink()
    sink.gate.clear()  # the outbox is slow: nothing is queued for now
    video = await _video(tmp_path, sink)
    try:
        for _ in range(6):  # 30 stills at once
            video.plan(_alarm(), ("entrance",))
        for _ in range(100):
            if len(sink.lost) >= 18:
                break
            await asyncio.sleep(0.02)
        assert video.stills_pending <= 12
        skipped = [why for _m, kind, why in sink.lost if kind == "still"]
        assert len(skipped) >= 18 and all(w.startswith("skipped:") for w in skipped)
        sink.gate.set()
        for _ in range(200):
            if video.stills_pending == 0:
                break
            await asyncio.sleep(0.02)
        assert video.stills_pending == 0
    finally:
        sink.gate.set()
        await video.stop()
