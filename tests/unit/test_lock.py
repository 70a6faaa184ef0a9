"""image-build/box.lock and box-tests.lock agree with pyproject.toml (else: make lock).

The locks are what a box's image, its update bundles and the arm64 root file
system test install, with pip's hash checking; pyproject.toml is what the
suite's own venv installs. Read here with the parser update bundles use.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edge.update.bundle import Locked, canonical, parse_lock

REPO = Path(__file__).resolve().parents[2]
BOX = REPO / "image-build" / "box.lock"
TESTS = REPO / "image-build" / "box-tests.lock"
SYSTEM = {"numpy": "1.24.2", "setuptools": "66.1.1"}  # Debian bookworm's, as image-build/lock.py
RUNNER = {"pytest", "pytest-asyncio", "pytest-timeout", "hypothesis"}
STALE = "run `make lock` and commit image-build/*.lock"


def _project() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return {
        "box": [Requirement(r) for r in project["dependencies"]],
        **{name: [Requirement(r) for r in reqs] for name, reqs in extras.items()},
    }


def _lock(path: Path) -> dict[str, Locked]:
    return parse_lock(path.read_text(encoding="utf-8"))


def _check(wanted: list[Requirement], locked: dict[str, Locked], lock: Path) -> None:
    for req in wanted:
        name = canonical(req.name)
        assert name in locked, f"{req} is not in {lock.name}: {STALE}"
        assert locked[name].version in req.specifier, (
            f"{lock.name} has {name}=={locked[name].version}, pyproject.toml says {req}: {STALE}"
        )


def test_the_box_lock_pins_every_dependency_as_pyproject_does() -> None:
    box = [r for r in _project()["box"] if canonical(r.name) not in SYSTEM]
    _check(box, _lock(BOX), BOX)


def test_the_box_lock_leaves_out_the_systems_numpy_and_the_stations_psycopg() -> None:
    locked = _lock(BOX)
    for name in SYSTEM:
        assert name not in locked, f"{name} is the system's on a box, never from the lock"
    numpy = next(r for r in _project()["box"] if r.name == "numpy")
    assert SYSTEM["numpy"] in numpy.specifier, f"{numpy} must admit Debian's numpy"
    station = {canonical(r.name) for r in _project()["station"]}
    assert station == {"psycopg", "psycopg-binary"}
    assert not station & set(locked), "psycopg is the station's (extra station), not a box's"
    assert not station & {canonical(r.name) for r in _project()["box"]}


def test_the_tests_lock_pins_the_test_runner_as_the_test_extra_does() -> None:
    runner = [r for r in _project()["test"] if canonical(r.name) in RUNNER]
    assert {canonical(r.name) for r in runner} == RUNNER
    _check(runner, _lock(TESTS), TESTS)


def test_both_locks_agree_on_what_they_share() -> None:
    box, tests = _lock(BOX), _lock(TESTS)
    for name in set(box) & set(tests):
        assert box[name] == tests[name], f"{name}: box.lock and box-tests.lock differ: {STALE}"


@pytest.mark.parametrize("lock", [BOX, TESTS], ids=["box", "box-tests"])
def test_a_lock_is_written_by_make_lock_and_every_package_is_pinned_and_hashed(
    lock: Path,
) -> None:
    text = lock.read_text(encoding="utf-8")
    assert text.startswith("# ") and "Written by `make lock`" in text[:600].replace("\n# ", " ")
    pins = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(pins) == len(_lock(lock)) >= 5  # parse_lock refuses any pin without a hash
