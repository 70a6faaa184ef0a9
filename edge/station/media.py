"""Media at the station: chunks kept in SQLite until the file is whole, then one file.

Chunks are BLOB rows rather than part files because a chunk then rides the
same group commit as the events beside it (one fsync for the batch, instead
of one per part file plus one per directory), a duplicate is a primary-key
no-op, a crash leaves no half-written part files to sweep, and "how many
chunks from 0 without a gap" is one indexed query. Chunks are small (tens to
hundreds of KB), a size SQLite reads and writes as fast as the file system.
When all ``count`` chunks are in, the file is assembled in one streaming pass,
its sha256 checked, written with write -> fsync -> rename -> fsync(dir), and
only then recorded as complete and its chunks deleted (one transaction).

The functions taking ``db`` run inside the caller's transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ProtocolError, StorageError
from edge.protocol import MediaProgress
from edge.station.inbound import ChunkReceived

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS media_pending (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id)
) STRICT;
CREATE TABLE IF NOT EXISTS media_chunks (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS media (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    count INTEGER NOT NULL,
    path TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id)
) STRICT;
CREATE INDEX IF NOT EXISTS media_by_event ON media (device, event_id);
"""

_HEADER = "event_id, count, size, sha256, content_type, kind"
EXTENSIONS = {"image/jpeg": "jpg", "video/mp4": "mp4"}


@dataclass(frozen=True)
class MediaKey:
    """A media id is unique per device: the box's ack names media by id alone."""

    device: str
    media_id: str


@dataclass(frozen=True)
class Header:
    """What every chunk of one media must agree on."""

    event_id: str
    count: int
    size: int
    sha256: str
    content_type: str
    kind: str

    @classmethod
    def of(cls, item: ChunkReceived) -> Header:
        c = item.chunk
        return cls(item.event_id, c.count, c.size, c.sha256, c.content_type, c.kind)


# -- pure --------------------------------------------------------------------


def contiguous(indices: Iterable[int]) -> int:
    """How many of ``indices`` (ascending, distinct) run from 0 without a gap."""
    have = 0
    for index in indices:
        if index != have:
            break
        have += 1
    return have


def mismatch(stored: Header, heard: Header) -> str | None:
    """Why a chunk's header contradicts the media's earlier chunks, or None."""
    for name in ("event_id", "count", "size", "sha256", "content_type", "kind"):
        was, now = getattr(stored, name), getattr(heard, name)
        if was != now:
            return f"{name} {now!r} differs from {was!r} of earlier chunks"
    return None


def relative_path(key: MediaKey, header: Header) -> Path:
    """``<device>/<event_id>/<media_id>.<jpg|mp4>`` under the media directory."""
    extension = EXTENSIONS.get(header.content_type, "bin")
    return Path(key.device) / header.event_id / f"{key.media_id}.{extension}"


# -- inside a transaction ------------------------------------------------------


def put_chunk(db: sqlite3.Connection, item: ChunkReceived, received_ms: int) -> bool:
    """Store one chunk; True if new. ProtocolError if its header contradicts the media's."""
    key = MediaKey(item.device, item.media_id)
    heard = Header.of(item)
    found = _header(db, key)
    if found is not None:
        stored, complete = found
        reason = mismatch(stored, heard)
        if reason is not None:
            raise ProtocolError(f"chunk {item.chunk.index} of media {item.media_id}: {reason}")
        if complete:
            return False
    else:
        db.execute(
            "INSERT INTO media_pending (device, media_id, event_id, count, size, sha256, "
            "content_type, kind, first_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key.device, key.media_id, *_fields(heard), received_ms),
        )
    cur = db.execute(
        "INSERT INTO media_chunks (device, media_id, idx, data, received_ms) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (key.device, key.media_id, item.chunk.index, item.data, received_ms),
    )
    return cur.rowcount == 1


