"""The page's camera routes: frames with their time, overlays, snapshots, incident holds,
and the stills and clips of the journal's events that are still on the box."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from edge.errors import Conflict, NotFound
from edge.protocol import iso_ms
from edge.web.png import gray_png
from edge.web.replies import BadRequest, dumps, error, json_object, whole

if TYPE_CHECKING:
    from edge.web.hooks import Hooks

HOLD_MINUTES = (5, 15, 30, 60, 120)  # how far back a hold from the page reaches: choices
HOLD_DAYS = (7, 30, 90)  # how long it keeps that footage
HOLD_USAGE = (
    'body must be JSON: {"camera": "...", "minutes": 5|15|30|60|120, "keep_days": 7|30|90,'
    ' "why": "1 to 200 characters"}'
)


class VideoRoutes:
    hooks: Hooks

    async def cameras(self, _request: web.Request) -> web.Response:
        status = self.hooks.status().get("cameras", {})
        view = self.hooks.cameras
        found = []
        for cam_id in view.camera_ids() if view is not None else []:
            assert view is not None
            state = status.get(cam_id, {}) if isinstance(status, Mapping) else {}
            found.append(
                {
                    "id": cam_id,
                    "status": state,
                    "overlays": view.overlays(cam_id),
                    "recording": view.recording(cam_id),
                }
            )
        return web.json_response({"cameras": found}, dumps=dumps)

    async def camera_frame(self, request: web.Request) -> web.Response:
        """The newest frame; ``X-Frame-At`` says when it was taken (UTC, ISO 8601)."""
        view, cam_id = self.hooks.cameras, request.match_info["camera"]
        if view is None or cam_id not in view.camera_ids():
            return error(404, f"no camera {cam_id!r}")
        latest = view.latest_jpeg(cam_id)
        if latest is not None:
            body, at_ms = latest
            content_type = "image/jpeg"
        else:
            gray = view.latest_gray(cam_id)
            if gray is None:
                return error(404, f"camera {cam_id!r} has no frame yet")
            body, at_ms = await asyncio.to_thread(gray_png, gray[0]), gray[1]
            content_type = "image/png"
        headers = {"X-Frame-At": iso_ms(at_ms)}
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def camera_snapshot(self, request: web.Request) -> web.Response:
        view, cam_id = self.hooks.cameras, request.match_info["camera"]
        if view is None or cam_id not in view.camera_ids():
            return error(404, f"no camera {cam_id!r}")
        try:
            jpeg = await view.snapshot(cam_id)
        except NotFound as exc:
            return error(404, str(exc))
        name = f"{cam_id}-snapshot.jpg"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return web.Response(body=jpeg, content_type="image/jpeg", headers=headers)

    # -- incident holds --------------------------------------------------------------

    async def holds(self, _request: web.Request) -> web.Response:
        if self.hooks.holds is None:
            return error(404, "no recorded footage on this box")
        found = await self.hooks.holds.holds()
        return web.json_response({"holds": found, "minutes": HOLD_MINUTES, "days": HOLD_DAYS})

    async def hold_place(self, request: web.Request) -> web.Response:
        """Hold the last minutes of one camera's footage (access log: the page, and why)."""
        if self.hooks.holds is None:
            return error(404, "no recorded footage on this box")
        try:
            camera, minutes, days, why = _hold_body(await json_object(request, HOLD_USAGE))
        except BadRequest as exc:
            return error(400, str(exc))
        try:
            hold = await self.hooks.holds.place(camera, minutes, days, why)
        except NotFound as exc:
            return error(404, str(exc))
        except Conflict as exc:
            return error(409, str(exc))
        return web.json_response({"hold": hold}, status=201)

    # -- the journal's media ---------------------------------------------------------

    async def media(self, request: web.Request) -> web.StreamResponse:
        """A still or clip of an event, while its file is still in the outbox (until the
        station has it); 404 once it has left the box."""
        journal, media_id = self.hooks.journal, request.match_info["media"]
        found = await journal.media_file(media_id) if journal is not None else None
        if found is None:
            return error(404, f"media {media_id!r} is not on the box (any more)")
        path, content_type = found
        try:
            data = await asyncio.to_thread(Path(path).read_bytes)
        except OSError:  # sent and deleted meanwhile
            return error(404, f"media {media_id!r} is not on the box (any more)")
        return web.Response(body=data, content_type=content_type)


def _hold_body(body: dict[str, object]) -> tuple[str, int, int, str]:
    camera, minutes, days = body.get("camera"), body.get("minutes"), body.get("keep_days")
    why = body.get("why")
    if not isinstance(camera, str) or not isinstance(why, str) or not 0 < len(why.strip()) <= 200:
        raise BadRequest(HOLD_USAGE)
    if (
        not whole(minutes)
        or minutes not in HOLD_MINUTES
        or not whole(days)
        or days not in HOLD_DAYS
    ):
        raise BadRequest(HOLD_USAGE)
    assert isinstance(minutes, int) and isinstance(days, int)
    return camera, minutes, days, why.strip()
