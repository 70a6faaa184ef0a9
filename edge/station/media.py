"""Media at the station: chunks written in place into a part file, then one whole file.

A chunk's bytes go straight to their offset in the media's part file (see
:mod:`edge.station.parts`); SQLite keeps only which chunks are in
(``media_chunks``: index and length, no bytes) and what every chunk of the
media must agree on (``media_pending``, with ``chunk_bytes``: the length of
every chunk but the last, which fixes each chunk's offset). A batch fsyncs the
part files it wrote before its one SQLite commit (group commit), so a chunk
counted in ``have`` is on disk. A duplicate is a primary-key no-op and "how
many chunks from 0 without a gap" stays one indexed query. When all ``count``
chunks are in, the part file's size and sha256 are checked, it is renamed to
its final name and its folders fsynced, and only then the media is recorded as
complete and its chunk rows deleted (one transaction for all media a batch
completes). A chunk whose length contradicts ``chunk_bytes`` or ``size``
cannot belong to the file: the media is discarded as on a wrong sha256.

The functions taking ``db`` run inside the caller's transaction.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ProtocolError
from edge.protocol import Chunk, MediaProgress
from edge.station import parts
from edge.station.inbound import ChunkReceived, MediaLostReceived
from edge.station.parts import PartWriter
from edge.station.sql import Db

log = logging.getLogger(__name__)

_PENDING = """
CREATE TABLE IF NOT EXISTS media_pending (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    chunk_bytes INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id)
) STRICT;
CREATE TABLE IF NOT EXISTS media_chunks (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    size INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id, idx)
) STRICT;
"""
SCHEMA = (
    _PENDING
    + """
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
CREATE TABLE IF NOT EXISTS media_lost (
    device TEXT NOT NULL,
    media_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (device, media_id)
) STRICT;
CREATE INDEX IF NOT EXISTS media_lost_by_event ON media_lost (device, event_id);
"""
)

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


class Put(enum.Enum):
    """What :func:`put_chunk` did with a chunk."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CORRUPT = "corrupt"  # its length fits no file of its header: the media is discarded
    UNWRITTEN = "unwritten"  # the media disk refused its bytes: not stored, not acknowledged


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


def expected_length(chunk: Chunk, step: int) -> int | None:
    """The length chunk ``chunk.index`` must have if every chunk but the last has ``step``.

    None if no file of ``chunk.size`` bytes splits so.
    """
    last = chunk.size - (chunk.count - 1) * step
    if last < 0:
        return None
    return step if chunk.index < chunk.count - 1 else last


def chunk_bytes(chunk: Chunk, length: int) -> int | None:
    """The length of every chunk but the last that one chunk of ``length`` implies.

    None if it fits no file of its header: a lone last chunk must leave a
    multiple of ``count - 1`` bytes to the others.
    """
    if chunk.count == 1:
        step = chunk.size
    elif chunk.index < chunk.count - 1:
        step = length
    else:
        step, odd = divmod(chunk.size - length, chunk.count - 1)
        if odd or step < 0:
            return None
    return step if expected_length(chunk, step) == length else None


def lock(db: Db, key: MediaKey) -> None:
    """Hold ``key`` until the transaction ends, against other receivers of a shared store."""
    db.lock(f"media/{key.device}/{key.media_id}")


def part_of(root: Path, key: MediaKey) -> Path:
    return parts.part_path(root, key.device, key.media_id)


# -- inside a transaction ------------------------------------------------------


def put_chunk(db: Db, writer: PartWriter, item: ChunkReceived, at_ms: int) -> Put:
    """Store one chunk: its bytes into the part file (fsynced by the caller), its row.

    ProtocolError if its header contradicts the media's.
    """
    key = MediaKey(item.device, item.media_id)
    chunk, length = item.chunk, len(item.data)
    lock(db, key)  # receivers sharing a store: one decides a media's first chunk
    found = _header(db, key)
    if found is None:
        step = chunk_bytes(chunk, length)
    else:
        stored, step = found
        reason = mismatch(stored, Header.of(item))
        if reason is not None:
            raise ProtocolError(f"chunk {chunk.index} of media {item.media_id}: {reason}")
        if step is None or _has(db, key, chunk.index):  # complete, or this chunk is in
            return Put.DUPLICATE
        if expected_length(chunk, step) != length:
            step = None
    if step is None:
        log.error(
            "media %s of event %s from %s: chunk %d of %d carries %d bytes, which fits no "
            "%d-byte file of equal chunks; chunks discarded, the box will resend",
            key.media_id,
            item.event_id,
            key.device,
            chunk.index,
            chunk.count,
            length,
            chunk.size,
        )
        forget(db, key)
        return Put.CORRUPT
    try:
        writer.write(part_of(writer.root, key), chunk.index * step, item.data, fresh=found is None)
    except OSError as exc:
        log.error("chunk %d of media %s from %s not stored: %s", chunk.index, *_who(key), exc)
        return Put.UNWRITTEN
    if found is None:
        db.execute(
            "INSERT INTO media_pending (device, media_id, event_id, count, size, sha256, "
            "content_type, kind, chunk_bytes, first_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key.device, key.media_id, *_fields(Header.of(item)), step, at_ms),
        )
    db.execute(
        "INSERT INTO media_chunks (device, media_id, idx, size, received_ms) "
        "VALUES (?, ?, ?, ?, ?)",
        (key.device, key.media_id, chunk.index, length, at_ms),
    )
    return Put.NEW


