"""Walk test: which covered zones were seen; 24-hour zones are never covered."""

from __future__ import annotations

import pytest

from edge.codes import ZoneType
from edge.config.schema import ZoneConfig
from edge.inputs import walktest
from edge.model import ZoneChanged

ZONES = {
    z.id: z
    for z in (
        ZoneConfig(id="door", name="Door", type=ZoneType.ENTRY_EXIT, number=1),
        ZoneConfig(id="hall", name="Hall", type=ZoneType.INTRUSION, number=2),
        ZoneConfig(id="office", name="Office", type=ZoneType.INTRUSION, number=3),
        ZoneConfig(id="fire", name="Fire", type=ZoneType.FIRE, number=4),
        ZoneConfig(id="lid", name="Lid", type=ZoneType.ENCLOSURE_TAMPER, number=5),
    )
}


def change(zone: str, active: bool, at_s: float) -> ZoneChanged:
    return ZoneChanged(f"in-{zone}", zone, active, at_s, round(at_s * 1000))


def test_covers_only_intrusion_and_entry_exit_zones() -> None:
    test = walktest.start(ZONES, 100.0, 600)
    assert test.zones == ("door", "hall", "office")
    assert not test.covers("fire") and not test.covers("lid")


def test_activations_mark_zones_seen_once_and_count() -> None:
    test = walktest.start(ZONES, 100.0, 600)
    for c in (
        change("hall", True, 110),
        change("hall", False, 111),
        change("hall", True, 130),
        change("door", True, 140),
        change("fire", True, 150),  # not covered: ignored by the walk test
    ):
        test = walktest.observe(test, c)
    assert dict(test.seen) == {"hall": 110, "door": 140}
    assert test.activations == 3
    assert test.not_seen == ("office",)


def test_ends_by_itself_and_summarises() -> None:
    test = walktest.start(ZONES, 100.0, 60)
    test = walktest.observe(test, change("office", True, 120))
    assert not walktest.expired(test, 159.9)
    assert walktest.expired(test, 160.0)
    summary = walktest.finish(test, 160.0, "timeout")
    assert summary.seen == ("office",)
    assert summary.not_seen == ("door", "hall")
    assert summary.text == (
        "walk test timeout after 60 s: 1 zone(s) seen (office); not seen: door, hall"
    )


@pytest.mark.parametrize("duration", [0, -1, walktest.MAX_DURATION_S + 1])
def test_duration_is_bounded(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        walktest.start(ZONES, 0.0, duration)
