"""Contract: what a real box sends, the workstation reads as the box means it.

A real box (the demo's config on mock pins, its synthetic camera and motion stage),
a real mosquitto and the real receiver: a fire alarm goes through, and the page's API
must show the motion evidence and the video exactly as the alarm's ``extra`` carries
them (PROTOCOL.md 3.3), the stills and clip the box then sends, the box's location from
its birth (3.1), and the answer to a snapshot and a clip command (3.6, 3.7).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from edge.station import courante, extras
from tests.conftest import Broker
from tests.integration.workstation import DEVICE, Chain, chain, logged_in

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]


async def test_a_real_box_s_alarm_as_the_page_reads_it(broker: Broker, tmp_path: Path) -> None:
    async with chain(broker, tmp_path, site=False) as desk:
        desk.box.inputs.simulate("in3", True)  # the fire panel's output
        incident = await desk.incident()
        http = await logged_in(desk.base)
        try:
            detail = await ready(desk, http, incident)
            ((alarm,),) = [detail["alarms"]]
            with desk.store.read() as db:
                (body,) = db.execute("SELECT body FROM events WHERE id = ?", (alarm["id"],))
            extra: dict[str, str] = json.loads(body[0])["extra"]
            # the evidence, as the box's motion stage wrote it (motion_* keys)
            assert extra["motion_camera"] == "entrance"
            (seen,) = alarm["evidence"]
            assert seen["camera"] == extra["motion_camera"]
            assert seen["seen"] is (extra["motion_seen"] == "true")
            assert seen["frames"] == int(extra["motion_frames"])
            assert seen["areas"] == [a for a in extra["motion_areas"].split(",") if a]
            assert seen["boxes"] == [list(map(int, b.split(","))) for b in
                                     extra["motion_boxes"].split(";") if b]  # fmt: skip
            # the video, as the box's clip planner wrote it (clip_*, still_* keys)
            (plan,) = alarm["videos"]
            assert plan["clip_id"] == extra["clip_id"] and plan["camera"] == "entrance"
            assert plan["pre_s"] == pytest.approx(float(extra["clip_pre_s"]))
            assert plan["start_ms"] == int(extra["clip_start_ms"])
            assert [s["media_id"] for s in plan["stills"]] == extra["still_ids"].split()
            assert [s["offset_s"] for s in plan["stills"]] == [-1, -0.5, 0, 0.5, 1]
            ready_ids = {m["media_id"] for m in alarm["media"] if m["state"] == "ready"}
            assert ready_ids == {*extra["still_ids"].split(), extra["clip_id"]}
            assert extras.cameras(extra) == detail["cameras"] == ["entrance"]
            # the box's location, from its birth (the box is on no site of the station)
            site = detail["site"]
            assert (site["linked"], site["name"], site["address"]) == (
                False, "Demo site (simulated panel)", "12 rue de la Paix, 75002 Paris",
            )  # fmt: skip
            assert (site["latitude"], site["longitude"]) == (48.8686, 2.3314)
            assert detail["boxes"][0]["supervision"] == "ok"
            # fresh video: the holder asks, the box answers, the file comes in place
            assert (await post(http, f"/api/incidents/{incident}/take", {}))[0] == 200
            asked = {"type": "snapshot", "camera": "entrance", "device": DEVICE}
            assert (await post(http, f"/api/incidents/{incident}/requests", asked))[0] == 200
            clip = {"type": "clip", "camera": "entrance", "device": DEVICE, "seconds": 10}
            assert (await post(http, f"/api/incidents/{incident}/requests", clip))[0] == 200
            wrong = {**asked, "device": "another-box"}
            assert (await post(http, f"/api/incidents/{incident}/requests", wrong))[0] == 400
            snapshot, answered = await requests_done(desk, http, incident)
            assert snapshot["status"] == "done"
            assert [(m["kind"], m["state"]) for m in snapshot["media"]] == [("still", "ready")]
            assert answered["status"] in ("done", "failed")  # the box's own verdict on the range
            lines = [(x["operator"], x["action"]) for x in detail_now(desk, incident)]
            assert ("alice", "request") in lines and ("alice", "answer") in lines
        finally:
            await http.close()


async def post(http: Any, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(path, json=body) as r:
        return r.status, await r.json()


async def ready(desk: Chain, http: Any, incident: str) -> dict[str, Any]:
    """The incident once all its stills and its clip are in."""
    found: dict[str, Any] = {}
    for _ in range(400):
        async with http.get(f"/api/incidents/{incident}") as r:
            found = await r.json()
        media = [m for a in found["alarms"] for m in a["media"]]
        if len(media) == 6 and all(m["state"] == "ready" for m in media):
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"the alarm's media did not all arrive: {found.get('alarms')}")


async def requests_done(desk: Chain, http: Any, incident: str) -> list[dict[str, Any]]:
    """The two requests once the box answered both and the snapshot came in."""
    found: list[dict[str, Any]] = []
    for _ in range(300):
        async with http.get(f"/api/incidents/{incident}") as r:
            found = (await r.json())["requests"]
        snapshot = found[0]
        media_in = snapshot["media"] and all(m["state"] == "ready" for m in snapshot["media"])
        if snapshot["status"] == "done" and media_in and found[1]["status"] in ("done", "failed"):
            return found
        await asyncio.sleep(0.05)
    pytest.fail(f"the box's answers did not arrive: {found}")


def detail_now(desk: Chain, incident: str) -> list[dict[str, Any]]:
    with desk.store.read() as db:
        return [e.as_dict() for e in courante.of_incident(db, incident)]
