"""Durable SQLite: WAL journal, fsync on every commit, one writer at a time.

Shared by the box's outbox and the station's store. Every sqlite3 error is
translated into :class:`StorageError` naming the file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.errors import DiskFull, StorageError

log = logging.getLogger(__name__)
CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
BUSY_TIMEOUT_MS = 5000  # how long a transaction waits for another writer


def storage_error(message: str, exc: sqlite3.Error) -> StorageError:
    """``exc`` as our error: :class:`DiskFull` when SQLite ran out of space."""
    full = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    return (DiskFull if full else StorageError)(message)


def open_db(path: Path, schema: str, what: str, busy_s: float = 10.0) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``synchronous=FULL`` and apply ``schema``.

    Two processes opening a new file at once (two station receivers) may find it busy
    where SQLite calls no busy handler (switching to WAL): tried again for ``busy_s``."""
    deadline = time.monotonic() + busy_s
    while True:
        try:
            return _open(path, schema, max(0.05, deadline - time.monotonic()))
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in BUSY_CODES
            if not busy or time.monotonic() >= deadline:
                raise StorageError(f"cannot open {what} {path}: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open {what} {path}: {exc}") from exc
        time.sleep(0.02)


def _open(path: Path, schema: str, busy_s: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_s)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # sqlite3's default, after this
    except sqlite3.Error:
        db.close()
        raise
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
            raise storage_error(f"{self._label}: {exc}", exc) from exc
        return self._db

    def __exit__(self, _t: object, exc: BaseException | None, _tb: object) -> None:
        try:
            if exc is None:
                self._db.execute("COMMIT")
            elif self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise storage_error(f"{self._label}: commit failed: {err}", err) from err
        finally:
            self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise storage_error(f"{self._label}: {exc}", exc) from exc


@dataclass(frozen=True)
class Checked:
    db: sqlite3.Connection
    moved_aside: Path | None = None  # where a corrupt database went
    reason: str = ""


def open_checked(path: Path, schema: str, what: str, now_ms: int, busy_s: float = 5.0) -> Checked:
    """Open ``path`` like :func:`open_db`; if SQLite finds it corrupt (``quick_check``,
    or "corrupt" / "not a database"), rename it with its WAL and shared-memory files
    to ``<name>.corrupt-<now_ms>``, kept for forensics, and start a fresh one.

    Any other failure (locked, I/O error, permissions) is not corruption: it raises
    StorageError and the file stays where it is, its content intact."""
    reason = damage(path, what, busy_s)
    if reason is None:
        return Checked(open_db(path, schema, what))
    aside = path.with_name(f"{path.name}.corrupt-{now_ms}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            try:
                part.rename(Path(f"{aside}{suffix}"))
            except OSError as exc:
                raise StorageError(f"cannot move corrupt {what} {part} aside: {exc}") from exc
    log.critical("%s %s is corrupt (%s): moved aside to %s", what, path, reason, aside)
    return Checked(open_db(path, schema, what), aside, reason)


def damage(path: Path, what: str, busy_s: float) -> str | None:
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
        raise StorageError(f"{what} {path} cannot be checked (left as it is): {exc}") from exc
    finally:
        db.close()
    verdict = " ".join("; ".join(str(r[0]) for r in rows[:5]).split())  # on one line
    return None if verdict == "ok" else verdict[:200]
