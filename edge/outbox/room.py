"""Room on a full disk, on the outbox's worker thread: who gives way to whom.

Events first: the reserve (:mod:`edge.outbox.reserve`) is theirs, and to
store an event the box evicts, in this order, the media of motion-only
events, the oldest footage on the same disk (``free_disk``, the recorder's),
then the oldest clips and stills (which leave lost notices). An alarm's media
come next: they may take motion media and footage, never the reserve's room
nor another alarm's media. Recording comes last (see the recorder's
``keep_free_bytes`` and ``yield_to``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from edge.errors import DiskFull, StorageError
from edge.outbox.media import CLIPS, MOTION_MEDIA, STILLS, MediaPut
from edge.outbox.reserve import Reserve
from edge.outbox.store import Outbox

log = logging.getLogger(__name__)
FreeDisk = Callable[[int], int]  # bytes wanted -> bytes freed (footage, on the same disk)
MediaArgs = tuple[str, str, str, str, bytes, int, int]  # MediaShelf.put's arguments
EVICTED = "evicted: the box's disk was full and its events come first"


class Room:
    """Blocking; only the outbox's worker thread calls it. ``evicted(count)`` is told
    how many alarm stills and clips gave way to events (for the 354 trouble)."""

    def __init__(
        self,
        outbox: Outbox,
        reserve: Reserve | None,
        free_disk: FreeDisk | None,
        evicted: Callable[[int], None],
    ) -> None:
        self.outbox = outbox
        self.reserve = reserve
        self.free_disk = free_disk
        self.evicted = evicted

    def make(self, need_bytes: int, for_events: bool) -> int:
        """Free ``need_bytes`` in the policy's order (clips and stills only for events);
        returns the bytes freed."""
        shelf = self.outbox.media
        steps: list[tuple[str, Callable[[int], tuple[int, int]]]] = [
            (MOTION_MEDIA, lambda n: shelf.evict(n, MOTION_MEDIA, EVICTED)),
            ("footage", lambda n: (self.free_disk(n) if self.free_disk else 0, 0)),
        ]
        if for_events:
            steps += [
                (CLIPS, lambda n: shelf.evict(n, CLIPS, EVICTED)),
                (STILLS, lambda n: shelf.evict(n, STILLS, EVICTED)),
            ]
        freed = evicted = 0
        for name, step in steps:
            if freed >= need_bytes:
                break
            try:
                got, count = step(need_bytes - freed)
            except (StorageError, OSError) as exc:
                log.warning("disk full: could not free %s: %s", name, exc)
                continue
            freed += got
            evicted += count if name in (CLIPS, STILLS) else 0
        if evicted:
            self.evicted(evicted)
        if freed:
            log.warning("disk full: %d bytes freed (wanted %d)", freed, need_bytes)
        return freed

    def take_reserve(self) -> bool:
        """Take the reserve back, making room for it if need be (motion media and
        footage only: an alarm's media outrank it). True when it is held."""
        if self.reserve is None or self.reserve.held:
            return True
        missing = self.reserve.missing_bytes()
        if missing > 0:
            with contextlib.suppress(StorageError):
                self.make(missing, False)
        return self.reserve.ensure()

    @property
    def reserve_held(self) -> bool:
        return self.reserve is None or self.reserve.held

    def put_media(self, args: MediaArgs) -> MediaPut:
        """Store an alarm's media. While the reserve is in use its room is the events':
        the media goes only if the reserve could still be taken back after it.
        DiskFull when no room can be made (the caller tries again later)."""
        size, reserve = len(args[4]), self.reserve
        for attempt in range(2):
            short = reserve.missing_bytes() + size if reserve and not reserve.held else 0
            try:
                if short > 0:
                    raise DiskFull("disk full: the room left is kept for events")
                return self.outbox.media.put(*args)
            except DiskFull:
                if attempt or not self.make(max(short, size + (1 << 20)), False):
                    raise
        raise AssertionError("unreachable")
