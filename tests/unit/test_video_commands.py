"""The station's clip and snapshot commands reach the video callback: accepted, then
done with the event and media ids, or failed with the camera's reason."""

from __future__ import annotations

from typing import Any

from edge.clock import FakeClock
from edge.errors import HardwareError
from edge.protocol.commands import ClipArgs, SnapshotArgs, decode_result
from edge.uplink.commands import CommandHandler
from tests.unit.test_uplink_commands import TOPICS, FakeLink, Raised, command


async def test_clip_is_accepted_then_done_with_its_media() -> None:
    clock, link = FakeClock(), FakeLink()
    asked: list[tuple[Any, str]] = []

    async def video(args: ClipArgs | SnapshotArgs, command_id: str) -> tuple[str, list[str]]:
        asked.append((args, command_id))
        return "ev-9", ["m-1"]

    handler = CommandHandler(link, TOPICS, clock, Raised(clock), video, ("entrance",))  # type: ignore[arg-type]
    args = ClipArgs("entrance", 1_799_999_000_000, 1_799_999_030_000)
    await handler.handle(command(clock, args, cid="op-clip"))
    results = [decode_result(m.payload) for m in link.sent]
    assert [r.status for r in results] == ["accepted", "done"]
    assert results[1].details == {"event_id": "ev-9", "media_ids": ["m-1"]}
    assert asked == [(args, "op-clip")]


async def test_snapshot_of_a_lost_camera_fails_with_the_reason() -> None:
    clock, link = FakeClock(), FakeLink()

    async def video(args: ClipArgs | SnapshotArgs, command_id: str) -> tuple[str, list[str]]:
        raise HardwareError("camera entrance has no picture (offline or starting)")

    handler = CommandHandler(link, TOPICS, clock, Raised(clock), video, ("entrance",))  # type: ignore[arg-type]
    await handler.handle(command(clock, SnapshotArgs("entrance"), cid="op-snap"))
    [result] = [decode_result(m.payload) for m in link.sent]  # no "accepted" for a snapshot
    assert result.status == "failed" and "no picture" in result.reason


async def test_a_camera_the_box_does_not_have_is_rejected_as_bad_args() -> None:
    clock, link = FakeClock(), FakeLink()

    async def video(args: ClipArgs | SnapshotArgs, command_id: str) -> tuple[str, list[str]]:
        raise AssertionError("never asked")

    handler = CommandHandler(link, TOPICS, clock, Raised(clock), video, ("entrance",))  # type: ignore[arg-type]
    await handler.handle(command(clock, SnapshotArgs("garage"), cid="op-x"))
    [result] = [decode_result(m.payload) for m in link.sent]
    assert result.status == "rejected"
    assert result.reason == "bad_args: no camera 'garage' on this box (cameras: entrance)"
    assert (handler.handled, handler.rejected) == (0, 1)