def put_lost(db: Db, item: MediaLostReceived, at_ms: int) -> bool:
    """Record that the box will never send this media; its chunks, if any came, are
    dropped. A media already complete stays (the notice crossed it). True if new."""
    key = MediaKey(item.device, item.media_id)
    lock(db, key)
    if progress(db, key).complete:
        return False
    forget(db, key)
    cur = db.execute(
        "INSERT INTO media_lost (device, media_id, event_id, kind, reason, received_ms) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device, media_id) DO NOTHING",
        (item.device, item.media_id, item.event_id, item.kind, item.reason, at_ms),
    )
    return bool(cur.rowcount)


def progress(db: Db, key: MediaKey) -> MediaProgress:
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


def ready(db: Db, key: MediaKey) -> Header | None:
    """The header of a media whose chunks are all stored but whose file is not yet."""
    lock(db, key)  # receivers sharing a store: one finishes the file
    found = _header(db, key)
    if found is None or found[1] is None:
        return None
    header = found[0]
    (stored,) = db.execute(
        "SELECT COUNT(*) FROM media_chunks WHERE device = ? AND media_id = ?",
        (key.device, key.media_id),
    ).fetchone()
    return header if stored == header.count else None


def waiting(db: Db) -> list[MediaKey]:
    """Every media with chunks still pending (to finish after a crash)."""
    rows = db.execute("SELECT device, media_id FROM media_pending ORDER BY first_ms")
    return [MediaKey(r[0], r[1]) for r in rows]


def pending(db: Db) -> dict[MediaKey, tuple[Header, int]]:
    """Every media with chunks still pending: its header and ``chunk_bytes``."""
    rows = db.execute(
        f"SELECT device, media_id, {_HEADER}, chunk_bytes FROM media_pending"  # noqa: S608
    )
    return {MediaKey(r[0], r[1]): (Header(*r[2:8]), int(r[8])) for r in rows}


def record(db: Db, key: MediaKey, header: Header, at_ms: int) -> None:
    """Record a media whose file is in place (and fsynced) as complete; drop its chunk rows."""
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
            str(relative_path(key, header)),
            at_ms,
        ),
    )
    forget(db, key)


def forget(db: Db, key: MediaKey) -> None:
    """Delete a media's pending rows (its part file is the caller's to remove)."""
    for table in ("media_chunks", "media_pending"):
        db.execute(
            f"DELETE FROM {table} WHERE device = ? AND media_id = ?",  # noqa: S608
            (key.device, key.media_id),
        )


def upgrade(db: sqlite3.Connection) -> int | None:
    """Drop chunks an older station kept as BLOBs (the boxes resend them); how many, or None.

    Runs its own transaction; None if the tables are already current.
    """

    def stale() -> bool:
        return "data" in {r[1] for r in db.execute("PRAGMA table_info(media_chunks)")}

    if not stale():  # a read, so that opening a current store takes no write lock
        return None
    db.execute("BEGIN IMMEDIATE")
    try:
        if not stale():  # another process upgraded it meanwhile
            db.execute("ROLLBACK")
            return None
        (dropped,) = db.execute("SELECT COUNT(*) FROM media_chunks").fetchone()
        db.execute("DROP TABLE media_chunks")
        db.execute("DROP TABLE media_pending")
        for statement in _PENDING.split(";"):
            if statement.strip():
                db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(dropped)


def _header(db: Db, key: MediaKey) -> tuple[Header, int | None] | None:
    """The media's header and ``chunk_bytes``, None for a complete media; None if unknown."""
    args = (key.device, key.media_id)
    row = db.execute(
        f"SELECT {_HEADER} FROM media WHERE device = ? AND media_id = ?",  # noqa: S608
        args,
    ).fetchone()
    if row is not None:
        return Header(*row), None
    row = db.execute(
        f"SELECT {_HEADER}, chunk_bytes FROM media_pending WHERE device = ? AND media_id = ?",  # noqa: S608
        args,
    ).fetchone()
    return None if row is None else (Header(*row[:6]), int(row[6]))


def _has(db: Db, key: MediaKey, index: int) -> bool:
    row = db.execute(
        "SELECT 1 FROM media_chunks WHERE device = ? AND media_id = ? AND idx = ?",
        (key.device, key.media_id, index),
    ).fetchone()
    return row is not None


def _fields(h: Header) -> tuple[str, int, int, str, str, str]:
    return (h.event_id, h.count, h.size, h.sha256, h.content_type, h.kind)


def _who(key: MediaKey) -> tuple[str, str]:
    return key.media_id, key.device
