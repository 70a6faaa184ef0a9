"""The config model: the shipped configs validate, and every mistake is named.

Each mistake is built from ``config/demo.toml`` (a valid config) by changing
one thing, then validated as ``x.toml``. The error must name the file, the
key path of the mistake and a rule an installer can act on.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from edge.codes import ZoneType
from edge.config import EdgeConfig, load, parse, validate
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "edge.example.toml"
DEMO = ROOT / "config" / "demo.toml"
SOURCE = "x.toml"
SECRET = "hunter2-s3cret"

Raw = dict[str, Any]
Mutate = Callable[[Raw], None]


@cache
def _demo_text() -> str:
    return DEMO.read_text(encoding="utf-8")


def demo_raw() -> Raw:
    return tomllib.loads(_demo_text())


def errors(mutate: Mutate) -> list[str]:
    """The messages for the demo config changed by ``mutate``."""
    raw = demo_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        validate(raw, SOURCE)
    assert info.value.source == SOURCE
    return info.value.messages


def message_for(messages: list[str], path: str) -> str:
    """The one message about key ``path`` (followed by its value or by the rule)."""
    prefix = f"{SOURCE}: {path}"
    hits = [m for m in messages if m.startswith((f"{prefix} = ", f"{prefix}: "))]
    assert len(hits) == 1, f"expected one message about {path!r}, got: {messages}"
    return hits[0]


# --- small builders of mistakes ---------------------------------------------


def put(*loc: str | int, value: Any) -> Mutate:
    """Set the key at ``loc`` (creating a missing top-level table)."""

    def mutate(raw: Raw) -> None:
        node: Any = raw
        for part in loc[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[loc[-1]] = value

    return mutate


def drop(*loc: str | int) -> Mutate:
    def mutate(raw: Raw) -> None:
        node: Any = raw
        for part in loc[:-1]:
            node = node[part]
        del node[loc[-1]]

    return mutate


def both(*mutations: Mutate) -> Mutate:
    def mutate(raw: Raw) -> None:
        for m in mutations:
            m(raw)

    return mutate


def add_zone(zone_id: str, type_: str, number: int, *, wired_to_pin: int | None) -> Mutate:
    def mutate(raw: Raw) -> None:
        raw["zones"].append({"id": zone_id, "name": zone_id, "type": type_, "number": number})
        if wired_to_pin is not None:
            raw["inputs"].append({"name": f"in-{zone_id}", "pin": wired_to_pin, "zone": zone_id})

    return mutate


def demo_camera(**changes: Any) -> Mutate:
    def mutate(raw: Raw) -> None:
        raw["cameras"][0].update(changes)

    return mutate


IN1 = "inputs[0](name='in1')"
IN2 = "inputs[1](name='in2')"
Z0 = "zones[0](id='front-door')"
Z1 = "zones[1](id='hall-pir')"
CAM = "cameras[0](id='entrance')"


# --- the shipped configs -----------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLE, DEMO], ids=["example", "demo"])
def test_shipped_config_validates(path: Path) -> None:
    cfg = load(path)
    assert cfg.zones and cfg.inputs and cfg.cameras


def test_example_is_set_up_for_a_real_site() -> None:
    cfg = load(EXAMPLE)
    assert cfg.gpio.backend == "lgpio"
    assert cfg.uplink.tls and cfg.uplink.broker.startswith("mqtts://")
    for tls_file in (cfg.uplink.ca_file, cfg.uplink.cert_file, cfg.uplink.key_file):
        assert tls_file is not None and tls_file.parent == Path("/etc/edge/tls")
    assert cfg.recording.retention_days <= 30
    assert len({zone.type for zone in cfg.zones}) >= 5
    assert any(zone.cameras for zone in cfg.zones)


def _uncomment_examples(text: str) -> str:
    """Turn ``# key = value``, ``# [[cameras]]`` and ``# [[routes]]`` lines into live TOML."""
    return re.sub(
        r"^# (\[\[(?:cameras|routes)\]\]|[a-z_0-9]+ = .+)$", r"\1", text, flags=re.MULTILINE
    )


