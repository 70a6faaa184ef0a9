"""The box's config file for the page: shown redacted, checked, applied with rollback.

Applying writes the new file (the old one kept as ``<name>.previous``), leaves a
marker in the state directory and asks for a restart. The next start keeps the
new config once the box has stayed healthy for ``web.apply_confirm_s``
(:class:`Probation`), or puts the previous one back and restarts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from edge.config import EdgeConfig, parse
from edge.errors import ConfigError, Conflict

log = logging.getLogger(__name__)
APPLY_MARKER = "apply-pending.json"


class ConfigFile:
    """The running config: shown redacted, checked like ``edge check-config``, applied.

    Applying writes the new file (the old one kept as ``<name>.previous``),
    leaves a marker in the state directory and asks for a restart. The next
    start confirms the new config once the box has stayed healthy for
    ``web.apply_confirm_s``, or puts the previous one back and restarts again."""

    def __init__(
        self,
        cfg: EdgeConfig,
        path: Path | None,
        marker_dir: Path,
        restart: Callable[[], None] | None,
    ) -> None:
        self.cfg = cfg
        self.path = path
        self.marker = marker_dir / APPLY_MARKER
        self._restart = restart

    @property
    def confirm_s(self) -> int:
        return self.cfg.web.apply_confirm_s

    def redacted(self) -> str:
        return to_toml(self.cfg.model_dump(mode="json", exclude_none=True))

    def check(self, text: str, name: str = "upload.toml") -> list[str]:
        """The problems ``edge check-config`` would print, under the file's own name."""
        try:
            parse(text, name)
        except ConfigError as exc:
            return list(exc.messages)
        return []

    async def apply(self, text: str) -> dict[str, Any]:
        if self.path is None or self._restart is None:
            raise Conflict("this box was started without a config file path: cannot apply")
        if self.marker.exists():
            raise Conflict("a config applied earlier is still on probation: wait for it")
        try:
            # through a link (/etc/edge/edge.toml -> site/edge.toml) to the file
            # itself, in the one folder the service may write
            await asyncio.to_thread(self._swap, self.path.resolve(), text)
        except OSError as exc:
            self.marker.unlink(missing_ok=True)
            raise Conflict(f"cannot write the new config beside {self.path}: {exc}") from exc
        log.warning("new config written to %s; restarting to apply it", self.path)
        self._restart()
        return {
            "message": "applied: the box restarts, and keeps it if it stays healthy "
            f"for {self.cfg.web.apply_confirm_s} s",
            "confirm_s": self.cfg.web.apply_confirm_s,
        }

    def _swap(self, path: Path, text: str) -> None:
        """Keep the old file, leave the marker, then write the new file (in that order:
        a crash between two steps leaves either the old config or a way back)."""
        previous = path.with_name(path.name + ".previous")
        _write_atomic(previous, path.read_bytes())
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.marker, json.dumps({"previous": str(previous)}).encode())
        _write_atomic(path, text.encode("utf-8"))


def pending_previous(marker_dir: Path) -> Path | None:
    """The previous config of an apply still on probation, if any."""
    try:
        data = json.loads((marker_dir / APPLY_MARKER).read_text())
        return Path(data["previous"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def roll_back(config_path: Path, marker_dir: Path, why: str) -> bool:
    """Put the previous config back; False when there is nothing to roll back."""
    previous = pending_previous(marker_dir)
    if previous is None or not previous.is_file():
        return False
    _write_atomic(config_path.resolve(), previous.read_bytes())
    (marker_dir / APPLY_MARKER).unlink(missing_ok=True)
    log.error("new config rolled back (%s): %s restored", why, config_path)
    return True


def confirm(marker_dir: Path) -> None:
    (marker_dir / APPLY_MARKER).unlink(missing_ok=True)
    log.info("new config confirmed: the box stayed healthy")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def to_toml(data: dict[str, Any]) -> str:
    """The validated config as TOML, written by tomli-w."""
    return tomli_w.dumps(data)


class Probation:
    """A config applied from the page is kept only if the box is healthy
    ``confirm_s`` after its start (``problems()`` empty); otherwise the previous file
    is put back and the box restarted.

    What is merely still starting then (``settling()``: a camera before its first
    picture, the link's first connection in progress) is not held against the new
    config: the probation waits for it, a second at a time and at most
    ``settle_max_s`` more, and decides once it has settled or turned into a problem.
    A problem (``problems()`` not empty) rolls back at once."""

    def __init__(
        self,
        config_path: Path | None,
        marker_dir: Path,
        confirm_s: float,
        problems: Callable[[], dict[str, str]],
        restart: Callable[[], None],
        settling: Callable[[], bool] = lambda: False,
        settle_max_s: float = 600.0,
        poll_s: float = 1.0,
    ) -> None:
        self.config_path = config_path
        self.marker_dir = marker_dir
        self.confirm_s = confirm_s
        self.problems = problems
        self.restart = restart
        self.settling = settling
        self.settle_max_s = settle_max_s
        self.poll_s = poll_s

    def pending(self) -> bool:
        return pending_previous(self.marker_dir) is not None

    async def run(self) -> bool:
        """Confirm (True) or roll back (False) the config on probation."""
        await asyncio.sleep(self.confirm_s)
        waited_s = 0.0
        while not self.problems() and self.settling() and waited_s < self.settle_max_s:
            await asyncio.sleep(self.poll_s)
            waited_s += self.poll_s
        problems = self.problems()
        if not problems and not self.settling():
            confirm(self.marker_dir)
            return True
        why = "; ".join(problems.values()) or f"still starting after {waited_s:.0f} s more"
        if self.config_path is not None and roll_back(self.config_path, self.marker_dir, why):
            self.restart()
        return False
