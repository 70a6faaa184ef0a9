"""Events the disk refused, held in memory and sent all the same.

An alarm must go out even when it cannot be committed (a full disk, a failing
SD card). Such an event gets its sequence number at once (the outbox never
hands that number out again), is leased, sent and acknowledged like a stored
one, and is committed with that number as soon as the disk takes it. One
acknowledged before that needs no commit: the station has it. A box that dies
meanwhile loses only what the station had not acknowledged; the log has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edge.model import Event, MediaDue, StoredEvent


@dataclass
class Held:
    stored: StoredEvent
    now_ms: int  # when it was put (its ``created_ms`` once committed)
    due: tuple[MediaDue, ...] = ()
    next_send_ms: int = 0


@dataclass
class HeldEvents:
    """Loop-side bookkeeping; every method is plain and instant."""

    by_id: dict[str, Held] = field(default_factory=dict)
    acked: list[tuple[Event, int]] = field(default_factory=list)  # zones still to note
    error: str | None = None  # why the last commit failed

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, held: Held) -> None:
        self.by_id[held.stored.event.id] = held

    def lease(self, now_ms: int, lease_ms: int, limit: int) -> list[StoredEvent]:
        due = sorted(
            (h for h in self.by_id.values() if h.next_send_ms <= now_ms),
            key=lambda h: (h.stored.priority, h.stored.seq),
        )[:limit]
        out = []
        for h in due:
            h.next_send_ms = now_ms + lease_ms
            first = h.stored.first_sent_ms or now_ms
            h.stored = replace(h.stored, attempts=h.stored.attempts + 1, first_sent_ms=first)
            out.append(h.stored)
        return out

    def release(self, ids: list[str]) -> list[str]:
        """Offer these again now; returns the ids that are not held here."""
        rest = []
        for event_id in ids:
            held = self.by_id.get(event_id)
            if held is None:
                rest.append(event_id)
            else:
                held.next_send_ms = 0
        return rest

    def reset(self) -> None:
        for held in self.by_id.values():
            held.next_send_ms = 0

    def next_due_ms(self) -> int | None:
        return min((h.next_send_ms for h in self.by_id.values()), default=None)

    def ack(self, ids: list[str] | tuple[str, ...]) -> tuple[int, list[str]]:
        """Forget acknowledged events; returns (how many were held, the other ids)."""
        rest, count = [], 0
        for event_id in ids:
            held = self.by_id.pop(event_id, None)
            if held is None:
                rest.append(event_id)
            else:
                count += 1
                self.acked.append((held.stored.event, held.stored.seq))
        return count, rest

    def take(self, event_id: str) -> Held | None:
        return self.by_id.pop(event_id, None)

    def snapshot(self) -> list[Held]:
        """What to commit next, in sequence order."""
        return sorted(self.by_id.values(), key=lambda h: h.stored.seq)
