"""The status snapshot the web page and /metrics read: one section per stage."""

from __future__ import annotations

from typing import Any

from edge import __version__, protocol
from edge.clock import ms


def register_status(box: Any) -> None:
    """Register the health checks and status sections of a :class:`edge.app.Box`."""
    h = box.health
    h.check("tasks", lambda: _dead_tasks(box))
    h.check("outbox", lambda: box.store_failing)
    h.section("device", lambda: _device(box))
    h.section("uplink", lambda: _uplink(box))
    h.section("outbox", lambda: _outbox(box))
    h.section("zones", lambda: _zones(box))
    h.section("outputs", lambda: dict(box.outputs.state))
    h.section("walktest", lambda: box.walk_status() or {"running": False})
    h.section("cameras", lambda: {c.cfg.id: vars(c.status) for c in box.cameras})


def _dead_tasks(box: Any) -> str | None:
    dead = [n for n, t in box.tasks.items() if t.done() and not t.cancelled()]
    return f"stage task ended: {', '.join(dead)}" if dead else None


def _device(box: Any) -> dict[str, Any]:
    return {
        "id": box.cfg.device.id,
        "site": box.cfg.device.site,
        "account": box.cfg.station.account,
        "version": __version__,
        "boot_id": box.boot_id,
        "uptime_s": round(box.clock.monotonic() - box.started_s),
        "simulated_inputs": box.inputs.simulated,
    }


def _uplink(box: Any) -> dict[str, Any]:
    s, f, w = box.link.status, box.forwarder.stats, box.supervisor.watch
    return {
        "broker": box.cfg.uplink.broker,
        "connected": s.connected,
        "connects": s.connects,
        "last_error": s.last_error,
        "in_flight": s.in_flight,
        "window": s.window,
        "published": f.published,
        "acknowledged": f.acked,
        "refused": f.refused,
        "media_chunks": f.chunks,
        "media_done": f.media_done,
        "last_ack_at": None if f.last_ack_ms is None else protocol.iso_ms(f.last_ack_ms),
        "heartbeat_s": box.supervisor.profile.heartbeat_s,
        "path_loss_s": box.supervisor.profile.path_loss_s,
        "path_lost": w.path_lost,
        "delivery_failed": w.delivery_failed,
        "commands": box.commands.handled,
        "commands_rejected": box.commands.rejected,
    }


def _outbox(box: Any) -> dict[str, Any]:
    o = box.outbox
    age = None if o.oldest_ms is None else round(ms(box.clock.time()) - o.oldest_ms) / 1000
    return {
        "depth": o.depth,
        "oldest_age_s": age,
        "media": o.media_count,
        "media_bytes": o.media_bytes,
    }


def _zones(box: Any) -> dict[str, Any]:
    zones = []
    for z in box.cfg.zones:
        st = box.panel.zone(z.id)
        zones.append(
            {
                "id": z.id,
                "name": z.name,
                "type": z.type.value,
                "number": z.number,
                "active": st.active,
                "changes": st.changes,
            }
        )
    armed = {str(k): v for k, v in box.panel.armed.items()}
    return {"armed": armed, "zones": zones, "edges_dropped": box.edges_dropped}
