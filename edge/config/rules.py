"""Rules that span several config sections. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edge.codes import ZoneType
from edge.config.schema import RESERVED_PINS, EdgeConfig

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: where, what value, which rule."""

    loc: Loc
    value: Any
    rule: str


def check(cfg: EdgeConfig) -> list[Problem]:
    """Every cross-section problem of a structurally valid config."""
    return [
        *_unique(cfg),
        *_pins(cfg),
        *_references(cfg),
        *_armed_state(cfg),
        *_zone_timing(cfg),
        *_camera_sources(cfg),
        *_camera_pictures(cfg),
        *_uplink(cfg),
        *_outputs(cfg),
        *_supervision(cfg),
        *_motion(cfg),
        *_routes(cfg),
    ]


def _duplicates(section: str, key: str, values: list[Any]) -> Iterator[Problem]:
    seen: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            yield Problem(
                (section, index, key),
                value,
                f"duplicate: {section}[{seen[value]}] already has {key} = {value!r}",
            )
        else:
            seen[value] = index


def _unique(cfg: EdgeConfig) -> Iterator[Problem]:
    yield from _duplicates("zones", "id", [z.id for z in cfg.zones])
    yield from _duplicates("zones", "number", [z.number for z in cfg.zones])
    yield from _duplicates("inputs", "name", [i.name for i in cfg.inputs])
    yield from _duplicates("cameras", "id", [c.id for c in cfg.cameras])


def _pins(cfg: EdgeConfig) -> Iterator[Problem]:
    yield from _duplicates("inputs", "pin", [i.pin for i in cfg.inputs])
    for index, inp in enumerate(cfg.inputs):
        if inp.pin in RESERVED_PINS:
            yield Problem(
                ("inputs", index, "pin"),
                inp.pin,
                "reserved: GPIO 0 and 1 belong to the HAT ID EEPROM",
            )


def _references(cfg: EdgeConfig) -> Iterator[Problem]:
    zone_ids = [z.id for z in cfg.zones]
    camera_ids = [c.id for c in cfg.cameras]
    for index, inp in enumerate(cfg.inputs):
        if inp.zone not in zone_ids:
            yield Problem(
                ("inputs", index, "zone"), inp.zone, f"no such zone; zones are: {_list(zone_ids)}"
            )
    for index, zone in enumerate(cfg.zones):
        for cam_index, camera in enumerate(zone.cameras):
            if camera not in camera_ids:
                yield Problem(
                    ("zones", index, "cameras", cam_index),
                    camera,
                    f"no such camera; cameras are: {_list(camera_ids)}",
                )
    wired = {inp.zone for inp in cfg.inputs}
    for index, zone in enumerate(cfg.zones):
        if zone.id not in wired:
            yield Problem(
                ("zones", index, "id"), zone.id, "no input is wired to this zone ([[inputs]] zone)"
            )


def _armed_state(cfg: EdgeConfig) -> Iterator[Problem]:
    first: dict[int, int] = {}
    for index, zone in enumerate(cfg.zones):
        if zone.type is not ZoneType.ARMED_STATE:
            continue
        if zone.partition in first:
            yield Problem(
                ("zones", index, "type"),
                zone.type.value,
                f"partition {zone.partition} already has an armed_state zone "
                f"(zones[{first[zone.partition]}])",
            )
        else:
            first[zone.partition] = index


# Zone keys a type has no use for: setting one is a mistake worth naming.
_UNUSED_ZONE_KEYS: dict[ZoneType, tuple[tuple[str, ...], str]] = {
    ZoneType.ARMED_STATE: (
        ("restore_ms", "hold_s", "swinger_limit"),
        "not used by an armed_state zone (it sends arm/disarm; only glitch_ms applies); remove it",
    ),
    ZoneType.AC_POWER: (
        ("swinger_limit",),
        "not used by a trouble zone (ac_power, battery): no swinger shutdown; remove it",
    ),
    ZoneType.BATTERY: (
        ("swinger_limit",),
        "not used by a trouble zone (ac_power, battery): no swinger shutdown; remove it",
    ),
    **{
        t: (
            ("swinger_limit",),
            "not used by a life-safety zone (fire, panic, holdup): they always report; remove it",
        )
        for t in (ZoneType.FIRE, ZoneType.PANIC, ZoneType.HOLDUP)
    },
}


def _zone_timing(cfg: EdgeConfig) -> Iterator[Problem]:
    for index, zone in enumerate(cfg.zones):
        keys, rule = _UNUSED_ZONE_KEYS.get(zone.type, ((), ""))
        for key in keys:
            if key in zone.model_fields_set:
                yield Problem(("zones", index, key), getattr(zone, key), rule)


_SOURCE_FIELD = {"v4l2": "device", "rtsp": "url", "file": "path"}


def _camera_sources(cfg: EdgeConfig) -> Iterator[Problem]:
    for index, cam in enumerate(cfg.cameras):
        needed = _SOURCE_FIELD.get(cam.source)
        for field in ("device", "url", "path"):
            value = getattr(cam, field)
            if field == needed and value is None:
                yield Problem(
                    ("cameras", index, field), None, f"required when source = {cam.source!r}"
                )
            elif field != needed and value is not None:
                yield Problem(
                    ("cameras", index, field),
                    str(value),
                    f"not used when source = {cam.source!r}; remove it",
                )
        if cam.source == "rtsp" and cam.url and not cam.url.startswith(("rtsp://", "rtsps://")):
            yield Problem(("cameras", index, "url"), cam.url, "must start with rtsp:// or rtsps://")


