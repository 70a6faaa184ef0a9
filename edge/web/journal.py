"""The local event journal: the last events of this box and how far each got.

A bounded ring in memory, fed by the outbox (queued, handed to the link,
acknowledged). The outbox itself forgets an event once the station has it; the
technician still wants to see it, with its times. After a restart the journal
starts empty; events still waiting reappear as they are sent again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from edge.model import StoredEvent
from edge.protocol import iso_ms

STATES = ("queued", "sent", "acked")


@dataclass
class Entry:
    id: str
    seq: int
    kind: str
    cid: str
    sia: str
    zone: str | None
    text: str
    occurred_ms: int
    queued_ms: int | None = None
    sent_ms: int | None = None
    attempts: int = 0
    acked_ms: int | None = None

    @property
    def state(self) -> str:
        if self.acked_ms is not None:
            return "acked"
        return "sent" if self.sent_ms is not None else "queued"

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = asdict(self)
        body["state"] = self.state
        times = {"occurred": self.occurred_ms, "queued": self.queued_ms}
        times |= {"sent": self.sent_ms, "acked": self.acked_ms}
        for name, value in times.items():
            del body[f"{name}_ms"]
            body[f"{name}_at"] = None if value is None else iso_ms(value)
        return body


class Journal:
    """The last ``size`` events by id, oldest first."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._by_id: OrderedDict[str, Entry] = OrderedDict()

    def queued(self, stored: StoredEvent, at_ms: int) -> None:
        self._entry(stored).queued_ms = at_ms

    def sent(self, batch: Iterable[StoredEvent], at_ms: int) -> None:
        for stored in batch:
            entry = self._entry(stored)
            entry.sent_ms = at_ms
            entry.attempts += 1

    def acked(self, ids: Iterable[str], at_ms: int) -> None:
        for event_id in ids:
            entry = self._by_id.get(event_id)
            if entry is not None and entry.acked_ms is None:
                entry.acked_ms = at_ms

    def query(
        self,
        kind: str | None = None,
        zone: str | None = None,
        state: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, object]]:
        """Newest first, filtered by exact kind, zone and delivery state."""
        found: list[dict[str, object]] = []
        for entry in reversed(self._by_id.values()):
            if kind and entry.kind != kind:
                continue
            if zone and entry.zone != zone:
                continue
            if state and entry.state != state:
                continue
            found.append(entry.as_json())
            if len(found) >= limit:
                break
        return found

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for entry in self._by_id.values():
            counts[entry.state] += 1
        return counts

    def _entry(self, stored: StoredEvent) -> Entry:
        event = stored.event
        entry = self._by_id.get(event.id)
        if entry is None:
            entry = Entry(
                id=event.id,
                seq=stored.seq,
                kind=event.kind.value,
                cid=event.codes.cid,
                sia=event.codes.sia,
                zone=event.zone.id if event.zone is not None else None,
                text=event.text,
                occurred_ms=event.occurred_at_ms,
            )
            self._by_id[event.id] = entry
            while len(self._by_id) > self.size:
                self._by_id.popitem(last=False)
        return entry
