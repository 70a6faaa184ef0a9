"""Whole media files: verified, renamed into view, recorded; and matched after a restart.

:func:`finish` runs in the caller's transaction, after the chunks' own commit:
for every media whose chunks are all in, the part file's size and sha256 are
checked, it is renamed to ``<device>/<event_id>/<media_id>.<ext>``, the
folders that changed are fsynced (once each, however many files a batch
completes), and only then the media is recorded and its chunk rows deleted;
the transaction's commit is what makes the files complete. :func:`sweep`
matches part files and chunk rows when the receiver starts.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path

from edge.station import media, parts
from edge.station.media import Header, MediaKey, part_of, relative_path
from edge.station.sql import Db

log = logging.getLogger(__name__)

ORPHAN_AGE_S = 3600.0  # shared store: a part file no row owns yet, left alone this long


class Outcome(enum.Enum):
    """What :func:`finish` did with a media whose chunks were all in."""

    COMPLETE = "complete"
    CORRUPT = "corrupt"  # wrong size or sha256: discarded, the box resends from chunk 0
    UNWRITTEN = "unwritten"  # the disk refused: chunks kept, tried again later


def finish(
    db: Db, root: Path, keys: Iterable[MediaKey], at_ms: int
) -> list[tuple[MediaKey, Header, Outcome]]:
    """Verify, rename and record every media of ``keys`` whose chunks are all in.

    The files are renamed, then their folders fsynced once each, then the
    media recorded in the caller's transaction: its commit makes them complete.
    """
    outcomes: list[tuple[MediaKey, Header, Outcome]] = []
    renamed: list[tuple[MediaKey, Header, tuple[Path, ...]]] = []
    for key in keys:
        header = media.ready(db, key)
        if header is None:
            continue
        try:
            folders = _publish(root, key, header)
        except OSError as exc:
            log.error(
                "media %s from %s: file not written, chunks kept: %s", key.media_id, key.device, exc
            )
            outcomes.append((key, header, Outcome.UNWRITTEN))
            continue
        if folders is None:
            media.forget(db, key)
            outcomes.append((key, header, Outcome.CORRUPT))
        else:
            renamed.append((key, header, folders))
    failed: set[Path] = set()
    for folder in dict.fromkeys(f for *_, folders in renamed for f in folders):
        try:
            parts.fsync_dir(folder)
        except OSError as exc:
            log.error("cannot fsync media folder %s: %s", folder, exc)
            failed.add(folder)
    for key, header, folders in renamed:
        if failed.intersection(folders):
            outcomes.append((key, header, Outcome.UNWRITTEN))
            continue
        media.record(db, key, header, at_ms)
        log.info(
            "stored %s %s of event %s from %s (%d bytes)",
            header.kind,
            key.media_id,
            header.event_id,
            key.device,
            header.size,
        )
        outcomes.append((key, header, Outcome.COMPLETE))
    return outcomes


def sweep(db: Db, root: Path, *, shared: bool = False) -> int:
    """After a restart: match part files and chunk rows; how many chunk rows were dropped.

    A part file no pending media owns is removed; in a ``shared`` store only
    once it is ``ORPHAN_AGE_S`` old, since another receiver may be writing
    its first chunk right now. A chunk row whose bytes lie beyond the end of
    its part file, or whose part file is gone, is dropped: ``have`` falls and
    the box resends it (a committed row's bytes were fsynced before its commit).
    """
    pending = media.pending(db)
    min_mtime = time.time() - ORPHAN_AGE_S if shared else math.inf
    try:
        orphans = [
            p
            for d, m, p in parts.part_files(root)
            if MediaKey(d, m) not in pending and p.stat().st_mtime < min_mtime
        ]
    except OSError as exc:
        log.error("cannot list part files under %s: %s", root, exc)
        orphans = []
    parts.remove(orphans)
    dropped = 0
    for key, (header, step) in pending.items():
        try:
            end = part_of(root, key).stat().st_size
        except FileNotFoundError:
            if (root / relative_path(key, header)).exists():
                continue  # renamed before a crash: finishing verifies it
            end = -1
        except OSError as exc:  # the media disk is unwell: keep the rows
            log.error(
                "media %s from %s: cannot check its part file: %s", key.media_id, key.device, exc
            )
            continue
        cur = db.execute(
            "DELETE FROM media_chunks WHERE device = ? AND media_id = ? AND idx * ? + size > ?",
            (key.device, key.media_id, step, end),
        )
        dropped += cur.rowcount
    db.execute(
        "DELETE FROM media_pending WHERE NOT EXISTS (SELECT 1 FROM media_chunks c "
        "WHERE c.device = media_pending.device AND c.media_id = media_pending.media_id)"
    )
    return dropped


def _publish(root: Path, key: MediaKey, header: Header) -> tuple[Path, ...] | None:
    """Verify the whole file and give it its final name; the folders to fsync then.

    None if the bytes are wrong or gone (what is left of them is removed). A
    file already renamed by an attempt a crash or failed commit cut short is
    verified where it is. OSError if the disk refuses.
    """
    final = root / relative_path(key, header)
    part = part_of(root, key)
    folders = parts.make_dirs(final.parent, root)
    source = part if part.exists() else final if final.exists() else None
    got = parts.digest(source) if source is not None else (0, "no file")
    if got != (header.size, header.sha256):
        log.error(
            "media %s of event %s from %s: got %d bytes with sha256 %s, expected %d "
            "bytes with %s; chunks discarded, the box will resend",
            key.media_id,
            header.event_id,
            key.device,
            *got,
            header.size,
            header.sha256,
        )
        if source is not None:
            source.unlink()
        return None
    if source == part:
        part.replace(final)
        folders.append(part.parent)
    return (*folders, final.parent)
