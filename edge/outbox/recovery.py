"""Opening the outbox: integrity check, and a corrupt database moved aside.

A database that fails ``PRAGMA quick_check`` (or cannot be opened at all) is
renamed with its WAL and shared-memory files to ``<name>.corrupt-<ms>`` and
kept for forensics; a new one is created. The new sequence numbers start
above any the old database can have used (the current UTC milliseconds), so
a sequence number never repeats.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.db import open_db
from edge.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    db: sqlite3.Connection
    moved_aside: Path | None = None  # where a corrupt database went
    reason: str = ""


def open_checked(path: Path, schema: str, now_ms: int) -> Opened:
    """Open ``path``; if it is corrupt, move it aside and start a fresh one."""
    reason = _problem(path)
    if reason is None:
        return Opened(open_db(path, schema, "outbox"))
    aside = path.with_name(f"{path.name}.corrupt-{now_ms}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            try:
                part.rename(Path(f"{aside}{suffix}"))
            except OSError as exc:
                raise StorageError(f"cannot move corrupt outbox {part} aside: {exc}") from exc
    log.critical("outbox %s is corrupt (%s): moved aside to %s", path, reason, aside)
    db = open_db(path, schema, "outbox")
    db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (now_ms,))
    return Opened(db, aside, reason)


def _problem(path: Path) -> str | None:
    """None if ``path`` is absent or a sound SQLite database, else what is wrong."""
    if not path.is_file():
        return None  # absent (created fresh) or not a file (open_db says so)
    try:
        # Read-only: closing the last read-write connection would checkpoint the
        # WAL into the file under suspicion and delete the WAL before it is kept.
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None  # cannot even open it (permissions...): not corruption; open_db reports it
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        db.close()
    verdict = "; ".join(str(r[0]) for r in rows[:5])
    return None if verdict == "ok" else verdict