def progress(db: sqlite3.Connection, key: MediaKey) -> MediaProgress:
    """What to acknowledge: chunks from 0 without a gap, and whether the file is stored."""
    row = db.execute(
        "SELECT count FROM media WHERE device = ? AND media_id = ?", (key.device, key.media_id)
    ).fetchone()
    if row is not None:
        return MediaProgress(key.media_id, int(row[0]), complete=True)
    indices = db.execute(
        "SELECT idx FROM media_chunks WHERE device = ? AND media_id = ? ORDER BY idx",
        (key.device, key.media_id),
    )
    return MediaProgress(key.media_id, contiguous(int(r[0]) for r in indices))


def ready(db: sqlite3.Connection, key: MediaKey) -> Header | None:
    """The header of a media whose chunks are all stored but whose file is not yet."""
    found = _header(db, key)
    if found is None or found[1]:
        return None
    header = found[0]
    (stored,) = db.execute(
        "SELECT COUNT(*) FROM media_chunks WHERE device = ? AND media_id = ?",
        (key.device, key.media_id),
    ).fetchone()
    return header if stored == header.count else None


def waiting(db: sqlite3.Connection) -> list[MediaKey]:
    """Every media with chunks still pending (to finish after a crash)."""
    rows = db.execute("SELECT device, media_id FROM media_pending ORDER BY first_ms")
    return [MediaKey(r[0], r[1]) for r in rows]


def assemble(
    db: sqlite3.Connection, root: Path, key: MediaKey, header: Header, received_ms: int
) -> bool:
    """Write the whole file and record it; False (chunks discarded) if its sha256 is wrong."""
    relative = relative_path(key, header)
    final = root / relative
    part = final.with_name(f".{final.name}.part")
    chunks = db.execute(
        "SELECT data FROM media_chunks WHERE device = ? AND media_id = ? ORDER BY idx",
        (key.device, key.media_id),
    )
    try:
        _make_dirs(final.parent, root)
        size, sha256 = _write(part, (bytes(r[0]) for r in chunks))
        if (size, sha256) != (header.size, header.sha256):
            part.unlink()
            log.error(
                "media %s of event %s from %s: got %d bytes with sha256 %s, expected %d "
                "bytes with %s; chunks discarded, the box will resend",
                key.media_id,
                header.event_id,
                key.device,
                size,
                sha256,
                header.size,
                header.sha256,
            )
            _forget(db, key)
            return False
        part.replace(final)
        _fsync_dir(final.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        raise StorageError(f"cannot write media file {final}: {exc}") from exc
    db.execute(
        "INSERT INTO media (device, media_id, event_id, kind, content_type, size, sha256, "
        "count, path, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.device,
            key.media_id,
            header.event_id,
            header.kind,
            header.content_type,
            header.size,
            header.sha256,
            header.count,
            str(relative),
            received_ms,
        ),
    )
    _forget(db, key)
    return True


def _header(db: sqlite3.Connection, key: MediaKey) -> tuple[Header, bool] | None:
    args = (key.device, key.media_id)
    for table, complete in (("media", True), ("media_pending", False)):
        row = db.execute(
            f"SELECT {_HEADER} FROM {table} WHERE device = ? AND media_id = ?",  # noqa: S608
            args,
        ).fetchone()
        if row is not None:
            return Header(*row), complete
    return None


def _fields(h: Header) -> tuple[str, int, int, str, str, str]:
    return (h.event_id, h.count, h.size, h.sha256, h.content_type, h.kind)


def _forget(db: sqlite3.Connection, key: MediaKey) -> None:
    for table in ("media_chunks", "media_pending"):
        db.execute(
            f"DELETE FROM {table} WHERE device = ? AND media_id = ?",  # noqa: S608
            (key.device, key.media_id),
        )


# -- files -------------------------------------------------------------------


def _write(path: Path, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Stream ``chunks`` into ``path`` and fsync it; its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        for data in chunks:
            out.write(data)
            digest.update(data)
            size += len(data)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _make_dirs(path: Path, root: Path) -> None:
    """``mkdir -p`` from above ``root`` down to ``path``, fsyncing each new entry's parent."""
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
        if folder == root:
            break
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        _fsync_dir(folder.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