def test_example_alternatives_validate_when_uncommented() -> None:
    text = _uncomment_examples(EXAMPLE.read_text(encoding="utf-8"))
    cfg = parse(text, "uncommented example")
    assert {cam.source for cam in cfg.cameras} == {
        "picamera2",
        "v4l2",
        "rtsp",
        "file",
        "synthetic",
    }
    assert cfg.uplink.username is not None and cfg.uplink.password is not None
    assert cfg.device.state_dir is not None and cfg.uplink.client_id is not None
    assert [(r.name, r.type) for r in cfg.routes] == [("4g", "mqtt"), ("arc", "dc09")]


def _sections(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every section model reachable from ``model``, by its TOML table name."""
    found: dict[str, type[BaseModel]] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        for candidate in (annotation, *args):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found[name] = candidate
    return found


def test_example_documents_every_section_and_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, model in _sections(EdgeConfig).items():
        assert re.search(rf"^\[{{1,2}}{section}\]{{1,2}}$", text, re.MULTILINE), section
        for key in model.model_fields:
            # set (possibly commented out as an alternative) somewhere in the file,
            # or, for keys that cannot all be set at once, explained in a comment
            documented = rf"^(# )?{key} = |^#.*\b{key} \("
            assert re.search(documented, text, re.MULTILINE), f"{section}.{key}"


# --- one mistake, one message naming its key path ---------------------------

MISTAKES = [
    # wrong types
    pytest.param(
        put("inputs", 0, "pin", value="seventeen"),
        f"{IN1}.pin",
        "= 'seventeen': must be a whole number, without quotes",
        id="wrong-type-pin",
    ),
    pytest.param(
        put("station", "account", value=1234),
        "station.account",
        "= 1234: must be text in quotes",
        id="wrong-type-account-number",
    ),
    pytest.param(
        put("zones", 0, "cameras", value="entrance"),
        f"{Z0}.cameras",
        "must be a list",
        id="wrong-type-list",
    ),
    pytest.param(
        put("uplink", value="mqtt://127.0.0.1:1883"),
        "uplink",
        "must be a table",
        id="wrong-type-section",
    ),
    pytest.param(
        put("device", "state_dir", value=5),
        "device.state_dir",
        "= 5: must be text in quotes",
        id="wrong-type-path",
    ),
    pytest.param(
        put("zones", 0, "alarm_when_disarmed", value="sometimes"),
        f"{Z0}.alarm_when_disarmed",
        "must be true or false, without quotes",
        id="wrong-type-bool",
    ),
    pytest.param(
        put("inputs", 0, "pin", value="17"),
        "inputs[0](name='in1').pin",
        "= '17': must be a whole number, without quotes",
        id="quoted-number-is-not-a-pin",
    ),
    pytest.param(
        put("inputs", 0, "pin", value=True),
        "inputs[0](name='in1').pin",
        "= True: must be a whole number, without quotes",
        id="boolean-is-not-a-pin",
    ),
    pytest.param(
        put("web", "enabled", value="yes"),
        "web.enabled",
        "= 'yes': must be true or false, without quotes",
        id="quoted-yes-is-not-a-boolean",
    ),
    # out of range
    pytest.param(
        put("inputs", 0, "pin", value=40),
        f"{IN1}.pin",
        "= 40: Input should be less than or equal to 27",
        id="pin-40",
    ),
    pytest.param(
        put("web", "port", value=-1),
        "web.port",
        "= -1: Input should be greater than or equal to 1",
        id="negative-port",
    ),
    pytest.param(
        put("uplink", "keepalive_s", value=2),
        "uplink.keepalive_s",
        "= 2: Input should be greater than or equal to 5",
        id="keepalive-too-small",
    ),
    pytest.param(
        put("recording", "retention_days", value=31),
        "recording.retention_days",
        "= 31: must be at most 30 days: the legal cap for video surveillance",
        id="retention-above-30-days",
    ),
    pytest.param(
        put("cameras", 0, "fps", value=0),
        f"{CAM}.fps",
        "greater than 0",
        id="fps-zero",
    ),
    pytest.param(
        put("zones", 0, "partition", value=0),
        f"{Z0}.partition",
        "greater than or equal to 1",
        id="partition-zero",
    ),
    pytest.param(
        put("zones", 0, "name", value=""),
        f"{Z0}.name",
        "at least 1 character",
        id="empty-zone-name",
    ),
    # unknown keys
    pytest.param(
        put("recordings", "retention_days", value=7),
        "recordings",
        "unknown key; did you mean 'recording'?",
        id="unknown-top-level",
    ),
    pytest.param(
        put("uplink", "keepalive", value=30),
        "uplink.keepalive",
        "= 30: unknown key; did you mean 'keepalive_s'?",
        id="unknown-nested",
    ),
    pytest.param(
        put("zones", 0, "nmae", value="Front"),
        f"{Z0}.nmae",
        "unknown key; did you mean 'name'?",
        id="unknown-in-list-item",
    ),
    pytest.param(
        put("uplink", "zzzz", value=1),
        "uplink.zzzz",
        "= 1: unknown key; known keys here: broker, client_id",
        id="unknown-no-close-match",
    ),
    # missing required keys
    pytest.param(drop("device"), "device", "required key is missing", id="missing-section"),
    pytest.param(
        drop("zones", 0, "type"),
        f"{Z0}.type",
        "required key is missing",
        id="missing-zone-type",
    ),
    pytest.param(
        drop("uplink", "broker"),
        "uplink.broker",
        "required key is missing",
        id="missing-broker",
    ),
    # duplicates
    pytest.param(
        put("inputs", 1, "pin", value=17),
        f"{IN2}.pin",
        "= 17: duplicate: inputs[0] already has pin = 17",
        id="duplicate-pin",
    ),
    pytest.param(
        put("zones", 1, "id", value="front-door"),
        "zones[1](id='front-door').id",
        "duplicate: zones[0] already has id = 'front-door'",
        id="duplicate-zone-id",
    ),
    pytest.param(
        put("zones", 1, "number", value=1),
        f"{Z1}.number",
        "= 1: duplicate: zones[0] already has number = 1",
        id="duplicate-zone-number",
    ),
    pytest.param(
        put("inputs", 1, "name", value="in1"),
        "inputs[1](name='in1').name",
        "duplicate: inputs[0] already has name = 'in1'",
        id="duplicate-input-name",
    ),
    pytest.param(
        lambda raw: raw["cameras"].append(dict(raw["cameras"][0])),
        "cameras[1](id='entrance').id",
        "duplicate: cameras[0] already has id = 'entrance'",
        id="duplicate-camera-id",
    ),
    # references between sections
    pytest.param(
        put("inputs", 0, "zone", value="back-door"),
        f"{IN1}.zone",
        "= 'back-door': no such zone; zones are: 'front-door', 'hall-pir'",
        id="input-to-missing-zone",
    ),
    pytest.param(
        put("zones", 0, "cameras", value=["garage"]),
        f"{Z0}.cameras[0]",
        "= 'garage': no such camera; cameras are: 'entrance'",
        id="zone-to-missing-camera",
    ),
    pytest.param(
        add_zone("spare", "intrusion", 50, wired_to_pin=None),
        "zones[7](id='spare').id",
        "no input is wired to this zone",
        id="zone-without-input",
    ),
    pytest.param(
        add_zone("armed-2", "armed_state", 95, wired_to_pin=6),
        "zones[7](id='armed-2').type",
        "partition 1 already has an armed_state zone (zones[5])",
        id="two-armed-state-zones",
    ),
    # pins
    pytest.param(
        put("inputs", 0, "pin", value=0),
        f"{IN1}.pin",
        "= 0: reserved: GPIO 0 and 1",
        id="reserved-pin-0",
    ),
    pytest.param(
        put("inputs", 0, "pin", value=1),
        f"{IN1}.pin",
        "= 1: reserved: GPIO 0 and 1",
        id="reserved-pin-1",
    ),
    pytest.param(
        put("inputs", 0, "contact", value="normally-closed"),
        f"{IN1}.contact",
        "Input should be 'no' or 'nc'",
        id="bad-contact",
    ),
    pytest.param(
        put("inputs", 0, "pull", value="high"),
        f"{IN1}.pull",
        "Input should be 'up' or 'down'",
        id="bad-pull",
    ),
    pytest.param(
        put("gpio", "backend", value="rpigpio"),
        "gpio.backend",
        "Input should be 'lgpio' or 'mock'",
        id="bad-gpio-backend",
    ),
    # broker URL
    pytest.param(
        put("uplink", "broker", value="http://station.example.net:1883"),
        "uplink.broker",
        "must start with mqtt:// (plain) or mqtts:// (TLS)",
        id="broker-bad-scheme",
    ),
    pytest.param(
        put("uplink", "broker", value="mqtts://station.example.net:8883/alarms"),
        "uplink.broker",
        "must not carry a path",
        id="broker-with-path",
    ),
    pytest.param(
        put("uplink", "broker", value="mqtts://:8883"),
        "uplink.broker",
        "must name a host",
        id="broker-without-host",
    ),
    pytest.param(
        put("uplink", "broker", value="mqtts://station.example.net:99999"),
        "uplink.broker",
        "port must be a number from 1 to 65535",
        id="broker-port-out-of-range",
    ),
    pytest.param(
        put("uplink", "broker", value="mqtts://station.example.net:eighty"),
        "uplink.broker",
        "port must be a number from 1 to 65535",
        id="broker-port-not-a-number",
    ),
    pytest.param(
        put("uplink", "broker", value="mqtts://station.example.net:0"),
        "uplink.broker",
        "port must be a number from 1 to 65535",
        id="broker-port-zero",
    ),
    # identity
    pytest.param(
        put("station", "account", value="a1b2"),
        "station.account",
        "= 'a1b2': must be 3 to 16 hexadecimal digits in upper case",
        id="account-lower-case",
    ),
    pytest.param(
        put("station", "account", value="12"),
        "station.account",
        "= '12': must be 3 to 16 hexadecimal digits",
        id="account-too-short",
    ),
    pytest.param(
        put("device", "id", value="Demo Box"),
        "device.id",
        "= 'Demo Box': must be 1-63 characters of a-z, 0-9",
        id="bad-device-id",
    ),
    pytest.param(
        put("uplink", "client_id", value="Box#1"),
        "uplink.client_id",
        "must be 1-63 characters of a-z, 0-9",
        id="bad-client-id",
    ),
    pytest.param(
        put("uplink", "topic_prefix", value="edge/#"),
        "uplink.topic_prefix",
        "must be topic levels",
        id="bad-topic-prefix",
    ),
    # TLS and credentials
    pytest.param(
        both(
            put("uplink", "broker", value="mqtts://station.example.net"),
            put("uplink", "cert_file", value="/etc/edge/tls/box.crt"),
        ),
        "uplink.key_file",
        "cert_file and key_file go together",
        id="cert-without-key",
    ),
    pytest.param(
        both(
            put("uplink", "broker", value="mqtts://station.example.net"),
            put("uplink", "key_file", value="/etc/edge/tls/box.key"),
        ),
        "uplink.cert_file",
        "cert_file and key_file go together",
        id="key-without-cert",
    ),
    pytest.param(
        put("uplink", "ca_file", value="/etc/edge/tls/ca.pem"),
        "uplink.broker",
        "= 'mqtt://127.0.0.1:18830': TLS files are set: the broker URL must be mqtts://",
        id="tls-files-with-mqtt",
    ),
    pytest.param(
        put("uplink", "password", value=SECRET),
        "uplink.username",
        "required when a password is set",
        id="password-without-username",
    ),
    pytest.param(
        both(
            put("uplink", "reconnect_min_s", value=30), put("uplink", "reconnect_max_s", value=10)
        ),
        "uplink.reconnect_min_s",
        "must not exceed reconnect_max_s (10)",
        id="reconnect-min-above-max",
    ),
    # supervision and outputs
    pytest.param(
        put("supervision", "periodic_test_s", value=30),
        "supervision.periodic_test_s",
        "= 30: must be 0 (no periodic test) or at least 60 seconds",
        id="periodic-test-too-often",
    ),
    pytest.param(
        drop("supervision", "heartbeat_s"),
        "supervision.heartbeat_s",
        "required when profile = 'custom'",
        id="custom-profile-without-heartbeat",
    ),
    pytest.param(
        both(put("supervision", "profile", value="strict"), drop("supervision", "path_loss_s")),
        "supervision.heartbeat_s",
        "set by profile 'strict'; use profile = 'custom' to choose it",
        id="heartbeat-with-a-named-profile",
    ),
    pytest.param(
        put("supervision", "path_loss_s", value=30),
        "supervision.path_loss_s",
        "must be longer than heartbeat_s (30)",
        id="path-loss-not-longer-than-heartbeat",
    ),
    pytest.param(
        put("outputs", 0, "pin", value=17),
        "outputs[0](name='path-fault').pin",
        "= 17: already used by inputs[0]: an output on an input's pin",
        id="output-on-an-input-pin",
    ),
    pytest.param(
        put("outputs", 1, "function", value="path_fault"),
        "outputs[1](name='delivery-failure').function",
        "duplicate: outputs[0] already has function = 'path_fault'",
        id="two-outputs-with-one-function",
    ),
    # cameras
    pytest.param(
        demo_camera(source="v4l2"),
        f"{CAM}.device",
        "required when source = 'v4l2'",
        id="v4l2-without-device",
    ),
    pytest.param(
        demo_camera(source="rtsp", url="http://192.168.1.64/stream"),
        f"{CAM}.url",
        "= 'http://192.168.1.64/stream': must start with rtsp:// or rtsps://",
        id="rtsp-url-not-rtsp",
    ),
    pytest.param(
        demo_camera(path="/var/lib/edge/test.mp4"),
        f"{CAM}.path",
        "not used when source = 'synthetic'; remove it",
        id="path-for-synthetic-camera",
    ),
    pytest.param(
        demo_camera(source="file"),
        f"{CAM}.path",
        "required when source = 'file'",
        id="file-without-path",
    ),
    # sizes
    pytest.param(
        put("recording", "max_bytes", value="lots"),
        "recording.max_bytes",
        '= \'lots\': must be a size such as "500MB", "2GiB"',
        id="bad-byte-size",
    ),
    pytest.param(
        put("outbox", "media_quota_bytes", value="2 gigs"),
        "outbox.media_quota_bytes",
        "= '2 gigs': unknown unit: use B, KB, MB",
        id="bad-byte-unit",
    ),
    # zone timing
    pytest.param(
        put("zones", 0, "glitch_ms", value=1001),
        f"{Z0}.glitch_ms",
        "= 1001: Input should be less than or equal to 1000",
        id="glitch-above-1-s",
    ),
    pytest.param(
        put("zones", 0, "glitch_ms", value="20"),
        f"{Z0}.glitch_ms",
        "= '20': must be a whole number, without quotes",
        id="quoted-glitch",
    ),
    pytest.param(
        put("zones", 0, "restore_ms", value=-1),
        f"{Z0}.restore_ms",
        "= -1: Input should be greater than or equal to 0",
        id="negative-restore",
    ),
    pytest.param(
        put("zones", 0, "restore_ms", value=60_001),
        f"{Z0}.restore_ms",
        "= 60001: Input should be less than or equal to 60000",
        id="restore-above-a-minute",
    ),
    pytest.param(
        put("zones", 1, "hold_s", value=3601),
        f"{Z1}.hold_s",
        "= 3601: Input should be less than or equal to 3600",
        id="hold-above-an-hour",
    ),
    pytest.param(
        put("zones", 1, "hold_s", value=1.5),
        f"{Z1}.hold_s",
        "= 1.5: must be a whole number, without quotes",
        id="fractional-hold",
    ),
    pytest.param(
        put("zones", 1, "swinger_limit", value=0),
        f"{Z1}.swinger_limit",
        "= 0: Input should be greater than or equal to 1",
        id="swinger-limit-zero",
    ),
    pytest.param(
        put("zones", 1, "swinger_limit", value=101),
        f"{Z1}.swinger_limit",
        "= 101: Input should be less than or equal to 100",
        id="swinger-limit-above-100",
    ),
    pytest.param(
        put("zones", 5, "hold_s", value=10),
        "zones[5](id='armed').hold_s",
        "= 10: not used by an armed_state zone (it sends arm/disarm; only glitch_ms applies)",
        id="hold-on-armed-state",
    ),
    pytest.param(
        put("zones", 6, "swinger_limit", value=3),
        "zones[6](id='mains').swinger_limit",
        "= 3: not used by a trouble zone (ac_power, battery): no swinger shutdown",
        id="swinger-on-trouble-zone",
    ),
    # zone type
    pytest.param(
        put("zones", 0, "type", value="burglar"),
        f"{Z0}.type",
        "= 'burglar': Input should be 'intrusion', 'entry_exit'",
        id="bad-zone-type",
    ),
]


@pytest.mark.parametrize(("mutate", "path", "rule"), MISTAKES)
def test_mistake_names_its_key_path(mutate: Mutate, path: str, rule: str) -> None:
    message = message_for(errors(mutate), path)
    assert message.startswith(f"{SOURCE}: {path}")
    assert rule in message.removeprefix(f"{SOURCE}: {path}")


def test_mistake_ids_are_distinct() -> None:
    ids = [p.id for p in MISTAKES]
    assert len(ids) == len(set(ids)) >= 25


def test_bad_zone_type_lists_every_allowed_value() -> None:
    message = message_for(errors(put("zones", 0, "type", value="burglar")), f"{Z0}.type")
    for zone_type in ZoneType:
        assert repr(zone_type.value) in message


def test_zone_timing_defaults_and_the_armed_state_glitch_filter() -> None:
    raw = demo_raw()
    raw["zones"][5]["glitch_ms"] = 50  # the armed output filters arm and disarm
    raw["zones"][1].update(glitch_ms=0, restore_ms=0, hold_s=0, swinger_limit=100)
    cfg = validate(raw, SOURCE)
    front, hall, armed = cfg.zone("front-door"), cfg.zone("hall-pir"), cfg.zone("armed")
    timing = ("glitch_ms", "restore_ms", "hold_s", "swinger_limit")
    assert [getattr(front, key) for key in timing] == [20, 1000, 10, 3]
    assert [getattr(hall, key) for key in timing] == [0, 0, 0, 100]
    assert armed.glitch_ms == 50


# --- secrets never reach a message ------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        pytest.param(put("uplink", "password", value=SECRET), "uplink.username", id="no-username"),
        pytest.param(
            both(put("uplink", "username", value="box"), put("uplink", "password", value=12345)),
            "uplink.password",
            id="wrong-type",
        ),
        pytest.param(put("uplink", "pasword", value=SECRET), "uplink.pasword", id="misspelt-key"),
        pytest.param(
            put("uplink", "broker", value=f"mqtts://box:{SECRET}@station.example.net"),
            "uplink.broker",
            id="in-broker-url",
        ),
        pytest.param(
            demo_camera(url=f"rtsp://viewer:{SECRET}@192.168.1.64/stream"),
            f"{CAM}.url",
            id="in-camera-url",
        ),
    ],
)
def test_password_is_never_printed(mutate: Mutate, path: str) -> None:
    raw = demo_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        validate(raw, SOURCE)
    message_for(info.value.messages, path)
    assert SECRET not in str(info.value)
    assert "12345" not in str(info.value)


# --- every problem at once ----------------------------------------------------


def test_every_structural_mistake_is_reported_at_once() -> None:
    messages = errors(
        both(
            put("inputs", 0, "pin", value=40),
            put("uplink", "keepalive", value=30),
            drop("station", "account"),
        )
    )
    assert len(messages) == 3
    message_for(messages, f"{IN1}.pin")
    message_for(messages, "uplink.keepalive")
    message_for(messages, "station.account")


def test_every_cross_section_mistake_is_reported_at_once() -> None:
    messages = errors(
        both(
            put("inputs", 1, "pin", value=17),
            put("zones", 0, "cameras", value=["garage"]),
            put("uplink", "ca_file", value="/etc/edge/tls/ca.pem"),
        )
    )
    assert len(messages) == 3
    message_for(messages, f"{IN2}.pin")
    message_for(messages, f"{Z0}.cameras[0]")
    message_for(messages, "uplink.broker")


def test_error_text_counts_problems_and_lists_them() -> None:
    with pytest.raises(ConfigError) as info:
        validate({}, SOURCE)
    text = str(info.value)
    assert text.startswith(f"{SOURCE}: 3 problem(s)\n")
    for section in ("device", "station", "uplink"):
        assert f"{SOURCE}: {section}: required key is missing" in text


# --- the file itself ----------------------------------------------------------


def test_load_names_the_real_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(_demo_text().replace("heartbeat_s = 30", "heartbeat_s = 2"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.messages == [
        f"{path}: supervision.heartbeat_s = 2: Input should be greater than or equal to 5"
    ]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        pytest.param(b'[device\nid = "x"\n', "TOML syntax error", id="toml-syntax-error"),
        pytest.param(
            b'[device]\nid = "x"\nid = "y"\n', "TOML syntax error", id="toml-repeated-key"
        ),
        pytest.param(b'[device]\nsite = "Caf\xe9"\n', "not UTF-8 text", id="not-utf8"),
        pytest.param(None, "cannot read: ", id="missing-file"),
    ],
)
def test_unusable_file_is_one_clear_message(
    tmp_path: Path, content: bytes | None, rule: str
) -> None:
    path = tmp_path / "edge.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load(path)
    (message,) = info.value.messages
    assert message.startswith(f"{path}: {rule}")
    assert info.value.source == str(path)


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text('[device]\nid = "x"\nsite = unquoted text\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert "line 3" in info.value.messages[0]


def test_unreadable_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    (message,) = info.value.messages
    assert message.startswith(f"{tmp_path}: cannot read: ")


# --- what TOML allows and the config does not: dates, deep nesting, a BOM ------

TOO_DEEP = f"{SOURCE}: nesting is too deep: more than 32 tables or lists inside each other"


@pytest.mark.parametrize(
    "snippet",
    [
        pytest.param("x = " + "[" * 500 + "]" * 500, id="500-lists"),
        pytest.param("x = " + "{a = " * 500 + "1" + "}" * 500, id="500-inline-tables"),
        pytest.param("[" + ".".join(["a"] * 2000) + "]", id="2000-table-names"),
        pytest.param("x = " + "[" * 40 + "]" * 40, id="40-lists"),
    ],
)
def test_deep_nesting_is_one_clear_message(snippet: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(_demo_text() + "\n" + snippet + "\n", SOURCE)
    assert info.value.messages == [TOO_DEEP]


def test_nesting_is_bounded_before_validation() -> None:
    raw = demo_raw()
    raw["device"]["x"] = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    with pytest.raises(ConfigError) as info:
        validate(raw, SOURCE)
    assert info.value.messages == [TOO_DEEP]


@pytest.mark.parametrize(
    ("mutate", "path", "rule"),
    [
        pytest.param(
            put("device", "id", value=date(2024, 1, 1)),
            "device.id",
            " = 2024-01-01: must be text in quotes",
            id="date-for-text",
        ),
        pytest.param(
            put("device", "site", value=datetime(1979, 5, 27, 7, 32, tzinfo=UTC)),
            "device.site",
            " = 1979-05-27T07:32:00+00:00: must be text in quotes",
            id="datetime-for-text",
        ),
        pytest.param(
            put("station", "account", value=time(7, 30)),
            "station.account",
            " = 07:30:00: must be text in quotes",
            id="time-for-text",
        ),
        pytest.param(
            put("device", "state_dir", value=date(2024, 1, 1)),
            "device.state_dir",
            " = 2024-01-01: must be text in quotes",
            id="date-for-path",
        ),
        pytest.param(
            put("zones", 0, "cameras", value=[date(2024, 1, 1)]),
            f"{Z0}.cameras[0]",
            " = 2024-01-01: must be text in quotes",
            id="date-in-list-of-text",
        ),
        pytest.param(
            put("inputs", 0, "pin", value=date(2024, 1, 1)),
            f"{IN1}.pin",
            " = 2024-01-01: must be a whole number, without quotes",
            id="date-for-number",
        ),
        pytest.param(
            put("device", "when", value=date(2024, 1, 1)),
            "device.when",
            " = 2024-01-01: unknown key",
            id="date-for-unknown-key",
        ),
    ],
)
def test_toml_date_or_time_is_not_text(mutate: Mutate, path: str, rule: str) -> None:
    messages = errors(mutate)
    assert message_for(messages, path).startswith(f"{SOURCE}: {path}{rule}")
    assert len(messages) == 1, messages


def test_unquoted_date_in_the_file_is_refused() -> None:
    text = _demo_text().replace('id = "demo-box-01"', "id = 2024-01-01")
    with pytest.raises(ConfigError) as info:
        parse(text, SOURCE)
    assert info.value.messages == [f"{SOURCE}: device.id = 2024-01-01: must be text in quotes"]


def test_a_date_inside_an_unknown_section_is_reported_once() -> None:
    messages = errors(put("nonsense", value={"when": date(2024, 1, 1)}))
    assert len(messages) == 1 and messages[0].startswith(f"{SOURCE}: nonsense: unknown key")


def test_byte_order_mark_is_refused_saying_how_to_save(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(_demo_text(), encoding="utf-8-sig")  # as Windows Notepad may save it
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.messages == [
        f"{path}: the file starts with a byte-order mark (BOM), which TOML does not allow: "
        'save it as "UTF-8" without BOM (Notepad: Save as, Encoding "UTF-8", not '
        '"UTF-8 with BOM")'
    ]


def test_byte_order_mark_of_uploaded_text_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("\ufeff" + _demo_text(), SOURCE)
    (message,) = caught.value.messages
    assert message.startswith(f"{SOURCE}: the file starts with a byte-order mark (BOM)")


def test_no_note_without_a_byte_order_mark(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="edge.config"):
        parse(_demo_text(), SOURCE)
    assert caplog.records == []


def test_routes_are_checked_across_sections() -> None:
    text = _demo_text() + (
        '\n[[routes]]\nname = "4g"\ntype = "mqtt"\nbroker = "mqtt://127.0.0.1:18830"\n'
        '\n[[routes]]\nname = "4g"\ntype = "dc09"\nreceiver = "arc:3061"\n'
        '\n[[routes]]\nname = "primary"\ntype = "dc09"\nreceiver = "arc:3062"\n'
        '\n[[routes]]\nname = "other"\ntype = "ftp"\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse(text, SOURCE)
    messages = "\n".join(caught.value.messages)
    assert "routes[3]" in messages and "'mqtt', 'dc09'" in messages  # an unknown type
    text = text[: text.index('\n[[routes]]\nname = "other"')]
    with pytest.raises(ConfigError) as caught:
        parse(text, SOURCE)
    assert caught.value.messages == [
        f"{SOURCE}: routes[1](name='4g').name = '4g': duplicate: routes[0] already has name = '4g'",
        f"{SOURCE}: routes[0](name='4g').broker = 'mqtt://127.0.0.1:18830': the same broker "
        "as [uplink]: no backup",
        f"{SOURCE}: routes[2](name='primary').name = 'primary': 'primary' is the [uplink]'s",
    ]
