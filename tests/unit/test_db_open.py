"""Opening one new SQLite file from several places at once (two station receivers on one
store): SQLite answers "database is locked" without waiting while another connection
switches the file to WAL; the open waits its turn instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edge.db import open_db
from edge.errors import StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);
"""


def test_three_connections_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    failed: list[str] = []
    for n in range(150):  # the race was lost about once in ten rounds
        path = tmp_path / f"store-{n}.sqlite"
        start = threading.Barrier(3)

        def opens(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                db = open_db(path, SCHEMA, "station store")
            except StorageError as exc:
                failed.append(str(exc))
                return
            db.execute("INSERT INTO events VALUES (?, 1)", (threading.current_thread().name,))
            db.close()

        threads = [threading.Thread(target=opens, name=f"receiver-{i}") for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            if not failed:
                assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
    assert failed == []


def test_a_file_that_stays_locked_is_a_clear_error_in_time(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN EXCLUSIVE")  # another process keeps the file
    try:
        with pytest.raises(StorageError, match=r"cannot open station store .*locked"):
            open_db(path, SCHEMA, "station store", busy_s=0.5)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
