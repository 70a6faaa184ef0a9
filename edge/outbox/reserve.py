"""Disk space kept for alarms: a preallocated file beside the outbox.

When the disk is full (a full SD card, a runaway log, footage), an event
commit fails with :class:`DiskFull`. The outbox then deletes this file and
commits again at once: its bytes are what the alarm's write-ahead log needs.
Room is made again afterwards (media and footage evicted by the outbox's
policy) and the file is taken back once the disk has that much free plus a
margin, so the next full disk finds it again.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
MARGIN_BYTES = 1024 * 1024  # left free after the reserve is taken back
CHUNK = 1024 * 1024


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class Reserve:
    """``size_bytes`` held in one file; ``release()`` gives them back to the disk."""

    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.released = 0  # times the reserve was used

    @property
    def held(self) -> bool:
        try:
            return self.size_bytes == 0 or self.path.stat().st_size >= self.size_bytes
        except OSError:
            return False

    def missing_bytes(self) -> int:
        """Free bytes still needed before the reserve can be taken back (0: it can)."""
        if self.held:
            return 0
        try:
            have = self.path.stat().st_size
        except OSError:
            have = 0
        need = self.size_bytes - have + MARGIN_BYTES
        return max(0, need - free_bytes(self.path.parent))

    def ensure(self) -> bool:
        """Take the reserve if it is not held and the disk has room for it and the
        margin; True when it is held afterwards. Never fills the disk: a partial
        file is removed."""
        if self.held:
            return True
        if self.missing_bytes() > 0:
            return False
        part = self.path.with_name(self.path.name + ".part")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _allocate(fd, self.size_bytes)
                os.fsync(fd)
            finally:
                os.close(fd)
            part.replace(self.path)
        except OSError as exc:
            part.unlink(missing_ok=True)
            log.warning("outbox reserve of %d bytes not taken: %s", self.size_bytes, exc)
            return False
        return True

    def release(self) -> bool:
        """Give the reserve's bytes back to the disk; True when there were any."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("outbox reserve %s could not be released: %s", self.path, exc)
            return False
        self.released += 1
        log.warning("disk full: released the outbox reserve (%d bytes) for events", size)
        return size > 0


def _allocate(fd: int, size: int) -> None:
    """Really allocate ``size`` bytes (blocks, not a sparse file)."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    block = b"\0" * CHUNK  # a file system without fallocate: write the bytes
    for offset in range(0, size, CHUNK):
        os.pwrite(fd, block[: min(CHUNK, size - offset)], offset)
