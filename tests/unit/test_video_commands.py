"""The station's clip and snapshot commands reach the video callback: accepted, then
done with the event and media ids, or failed with the camera's reason. Hold and
release reach the holds callback: done with its details, or failed."""

from __future__ import annotations

from typing import Any

from edge.clock import FakeClock
from edge.errors import HardwareError
from edge.protocol.commands import (
    ClipArgs,
    Detail,
    HoldArgs,
    ReleaseArgs,
    SnapshotArgs,
    decode_result,
)
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


async def test_hold_and_release_are_answered_done_with_their_details_or_failed() -> None:
    clock, link = FakeClock(), FakeLink()
    asked: list[tuple[Any, str]] = []

    async def holds(args: HoldArgs | ReleaseArgs, command_id: str) -> dict[str, Detail]:
        asked.append((args, command_id))
        if isinstance(args, ReleaseArgs):
            raise HardwareError(f"no active hold {args.hold!r} on this box")
        return {"hold_id": command_id, "segments": 3}

    handler = CommandHandler(
        link,  # type: ignore[arg-type]
        TOPICS,
        clock,
        Raised(clock),  # type: ignore[arg-type]
        None,
        ("entrance",),
        holds,
    )
    now = round(clock.time() * 1000)
    hold = HoldArgs("entrance", now - 60_000, now - 1_000, now + 86_400_000, "PV 12")
    await handler.handle(command(clock, hold, cid="op-hold"))
    await handler.handle(command(clock, ReleaseArgs("op-x", "closed"), cid="op-rel"))
    done, failed = [decode_result(m.payload) for m in link.sent]  # no "accepted": quick
    assert (done.status, done.details) == ("done", {"hold_id": "op-hold", "segments": 3})
    assert failed.status == "failed" and failed.reason == "no active hold 'op-x' on this box"
    assert asked == [(hold, "op-hold"), (ReleaseArgs("op-x", "closed"), "op-rel")]


async def test_a_hold_on_a_box_that_does_not_record_fails_as_unavailable() -> None:
    clock, link = FakeClock(), FakeLink()
    handler = CommandHandler(link, TOPICS, clock, Raised(clock))  # type: ignore[arg-type]
    now = round(clock.time() * 1000)
    hold = HoldArgs("entrance", now - 60_000, now - 1_000, now + 86_400_000, "PV 12")
    await handler.handle(command(clock, hold, cid="op-hold"))
    [result] = [decode_result(m.payload) for m in link.sent]
    assert result.status == "failed" and result.reason.startswith("unavailable: ")
