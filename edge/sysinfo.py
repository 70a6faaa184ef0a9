"""What the system says about itself, read without privileges: CPU temperature, memory,
disk, this process, and whether the clock is synchronised.

Every reader returns None (or leaves a figure out) where the machine has no such
thing or the unit's sandbox refuses it: unknown is never shown as 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict


def cpu_temp_c(root: Path = Path("/sys/class/thermal")) -> float | None:
    """The SoC's temperature (thermal_zone0 on a Pi); None where there is none."""
    try:
        return round(int((root / "thermal_zone0" / "temp").read_text()) / 1000, 1)
    except (OSError, ValueError):
        return None


def memory(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    kib = {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if v}
    total, available = kib.get("MemTotal"), kib.get("MemAvailable")
    if total is None or available is None:
        return {}
    return {"memory_total_bytes": total * 1024, "memory_used_bytes": (total - available) * 1024}


# -- clock synchronisation ------------------------------------------------------------
#
# The unit's ProtectClock=yes refuses adjtimex(2) with EPERM even in read-only mode, so
# the verdict comes first from what any user may read.

# systemd-timesyncd's RuntimeDirectory=: present while it runs. It touches "synchronized"
# in it on every accepted sample (systemd-timesyncd.service(8)), so the file's mtime is
# the last synchronisation.
TIMESYNC_DIR = Path("/run/systemd/timesync")
# timesyncd polls at most every PollIntervalMaxSec= (2048 s by default): a flag untouched
# for three polls in a row means the servers stopped answering.
TIMESYNC_STALE_S = 3 * 2048.0
# The kernel's ceiling of maxerror (NTP_PHASE_LIMIT), in microseconds.
MAXERROR_LIMIT_US = 16_000_000


@dataclass(frozen=True)
class ClockFacts:
    """What could be read about the clock without privileges; None where nothing could."""

    timesyncd: bool  # systemd-timesyncd runs (its runtime directory exists)
    flag_age_s: float | None  # since it last touched "synchronized"; None: not this boot
    maxerror_us: int | None  # adjtimex(2), read-only; None where refused (ProtectClock=yes)
    offset_ms: float | None  # adjtimex's last offset


@dataclass(frozen=True)
class ClockSync:
    """The status page's verdict: synchronised or not (None: unknown) and who said so."""

    synchronized: bool | None
    source: str | None  # "timesyncd", "adjtimex" or None
    offset_ms: float | None


def judge_clock(facts: ClockFacts, stale_s: float = TIMESYNC_STALE_S) -> ClockSync:
    if facts.timesyncd:
        # A flag from the future (beyond a second of timestamp coarseness) means the
        # clock was set back after the last sync: not synchronised until timesyncd
        # notices and syncs again.
        age = facts.flag_age_s
        fresh = age is not None and -1.0 <= age <= stale_s
        return ClockSync(fresh, "timesyncd", facts.offset_ms)
    if facts.maxerror_us is not None:
        # The rule of systemd's ntp_synced() (src/basic/time-util.c), behind timedatectl's
        # NTPSynchronized: synchronised while the maximum error is below the kernel's
        # 16 s ceiling. STA_UNSYNC is ignored, as systemd does: a client may keep it set
        # only to stop the kernel from writing the RTC (an RTC in local time).
        synced = facts.maxerror_us < MAXERROR_LIMIT_US
        return ClockSync(synced, "adjtimex", facts.offset_ms)
    return ClockSync(None, None, None)


def read_clock(
    now_s: float,
    timesync_dir: Path = TIMESYNC_DIR,
    adjtimex: Callable[[], tuple[int | None, float | None]] | None = None,
) -> ClockFacts:
    """Stat the timesyncd flag (``now_s`` is the system's wall clock) and try adjtimex."""
    try:
        flag_age_s: float | None = now_s - (timesync_dir / "synchronized").stat().st_mtime
    except OSError:
        flag_age_s = None
    maxerror_us, offset_ms = (adjtimex or _adjtimex)()
    return ClockFacts(timesync_dir.is_dir(), flag_age_s, maxerror_us, offset_ms)


def clock_sync(
    now_s: float,
    timesync_dir: Path = TIMESYNC_DIR,
    adjtimex: Callable[[], tuple[int | None, float | None]] | None = None,
) -> ClockSync:
    """Whether the system clock is synchronised, by which source, and its last offset."""
    return judge_clock(read_clock(now_s, timesync_dir, adjtimex))


class _Timex(ctypes.Structure):
    """Linux ``struct timex`` (adjtimex(2)), read-only use."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


STA_NANO = 0x2000  # offset in nanoseconds, else microseconds


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (find_library runs ldconfig: milliseconds)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def _adjtimex() -> tuple[int | None, float | None]:
    """The kernel's maximum error (µs) and last offset (ms), read with adjtimex(2) in
    read-only mode (modes = 0); ``(None, None)`` where the call is refused or missing."""
    libc = _libc()
    if libc is None:
        return None, None
    try:
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None, None
    if state < 0:
        return None, None
    divisor = 1_000_000 if tx.status & STA_NANO else 1000
    return int(tx.maxerror), round(tx.offset / divisor, 3)


def disk(folder: Path) -> dict[str, int]:
    """Total, used and free bytes of ``folder``'s file system ({} if unreadable)."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return {}
    st = os.statvfs(folder)
    return {
        "disk_total_bytes": usage.total,
        "disk_used_bytes": usage.used,
        "disk_free_bytes": st.f_bavail * st.f_frsize,
    }


class ProcessFigures(TypedDict, total=False):
    process_rss_bytes: int
    process_threads: int
    process_cpu_s: float
    process_open_fds: int


def process(proc: Path = Path("/proc/self")) -> ProcessFigures:
    """This process: resident memory, CPU seconds, threads, open files."""
    out: ProcessFigures = {}
    try:
        fields = dict(
            line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line
        )
        out["process_rss_bytes"] = int(fields["VmRSS"].split()[0]) * 1024
        out["process_threads"] = int(fields["Threads"].strip())
    except (OSError, KeyError, ValueError):
        pass
    try:
        stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        out["process_cpu_s"] = round((int(stat[11]) + int(stat[12])) / ticks, 2)
    except (OSError, IndexError, ValueError):
        pass
    with contextlib.suppress(OSError):
        out["process_open_fds"] = sum(1 for _ in (proc / "fd").iterdir())
    return out
