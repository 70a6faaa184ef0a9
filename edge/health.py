"""Health: systemd readiness and watchdog, and the status snapshot pages read.

``sd_notify`` is a few lines of datagram socket code, so no libsystemd
binding is needed. The watchdog is pinged only while every registered check
passes: a wedged stage stops the pings and systemd restarts the box.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

Check = Callable[[], str | None]  # None when healthy, else what is wrong
Section = Callable[[], Mapping[str, Any]]


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
    """Registry of health checks and status sections, filled in by the app."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._sections: dict[str, Section] = {}

    def check(self, name: str, fn: Check) -> None:
        self._checks[name] = fn

    def section(self, name: str, fn: Section) -> None:
        self._sections[name] = fn

    def problems(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, fn in self._checks.items():
            try:
                problem = fn()
            except Exception as exc:  # noqa: BLE001 - a broken check is itself a problem
                problem = f"check failed: {exc!r}"
            if problem:
                found[name] = problem
        return found

    def snapshot(self) -> dict[str, Any]:
        status: dict[str, Any] = {name: dict(fn()) for name, fn in self._sections.items()}
        status["problems"] = self.problems()
        status["healthy"] = not status["problems"]
        return status

    async def run_watchdog(self, interval_s: float) -> None:
        """Ping systemd every ``interval_s`` while healthy; say why when not."""
        unhealthy = False
        while True:
            problems = self.problems()
            if problems:
                text = "; ".join(f"{k}: {v}" for k, v in problems.items())
                log.error("unhealthy, withholding watchdog ping: %s", text)
                sd_notify(f"STATUS=unhealthy: {text}"[:400])
            else:
                if unhealthy:
                    log.info("healthy again")
                    sd_notify("STATUS=running")
                sd_notify("WATCHDOG=1")
            unhealthy = bool(problems)
            await asyncio.sleep(interval_s)
