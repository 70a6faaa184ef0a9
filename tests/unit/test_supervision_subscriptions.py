"""Supervision of refused subscriptions (issue 14): one communication trouble per
refused topic while the link reports it, its restore once a SUBACK grants it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from edge import protocol
from edge.clock import FakeClock
from edge.errors import StorageError
from edge.mqttio import LinkStatus
from edge.uplink.supervision import Change, Profile, Supervisor, Watch, refusals

TOPICS = protocol.Topics("edge", "box-1")
ACK, CMD = TOPICS.ack, TOPICS.cmd
WHY = "Not authorized (0x87)"


# -- the pure decision ---------------------------------------------------------


def test_nothing_refused_nothing_raised() -> None:
    assert refusals(frozenset(), ()) == Change()


def test_a_new_refusal_is_raised_and_a_known_one_is_not() -> None:
    assert refusals(frozenset(), [ACK]) == Change(refused=(ACK,))
    assert refusals(frozenset({ACK}), [ACK]) == Change()
    assert refusals(frozenset({ACK}), [ACK, CMD]) == Change(refused=(CMD,))


def test_a_raised_refusal_no_longer_reported_is_restored() -> None:
    assert refusals(frozenset({ACK, CMD}), [CMD]) == Change(granted=(ACK,))
    assert refusals(frozenset({ACK}), [CMD]) == Change(refused=(CMD,), granted=(ACK,))


# -- the supervisor running it ---------------------------------------------------


class FakeLink:
    def __init__(self) -> None:
        self.status = LinkStatus(connected=True)


class FakeStore:
    async def oldest_alarm_ms(self) -> int | None:
        return None


@dataclass
class Troubles:
    raised: list[tuple[bool, str]] = field(default_factory=list)
    fail: Exception | None = None

    async def __call__(self, lost: bool, text: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.raised.append((lost, text))


def supervisor() -> tuple[Supervisor, FakeLink, Troubles, list[tuple[str, bool]]]:
    link, troubles, outputs = FakeLink(), Troubles(), []
    sup = Supervisor(
        link,  # type: ignore[arg-type]
        FakeStore(),  # type: ignore[arg-type]
        TOPICS,
        Profile(),
        FakeClock(),
        lambda: 0,
        troubles,
        lambda function, active: outputs.append((function, active)),
    )
    return sup, link, troubles, outputs


async def test_a_refused_ack_is_one_trouble_per_episode_then_its_restore() -> None:
    sup, link, troubles, outputs = supervisor()
    link.status.refused_subscriptions[ACK] = WHY
    assert await sup.check() == Change(refused=(ACK,))
    for _ in range(5):  # still refused, reconnects or not: no second trouble
        assert await sup.check() == Change()
    assert troubles.raised == [
        (
            True,
            f"subscription to {ACK} refused by the broker: {WHY}; "
            "the station's acknowledgements cannot reach the box",
        )
    ]
    assert sup.watch == Watch(refused=frozenset({ACK}))

    del link.status.refused_subscriptions[ACK]  # a later SUBACK granted it
    assert await sup.check() == Change(granted=(ACK,))
    assert await sup.check() == Change()
    assert troubles.raised[1:] == [(False, f"subscription to {ACK} granted again")]
    assert sup.watch == Watch()
    assert outputs == []  # events still reach the station: no path-fault output

    link.status.refused_subscriptions[ACK] = WHY  # a new episode: a new trouble
    assert await sup.check() == Change(refused=(ACK,))
    assert len(troubles.raised) == 3


async def test_a_refused_cmd_says_commands_cannot_arrive() -> None:
    sup, link, troubles, _ = supervisor()
    link.status.refused_subscriptions[CMD] = WHY
    await sup.check()
    [(lost, text)] = troubles.raised
    assert lost and CMD in text and "commands cannot reach the box" in text


async def test_a_trouble_that_could_not_be_raised_is_raised_at_the_next_check() -> None:
    sup, link, troubles, _ = supervisor()
    link.status.refused_subscriptions[ACK] = WHY
    troubles.fail = StorageError("disk full")
    with pytest.raises(StorageError):
        await sup.check()
    assert sup.watch.refused == frozenset()  # not noted: not raised
    troubles.fail = None
    assert await sup.check() == Change(refused=(ACK,))
    assert [lost for lost, _ in troubles.raised] == [True]
