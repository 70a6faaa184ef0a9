"""A box with several routes at the station (PROTOCOL.md 3.1, 4.12): online while any
route says so, on SQLite and PostgreSQL, and a state's route parsed strictly."""

from __future__ import annotations

import json

import pytest

from edge.errors import ProtocolError
from edge.mqttio import Message
from edge.station import inbound
from edge.station.inbound import StateReceived
from edge.station.store import StationStore
from tests.postgres import postgres  # noqa: F401 (fixture)
from tests.unit.test_station_store import DEVICE, T0, store  # noqa: F401 (fixture)


def state_of(box_store: StationStore) -> str:
    (device,) = box_store.devices()
    return str(device["state"])


def test_a_box_is_offline_only_when_every_route_says_so(store: StationStore) -> None:  # noqa: F811
    store.commit([StateReceived(DEVICE, "online", route=1)], T0)
    store.commit([StateReceived(DEVICE, "online", route=2)], T0 + 1)
    store.commit([StateReceived(DEVICE, "offline", route=1)], T0 + 2)  # the primary's Will
    assert state_of(store) == "online"  # the backup carries it
    store.commit([StateReceived(DEVICE, "offline", route=2)], T0 + 3)
    assert state_of(store) == "offline"
    store.commit([StateReceived(DEVICE, "online", route=1)], T0 + 4)  # the primary is back
    assert state_of(store) == "online"


def test_a_box_without_routes_is_what_its_last_state_says(store: StationStore) -> None:  # noqa: F811
    store.commit([StateReceived(DEVICE, "online")], T0)
    store.commit([StateReceived(DEVICE, "offline")], T0 + 1)
    assert state_of(store) == "offline"


def state_message(route: object) -> Message:
    body = json.dumps({"v": 2, "state": "online", "route": route}).encode()
    return Message(f"edge/{DEVICE}/state", body)


def test_a_state_s_route_is_read() -> None:
    assert inbound.parse(state_message(2), "edge") == StateReceived(DEVICE, "online", route=2)


@pytest.mark.parametrize("route", [0, 100, "2", 1.5, True])
def test_a_state_s_route_is_an_integer_from_1_to_99(route: object) -> None:
    with pytest.raises(ProtocolError):
        inbound.parse(state_message(route), "edge")
