"""Domain messages passed between stages: frozen, named as facts, carrying identity."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge import codes
from edge.codes import Codes, Condition, Kind, ZoneType

_id_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_event_id(now_ms: int) -> str:
    """A UUIDv7 (RFC 9562) string: unique, sortable by creation time.

    Within one millisecond the 12-bit ``rand_a`` field is a counter started
    at a random value, so ids made by this process stay strictly increasing.
    """
    global _last_ms, _counter
    with _id_lock:
        if now_ms > _last_ms:
            _last_ms = now_ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
        ts, seq = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ts & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


Gray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    """One small grey frame (the "lores" stream) with its identity and time."""

    camera: str
    index: int
    at_s: float
    wall_ms: int
    gray: Gray = field(repr=False)


@dataclass(frozen=True)
class ZoneChanged:
    """An input wired to a zone changed level (already mapped to active/inactive)."""

    input: str
    zone: str
    active: bool
    at_s: float  # monotonic seconds at the edge
    wall_ms: int  # UTC milliseconds at the edge
    initial: bool = False  # the level read at start-up, not an edge


@dataclass(frozen=True)
class ZoneRef:
    """The zone an event is about, as the operator sees it."""

    id: str
    name: str
    type: ZoneType
    number: int


@dataclass(frozen=True)
class Event:
    """Something the station must hear about. ``id`` is born here and never changes."""

    id: str
    kind: Kind
    condition: Condition
    codes: Codes
    occurred_at_ms: int
    partition: int
    armed: bool | None
    zone: ZoneRef | None = None
    text: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def box_event(
    condition: Condition,
    restore: bool,
    text: str,
    now_ms: int,
    *,
    armed: bool | None = None,
    extra: dict[str, str] | None = None,
) -> Event:
    """An event of the box itself, about no zone (partition 0): a trouble, a test, or a
    camera's motion or tamper (the camera named in ``extra``)."""
    return Event(
        id=new_event_id(now_ms),
        kind=codes.kind(condition, restore),
        condition=condition,
        codes=codes.codes(condition, restore),
        occurred_at_ms=now_ms,
        partition=0,
        armed=armed,
        text=text,
        extra=extra or {},
    )


@dataclass(frozen=True)
class StoredEvent:
    """An event as the outbox holds it: with its per-device sequence number."""

    event: Event
    seq: int
    priority: int
    attempts: int
    first_sent_ms: int | None
    durable: bool = True  # False: held in memory (the disk refused it), sent all the same


@dataclass(frozen=True)
class QueuedMedia:
    """A still or clip waiting in the outbox for the station."""

    id: str
    event_id: str
    kind: str  # "still" or "clip"
    content_type: str
    file: Path
    size: int
    sha256: str
    chunks: int
    acked_chunks: int  # chunks the station confirmed, from the first on
    priority: int
    lost: str | None = None  # not a file: a notice that this media will never come, and why


@dataclass(frozen=True)
class MediaDue:
    """A still or clip an event announced (its id is in the event's ``extra``), not yet
    queued. Kept with the event, so that after a power cut the box still knows it owes
    the station this media: cut from the recordings, or a notice that it is lost."""

    id: str
    event_id: str  # the event whose media topic carries it (a shared clip: the first)
    kind: str  # "still" or "clip"
    camera: str
    from_ms: int  # wall time: a still's instant, or the clip's first and last moment
    to_ms: int


# -- what the outbox tells its observers (the journal, the uplink's sender) -----------


@dataclass(frozen=True)
class EventsQueued:
    """Committed to the outbox (or held in memory when the disk refused them)."""

    events: tuple[StoredEvent, ...]
    at_ms: int


@dataclass(frozen=True)
class EventsSent:
    """Handed to the link (leased), first send or again."""

    events: tuple[StoredEvent, ...]
    at_ms: int


@dataclass(frozen=True)
class EventsAcknowledged:
    """The station stored them: gone from the outbox."""

    ids: tuple[str, ...]
    at_ms: int


@dataclass(frozen=True)
class MediaQueued:
    media: QueuedMedia
    at_ms: int


@dataclass(frozen=True)
class MediaLost:
    """A still or clip an event announced will never come: its lost notice is queued."""

    media_id: str
    event_id: str
    kind: str
    reason: str
    at_ms: int


OutboxFact = EventsQueued | EventsSent | EventsAcknowledged | MediaQueued | MediaLost
OutboxObserver = Callable[[OutboxFact], None]  # on the event loop; quick, never raises


class EventStore(Protocol):
    """What the uplink needs from the outbox (implemented by ``edge.outbox.aio``)."""

    async def lease(
        self, now_ms: int, live_after_ms: int, lease_ms: int, limit: int
    ) -> list[StoredEvent]: ...

    async def release(self, ids: list[str]) -> None: ...

    async def reset_leases(self) -> None: ...

    async def next_due_ms(self) -> int | None: ...

    async def ack(self, ids: list[str] | tuple[str, ...]) -> int: ...

    async def dead_letter(
        self, event_id: str, reason: str, code: int | None, notify: bool = True
    ) -> None: ...

    async def oldest_alarm_ms(self) -> int | None: ...

    async def lease_media(self, now_ms: int, lease_ms: int) -> QueuedMedia | None: ...

    async def hold_media(self, media_id: str, until_ms: int) -> None: ...

    async def media_chunks(self, item: QueuedMedia, first: int, count: int) -> list[bytes]: ...

    async def media_progress(self, media_id: str, have: int, complete: bool) -> bool: ...

    async def dead_letter_media(self, media_id: str, reason: str, code: int | None) -> None: ...
