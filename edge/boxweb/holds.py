"""The camera page's incident holds (issue 5): listed, and placed by the technician.

A hold keeps recorded footage past retention (see ``edge.video.records``); the
station places them with its ``hold`` command, the technician here, for the
last minutes of one camera. Each is written to the recorder's access log with
who placed it and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edge.errors import Conflict, NotFound
from edge.protocol import iso_ms
from edge.video.codec import VideoError
from edge.video.records import Hold
from edge.video.service import VideoService

WHO = "technician (box page)"
DAY_MS = 86_400_000


class Holds:
    def __init__(self, video: VideoService, wall_ms: Callable[[], int]) -> None:
        self.video = video
        self.wall_ms = wall_ms

    async def holds(self) -> list[dict[str, Any]]:
        """The active holds, newest footage first."""
        found = await asyncio.to_thread(self.video.recorder.holds)
        return [_json(h) for h in sorted(found, key=lambda h: h.to_ms, reverse=True)]

    async def place(self, camera: str, minutes: int, keep_days: int, why: str) -> dict[str, Any]:
        """Hold the last ``minutes`` of ``camera`` for ``keep_days``: NotFound for a camera
        this box does not have, Conflict when it records nothing of that time."""
        if camera not in self.video.cameras:
            raise NotFound(f"no camera {camera!r}")
        now = self.wall_ms()
        hold_id = f"page-{now}"
        until = now + keep_days * DAY_MS
        try:
            covered = await self.video.hold(
                camera, now - minutes * 60_000, now, until, WHO, why, hold_id
            )
        except VideoError as exc:
            raise Conflict(str(exc)) from exc
        hold = Hold(hold_id, camera, now - minutes * 60_000, now, until, WHO, why)
        return {**_json(hold), "segments": covered}


def _json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "camera": hold.camera,
        "from_at": iso_ms(hold.from_ms),
        "to_at": iso_ms(hold.to_ms),
        "until_at": None if hold.until_ms is None else iso_ms(hold.until_ms),
        "who": hold.who,
        "why": hold.why,
    }