def _camera_pictures(cfg: EdgeConfig) -> Iterator[Problem]:
    """Sizes the H.264 encoder takes (even) and masks inside the picture."""
    for index, cam in enumerate(cfg.cameras):
        for field in ("width", "height"):
            value = getattr(cam, field)
            if value % 2:
                yield Problem(("cameras", index, field), value, "must be an even number (H.264)")
        for m, polygon in enumerate(cam.privacy_masks):
            for c, (x, y) in enumerate(polygon):
                if x > cam.width or y > cam.height:
                    yield Problem(
                        ("cameras", index, "privacy_masks", m, c),
                        [x, y],
                        f"outside the {cam.width}x{cam.height} picture",
                    )


def _uplink(cfg: EdgeConfig) -> Iterator[Problem]:
    up = cfg.uplink
    if (up.cert_file is None) != (up.key_file is None):
        missing = "key_file" if up.key_file is None else "cert_file"
        yield Problem(("uplink", missing), None, "cert_file and key_file go together")
    if not up.tls and (up.ca_file or up.cert_file):
        yield Problem(
            ("uplink", "broker"), up.broker, "TLS files are set: the broker URL must be mqtts://"
        )
    if up.reconnect_min_s > up.reconnect_max_s:
        yield Problem(
            ("uplink", "reconnect_min_s"),
            up.reconnect_min_s,
            f"must not exceed reconnect_max_s ({up.reconnect_max_s})",
        )
    if up.password is not None and up.username is None:
        yield Problem(("uplink", "username"), None, "required when a password is set")


def _routes(cfg: EdgeConfig) -> Iterator[Problem]:
    yield from _duplicates("routes", "name", [r.name for r in cfg.routes])
    for index, route in enumerate(cfg.routes):
        if route.name == "primary":
            yield Problem(("routes", index, "name"), route.name, "'primary' is the [uplink]'s")
        if route.type != "mqtt":
            continue
        if (route.cert_file is None) != (route.key_file is None):
            missing = "key_file" if route.key_file is None else "cert_file"
            yield Problem(("routes", index, missing), None, "cert_file and key_file go together")
        if not route.tls and (route.ca_file or route.cert_file):
            yield Problem(
                ("routes", index, "broker"),
                route.broker,
                "TLS files are set: the broker URL must be mqtts://",
            )
        if route.broker == cfg.uplink.broker:
            yield Problem(
                ("routes", index, "broker"), route.broker, "the same broker as [uplink]: no backup"
            )


def _outputs(cfg: EdgeConfig) -> Iterator[Problem]:
    yield from _duplicates("outputs", "name", [o.name for o in cfg.outputs])
    yield from _duplicates("outputs", "function", [o.function for o in cfg.outputs])
    yield from _duplicates("outputs", "pin", [o.pin for o in cfg.outputs])
    inputs = {i.pin: index for index, i in enumerate(cfg.inputs)}
    for index, out in enumerate(cfg.outputs):
        if out.pin in RESERVED_PINS:
            yield Problem(
                ("outputs", index, "pin"),
                out.pin,
                "reserved: GPIO 0 and 1 belong to the HAT ID EEPROM",
            )
        if out.pin in inputs:
            yield Problem(
                ("outputs", index, "pin"),
                out.pin,
                f"already used by inputs[{inputs[out.pin]}]: an output on an input's pin",
            )


def _supervision(cfg: EdgeConfig) -> Iterator[Problem]:
    sup = cfg.supervision
    custom = sup.profile == "custom"
    for key in ("heartbeat_s", "path_loss_s"):
        value = getattr(sup, key)
        if custom and value is None:
            yield Problem(("supervision", key), None, "required when profile = 'custom'")
        elif not custom and value is not None:
            yield Problem(
                ("supervision", key),
                value,
                f"set by profile {sup.profile!r}; use profile = 'custom' to choose it",
            )
    if 0 < sup.periodic_test_s < 60:
        yield Problem(
            ("supervision", "periodic_test_s"),
            sup.periodic_test_s,
            "must be 0 (no periodic test) or at least 60 seconds",
        )
    if custom and sup.heartbeat_s and sup.path_loss_s and sup.path_loss_s <= sup.heartbeat_s:
        yield Problem(
            ("supervision", "path_loss_s"),
            sup.path_loss_s,
            f"must be longer than heartbeat_s ({sup.heartbeat_s})",
        )


def _list(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "(none)"


def _motion(cfg: EdgeConfig) -> Iterator[Problem]:
    """Motion settings name a configured camera, once, with areas inside its picture."""
    cameras = {cam.id: cam for cam in cfg.cameras}
    first: dict[str, int] = {}
    for index, entry in enumerate(cfg.motion.cameras):
        if entry.camera in first:
            yield Problem(
                ("motion", "cameras", index, "camera"),
                entry.camera,
                f"duplicate: motion.cameras[{first[entry.camera]}] already has this camera",
            )
        first.setdefault(entry.camera, index)
        cam = cameras.get(entry.camera)
        if cam is None:
            known = ", ".join(sorted(cameras)) or "none configured"
            yield Problem(
                ("motion", "cameras", index, "camera"), entry.camera, f"no such camera ({known})"
            )
        seen: set[str] = set()
        for kind in ("masks", "zones"):
            for a, area in enumerate(getattr(entry, kind)):
                loc = ("motion", "cameras", index, kind, a)
                if area.name in seen:
                    yield Problem((*loc, "name"), area.name, "duplicate area name in this camera")
                seen.add(area.name)
                if cam is None:
                    continue
                for c, (x, y) in enumerate(area.corners):
                    if x > cam.width or y > cam.height:
                        yield Problem(
                            (*loc, "corners", c),
                            [x, y],
                            f"outside the {cam.width}x{cam.height} picture",
                        )
