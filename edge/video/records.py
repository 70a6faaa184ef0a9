"""What the recorder keeps about footage: the access log and the incident holds.

``access.log`` is append-only JSON lines, each fsynced: every export, deletion,
hold and release of footage (when, who, what, which footage, why).

``holds.jsonl`` is append-only too: a ``hold`` line places an incident hold
(footage of one camera over a time range that retention never deletes), a
``release`` line ends one. A hold is the explicit exception to the legal
retention cap (30 days, CSI L252-5), for footage handed to an investigation:
it ends when released or at its ``until`` time, whichever comes first, and
then its footage falls under the normal retention again. Both ends are in the
access log.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge.video.codec import VideoError


def footage(camera: str, from_ms: int, to_ms: int) -> str:
    return f"camera {camera} {from_ms}..{to_ms}"


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class AccessLog:
    """Append-only JSON lines, each fsynced: exports and deletions of footage."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, at_ms: int, who: str, action: str, footage: str, why: str) -> None:
        line = json.dumps(
            {"at_ms": at_ms, "who": who, "action": action, "footage": footage, "why": why}
        )
        with self._lock:
            _append(self.path, line)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


@dataclass(frozen=True)
class Hold:
    """Footage of ``camera`` over ``[from_ms, to_ms]`` kept until released or ``until_ms``."""

    id: str
    camera: str
    from_ms: int
    to_ms: int
    until_ms: int | None  # None: until released
    who: str
    why: str

    def window(self) -> tuple[str | None, int, int]:
        return (self.camera, self.from_ms, self.to_ms)


class HoldBook:
    """The incident holds in ``holds.jsonl``, with their access-log lines."""

    def __init__(self, path: Path, access: AccessLog) -> None:
        self.path = path
        self.access = access
        self._lock = threading.Lock()

    def active(self) -> list[Hold]:
        """Holds placed and not released (an expired one stays until :meth:`expire`)."""
        placed: dict[str, Hold] = {}
        if not self.path.exists():
            return []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line:
                continue
            record = json.loads(line)
            if "release" in record:
                placed.pop(str(record["release"]), None)
                continue
            record.setdefault("id", f"hold-{number}")  # the first format had no ids
            record.setdefault("until_ms", None)
            hold = Hold(**{k: record[k] for k in Hold.__dataclass_fields__})
            placed.setdefault(hold.id, hold)
        return list(placed.values())

    def place(self, hold: Hold, now_ms: int) -> bool:
        """Place ``hold``; False when a hold of that id is already active (a replay)."""
        with self._lock:
            if any(h.id == hold.id for h in self.active()):
                return False
            _append(self.path, json.dumps(asdict(hold)))
        until = "until released" if hold.until_ms is None else f"until {hold.until_ms}"
        self.access.write(
            now_ms,
            hold.who,
            "hold",
            footage(hold.camera, hold.from_ms, hold.to_ms),
            f"{hold.why} (hold {hold.id}, {until})",
        )
        return True

    def release(self, hold_id: str, who: str, why: str, now_ms: int) -> Hold:
        """End a hold; VideoError when no active hold has that id."""
        with self._lock:
            found = [h for h in self.active() if h.id == hold_id]
            if not found:
                raise VideoError(f"no active hold {hold_id!r} on this box")
            _append(self.path, json.dumps({"release": hold_id, "who": who, "why": why}))
        hold = found[0]
        self.access.write(
            now_ms,
            who,
            "release",
            footage(hold.camera, hold.from_ms, hold.to_ms),
            f"{why} (hold {hold.id})",
        )
        return hold

    def expire(self, now_ms: int) -> list[Hold]:
        """Release the holds whose ``until`` has passed (logged as the hold's expiry)."""
        ended = [h for h in self.active() if h.until_ms is not None and h.until_ms <= now_ms]
        for hold in ended:
            self.release(hold.id, "hold expiry", f"hold ended at {hold.until_ms}", now_ms)
        return ended
