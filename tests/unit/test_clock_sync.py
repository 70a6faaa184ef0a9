"""Clock synchronisation as the status page shows it (edge/sysinfo.py).

The unit's ProtectClock=yes refuses adjtimex(2) even read-only, so the verdict
comes first from what any user may read: systemd-timesyncd's flag file, then the
kernel's maximum error where adjtimex may be read, else "unknown".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.sysinfo import (
    MAXERROR_LIMIT_US,
    TIMESYNC_STALE_S,
    ClockFacts,
    ClockSync,
    clock_sync,
    judge_clock,
    read_clock,
)

NOW = 1_800_000_000.0
REFUSED = (None, None)  # adjtimex under ProtectClock=yes


@pytest.mark.parametrize(
    ("facts", "verdict"),
    [
        pytest.param(
            ClockFacts(timesyncd=True, flag_age_s=10.0, maxerror_us=None, offset_ms=None),
            ClockSync(True, "timesyncd", None),
            id="timesyncd-synced-just-now",
        ),
        pytest.param(
            ClockFacts(True, TIMESYNC_STALE_S, None, None),
            ClockSync(True, "timesyncd", None),
            id="timesyncd-synced-at-the-stale-limit",
        ),
        pytest.param(
            ClockFacts(True, TIMESYNC_STALE_S + 1, None, None),
            ClockSync(False, "timesyncd", None),
            id="timesyncd-stale-flag",
        ),
        pytest.param(
            ClockFacts(True, None, None, None),
            ClockSync(False, "timesyncd", None),
            id="timesyncd-running-never-synced",
        ),
        pytest.param(
            ClockFacts(True, -3600.0, None, None),
            ClockSync(False, "timesyncd", None),
            id="timesyncd-flag-from-the-future-clock-set-back",
        ),
        pytest.param(
            ClockFacts(True, None, 1_000, 0.25),
            ClockSync(False, "timesyncd", 0.25),
            id="timesyncd-outranks-adjtimex",
        ),
        pytest.param(
            ClockFacts(True, 5.0, 16_000_000, 0.25),
            ClockSync(True, "timesyncd", 0.25),
            id="timesyncd-synced-adjtimex-says-otherwise",
        ),
        pytest.param(
            ClockFacts(False, None, MAXERROR_LIMIT_US - 1, -1.5),
            ClockSync(True, "adjtimex", -1.5),
            id="adjtimex-maxerror-below-16s",
        ),
        pytest.param(
            ClockFacts(False, None, MAXERROR_LIMIT_US, 0.0),
            ClockSync(False, "adjtimex", 0.0),
            id="adjtimex-maxerror-at-16s",
        ),
        pytest.param(
            ClockFacts(False, None, None, None),
            ClockSync(None, None, None),
            id="nothing-readable-unknown",
        ),
    ],
)
def test_decision_table(facts: ClockFacts, verdict: ClockSync) -> None:
    assert judge_clock(facts) == verdict


def test_stale_limit_is_three_polls_of_timesyncd() -> None:
    # PollIntervalMaxSec= defaults to 2048 s; a flag untouched for three polls is lost sync
    assert TIMESYNC_STALE_S == 3 * 2048
    assert judge_clock(ClockFacts(True, 100.0, None, None), stale_s=60.0).synchronized is False


def _flag(run_dir: Path, age_s: float) -> None:
    run_dir.mkdir(exist_ok=True)
    flag = run_dir / "synchronized"
    flag.touch()
    os.utime(flag, (NOW - age_s, NOW - age_s))


def test_reader_without_timesyncd(tmp_path: Path) -> None:
    facts = read_clock(NOW, tmp_path / "timesync", adjtimex=lambda: (16_000_000, 0.5))
    assert facts == ClockFacts(False, None, 16_000_000, 0.5)


def test_reader_with_timesyncd_not_synced_yet(tmp_path: Path) -> None:
    (tmp_path / "timesync").mkdir()
    facts = read_clock(NOW, tmp_path / "timesync", adjtimex=lambda: REFUSED)
    assert facts == ClockFacts(True, None, None, None)


def test_reader_takes_the_flag_age_from_its_mtime(tmp_path: Path) -> None:
    _flag(tmp_path / "timesync", 120.0)
    facts = read_clock(NOW, tmp_path / "timesync", adjtimex=lambda: REFUSED)
    assert facts.timesyncd and facts.flag_age_s == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("age_s", "verdict"),
    [
        (30.0, ClockSync(True, "timesyncd", None)),
        (TIMESYNC_STALE_S + 60, ClockSync(False, "timesyncd", None)),
    ],
)
def test_clock_sync_under_protect_clock(tmp_path: Path, age_s: float, verdict: ClockSync) -> None:
    _flag(tmp_path / "timesync", age_s)
    assert clock_sync(NOW, tmp_path / "timesync", adjtimex=lambda: REFUSED) == verdict


def test_clock_sync_with_nothing_to_read_is_unknown(tmp_path: Path) -> None:
    verdict = clock_sync(NOW, tmp_path / "absent", adjtimex=lambda: REFUSED)
    assert verdict == ClockSync(None, None, None)
