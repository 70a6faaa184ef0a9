"""Where a box is: its config's address and coordinates, carried in its birth (PROTOCOL.md
3.1) and read strictly by the station."""

from __future__ import annotations

import json

import pytest

from edge.config import parse
from edge.errors import ConfigError, ProtocolError
from edge.mqttio import Message
from edge.protocol import BoxSite, decode_object, decode_site, encode_state
from edge.station import inbound
from tests.conftest import DEMO_CONFIG

BIRTH = {"boot_id": "b", "version": "t", "at_ms": 1_800_000_000_000}


def config(extra: str) -> str:
    text = DEMO_CONFIG.read_text()
    marker = 'site = "Demo site (simulated panel)"\n'
    assert marker in text
    return text.replace(marker, marker + extra)


def test_the_config_takes_an_address_and_coordinates_together() -> None:
    cfg = parse(config('address = "1 rue X"\nlatitude = 48.85\nlongitude = 2.35\n'), "t.toml")
    assert (cfg.device.address, cfg.device.latitude, cfg.device.longitude) == (
        "1 rue X",
        48.85,
        2.35,
    )
    for bad, rule in (
        ("latitude = 48.85\n", "latitude and longitude go together"),
        ("latitude = 91.0\nlongitude = 2.0\n", "less than or equal to 90"),
        ("latitude = 1.0\nlongitude = -181.0\n", "greater than or equal to -180"),
        ('latitude = "48.85"\nlongitude = 2.0\n', "must be a number"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse(config(bad), "t.toml")
        assert any(m.startswith("t.toml: device") and rule in m for m in caught.value.messages), (
            caught.value.messages
        )


def test_the_birth_carries_what_is_known_and_the_station_reads_it() -> None:
    site = BoxSite("Shop", "1 rue X", 48.85, 2.35)
    payload = encode_state("online", site=site, **BIRTH)
    assert decode_object(payload)["site"] == {
        "name": "Shop", "address": "1 rue X", "latitude": 48.85, "longitude": 2.35,
    }  # fmt: skip
    heard = inbound.parse(Message("edge/gw-1/state", payload), "edge")
    assert isinstance(heard, inbound.StateReceived) and heard.site == site
    nothing = encode_state("online", site=BoxSite(), **BIRTH)
    assert "site" not in decode_object(nothing)  # no empty object on the wire
    assert decode_object(encode_state("online", site=BoxSite(address="x"), **BIRTH))["site"] == {
        "address": "x"
    }


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"name": 5},
        {"address": "x" * 301},
        {"latitude": 1.0},
        {"latitude": 91, "longitude": 0},
        {"latitude": True, "longitude": 0},
        {"latitude": "1", "longitude": "2"},
        {"name": "a", "floor": 2},
    ],
)
def test_a_malformed_site_is_refused(bad: object) -> None:
    with pytest.raises(ProtocolError):
        decode_site(bad)
    body = {"v": 2, "state": "online", "site": bad}
    with pytest.raises(ProtocolError):
        inbound.parse(Message("edge/gw-1/state", json.dumps(body).encode()), "edge")
