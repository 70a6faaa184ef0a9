"""Stills and clips waiting for the station: files plus index rows in the outbox.

A file is written beside its final name, fsynced, renamed into place and its
folder fsynced before its row is committed, so a row always points at a
complete file. Under the media quota, or when the disk is full, the oldest
media of motion-only events go first, then the oldest clips, then the oldest
stills; alarm, restore, tamper and trouble *events* are never evicted (they
live in the events table, not here).

A media that an alarm announced and that will never come (evicted, not
recorded before a power cut) stays queued as a *lost notice*: a row with the
reason in ``lost`` and no file, sent so that the station can tell the operator
instead of waiting for it. ``media_due`` lists what the events announced and
is not queued yet; a row leaves it when its file (or its notice) is queued.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.db import Transaction
from edge.errors import DiskFull, StorageError
from edge.model import MediaDue, QueuedMedia
from edge.outbox.schema import MOTION
from edge.protocol import chunk_count

log = logging.getLogger(__name__)
EXTENSIONS = {"image/jpeg": "jpg", "video/mp4": "mp4"}


@dataclass(frozen=True)
class MediaPut:
    item: QueuedMedia
    evicted: int


_COLUMNS = (
    "id, event_id, kind, content_type, file, size, sha256, chunks, acked_chunks, priority, lost"
)
MOTION_MEDIA = "motion"  # what :meth:`MediaShelf.evict` may take, in the policy's order
CLIPS = "clips"
STILLS = "stills"
_EVICTABLE = {
    MOTION_MEDIA: "priority >= ?1",
    CLIPS: "priority < ?1 AND kind = 'clip'",
    STILLS: "priority < ?1 AND kind = 'still'",
}


class MediaShelf:
    def __init__(
        self,
        folder: Path,
        tx: Callable[[], Transaction],
        quota_bytes: int,
        chunk_bytes: int = 256 * 1024,
    ) -> None:
        self.folder = folder
        self.quota_bytes = quota_bytes
        self.chunk_bytes = chunk_bytes
        self._tx = tx

    def open(self) -> None:
        """Create the folder; drop half-written files, rows without files, files without rows."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"media folder {self.folder}: {exc}") from exc
        with self._tx() as db:
            rows = db.execute("SELECT id, file FROM media WHERE lost IS NULL").fetchall()
            missing = [r[0] for r in rows if not (self.folder / r[1]).is_file()]
            db.executemany("DELETE FROM media WHERE id = ?", [(m,) for m in missing])
        known = {r[1] for r in rows}
        try:
            for path in self.folder.iterdir():
                if path.name in known:
                    continue
                if path.is_symlink() or not path.is_file():
                    log.warning("media folder: %s is not one of ours; left alone", path.name)
                    continue
                path.unlink(missing_ok=True)  # half-written (.part) or never indexed
        except OSError as exc:
            raise StorageError(f"media folder {self.folder}: {exc}") from exc
        if missing:
            log.error("media index had %d rows without files; dropped them", len(missing))

    def put(
        self,
        event_id: str,
        media_id: str,
        kind: str,
        content_type: str,
        data: bytes,
        priority: int,
        now_ms: int,
    ) -> MediaPut:
        """Store ``data`` durably and queue it; evicts older media if over quota."""
        if len(data) > self.quota_bytes:
            raise StorageError(f"media {media_id}: {len(data)} bytes exceed the whole quota")
        with self._tx() as db:  # before the write, which would replace its file
            if db.execute("SELECT 1 FROM media WHERE id = ?", (media_id,)).fetchone():
                raise StorageError(f"media {media_id} is already queued")
        name = f"{media_id}.{EXTENSIONS.get(content_type, 'bin')}"
        _write_durably(self.folder, name, data)
        item = QueuedMedia(
            media_id,
            event_id,
            kind,
            content_type,
            self.folder / name,
            len(data),
            hashlib.sha256(data).hexdigest(),
            chunk_count(len(data), self.chunk_bytes),
            0,
            priority,
        )
        try:
            with self._tx() as db:
                evicted = self._make_room(db, len(data))
                db.execute(
                    f"INSERT INTO media ({_COLUMNS}, created_ms) "  # noqa: S608 (constant)
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*_row(item), now_ms),
                )
                db.execute("DELETE FROM media_due WHERE id = ?", (media_id,))
        except BaseException:
            (self.folder / name).unlink(missing_ok=True)
            raise
        return MediaPut(item, len(evicted))

    def put_lost(
        self, event_id: str, media_id: str, kind: str, reason: str, priority: int, now_ms: int
    ) -> bool:
        """Queue a notice that ``media_id`` will never come, and why; False when the
        media itself is queued already (then the file goes, not the notice)."""
        item = QueuedMedia(media_id, event_id, kind, "", self.folder, 0, "", 0, 0, priority, reason)
        with self._tx() as db:
            db.execute("DELETE FROM media_due WHERE id = ?", (media_id,))
            cur = db.execute(
                f"INSERT INTO media ({_COLUMNS}, created_ms) "  # noqa: S608 (constant)
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
                (*_row(item), now_ms),
            )
            return cur.rowcount > 0

    def put_due(self, due: MediaDue, content_type: str, data: bytes, now_ms: int) -> MediaPut:
        """Queue a media an event announced, made after a restart (cut from footage)."""
        prio = self._due_priority(due.id)
        return self.put(due.event_id, due.id, due.kind, content_type, data, prio, now_ms)

    def lose_due(self, due: MediaDue, reason: str, now_ms: int) -> bool:
        """A media an event announced that will never come: its lost notice instead."""
        prio = self._due_priority(due.id)
        return self.put_lost(due.event_id, due.id, due.kind, reason, prio, now_ms)

    def _due_priority(self, media_id: str) -> int:
        with self._tx() as db:
            row = db.execute("SELECT priority FROM media_due WHERE id = ?", (media_id,)).fetchone()
        return MOTION if row is None else int(row[0])

    def lost(self) -> list[tuple[str, str, str]]:
        """(media id, event id, reason) of every lost notice still queued."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, event_id, lost FROM media WHERE lost IS NOT NULL ORDER BY created_ms"
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def due(self) -> list[MediaDue]:
        """What events announced and was never queued (cut short by a stop or power cut)."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, event_id, kind, camera, from_ms, to_ms FROM media_due ORDER BY from_ms"
            ).fetchall()
        return [
            MediaDue(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5])) for r in rows
        ]

    def evict(self, need_bytes: int, which: str, reason: str) -> tuple[int, int]:
        """Free at least ``need_bytes`` (if there is as much) from the oldest media of one
        class (``MOTION_MEDIA``, ``CLIPS`` or ``STILLS``); an alarm's media leave a lost
        notice. Returns (bytes freed, media evicted)."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT id, file, size, priority FROM media WHERE lost IS NULL AND "  # noqa: S608
                f"{_EVICTABLE[which]} ORDER BY created_ms",
                (MOTION,),
            ).fetchall()
            victims = []
            freed = 0
            for media_id, name, size, prio in rows:
                if freed >= need_bytes:
                    break
                victims.append((media_id, name, prio))
                freed += int(size)
            self._drop(db, victims, reason)
        self.unlink([name for _id, name, _p in victims])
        return freed, len(victims)

    def lease(self, now_ms: int, lease_ms: int) -> QueuedMedia | None:
        """The next media due, once its event has been sent at least once."""
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM media m WHERE next_send_ms <= ? AND NOT EXISTS "  # noqa: S608
                "(SELECT 1 FROM events e WHERE e.id = m.event_id AND e.attempts = 0) "
                "ORDER BY priority, created_ms LIMIT 1",
                (now_ms,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE media SET attempts = attempts + 1, next_send_ms = ? WHERE id = ?",
                (now_ms + lease_ms, row[0]),
            )
        return _item(self.folder, row)

    def hold(self, media_id: str, until_ms: int) -> None:
        """All chunks are out: wait until ``until_ms`` for the station to complete it."""
        with self._tx() as db:
            db.execute("UPDATE media SET next_send_ms = ? WHERE id = ?", (until_ms, media_id))

    def progress(self, media_id: str, have: int, complete: bool) -> bool:
        """Record the station's progress; a complete file leaves the outbox. True if known."""
        with self._tx() as db:
            row = db.execute("SELECT file FROM media WHERE id = ?", (media_id,)).fetchone()
            if row is None:
                return False
            if complete:
                db.execute("DELETE FROM media WHERE id = ?", (media_id,))
            else:
                db.execute("UPDATE media SET acked_chunks = ? WHERE id = ?", (have, media_id))
        if complete and row[0]:
            (self.folder / row[0]).unlink(missing_ok=True)
        return True

    def chunk(self, item: QueuedMedia, index: int) -> bytes:
        return self.chunks(item, index, 1)[0]

    def chunks(self, item: QueuedMedia, first: int, count: int) -> list[bytes]:
        """Chunks ``first`` to ``first + count - 1`` of ``item``'s file, in one read."""
        try:
            with item.file.open("rb") as f:
                f.seek(first * self.chunk_bytes)
                data = f.read(count * self.chunk_bytes)
        except OSError as exc:
            raise StorageError(f"cannot read media {item.file}: {exc}") from exc
        size = self.chunk_bytes
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        return parts or [b""]

    def dead_letter(self, media_id: str, reason: str, code: int | None, now_ms: int) -> bool:
        """Move media the broker refused out of the queue, for good. True if known."""
        with self._tx() as db:
            row = db.execute(
                "SELECT file, event_id FROM media WHERE id = ?", (media_id,)
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT OR REPLACE INTO dead_letters (id, what, body, reason, code, at_ms) "
                "VALUES (?, 'media', ?, ?, ?, ?)",
                (media_id, f'{{"event_id":"{row[1]}","file":"{row[0]}"}}', reason, code, now_ms),
            )
            db.execute("DELETE FROM media WHERE id = ?", (media_id,))
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'dead_letters'")
        self.unlink([row[0]])
        return True

    def dead_letter_of_event(
        self, db: sqlite3.Connection, event_id: str, reason: str, code: int | None, now_ms: int
    ) -> list[str]:
        """Within a transaction: the media of a refused event become dead letters too.
        Returns their files, to unlink once the transaction committed."""
        rows = db.execute("SELECT id, file FROM media WHERE event_id = ?", (event_id,)).fetchall()
        db.executemany(
            "INSERT OR REPLACE INTO dead_letters (id, what, body, reason, code, at_ms) "
            "VALUES (?, 'media', ?, ?, ?, ?)",
            [
                (
                    media_id,
                    json.dumps({"event_id": event_id, "file": name}),
                    f"its event was refused: {reason}",
                    code,
                    now_ms,
                )
                for media_id, name in rows
            ],
        )
        db.execute("DELETE FROM media WHERE event_id = ?", (event_id,))
        return [name for _id, name in rows]

    def unlink(self, names: list[str]) -> None:
        for name in names:
            if name:  # a lost notice has no file
                (self.folder / name).unlink(missing_ok=True)

    def drop_event(self, db: sqlite3.Connection, event_id: str) -> None:
        """Within a transaction: drop the media of an evicted event."""
        files = [r[0] for r in db.execute("SELECT file FROM media WHERE event_id = ?", (event_id,))]
        db.execute("DELETE FROM media WHERE event_id = ?", (event_id,))
        db.execute("DELETE FROM media_due WHERE event_id = ?", (event_id,))
        self.unlink(files)

    def figures(self) -> tuple[int, int]:
        """(count, bytes) of queued media files (lost notices are not counted)."""
        with self._tx() as db:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM media WHERE lost IS NULL"
            ).fetchone()
        return int(count), int(size)

    def _make_room(self, db: sqlite3.Connection, size: int) -> list[str]:
        """Within a transaction: evict under the quota (motion-only media first, then
        clips, then stills, oldest first in each); an alarm's media leave lost notices."""
        used = int(db.execute("SELECT COALESCE(SUM(size), 0) FROM media").fetchone()[0])
        excess = used + size - self.quota_bytes
        if excess <= 0:
            return []
        order = db.execute(
            "SELECT id, file, size, priority FROM media WHERE lost IS NULL "
            "ORDER BY priority >= ?1 DESC, (priority < ?1 AND kind = 'clip') DESC, created_ms",
            (MOTION,),
        ).fetchall()
        victims = []
        for media_id, name, victim_size, prio in order:
            if excess <= 0:
                break
            victims.append((media_id, name, prio))
            excess -= victim_size
        self._drop(db, victims, "evicted: the box's media quota was reached")
        self.unlink([name for _id, name, _p in victims])
        return [v[0] for v in victims]

    def _drop(self, db: sqlite3.Connection, victims: list[tuple[str, str, int]], why: str) -> None:
        """Within a transaction: motion-only media go; an alarm's become lost notices."""
        gone = [(v[0],) for v in victims if v[2] >= MOTION]
        lost = [(why, v[0]) for v in victims if v[2] < MOTION]
        db.executemany("DELETE FROM media WHERE id = ?", gone)
        db.executemany(
            "UPDATE media SET lost = ?, file = '', size = 0, sha256 = '', chunks = 0, "
            "acked_chunks = 0, content_type = '', next_send_ms = 0 WHERE id = ?",
            lost,
        )
        db.execute("UPDATE meta SET value = value + ? WHERE key = 'evicted_media'", (len(victims),))


def _write_durably(folder: Path, name: str, data: bytes) -> None:
    part = folder / f"{name}.part"
    try:
        with part.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        part.rename(folder / name)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        part.unlink(missing_ok=True)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise (DiskFull if full else StorageError)(
            f"cannot write media {folder / name}: {exc}"
        ) from exc


def _row(item: QueuedMedia) -> tuple[object, ...]:
    return (
        item.id,
        item.event_id,
        item.kind,
        item.content_type,
        item.file.name,
        item.size,
        item.sha256,
        item.chunks,
        item.acked_chunks,
        item.priority,
        item.lost,
    )


def _item(folder: Path, row: Any) -> QueuedMedia:
    return QueuedMedia(
        id=str(row[0]),
        event_id=str(row[1]),
        kind=str(row[2]),
        content_type=str(row[3]),
        file=folder / str(row[4]),
        size=int(row[5]),
        sha256=str(row[6]),
        chunks=int(row[7]),
        acked_chunks=int(row[8]),
        priority=int(row[9]),
        lost=None if row[10] is None else str(row[10]),
    )
