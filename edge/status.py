"""The status snapshot the web page and /metrics read: one section per stage."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import __version__, protocol
from edge.clock import ms


def register_status(box: Any) -> None:
    """Register the health checks and status sections of a :class:`edge.app.Box`."""
    h = box.health
    h.check("tasks", lambda: _dead_tasks(box))  # the only fault a restart would cure
    h.check("outbox", lambda: _outbox_problem(box), watchdog=False)
    h.check("subscriptions", lambda: _refused(box), watchdog=False)
    h.section("device", lambda: _device(box))
    h.section("uplink", lambda: _uplink(box))
    # provisioning: {"state": "unmanaged"|"unprovisioned"|"provisioned", "uplink_allowed",
    # "problems": [...], "serial", "csr_file", "setup_code_file"} (edge/provision.py)
    h.section("provisioning", lambda: box.provisioning.summary())
    h.section("outbox", lambda: _outbox(box))
    # journal: {"durable", "file", "problem", "days", "max_rows", "pending", "written", ...}
    h.section("journal", lambda: box.journal.status())
    h.section("zones", lambda: _zones(box))
    h.section("outputs", lambda: dict(box.outputs.state))
    h.section("walktest", lambda: box.walk_status() or {"running": False})
    h.section("cameras", lambda: {c.cfg.id: vars(c.status) for c in box.cameras})
    h.section("video", lambda: _video(box))
    h.section("motion", lambda: box.motion.status() if box.motion else {"enabled": False})
    h.section("system", lambda: _system(box))


def inputs_view(box: Any) -> dict[str, Any]:
    """Only what the live inputs page needs: cheap enough to read many times a second."""
    return {"zones": _zones(box), "walktest": box.walk_status() or {"running": False}}


def _outbox_problem(box: Any) -> str | None:
    o = box.outbox
    if o.held:
        return (
            f"{len(o.held)} event(s) held in memory, not yet on disk ({o.held.error}): "
            "sent all the same"
        )
    if o.reserve is not None and not o.reserve.held:
        return "disk full: the outbox reserve is in use (room is being made)"
    return None


def _refused(box: Any) -> str | None:
    refused = box.link.status.refused_subscriptions
    return "; ".join(f"{t} refused: {r}" for t, r in refused.items()) or None


def _dead_tasks(box: Any) -> str | None:
    dead = [n for n, t in box.tasks.items() if t.done() and not t.cancelled()]
    return f"stage task ended: {', '.join(dead)}" if dead else None


def _device(box: Any) -> dict[str, Any]:
    return {
        "id": box.cfg.device.id,
        "site": box.cfg.device.site,
        "account": box.cfg.station.account,
        "version": __version__,
        "boot_id": box.boot_id,
        "uptime_s": round(box.clock.monotonic() - box.started_s),
        "simulated_inputs": box.inputs.simulated,
    }


def _uplink(box: Any) -> dict[str, Any]:
    s, f, w = box.link.status, box.forwarder.stats, box.supervisor.watch
    return {
        "broker": box.cfg.uplink.broker,
        "connected": s.connected,
        "connects": s.connects,
        "last_error": s.last_error,
        "in_flight": s.in_flight,
        "window": s.window,
        "published": f.published,
        "acknowledged": f.acked,
        "refused": f.refused,
        "media_chunks": f.chunks,
        "media_done": f.media_done,
        "last_ack_at": None if f.last_ack_ms is None else protocol.iso_ms(f.last_ack_ms),
        "connected_since": _wall_iso(box, s.connected_since),
        "margin_s": _margin_s(box),
        "profile": box.cfg.supervision.profile,
        "heartbeat_s": box.supervisor.profile.heartbeat_s,
        "path_loss_s": box.supervisor.profile.path_loss_s,
        "path_lost": w.path_lost,
        "delivery_failed": w.delivery_failed,
        "refused_subscriptions": dict(s.refused_subscriptions),
        "commands": box.commands.handled,
        "commands_rejected": box.commands.rejected,
    }


def _outbox(box: Any) -> dict[str, Any]:
    o = box.outbox
    age = None if o.oldest_ms is None else round(ms(box.clock.time()) - o.oldest_ms) / 1000
    # the deepest the queue got since it was last empty: the page's drain progress
    peak = 0 if o.depth == 0 else max(o.depth, getattr(box, "outbox_peak", 0))
    box.outbox_peak = peak
    return {
        "depth": o.depth,
        "oldest_age_s": age,
        "media": o.media_count,
        "media_bytes": o.media_bytes,
        "peak_depth": peak,
        "held_in_memory": len(o.held),
        "reserve_held": o.reserve is None or o.reserve.held,
    }


def _zones(box: Any) -> dict[str, Any]:
    zones = []
    for z in box.cfg.zones:
        st = box.panel.zone(z.id)
        zones.append(
            {
                "id": z.id,
                "name": z.name,
                "type": z.type.value,
                "number": z.number,
                "active": st.active,
                "changes": st.changes,
                "last_change_at": (
                    None if st.last_change_ms is None else protocol.iso_ms(st.last_change_ms)
                ),
            }
        )
    armed = {str(k): v for k, v in box.panel.armed.items()}
    return {"armed": armed, "zones": zones, "edges_dropped": box.edges_dropped}


def _wall_iso(box: Any, monotonic_s: float | None) -> str | None:
    """A monotonic instant of this process as UTC wall time."""
    if monotonic_s is None:
        return None
    wall_ms = ms(box.clock.time()) - round((box.clock.monotonic() - monotonic_s) * 1000)
    return protocol.iso_ms(wall_ms)


def _margin_s(box: Any) -> float:
    """Seconds left before a down link becomes a path-loss trouble (the whole profile if up)."""
    profile, watch = box.supervisor.profile, box.supervisor.watch
    path_loss_s = float(profile.path_loss_s)
    if watch.down_since_s is None:
        return path_loss_s
    down_s = float(box.clock.monotonic() - watch.down_since_s)
    return round(max(0.0, path_loss_s - down_s), 1)


def _system(box: Any) -> dict[str, Any]:
    clock = clock_sync(time.time())  # the system clock itself is judged, not box.clock
    figures: dict[str, Any] = {
        "clock_synchronized": clock.synchronized,
        "clock_offset_ms": clock.offset_ms,
        "clock_source": clock.source,
        "load_1m": os.getloadavg()[0],
        "cpu_temp_c": cpu_temp_c(),
        "retention_days": box.cfg.recording.retention_days,
        "oldest_recording_at": _oldest_recording(box),
    }
    figures.update(memory())
    state_dir = getattr(box, "state_dir", None)
    if state_dir is not None:
        usage = shutil.disk_usage(state_dir)
        figures |= {"disk_total_bytes": usage.total, "disk_used_bytes": usage.used}
    return figures


def _video(box: Any) -> dict[str, Any]:
    """Lores frames a slow reader lost, media not made, recorder mode and segments kept."""
    status: dict[str, Any] = box.video.status()
    status.pop("cameras", None)  # already in the cameras section
    return status


RECORDING_SCAN_S = 60.0  # the recordings' folder is listed at most once a minute


def _oldest_recording(box: Any) -> str | None:
    """When the oldest footage kept on disk starts: how far back the box can look."""
    now = box.clock.monotonic()
    cached = getattr(box, "oldest_recording", None)
    if cached is not None and now - cached[0] < RECORDING_SCAN_S:
        return cached[1]  # type: ignore[no-any-return]
    recorder = getattr(getattr(box, "video", None), "recorder", None)
    oldest: str | None = None
    if recorder is not None:
        try:
            segments = recorder.segments()
        except OSError:
            segments = []
        if segments:
            oldest = protocol.iso_ms(segments[0].start_ms)
    box.oldest_recording = (now, oldest)
    return oldest


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
