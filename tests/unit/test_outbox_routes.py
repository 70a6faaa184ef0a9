"""Per-route delivery state in the outbox (edge/outbox/routes.py): when a backup route
takes an event, what an acknowledgement on each route does, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.codes import Condition
from edge.outbox.routes import Failover
from edge.outbox.store import Outbox
from tests.unit.test_outbox import T0, ev

FAILOVER = Failover(alarm_ms=20_000, trouble_ms=60_000, routine_ms=300_000, motion_ms=300_000)
LEASE = 10_000


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Outbox]:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.open(T0)
    yield outbox
    outbox.close()


def ids(events: list) -> list[str]:  # type: ignore[type-arg]
    return [s.event.id for s in events]


def test_a_backup_takes_an_event_once_its_class_s_failover_time_has_passed(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    trouble = box.put(ev(Condition.AC_LOSS, zone="m"), T0).event
    assert box.lease_route(2, T0 + 19_999, False, FAILOVER, LEASE, 10) == []
    assert ids(box.lease_route(2, T0 + 20_000, False, FAILOVER, LEASE, 10)) == [fire.id]
    # leased on route 2: not again until its lease runs out
    assert box.lease_route(2, T0 + 25_000, False, FAILOVER, LEASE, 10) == []
    assert ids(box.lease_route(2, T0 + 60_000, False, FAILOVER, LEASE, 10)) == [
        fire.id,
        trouble.id,
    ]
    # a second backup waits twice as long
    assert box.lease_route(3, T0 + 39_999, False, FAILOVER, LEASE, 10) == []
    assert ids(box.lease_route(3, T0 + 40_000, False, FAILOVER, LEASE, 10)) == [fire.id]
    assert box.route_next_due_ms(3, T0 + 40_000, False, FAILOVER) == T0 + 50_000


def test_while_the_primary_is_down_a_backup_takes_everything_at_once(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    leased = box.lease_route(2, T0, True, FAILOVER, LEASE, 10)
    assert ids(leased) == [fire.id] and leased[0].attempts == 1
    box.release_route(2, [fire.id])
    again = box.lease_route(2, T0 + 1, True, FAILOVER, LEASE, 10)
    assert ids(again) == [fire.id] and again[0].attempts == 2
    box.reset_route(2)
    assert ids(box.lease_route(2, T0 + 2, True, FAILOVER, LEASE, 10)) == [fire.id]


def test_first_ack_on_any_route_ends_the_event(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    box.lease_route(2, T0, True, FAILOVER, LEASE, 10)
    assert box.ack_route(2, [fire.id], every=None) == 1
    assert box.depth() == 0
    assert box.lease(T0 + 10**6, T0, LEASE, 10) == []  # nor resent on the primary


def test_every_route_must_acknowledge_when_done_when_is_every(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    assert ids(box.lease(T0, T0, LEASE, 10)) == [fire.id]
    assert box.ack_route(1, [fire.id], every=2) == 1  # the primary has it, the backup not
    assert box.depth() == 1
    box.reset_leases()  # a reconnect never sends it again on the primary
    assert box.lease(T0 + 10**6, T0, LEASE, 10) == []
    assert ids(box.lease_route(2, T0, True, FAILOVER, LEASE, 10)) == [fire.id]
    assert box.ack_route(2, [fire.id], every=2) == 1
    assert box.depth() == 0
    assert box.ack_route(1, [fire.id], every=2) == 0  # a late copy's: nothing left to credit


def test_a_refusal_ends_the_event_on_that_route_only(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    assert box.refuse_route(2, [fire.id], every=None) == 1
    assert box.depth() == 1
    assert box.lease_route(2, T0 + 10**6, True, FAILOVER, LEASE, 10) == []
    assert ids(box.lease(T0, T0, LEASE, 10)) == [fire.id]  # the primary still carries it
    # every route must answer: a refusal counts as an answer, and one route stored it
    assert box.ack_route(1, [fire.id], every=2) == 1
    assert box.depth() == 0


def test_route_state_goes_with_its_event(box: Outbox) -> None:
    fire = box.put(ev(Condition.FIRE, zone="f"), T0).event
    box.lease_route(2, T0, True, FAILOVER, LEASE, 10)
    box.ack([fire.id])  # the primary's ack (first ack ends it)
    with box._tx() as db:  # the trigger removed its route rows
        assert db.execute("SELECT COUNT(*) FROM route_sends").fetchone()[0] == 0
