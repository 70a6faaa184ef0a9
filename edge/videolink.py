"""What links the video stage to the outbox and to the station's video commands.

The video stage imports no other stage: the station's ``snapshot``, ``clip``,
``hold`` and ``release`` commands, and the media owed after a restart, go
through here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from edge.clock import Clock, ms
from edge.codes import Condition
from edge.errors import HardwareError, StorageError
from edge.model import Event, MediaDue, new_event_id
from edge.outbox.aio import AsyncOutbox
from edge.protocol.commands import ClipArgs, Detail, HoldArgs, ReleaseArgs, SnapshotArgs
from edge.video.service import VideoService

log = logging.getLogger(__name__)
RaiseEvent = Callable[[Condition, bool, str], Awaitable[Event]]


class VideoLink:
    def __init__(
        self, video: VideoService, outbox: AsyncOutbox, raise_event: RaiseEvent, clock: Clock
    ) -> None:
        self.video = video
        self.outbox = outbox
        self.raise_event = raise_event
        self.clock = clock

    async def owed(self, owed: list[MediaDue]) -> None:
        """Stills and clips that events announced before a stop or power cut and that
        were never queued: cut from the recordings still on disk, or the station is told
        plainly that they are lost (a lost notice, PROTOCOL.md 3.5)."""
        for due in owed:
            try:
                content_type, data = await self.video.cut(due)
            except HardwareError as exc:
                why = (
                    f"not recorded: the box stopped (power cut or restart) before this "
                    f"{due.kind} was complete, and no recording on the box covers it ({exc})"
                )
                log.warning("%s %s of event %s: %s", due.kind, due.id, due.event_id, why)
                with contextlib.suppress(StorageError):  # else: told at the next start
                    await self.outbox.lose_due(due, why)
                continue
            try:
                await self.outbox.put_due_media(due, content_type, data)
            except StorageError as exc:  # still owed: tried again at the next start
                log.error("%s %s of event %s not queued: %s", due.kind, due.id, due.event_id, exc)
                continue
            log.warning(
                "%s %s of event %s cut from the recordings after a restart (%d bytes)",
                due.kind,
                due.id,
                due.event_id,
                len(data),
            )

    async def command(
        self, args: ClipArgs | SnapshotArgs, command_id: str
    ) -> tuple[str, list[str]]:
        """A station's snapshot or clip command; a manual test event (601) carries the file."""
        if isinstance(args, SnapshotArgs):
            data = await self.video.snapshot_jpeg(args.camera)
            kind, ctype, what = "still", "image/jpeg", f"snapshot of camera {args.camera}"
        else:
            who = f"station command {command_id}"
            data = await self.video.export_clip(args.camera, args.from_ms, args.to_ms, who)
            kind, ctype, what = "clip", "video/mp4", f"recording of camera {args.camera}"
        event = await self.raise_event(
            Condition.MANUAL_TEST, False, f"{what} for station command {command_id}"
        )
        media_id = new_event_id(ms(self.clock.time()))
        try:
            await self.outbox.put_media(event, media_id, kind, ctype, data)
        except StorageError as exc:
            raise HardwareError(f"could not queue the {kind}: {exc}") from exc
        return event.id, [media_id]

    async def hold(self, args: HoldArgs | ReleaseArgs, command_id: str) -> dict[str, Detail]:
        """A station's incident hold on recorded footage, or its release (access log)."""
        who = f"station command {command_id}"
        if isinstance(args, ReleaseArgs):
            await self.video.release(args.hold, who, args.reason)
            return {"hold_id": args.hold}
        covered = await self.video.hold(
            args.camera, args.from_ms, args.to_ms, args.until_ms, who, args.reason, command_id
        )
        return {"hold_id": command_id, "segments": covered}
