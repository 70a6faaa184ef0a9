"""Does a freshly switched release report healthy to its service manager in time?

The decision is a pure reducer over observations (:func:`judge`): the service
must become active (for edge.service, Type=notify: it sent READY=1) with a new
main process, then stay active with that same process for ``settle_s`` (longer
than the watchdog's period, so a release that hangs after READY is caught),
all within ``timeout_s``. A failed state, or a new main process after the
first one (systemd restarted it: crash or watchdog), fails the trial at once.

Two managers feed it:

- :class:`SystemdManager`: ``systemctl restart --no-block edge.service`` and
  ``systemctl show`` (the box);
- :class:`DirectManager`: starts ``edge run`` itself with its own
  ``NOTIFY_SOCKET`` and reads READY=1/WATCHDOG=1 like systemd does (a root
  file system without a running systemd: the image test, a bench).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

Verdict = Literal["waiting", "healthy", "failed"]


@dataclass(frozen=True)
class Observation:
    active: bool
    failed: bool
    pid: int | None
    detail: str = ""


@dataclass(frozen=True)
class TrialState:
    started_s: float
    old_pid: int | None
    pid: int | None = None  # the new main process, once seen active
    active_since_s: float | None = None
    verdict: Verdict = "waiting"
    reason: str = ""


def judge(
    state: TrialState, obs: Observation, now_s: float, timeout_s: float, settle_s: float
) -> TrialState:
    """One step of the trial: the next state given what the manager reports now."""
    if state.verdict != "waiting":
        return state
    waited = now_s - state.started_s
    if obs.failed:
        return replace(state, verdict="failed", reason=f"the service failed: {obs.detail}")
    if state.pid is not None and obs.pid != state.pid:
        why = "restarted" if obs.pid else "stopped"
        return replace(
            state, verdict="failed", reason=f"the service {why} after it started: {obs.detail}"
        )
    if obs.active and obs.pid and obs.pid != state.old_pid:
        if state.pid is None:
            state = replace(state, pid=obs.pid, active_since_s=now_s)
        assert state.active_since_s is not None
        if now_s - state.active_since_s >= settle_s:
            return replace(state, verdict="healthy", reason=f"active for {settle_s:g} s")
    if waited >= timeout_s:
        seen = "never reported ready" if state.pid is None else "did not stay up long enough"
        return replace(
            state,
            verdict="failed",
            reason=f"no healthy report within {timeout_s:g} s: {seen} ({obs.detail})",
        )
    return state


class Manager(Protocol):
    def main_pid(self) -> int | None: ...
    def restart(self) -> None: ...
    def observe(self) -> Observation: ...
    def stop(self) -> None: ...


def run_trial(
    manager: Manager,
    timeout_s: float,
    settle_s: float,
    poll_s: float = 0.5,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TrialState:
    """Restart the service on the new release and watch it until a verdict."""
    state = TrialState(monotonic(), manager.main_pid())
    manager.restart()
    while True:
        state = judge(state, manager.observe(), monotonic(), timeout_s, settle_s)
        if state.verdict != "waiting":
            return state
        sleep(poll_s)


class SystemdManager:
    """edge.service under systemd."""

    def __init__(self, unit: str = "edge.service") -> None:
        self.unit = unit

    def _show(self) -> dict[str, str]:
        out = subprocess.run(
            ["systemctl", "show", self.unit, "-p", "ActiveState,SubState,MainPID,Result"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def main_pid(self) -> int | None:
        return int(self._show().get("MainPID", "0")) or None

    def restart(self) -> None:
        subprocess.run(["systemctl", "restart", "--no-block", self.unit], check=True, timeout=30)

    def observe(self) -> Observation:
        p = self._show()
        state = p.get("ActiveState", "")
        detail = f"{state}/{p.get('SubState', '')}, result {p.get('Result', '')}"
        pid = int(p.get("MainPID", "0")) or None
        return Observation(state == "active", state == "failed", pid, detail)

    def stop(self) -> None:
        """Nothing: systemd keeps running the service."""


class DirectManager:
    """Run ``<prefix>/venv/bin/edge run`` as a child and read its sd_notify messages."""

    def __init__(self, edge: Path, config: Path, state_dir: Path, watchdog_s: float = 30) -> None:
        self.argv = [str(edge), "run", "--config", str(config), "--state-dir", str(state_dir)]
        self.watchdog_s = watchdog_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.ready = False
        self._dir: tempfile.TemporaryDirectory[str] | None = None  # made at the first restart
        self.log_path: Path | None = None
        self.failed_output = ""

    def output(self) -> str:
        """The child's log so far (its last 4 KiB)."""
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_bytes()[-4096:].decode(errors="replace")
        except OSError:
            return ""

    def main_pid(self) -> int | None:
        return None if self.proc is None or self.proc.poll() is not None else self.proc.pid

    def restart(self) -> None:
        self.stop()
        if self.proc is not None and self.proc.returncode != 0:
            self.failed_output = self.output()  # kept for the report after a rollback
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="edge-trial-")
            self.log_path = Path(self._dir.name) / "edge.log"
        path = Path(self._dir.name) / "notify.sock"
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.ready = False
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(path),
            "WATCHDOG_USEC": str(int(self.watchdog_s * 1e6)),
        }
        env.pop("WATCHDOG_PID", None)
        assert self.log_path is not None
        with self.log_path.open("wb") as log:  # a file, not a pipe: a chatty child never blocks
            self.proc = subprocess.Popen(self.argv, env=env, stdout=log, stderr=log)

    def observe(self) -> Observation:
        assert self.proc is not None and self.sock is not None
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.ready = self.ready or b"READY=1" in data.split(b"\n")
        code = self.proc.poll()
        if code is not None:
            tail = self.output().strip().splitlines()[-1:] or [""]
            return Observation(False, True, None, f"exited with {code}: {tail[0]}")
        return Observation(self.ready, False, self.proc.pid, "ready" if self.ready else "starting")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
