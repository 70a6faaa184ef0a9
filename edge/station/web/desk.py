"""The workstation's API: the queue, an incident, and every step of its handling.

Every answer is JSON. A step refused in the incident's present state answers
409 with ``{"error": <code>, ...}`` (``held`` with the ``holder``, ``not_holder``,
``closed``, ``no_outcome``, ``not_restored``, ...): the page says it in the
operator's language. Every step goes to the main courante with the operator,
the time and the incident (:mod:`edge.station.incidents`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from edge import i18n
from edge.clock import Clock, ms
from edge.errors import EdgeError, NotFound, UplinkError
from edge.station import courante, incidents, oplog, sites, triage, videoreq, views
from edge.station.commands import CommandLink
from edge.station.incidents import Refused
from edge.station.store import StationStore
from edge.station.web.gate import OPERATOR, ROLE, Gate, json_body

log = logging.getLogger(__name__)

STEPS = ("comment", "correction", "instruction", "call", "dispatch", "inform", "on_site")


def refused(
    code: str,
    *,
    status: type[web.HTTPException] = web.HTTPConflict,
    more: dict[str, Any] | None = None,
) -> web.HTTPException:
    """``{"error": code, ...more}`` with ``status``: the page words ``code``."""
    return status(text=json.dumps({"error": code, **(more or {})}), content_type="application/json")


class Desk:
    """Construct (no I/O); :meth:`routes` adds its routes to the page's application."""

    def __init__(
        self,
        store: StationStore,
        clock: Clock,
        gate: Gate,
        escalate_s: float,
        commands: CommandLink | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.gate = gate
        self.escalate_s = escalate_s
        self.commands = commands

    def routes(self, app: web.Application) -> None:
        add, sup = app.router, self.gate.needs
        add.add_get("/api/queue", self.queue)
        add.add_get("/api/incidents/{incident_id}", self.incident)
        add.add_get("/api/events/{event_id}/incident", self.incident_of_event)
        add.add_post("/api/incidents/{incident_id}/take", self.take)
        add.add_post("/api/incidents/{incident_id}/release", self.release)
        add.add_post("/api/incidents/{incident_id}/transfer", self.transfer)
        add.add_post("/api/incidents/{incident_id}/steps", self.step)
        add.add_post("/api/incidents/{incident_id}/outcome", self.outcome)
        add.add_post("/api/incidents/{incident_id}/close", self.close)
        add.add_post("/api/incidents/{incident_id}/requests", self.request_video)
        add.add_get("/api/holders", sup("supervisor", self.holders))
        add.add_get("/api/sites", sup("supervisor", self.site_list))
        add.add_get("/api/sites/{site_id}", sup("supervisor", self.site_get))
        add.add_post("/api/sites", sup("supervisor", self.site_put))
        add.add_post("/api/sites/{site_id}/remove", sup("supervisor", self.site_remove))

    # -- reading -------------------------------------------------------------------

    def _now(self) -> int:
        return ms(self.clock.time())

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.store.read() as db:
            return fn(db, *args)

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.store.transaction() as db:
            return fn(db, *args)

    async def queue(self, _r: web.Request) -> web.Response:
        found = await asyncio.to_thread(self._read, views.queue, self._now(), self.escalate_s)
        return web.json_response(found)

    async def incident(self, request: web.Request) -> web.Response:
        incident_id = request.match_info["incident_id"]
        found = await asyncio.to_thread(
            self._read, views.incident, incident_id, self._now(), self.escalate_s
        )
        if found is None:
            raise refused("no_incident", status=web.HTTPNotFound)
        found["commands"] = self.commands is not None
        lang = i18n.choose(None, request.cookies.get(i18n.COOKIE))
        for line in found["courante"]:
            line["words"] = courante.describe(lang, courante.Entry(**line))
        return web.json_response(found)

    async def incident_of_event(self, request: web.Request) -> web.Response:
        found = await asyncio.to_thread(
            self._read, views.incident_of_event, request.match_info["event_id"]
        )
        if found is None:
            raise refused("no_incident", status=web.HTTPNotFound)
        return web.json_response({"incident": found})

    async def holders(self, _r: web.Request) -> web.Response:
        found = await asyncio.to_thread(self._read, views.holders)
        return web.json_response({"holding": found, "logged_in": self.gate.logged_in()})

    # -- steps -----------------------------------------------------------------------

    async def _step(self, fn: Callable[..., Any], *args: Any) -> web.Response:
        try:
            await asyncio.to_thread(self._write, fn, *args)
        except Refused as exc:
            raise refused(exc.code, more=dict(exc.params)) from None
        except NotFound:
            raise refused("no_incident", status=web.HTTPNotFound) from None
        return web.json_response({"ok": True})

    async def take(self, request: web.Request) -> web.Response:
        incident_id, who = request.match_info["incident_id"], request[OPERATOR]
        return await self._step(incidents.take, incident_id, who, self._now())

    async def release(self, request: web.Request) -> web.Response:
        return await self._step(
            incidents.release,
            request.match_info["incident_id"],
            request[OPERATOR],
            request[ROLE],
            self._now(),
        )

    async def transfer(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        to = body.get("to")
        if (
            not isinstance(to, str)
            or await asyncio.to_thread(self._read, oplog.account, to) is None
        ):
            raise refused("no_operator", status=web.HTTPBadRequest)
        return await self._step(
            incidents.transfer,
            request.match_info["incident_id"],
            request[OPERATOR],
            request[ROLE],
            to,
            self._now(),
        )

    async def step(self, request: web.Request) -> web.Response:
        """A comment, a correction, an instruction done, a call, a dispatch, ..."""
        body = await json_body(request)
        action = body.get("action")
        if action not in STEPS:
            raise refused("bad_step", status=web.HTTPBadRequest)
        detail, text, corrects = _detail(action, body)
        return await self._step(
            incidents.act,
            request.match_info["incident_id"],
            request[OPERATOR],
            request[ROLE],
            action,
            detail,
            self._now(),
            text,
            corrects,
        )

    async def outcome(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        code, cause = body.get("code"), body.get("cause", "")
        if code not in triage.OUTCOMES or triage.text_problem(cause, required=False):
            raise refused("bad_outcome", status=web.HTTPBadRequest)
        return await self._step(
            incidents.set_outcome,
            request.match_info["incident_id"],
            request[OPERATOR],
            request[ROLE],
            code,
            cause,
            self._now(),
        )

    async def close(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        reason = body.get("reason", "")
        if triage.text_problem(reason, required=False):
            raise refused("bad_text", status=web.HTTPBadRequest)
        return await self._step(
            incidents.close,
            request.match_info["incident_id"],
            request[OPERATOR],
            request[ROLE],
            reason,
            self._now(),
        )

    async def request_video(self, request: web.Request) -> web.Response:
        """Ask the box for a snapshot now, or a clip of the last N seconds."""
        incident_id = request.match_info["incident_id"]
        body = await json_body(request)
        if self.commands is None:
            raise refused("no_broker", status=web.HTTPServiceUnavailable)
        kind, camera, device = body.get("type"), body.get("camera"), body.get("device")
        seconds = body.get("seconds")
        if not isinstance(camera, str) or not isinstance(device, str):
            raise refused("bad_request", status=web.HTTPBadRequest)
        if device not in await asyncio.to_thread(
            self._read, views.devices_of_incident, incident_id
        ):
            raise refused("bad_request", status=web.HTTPBadRequest)
        try:
            cmd = videoreq.command(
                str(kind), camera, seconds if isinstance(seconds, int) else None, self._now()
            )
        except ValueError:
            raise refused("bad_request", status=web.HTTPBadRequest) from None
        response = await self._step(
            videoreq.record, cmd, incident_id, device, request[OPERATOR], request[ROLE], self._now()
        )
        try:
            await self.commands.send(cmd, device)
        except (UplinkError, ValueError) as exc:
            log.warning("command %s to %s not sent: %s", cmd.id, device, exc)
            await asyncio.to_thread(self._write, videoreq.not_sent, cmd.id, str(exc), self._now())
            raise refused("not_sent", status=web.HTTPServiceUnavailable) from None
        log.info("operator %s asked %s for a %s (%s)", request[OPERATOR], device, cmd.type, cmd.id)
        return response

    # -- sites (supervisors) ------------------------------------------------------------

    async def site_list(self, _r: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self._read, sites.listing))

    async def site_get(self, request: web.Request) -> web.Response:
        site = await asyncio.to_thread(self._read, sites.get, request.match_info["site_id"])
        if site is None:
            raise refused("no_site", status=web.HTTPNotFound)
        return web.json_response(site.model_dump(mode="json"))

    async def site_put(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            site = sites.parse_site(body, "site")
        except EdgeError as exc:
            problems = getattr(exc, "messages", [str(exc)])
            raise refused(
                "invalid_site", status=web.HTTPBadRequest, more={"problems": problems}
            ) from None
        who, now = request[OPERATOR], self._now()
        try:
            new = await asyncio.to_thread(self._write, _put_site, site, who, now)
        except sites.SiteConflict as exc:
            raise refused(
                "invalid_site", status=web.HTTPConflict, more={"problems": [str(exc)]}
            ) from None
        return web.json_response({"ok": True, "created": new})

    async def site_remove(self, request: web.Request) -> web.Response:
        site_id = request.match_info["site_id"]
        gone = await asyncio.to_thread(
            self._write, _remove_site, site_id, request[OPERATOR], self._now()
        )
        if not gone:
            raise refused("no_site", status=web.HTTPNotFound)
        return web.json_response({"ok": True})


def _put_site(db: Any, site: sites.Site, who: str, now: int) -> bool:
    new = sites.put(db, site, who, now)
    courante.append(
        db,
        now,
        who,
        "site",
        site_key=f"site:{site.id}",
        detail={"site": site.id, "change": "created" if new else "updated"},
    )
    return new


def _remove_site(db: Any, site_id: str, who: str, now: int) -> bool:
    gone = sites.remove(db, site_id)
    if gone:
        courante.append(
            db,
            now,
            who,
            "site",
            site_key=f"site:{site_id}",
            detail={"site": site_id, "change": "removed"},
        )
    return gone


def _detail(action: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, int | None]:
    """What a step records, checked: (detail, text, the line it corrects)."""
    text = body.get("text", "")
    if triage.text_problem(text, required=action in ("comment", "correction")):
        raise refused("bad_text", status=web.HTTPBadRequest)
    if action == "correction":
        corrects = body.get("corrects")
        if not isinstance(corrects, int) or isinstance(corrects, bool):
            raise refused("bad_request", status=web.HTTPBadRequest)
        return {}, text, corrects
    if action == "instruction":
        category, step = body.get("category"), body.get("step")
        if category not in sites.CATEGORIES or not isinstance(step, int) or not 0 <= step < 100:
            raise refused("bad_request", status=web.HTTPBadRequest)
        return {"category": category, "step": step, "label": _short(body.get("label"))}, text, None
    if action == "call":
        result = body.get("result")
        if result not in triage.CALL_RESULTS:
            raise refused("bad_request", status=web.HTTPBadRequest)
        return (
            {
                "contact": _short(body.get("contact")),
                "phone": _short(body.get("phone")),
                "result": result,
            },
            text,
            None,
        )
    if action in ("dispatch", "inform", "on_site"):
        who = body.get("to")
        if who not in triage.DISPATCH:
            raise refused("bad_request", status=web.HTTPBadRequest)
        return {"to" if action != "on_site" else "who": who}, text, None
    return {}, text, None


def _short(value: object) -> str:
    if not isinstance(value, str) or len(value) > 300:
        raise refused("bad_request", status=web.HTTPBadRequest)
    return value
