"""The station-store fixture every module may use without importing it (a plugin of the
test suite: ``pytest_plugins`` in tests/conftest.py). Without psycopg: a box's test
environment (the arm64 step) has none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edge.station.store import StationStore

if TYPE_CHECKING:
    from tests.postgres import Postgres

MakeStore = Callable[[], StationStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A new station store on this test's database at each call (a restart): SQLite, or
    PostgreSQL in a database of the test module's own (the module provides ``postgres``)."""
    if request.param == "sqlite":
        return lambda: StationStore(tmp_path / "station.sqlite")
    server: Postgres = request.getfixturevalue("postgres")
    url = server.fresh(request.module.__name__.rsplit(".", 1)[-1])
    return lambda: StationStore(url, tmp_path / "media")
