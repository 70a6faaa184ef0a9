"""Opening the outbox: integrity check, and a corrupt database moved aside.

A database that fails ``PRAGMA quick_check``, or that SQLite calls corrupt or
not a database, is renamed with its WAL and shared-memory files to ``<name>.corrupt-<ms>`` and
kept for forensics; a new one is created. The new sequence numbers start
above any the old database can have used (the current UTC milliseconds), so
a sequence number never repeats. Any other failure (locked, I/O error,
permissions) is not corruption: it stops the start with a StorageError and the
database stays where it is, its events queued, for the next attempt.
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


CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def open_checked(path: Path, schema: str, now_ms: int, busy_s: float = 5.0) -> Opened:
    """Open ``path``; if it is corrupt, move it aside and start a fresh one."""
    reason = _problem(path, busy_s)
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


def _problem(path: Path, busy_s: float) -> str | None:
    """None if ``path`` is absent or a sound SQLite database, else what is wrong.

    StorageError when it cannot be checked for another reason than corruption."""
    if not path.is_file():
        return None  # absent (created fresh) or not a file (open_db says so)
    try:
        # Read-only: closing the last read-write connection would checkpoint the
        # WAL into the file under suspicion and delete the WAL before it is kept.
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_s)
    except sqlite3.Error:
        return None  # cannot even open it (permissions...): not corruption; open_db reports it
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in CORRUPT_CODES:
            return str(exc)
        raise StorageError(f"outbox {path} cannot be checked (left as it is): {exc}") from exc
    finally:
        db.close()
    verdict = "; ".join(str(r[0]) for r in rows[:5])
    return None if verdict == "ok" else verdict
