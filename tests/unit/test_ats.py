"""The EN 50136-1 category a box's routes reach (edge/uplink/ats.py), and the path-fault
output of several routes (edge/routing.py)."""

from __future__ import annotations

import pytest

from edge.uplink.ats import RouteFacts, category, summary

H, MIN = 3600, 60


@pytest.mark.parametrize(
    ("primary", "backups", "expected"),
    [
        (20, [], "SP6"),
        (21, [], "SP5"),
        (90, [], "SP5"),
        (180, [], "SP4"),  # the box's standard profile: path loss 180 s
        (30 * MIN, [], "SP3"),
        (25 * H, [], "SP2"),
        (40 * 86_400, [], ""),
        (90, [5 * H], "DP4"),
        (90, [6 * H], "DP3"),
        (180, [25 * H], "DP3"),
        (181, [60], "DP2"),
        (30 * MIN, [25 * H], "DP2"),
        (2 * H, [25 * H + 1], "SP2"),  # a backup too slowly supervised adds no category
    ],
)
def test_category_from_the_routes_reporting_times(
    primary: int, backups: list[int], expected: str
) -> None:
    assert category(primary, backups) == expected


def test_the_status_page_s_summary() -> None:
    routes = [RouteFacts("primary", 90, True), RouteFacts("4g", 300, False)]
    assert summary(routes) == "DP4: primary ok, 4g lost"
    assert summary([]) == ""


def test_path_fault_only_when_every_route_is_lost() -> None:
    from edge.routing import PathFault

    outputs: list[tuple[str, bool]] = []
    fault = PathFault(2, lambda name, on: outputs.append((name, on)))
    fault.output(1, "path_fault", True)  # the primary lost: the backup still carries
    assert outputs == []
    fault.output(2, "path_fault", True)
    assert outputs == [("path_fault", True)]
    fault.output(1, "path_fault", False)
    assert outputs == [("path_fault", True), ("path_fault", False)]
    fault.output(2, "delivery_failure", True)  # only the primary's supervision says this
    fault.output(1, "delivery_failure", True)
    assert outputs[-1] == ("delivery_failure", True) and len(outputs) == 3
