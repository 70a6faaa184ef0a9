"""A DC-09 route straight from the box to a monitoring centre's alarm receiver (issue 18).

The receiver is pysiaalarm's (an independent implementation), told to hold back its
answers when the test says so. The box's primary route has no broker: the backup
takes every event at once.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from pysiaalarm import SIAAccount, SIAEvent
from pysiaalarm.aio import CommunicationsProtocol, SIAClient

from edge.config import parse
from tests.conftest import free_port
from tests.integration.conftest import HoldingReceiver
from tests.integration.test_dc09_restart import until
from tests.integration.test_end_to_end import RunningBox, demo_text, without_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def route_config(receiver_port: int, transport: str = "tcp") -> str:
    text = without_video(demo_text(free_port(), free_port()))  # a primary with no broker
    return (
        text
        + f"""
[[routes]]
name = "arc"
type = "dc09"
receiver = "127.0.0.1:{receiver_port}"
transport = "{transport}"
null_s = 2
path_loss_s = 30
"""
    )


def messages(receiver: HoldingReceiver, code: str) -> list[bytes]:
    """What the receiver heard with this SIA code (``FA``) or ident (``NULL``)."""
    if code == "NULL":
        return [m for m in receiver.heard if b'"NULL"' in m]
    return [m for m in receiver.heard if re.search(rb"/" + code.encode() + rb"\d", m)]


def seq(message: bytes) -> str:
    found = re.search(rb'"(?:SIA-DCS|NULL|ADM-CID)"(\d{4})', message)
    assert found is not None, message
    return found.group(1).decode()


async def test_a_dc09_route_delivers_sends_nulls_and_resends_with_its_number_after_a_restart(
    receiver: HoldingReceiver, tmp_path: Path
) -> None:
    cfg = parse(route_config(receiver.port), "dc09-route.toml")
    state = tmp_path / "box"
    async with RunningBox(cfg, state) as box:
        box.inputs.simulate("in3", True)  # the fire panel's output
        await until(lambda: [e for e in receiver.events if e.code == "FA"], "the fire")
        fire = next(e for e in receiver.events if e.code == "FA")
        assert (fire.account, fire.ri, fire.message) == ("1234", "1", "010")  # area 1, zone 10
        # the receiver acknowledged it: it leaves the outbox
        await until(lambda: box.outbox.depth == 0, "the outbox emptied")
        # no traffic for null_s: link tests, on time
        before = len(messages(receiver, "NULL"))
        await until(lambda: len(messages(receiver, "NULL")) >= before + 2, "two NULLs", 8)
        receiver.hold = True  # the restore waits for an ACK that does not come
        box.inputs.simulate("in3", False)
        await until(lambda: messages(receiver, "FR"), "the restore heard")
        held = seq(messages(receiver, "FR")[0])
    # the box stopped while the restore waited: started again, it sends the same number
    receiver.hold = False
    async with RunningBox(cfg, state) as box:
        await until(lambda: [e for e in receiver.events if e.code == "FR"], "the restore acked")
        resent = messages(receiver, "FR")
        assert {seq(m) for m in resent} == {held}, resent
        await until(lambda: box.outbox.depth == 0, "the outbox emptied again")
    fires = [e for e in receiver.events if e.code in ("FA", "FR")]
    assert [e.code for e in fires] == ["FA", "FR"]  # each once at the receiver


async def test_a_dc09_route_over_udp(tmp_path: Path) -> None:
    """The same route over UDP, to pysiaalarm's UDP receiver: the fire and its ACK."""
    port = free_port()
    events: list[SIAEvent] = []

    async def accepted(event: SIAEvent) -> None:
        events.append(event)

    accounts = [SIAAccount("1234", None)]
    client = SIAClient("127.0.0.1", port, accounts, accepted, protocol=CommunicationsProtocol.UDP)
    await client.async_start()
    # pysiaalarm's UDP server asserts a transport type CPython's selector transport is not
    # a subclass of, and so never keeps it (nor answers): hand it the transport it made
    client.sia_server.transport = client.transport  # type: ignore[assignment]
    try:
        cfg = parse(route_config(port, "udp"), "dc09-udp.toml")
        async with RunningBox(cfg, tmp_path / "box") as box:
            box.inputs.simulate("in3", True)
            await until(lambda: [e for e in events if e.code == "FA"], "the fire over UDP")
            await until(lambda: box.outbox.depth == 0, "acknowledged over UDP")
    finally:
        await client.async_stop()


async def test_an_event_leased_by_a_run_killed_before_it_wrote_the_message_goes_at_restart(
    receiver: HoldingReceiver, tmp_path: Path
) -> None:
    """A kill between leasing an event on the DC-09 route and storing its message left a
    lease of an hour on it: the next run takes it at once."""
    cfg = parse(route_config(receiver.port), "dc09-route.toml")
    state = tmp_path / "box"
    receiver.hold = True  # the fire waits for an answer when the box stops
    async with RunningBox(cfg, state) as box:
        box.inputs.simulate("in3", True)
        await until(lambda: messages(receiver, "FA"), "the fire heard")
    with sqlite3.connect(state / "outbox.sqlite") as db:  # as if killed before the write
        leased = db.execute(
            "SELECT next_send_ms - first_sent_ms FROM route_sends WHERE route = 2"
        ).fetchall()
        assert leased and min(n for (n,) in leased) > 60_000, leased
        db.execute("UPDATE dc09_sender SET event_id = NULL, frame = NULL")
    receiver.hold = False
    async with RunningBox(cfg, state) as box:
        await until(lambda: [e for e in receiver.events if e.code == "FA"], "the fire acked")
        await until(lambda: box.outbox.depth == 0, "the outbox emptied")
