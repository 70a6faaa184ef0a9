"""Failed logins: per client and page-wide lockout, kept across restarts.

:class:`Lockout` is the pure state (times are the caller's monotonic
seconds). :meth:`Lockout.snapshot` and :meth:`Lockout.restore` carry it across
a restart in wall-clock time; :class:`Keeper` loads and saves it through a
:class:`LockoutStore`: :class:`LockoutFile` (the box: a JSON file replaced
atomically) or the caller's own (the station: a row of its store).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge.auth.errors import AuthError

log = logging.getLogger(__name__)

LOCKOUT_VERSION = 1
MAX_LOCK_S = 3600.0  # the longest lockout
MAX_CLIENTS = 1000  # clients whose failures are remembered


@dataclass
class Strikes:
    """One client's failed logins."""

    failures: int = 0  # in a row since its last lockout
    lockouts: int = 0  # since its last success: each one doubles the next
    locked_until: float = 0.0
    last_failed: float = 0.0


@dataclass
class Lockout:
    """Failed logins per client: ``max_failures`` in a row lock it out for ``lockout_s``,
    doubled at each further lockout up to an hour. Also a page-wide cap, so that many
    addresses cannot share the work of guessing.

    Times are the caller's monotonic seconds. :meth:`snapshot` and :meth:`restore`
    carry the state across a restart in wall-clock time; ``on_change`` is called
    after each change worth keeping.
    """

    max_failures: int
    lockout_s: float
    clients: dict[str, Strikes] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)  # every failure, page-wide
    box_until: float = 0.0  # every client locked out until then (a lost lockout state)
    on_change: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def retry_after_s(self, client: str, now: float) -> float:
        """Seconds ``client`` must wait before trying again; 0 when it may try."""
        strikes = self.clients.get(client)
        until = max(self.box_until, strikes.locked_until if strikes else 0.0)
        self.recent = [t for t in self.recent if now - t < self.lockout_s]
        if len(self.recent) >= self._box_cap:
            until = max(until, self.recent[0] + self.lockout_s)
        return max(0.0, until - now)

    def failed(self, client: str, now: float) -> None:
        self.recent.append(now)
        strikes = self.clients.setdefault(client, Strikes())
        strikes.failures += 1
        strikes.last_failed = now
        if strikes.failures >= self.max_failures:
            strikes.locked_until = now + self._lock_s(strikes.lockouts)
            strikes.lockouts += 1
            strikes.failures = 0
        self._forget_oldest(now)
        self._changed()

    def succeeded(self, client: str) -> None:
        if self.clients.pop(client, None) is not None:
            self._changed()

    def lock_box(self, now: float) -> None:
        """Lock every client out for ``lockout_s``: the state of the lockout is lost."""
        self.box_until = max(self.box_until, now + self.lockout_s)
        self._changed()

    @property
    def _box_cap(self) -> int:
        return self.max_failures * 10  # page-wide: 10 clients' worth

    def _lock_s(self, lockouts: int) -> float:
        return min(MAX_LOCK_S, self.lockout_s * 2.0 ** min(lockouts, 16))

    def _forget_oldest(self, now: float) -> None:
        """Past ``MAX_CLIENTS``, forget the clients quiet longest (never a locked one):
        the page-wide cap, not this list, is what holds many addresses back."""
        if len(self.clients) <= MAX_CLIENTS:
            return
        idle = sorted((s.last_failed, c) for c, s in self.clients.items() if s.locked_until <= now)
        for _, client in idle[: len(self.clients) - MAX_CLIENTS]:
            del self.clients[client]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- across restarts ----------------------------------------------------------

    def snapshot(self, now: float, wall: float) -> dict[str, Any]:
        """The state with every time in wall-clock seconds (JSON-ready)."""
        shift = wall - now
        recent = [t for t in self.recent if now - t < self.lockout_s][-self._box_cap :]
        return {
            "version": LOCKOUT_VERSION,
            "box_until": self.box_until + shift if self.box_until > now else 0.0,
            "recent": [t + shift for t in recent],
            "clients": {
                client: {
                    "failures": s.failures,
                    "lockouts": s.lockouts,
                    "locked_until": s.locked_until + shift if s.locked_until > now else 0.0,
                    "last_failed": s.last_failed + shift,
                }
                for client, s in self.clients.items()
            },
        }

    def restore(self, data: object, now: float, wall: float) -> None:
        """Take the state of a :meth:`snapshot`, all or nothing (AuthError when it is
        not one). A wall clock set back never makes a lock longer than it was."""
        try:
            box_until, recent, clients = _parse_snapshot(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthError(f"not a lockout snapshot: {exc}") from exc

        def past(t: float) -> float:
            return now + min(0.0, t - wall)

        def deadline(t: float, longest: float) -> float:
            return now + min(longest, t - wall) if t > 0 else 0.0

        self.box_until = deadline(box_until, self.lockout_s)
        self.recent = sorted(past(t) for t in recent)
        self.clients = {
            client: Strikes(
                failures,
                lockouts,
                deadline(until, self._lock_s(max(0, lockouts - 1))),
                past(last),
            )
            for client, (failures, lockouts, until, last) in clients.items()
        }


def _parse_snapshot(
    data: object,
) -> tuple[float, list[float], dict[str, tuple[int, int, float, float]]]:
    if not isinstance(data, dict) or data.get("version") != LOCKOUT_VERSION:
        raise ValueError(f"version is not {LOCKOUT_VERSION}")
    recent, clients = data["recent"], data["clients"]
    if not isinstance(recent, list) or not isinstance(clients, dict):
        raise TypeError("recent must be a list and clients an object")
    parsed = {
        str(client): (
            _count(entry["failures"]),
            _count(entry["lockouts"]),
            _time(entry["locked_until"]),
            _time(entry["last_failed"]),
        )
        for client, entry in clients.items()
    }
    return _time(data["box_until"]), [_time(t) for t in recent], parsed


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a time")
    return float(value)


# -- where it is kept ----------------------------------------------------------------


class LockoutStore(Protocol):
    """Where a lockout snapshot is kept. Both methods raise AuthError on failure."""

    @property
    def where(self) -> str:
        """For logs: the file or table."""
        ...

    def read(self) -> object | None:
        """The last snapshot written (parsed JSON), or None when none ever was."""
        ...

    def write(self, snapshot: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LockoutFile:
    """A snapshot in a JSON file (mode 0600): written whole, synced, then renamed over
    the old one (the folder synced too), so that a power cut leaves the old or the new."""

    path: Path

    @property
    def where(self) -> str:
        return str(self.path)

    def write(self, snapshot: dict[str, Any]) -> None:
        folder, tmp = self.path.parent, self.path.with_name(self.path.name + ".tmp")
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(snapshot, separators=(",", ":")) + "\n")
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise AuthError(f"{self.path}: cannot write: {exc}") from exc

    def read(self) -> object | None:
        try:
            data: object = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError too
            raise AuthError(f"{self.path}: cannot read: {exc}") from exc
        return data


@dataclass
class Keeper:
    """A lockout and where it is kept: :meth:`load` at start, :meth:`save` after changes.

    A snapshot that cannot be read or taken is logged and every login waits one
    ``lockout_s`` (fail safe), then the state is written afresh. A failing write is
    logged once (not at every failed login) and once more when writing works again.
    """

    lockout: Lockout
    store: LockoutStore
    unsaved: bool = False

    def load(self, now: float, wall: float) -> None:
        try:
            snapshot = self.store.read()
            if snapshot is not None:
                self.lockout.restore(snapshot, now, wall)
        except AuthError:
            log.exception(
                "the login lockout in %s is lost: every login waits %.0f s",
                self.store.where,
                self.lockout.lockout_s,
            )
            self.lockout.lock_box(now)
            self.save(self.lockout.snapshot(now, wall))

    def save(self, snapshot: dict[str, Any]) -> None:
        """Write ``snapshot`` (taken by the caller: this may run on another thread)."""
        try:
            self.store.write(snapshot)
        except AuthError:
            if not self.unsaved:
                log.exception("the login lockout is kept in memory only: a restart forgets it")
            self.unsaved = True
            return
        if self.unsaved:
            log.info("the login lockout is written to %s again", self.store.where)
        self.unsaved = False
