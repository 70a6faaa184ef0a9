"""The status snapshot in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (section, key, metric name, type, help)
GAUGES: tuple[tuple[str, str, str, str, str], ...] = (
    ("device", "uptime_s", "edge_uptime_seconds", "gauge", "Seconds since the box started"),
    ("uplink", "connected", "edge_uplink_connected", "gauge", "1 when the MQTT link is up"),
    ("uplink", "connects", "edge_uplink_connects_total", "counter", "MQTT connections made"),
    ("uplink", "published", "edge_events_published_total", "counter", "Events published"),
    ("uplink", "acknowledged", "edge_events_acked_total", "counter", "Events acknowledged"),
    ("uplink", "refused", "edge_events_refused_total", "counter", "Events refused by the broker"),
    ("uplink", "media_chunks", "edge_media_chunks_total", "counter", "Media chunks published"),
    ("uplink", "path_lost", "edge_uplink_path_lost", "gauge", "1 while the path is lost"),
    ("outbox", "depth", "edge_outbox_depth", "gauge", "Events waiting for acknowledgement"),
    ("outbox", "oldest_age_s", "edge_outbox_oldest_age_seconds", "gauge", "Age of the oldest"),
    ("outbox", "media", "edge_outbox_media", "gauge", "Stills and clips waiting"),
    ("outbox", "media_bytes", "edge_outbox_media_bytes", "gauge", "Bytes of media waiting"),
    ("zones", "edges_dropped", "edge_input_edges_dropped_total", "counter", "Input edges lost"),
    ("journal", "durable", "edge_journal_durable", "gauge", "1 while the event journal is on disk"),
)


def render(status: Mapping[str, Any]) -> str:
    """Every known figure of ``status`` that is present and numeric, plus zones and cameras."""
    lines: list[str] = []
    for section, key, name, kind, text in GAUGES:
        value = _number(status.get(section, {}).get(key))
        if value is None:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    lines += [
        "# HELP edge_healthy 1 when every health check passes",
        "# TYPE edge_healthy gauge",
        f"edge_healthy {1 if status.get('healthy') else 0}",
    ]
    zones = status.get("zones", {}).get("zones", [])
    if zones:
        lines += [
            "# HELP edge_zone_active 1 while the zone is active",
            "# TYPE edge_zone_active gauge",
        ]
        lines += [
            f'edge_zone_active{{zone="{_label(z["id"])}"}} {int(bool(z["active"]))}' for z in zones
        ]
        lines += [
            "# HELP edge_zone_changes_total Zone changes seen",
            "# TYPE edge_zone_changes_total counter",
        ]
        lines += [
            f'edge_zone_changes_total{{zone="{_label(z["id"])}"}} {int(z["changes"])}'
            for z in zones
        ]
    cameras = status.get("cameras", {})
    if cameras:
        lines += [
            "# HELP edge_camera_fps Frames per second of the camera",
            "# TYPE edge_camera_fps gauge",
        ]
        for cam_id, cam in cameras.items():
            fps = _number(cam.get("fps")) if isinstance(cam, Mapping) else None
            lines.append(f'edge_camera_fps{{camera="{_label(cam_id)}"}} {fps or 0}')
    return "\n".join(lines) + "\n"


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return None


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
