"""Durable SQLite: WAL journal, fsync on every commit, one writer at a time.

Shared by the box's outbox and the station's store. Every sqlite3 error is
translated into :class:`StorageError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge.errors import StorageError


def open_db(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``synchronous=FULL`` and apply ``schema``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(schema)
        except sqlite3.Error:
            db.close()
            raise
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open {what} {path}: {exc}") from exc
    return db


class Transaction:
    """``with`` block: one immediate transaction, committed (and fsynced) on success."""

    def __init__(self, db: sqlite3.Connection | None, lock: threading.Lock, label: str) -> None:
        if db is None:
            raise StorageError(f"{label} is not open")
        self._db = db
        self._lock = lock
        self._label = label

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise StorageError(f"{self._label}: {exc}") from exc
        return self._db

    def __exit__(self, _t: object, exc: BaseException | None, _tb: object) -> None:
        try:
            if exc is None:
                self._db.execute("COMMIT")
            elif self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise StorageError(f"{self._label}: commit failed: {err}") from err
        finally:
            self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"{self._label}: {exc}") from exc
