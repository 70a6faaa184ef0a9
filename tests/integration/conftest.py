"""Fixtures of the integration tests shared by several modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.aio import SIAClient

from tests.conftest import free_port

ACCOUNT = "1234"


@dataclass
class HoldingReceiver:
    """pysiaalarm's receiver; while ``hold`` is set it hears each message and answers nothing."""

    port: int
    client: SIAClient
    heard: list[bytes] = field(default_factory=list)  # every message, as it arrived
    events: list[SIAEvent] = field(default_factory=list)  # what it accepted (and ACKed)
    hold: bool = False


@pytest.fixture
async def receiver() -> AsyncIterator[HoldingReceiver]:
    port = free_port()
    events: list[SIAEvent] = []

    async def accepted(event: SIAEvent) -> None:
        events.append(event)

    account = SIAAccount(ACCOUNT, None, allowed_timeband=(40, 20))
    client = SIAClient("127.0.0.1", port, [account], accepted)
    found = HoldingReceiver(port, client, events=events)
    server = client.sia_server
    parse = server.parse_and_check_event

    def gate(data: bytes) -> object:
        found.heard.append(data)
        return None if found.hold else parse(data)  # None: pysiaalarm answers nothing

    server.parse_and_check_event = gate  # type: ignore[method-assign]
    await client.async_start()
    yield found
    await client.async_stop()
