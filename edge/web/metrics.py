"""The status snapshot in the Prometheus text format (version 0.0.4).

Every figure of the status page that is a number, named with its unit. A figure
the box does not know (no thermal sensor, a camera that is not running, a clock
whose sync cannot be read) is left out, never written as 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (section, key, metric name, type, help); booleans become 1 or 0
FIGURES: tuple[tuple[str, str, str, str, str], ...] = (
    ("device", "uptime_s", "edge_uptime_seconds", "gauge", "Seconds since the box started"),
    ("uplink", "connected", "edge_uplink_connected", "gauge", "1 when the MQTT link is up"),
    ("uplink", "connects", "edge_uplink_connects_total", "counter", "MQTT connections made"),
    ("uplink", "in_flight", "edge_uplink_in_flight", "gauge", "Publishes awaiting PUBACK"),
    ("uplink", "published", "edge_events_published_total", "counter", "Events published"),
    ("uplink", "acknowledged", "edge_events_acked_total", "counter", "Events acknowledged"),
    ("uplink", "refused", "edge_events_refused_total", "counter", "Events refused by the broker"),
    ("uplink", "media_chunks", "edge_media_chunks_total", "counter", "Media chunks published"),
    ("uplink", "media_done", "edge_media_done_total", "counter", "Media files complete"),
    ("uplink", "path_lost", "edge_uplink_path_lost", "gauge", "1 while the path is lost"),
    (
        "uplink",
        "delivery_failed",
        "edge_uplink_delivery_failed",
        "gauge",
        "1 while an alarm waits for its acknowledgement too long",
    ),
    (
        "uplink",
        "margin_s",
        "edge_uplink_margin_seconds",
        "gauge",
        "Seconds left before a down link becomes a path-loss trouble",
    ),
    ("outbox", "depth", "edge_outbox_depth", "gauge", "Events waiting for acknowledgement"),
    ("outbox", "oldest_age_s", "edge_outbox_oldest_age_seconds", "gauge", "Age of the oldest"),
    ("outbox", "media", "edge_outbox_media", "gauge", "Stills and clips waiting"),
    ("outbox", "media_bytes", "edge_outbox_media_bytes", "gauge", "Bytes of media waiting"),
    (
        "outbox",
        "held_in_memory",
        "edge_outbox_held_in_memory",
        "gauge",
        "Events the disk refused, held in memory and sent all the same",
    ),
    (
        "outbox",
        "reserve_held",
        "edge_outbox_reserve_held",
        "gauge",
        "0 while the disk is full and the events' reserve is in use",
    ),
    ("journal", "durable", "edge_journal_durable", "gauge", "1 while the event journal is on disk"),
    ("zones", "edges_dropped", "edge_input_edges_dropped_total", "counter", "Input edges lost"),
    (
        "video",
        "lores_dropped",
        "edge_lores_frames_dropped_total",
        "counter",
        "Motion frames a slow reader lost",
    ),
    ("video", "media_failed", "edge_media_failed_total", "counter", "Stills and clips not made"),
    (
        "video",
        "media_lost",
        "edge_media_lost_total",
        "counter",
        "Stills and clips announced lost to the station",
    ),
    (
        "video",
        "media_waiting",
        "edge_media_waiting",
        "gauge",
        "Stills and clips waiting for room on a full disk",
    ),
    ("motion", "processed", "edge_motion_frames_total", "counter", "Frames the motion filter saw"),
    ("motion", "dropped", "edge_motion_frames_dropped_total", "counter", "Frames it had to skip"),
    (
        "system",
        "clock_synchronized",
        "edge_clock_synchronized",
        "gauge",
        "1 when the system clock is synchronised (absent when unknown)",
    ),
    ("system", "load_1m", "edge_load1", "gauge", "Load average over a minute"),
    ("system", "cpu_temp_c", "edge_cpu_temperature_celsius", "gauge", "SoC temperature"),
    ("system", "memory_total_bytes", "edge_memory_total_bytes", "gauge", "Memory of the machine"),
    ("system", "memory_used_bytes", "edge_memory_used_bytes", "gauge", "Memory in use"),
    ("system", "disk_total_bytes", "edge_disk_total_bytes", "gauge", "State folder's disk size"),
    ("system", "disk_used_bytes", "edge_disk_used_bytes", "gauge", "State folder's disk used"),
    ("system", "disk_free_bytes", "edge_disk_free_bytes", "gauge", "State folder's disk free"),
    (
        "system",
        "process_rss_bytes",
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the box's process",
    ),
    (
        "system",
        "process_cpu_s",
        "process_cpu_seconds_total",
        "counter",
        "CPU time of the box's process",
    ),
    ("system", "process_open_fds", "process_open_fds", "gauge", "Open file descriptors"),
    ("system", "process_threads", "process_threads", "gauge", "Threads of the box's process"),
)

# per camera: (key, metric name, type, help, only while the camera runs)
CAMERA_FIGURES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("fps", "edge_camera_fps", "gauge", "Frames per second of the camera", True),
    ("frames", "edge_camera_frames_total", "counter", "Frames captured", False),
    ("dropped", "edge_camera_frames_dropped_total", "counter", "Frames skipped to catch up", False),
    ("ring_bytes", "edge_camera_ring_bytes", "gauge", "Memory of the pre-alarm ring", False),
    ("ring_seconds", "edge_camera_ring_seconds", "gauge", "Seconds in the pre-alarm ring", False),
)


def render(status: Mapping[str, Any]) -> str:
    """Every known figure of ``status``, plus build info, health, zones and cameras."""
    lines = list(_build_info(status))
    for section, key, name, kind, text in FIGURES:
        value = _number(_section(status, section).get(key))
        if value is None:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    offset = _number(_section(status, "system").get("clock_offset_ms"))
    if offset is not None:
        lines += _family(
            "edge_clock_offset_seconds",
            "gauge",
            "Last offset the clock was corrected by",
            [("", offset / 1000)],
        )
    lines += _family(
        "edge_healthy",
        "gauge",
        "1 when every health check passes",
        [("", 1 if status.get("healthy") else 0)],
    )
    lines += _zones(status)
    lines += _cameras(status)
    return "\n".join(lines) + "\n"


def _build_info(status: Mapping[str, Any]) -> Iterator[str]:
    device = _section(status, "device")
    if not device:
        return
    labels = ",".join(
        f'{key}="{_label(device.get(key, ""))}"' for key in ("version", "id", "boot_id")
    )
    yield "# HELP edge_build_info The box's version, id and boot (always 1)"
    yield "# TYPE edge_build_info gauge"
    yield f"edge_build_info{{{labels}}} 1"


def _zones(status: Mapping[str, Any]) -> list[str]:
    zones = _section(status, "zones").get("zones", [])
    lines: list[str] = []
    if zones:
        lines += _family(
            "edge_zone_active",
            "gauge",
            "1 while the zone is active",
            [(f'zone="{_label(z["id"])}"', int(bool(z["active"]))) for z in zones],
        )
        lines += _family(
            "edge_zone_changes_total",
            "counter",
            "Zone changes seen",
            [(f'zone="{_label(z["id"])}"', int(z["changes"])) for z in zones],
        )
    armed = _section(status, "zones").get("armed", {})
    if armed:
        lines += _family(
            "edge_partition_armed",
            "gauge",
            "1 while the partition is armed",
            [(f'partition="{_label(p)}"', int(bool(a))) for p, a in armed.items()],
        )
    return lines


def _cameras(status: Mapping[str, Any]) -> list[str]:
    cameras = {k: v for k, v in status.get("cameras", {}).items() if isinstance(v, Mapping)}
    lines: list[str] = []
    if cameras:
        lines += _family(
            "edge_camera_up",
            "gauge",
            "1 while the camera gives pictures",
            [
                (f'camera="{_label(c)}"', int(cam.get("state") == "running"))
                for c, cam in cameras.items()
            ],
        )
    for key, name, kind, text, live_only in CAMERA_FIGURES:
        samples = []
        for cam_id, cam in cameras.items():
            value = _number(cam.get(key))
            if value is None or (live_only and cam.get("state") != "running"):
                continue  # a rate the camera does not have now is unknown, not 0
            samples.append((f'camera="{_label(cam_id)}"', value))
        if samples:
            lines += _family(name, kind, text, samples)
    return lines


def _family(name: str, kind: str, text: str, samples: list[tuple[str, float | int]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [
        f"{name}{{{labels}}} {value}" if labels else f"{name} {value}" for labels, value in samples
    ]
    return lines


def _section(status: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = status.get(name)
    return section if isinstance(section, Mapping) else {}


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return None


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
