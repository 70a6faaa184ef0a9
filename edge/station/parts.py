"""Part files: a media's chunks written in place, then the whole file renamed into view.

A chunk's bytes go straight to their offset in ``<media>/.partial/<device>/
<media_id>.part`` (one write, no copy through SQLite). :class:`PartWriter`
keeps the part files one batch touches open, and :meth:`PartWriter.sync`
makes their bytes and any new names durable (one fsync per file and per
directory) BEFORE the batch's SQLite commit records the chunks: a chunk row
never points at bytes a crash could lose. A whole part file is renamed to its
final name under the same root (same file system, so the rename is atomic; see
:mod:`edge.station.assembly`).

Device and media ids never start with a dot (the topic parser refuses it), so
``.partial`` cannot collide with a device's folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

PARTIAL = ".partial"
SUFFIX = ".part"


def part_path(root: Path, device: str, media_id: str) -> Path:
    return root / PARTIAL / device / f"{media_id}{SUFFIX}"


def part_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    """``(device, media_id, path)`` of every part file under ``root``."""
    partial = root / PARTIAL
    if not partial.is_dir():
        return
    for path in partial.glob(f"*/*{SUFFIX}"):
        yield path.parent.name, path.name.removesuffix(SUFFIX), path


class PartWriter:
    """The part files of one batch: each opened once, fsynced once by :meth:`sync`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fds: dict[Path, int] = {}
        self._dirs: dict[Path, None] = {}  # folders that gained a name this batch

    def write(self, path: Path, offset: int, data: bytes, *, fresh: bool) -> None:
        """Write ``data`` at ``offset``; ``fresh``: the media's first chunk (drop stale bytes).

        OSError if the media disk refuses; nothing is then promised for this chunk.
        """
        fd = self._fds.get(path)
        if fd is None:
            fd = self._open(path, fresh)
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            if written <= 0:
                raise OSError(errno.EIO, f"no byte written to {path}")
            view, offset = view[written:], offset + written

    def sync(self) -> None:
        """fsync every part file written and every folder that gained a name. OSError."""
        for fd in self._fds.values():
            os.fsync(fd)
        for folder in self._dirs:
            fsync_dir(folder)

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _open(self, path: Path, fresh: bool) -> int:
        if fresh:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC  # a stale leftover loses its bytes
        else:
            flags = os.O_WRONLY
            try:
                fd = os.open(path, flags)
            except FileNotFoundError:  # lost since its first chunk: the sha256 will tell
                flags |= os.O_CREAT
            else:
                self._fds[path] = fd
                return fd
        self._dirs.update(dict.fromkeys(make_dirs(path.parent, self.root)))
        fd = os.open(path, flags, 0o644)
        self._fds[path] = fd
        self._dirs[path.parent] = None  # its name, new or not, is durable before the commit
        return fd


def digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of ``path``, read once. OSError."""
    with path.open("rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        return os.fstat(f.fileno()).st_size, sha256


def remove(paths: Iterable[Path]) -> None:
    """Unlink what may exist; a failure only leaves a file for the next sweep."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def make_dirs(path: Path, root: Path) -> list[Path]:
    """``mkdir -p`` from above ``root`` down to ``path``; the folders that gained an entry.

    The caller fsyncs those folders before it relies on the new names.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
        if folder == root:
            break
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
    return [folder.parent for folder in reversed(missing)]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
