"""Health: systemd readiness and watchdog, and the checks behind "healthy".

``sd_notify`` is a few lines of datagram socket code, so no libsystemd
binding is needed. The watchdog is pinged only while every check registered
with ``watchdog=True`` passes: a wedged stage stops the pings and systemd
restarts the box. Other checks (a full disk, a lost link) make the box
unhealthy on its page and in ``STATUS=``, but a restart would not cure them
and could lose an alarm held in memory, so they never stop the pings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Check = Callable[[], str | None]  # None when healthy, else what is wrong


def sd_notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not under systemd."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError as exc:
            log.warning("sd_notify(%s) failed: %s", state.split("=", 1)[0], exc)
            return False
    return True


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of systemd's WatchdogSec, or None when no watchdog is asked for."""
    env = env if env is not None else os.environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    # systemd rejects 0 and negatives too; a zero interval would spin the ping loop.
    return value / 2_000_000 if value > 0 else None


class Health:
    """Registry of health checks, filled in by the status view (edge/status.py)."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._watchdog: set[str] = set()  # checks whose failure a restart cures

    def check(self, name: str, fn: Check, watchdog: bool = True) -> None:
        self._checks[name] = fn
        if watchdog:
            self._watchdog.add(name)
        else:
            self._watchdog.discard(name)

    def problems(self, watchdog_only: bool = False) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, fn in self._checks.items():
            if watchdog_only and name not in self._watchdog:
                continue
            try:
                problem = fn()
            except Exception as exc:  # noqa: BLE001 - a broken check is itself a problem
                problem = f"check failed: {exc!r}"
            if problem:
                found[name] = problem
        return found

    async def run_watchdog(self, interval_s: float) -> None:
        """Ping systemd every ``interval_s`` unless a watchdog check fails; say why."""
        said = ""
        while True:
            problems = self.problems()
            fatal = {k: v for k, v in problems.items() if k in self._watchdog}
            text = "; ".join(f"{k}: {v}" for k, v in problems.items())
            if fatal:
                log.error("unhealthy, withholding watchdog ping: %s", text)
            elif text != said and text:
                log.warning("degraded (still pinging the watchdog): %s", text)
            elif text != said:
                log.info("healthy again")
            if text != said or fatal:
                sd_notify(f"STATUS=unhealthy: {text}"[:400] if text else "STATUS=running")
            if not fatal:
                sd_notify("WATCHDOG=1")
            said = text
            await asyncio.sleep(interval_s)
