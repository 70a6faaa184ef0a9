"""Opening the outbox: integrity check, and a corrupt database moved aside.

The check and the move are :func:`edge.db.open_checked`: a database SQLite
finds corrupt is renamed with its WAL and shared-memory files to
``<name>.corrupt-<ms>`` and kept for forensics, and a new one is created; any
other failure (locked, I/O error, permissions) stops the start with a
StorageError and leaves the queue where it is. After a move, the new sequence
numbers start above any the old database can have used (the current UTC
milliseconds), so a sequence number never repeats.
"""

from __future__ import annotations

from pathlib import Path

from edge.db import Checked
from edge.db import open_checked as open_db_checked

Opened = Checked


def open_checked(path: Path, schema: str, now_ms: int, busy_s: float = 5.0) -> Opened:
    """Open ``path``; if it is corrupt, move it aside and start a fresh one."""
    opened = open_db_checked(path, schema, "outbox", now_ms, busy_s)
    if opened.moved_aside is not None:
        opened.db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (now_ms,))
    return opened
