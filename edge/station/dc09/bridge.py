"""The bridge: every stored event, oldest first, to the alarm receiver; NULL messages between.

Each message carries the box's own account (from its events), so the alarm
receiver files it under the right site; the bridge's ``--account`` is only
for a box whose account the station has not heard. A box the station lost
(and its restore) goes as a communication trouble, CID 350 / SIA YS (YK).

An event is marked in ``forwarded`` only once the receiver has ACKed it (or
answered DUH, which no resend changes), so a bridge that stops resumes
where it was. Before a message goes, its sequence number (and, for an
event, its bytes) are stored in ``dc09_sender``: a bridge stopped while an
event waits for its ACK sends those same bytes, same number, first thing
when it starts again (a receiver takes the repeat for a duplicate), and
numbers the next message after it. Open/close (401) carries a user number in its address field,
not the zone of the panel's armed-state output: the event's ``extra.user``,
else ``000``. An event whose message would be too long for DC-09 (a very
long video reference) goes without its video reference, with a warning:
the alarm must reach the receiver. When nothing is waiting for ``null_every_s``, a NULL message
tests the link. Run one bridge per store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace

from edge import codes
from edge.clock import Clock, ms
from edge.codes import Condition
from edge.dc09.codec import Dc09Error, FrameTooLong
from edge.dc09.link import Dc09Link, Outcome, Outgoing
from edge.dc09.messages import Alarm, alarm_of, hex_account
from edge.errors import StorageError
from edge.station import supervision
from edge.station.sql import Db
from edge.station.store import StationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    device: str
    alarm: Alarm


def pending(db: Db, limit: int, video_base: str | None) -> list[Pending]:
    """What waits: the station's own alarms first (device lost, restored), then the
    stored events, each in the order it was stored."""
    rows = db.execute(
        "SELECT a.id, a.device, a.kind, (SELECT e.account FROM events e WHERE "
        "e.device = a.device ORDER BY e.received_ms DESC LIMIT 1) FROM station_alarms a "
        "WHERE NOT EXISTS (SELECT 1 FROM forwarded f WHERE f.event_id = a.id) "
        "ORDER BY a.at_ms LIMIT ?",
        (limit,),
    ).fetchall()
    out = [_station_alarm(r[0], r[1], r[2] == supervision.RESTORED, r[3]) for r in rows]
    rows = db.execute(
        "SELECT e.id, e.device, e.body, e.account FROM events e WHERE NOT EXISTS "
        "(SELECT 1 FROM forwarded f WHERE f.event_id = e.id) "
        "ORDER BY e.received_ms, e.seq LIMIT ?",
        (limit - len(out),),
    ).fetchall()
    return out + [_pending(r[0], r[1], json.loads(r[2]), r[3], video_base) for r in rows]


def mark(db: Db, event_id: str, outcome: Outcome, seq: int, at_ms: int) -> None:
    """``event_id`` is done with (ACKed, or refused): no longer in flight."""
    db.execute(
        "INSERT INTO forwarded (event_id, outcome, seq, at_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (event_id) DO NOTHING",
        (event_id, outcome.value, seq, at_ms),
    )
    db.execute(
        "UPDATE dc09_sender SET event_id = NULL, frame = NULL WHERE event_id = ?", (event_id,)
    )


@dataclass(frozen=True)
class Sender:
    """What the bridge keeps across restarts: the last sequence number it took, and the
    event whose message (``frame``, its bytes as sent) still waits for an answer."""

    seq: int = 0
    event_id: str | None = None
    frame: bytes | None = None
    forwarded: bool = False  # that event is marked forwarded already


def sender(db: Db) -> Sender:
    row = db.execute(
        "SELECT s.seq, s.event_id, s.frame, EXISTS (SELECT 1 FROM forwarded f "
        "WHERE f.event_id = s.event_id) FROM dc09_sender s WHERE s.id = 1"
    ).fetchone()
    if row is None:
        return Sender()
    frame = None if row[2] is None else str(row[2]).encode("ascii")
    return Sender(int(row[0]), row[1], frame, bool(row[3]))


def take(db: Db, seq: int, event_id: str | None, frame: bytes | None) -> None:
    """Message ``seq`` is about to go: for an event, with these bytes (None: a NULL message)."""
    db.execute(
        "INSERT INTO dc09_sender (id, seq, event_id, frame) VALUES (1, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, event_id = excluded.event_id, "
        "frame = excluded.frame",
        (seq, event_id, None if frame is None else frame.decode("ascii")),
    )


def _station_alarm(alarm_id: str, device: str, restore: bool, account: str | None) -> Pending:
    """A box lost (or back) as a communication trouble (restore) of its account."""
    code = codes.codes(Condition.COMM_TROUBLE, restore)
    return Pending(
        device, Alarm(alarm_id, code.cid, code.sia, 0, None, account=hex_account(account))
    )


def _pending(
    event_id: str, device: str, body: dict[str, object], account: str, base: str | None
) -> Pending:
    return Pending(device, alarm_of(event_id, body, account, base))


class Dc09Bridge:
    """Construct (no I/O), then ``await run(stop)`` with the store open."""

    def __init__(
        self,
        store: StationStore,
        link: Dc09Link,
        clock: Clock,
        *,
        video_base: str | None = None,
        null_every_s: float = 60.0,
        poll_s: float = 0.5,
        batch: int = 50,
    ) -> None:
        self.store = store
        self.link = link
        self.clock = clock
        self.video_base = video_base
        self.null_every_s = null_every_s
        self.poll_s = poll_s
        self.batch = batch
        self.forwarded = 0
        self._last_traffic = clock.monotonic()
        self._resumed = False
        self._waiting: str | None = None  # the event whose message waits for its answer

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until ``stop`` is set; a message then waiting for its answer is left
        stored, for the next run to send again."""
        try:
            async with asyncio.TaskGroup() as tg:
                work = tg.create_task(self._forward(), name="dc09-forward")
                await stop.wait()
                work.cancel()
        finally:
            await self.link.close()
        if self._waiting is not None:
            log.info(
                "DC-09 event %s still waits for its ACK: sent again at the next start",
                self._waiting,
            )
        log.info("DC-09 bridge stopped (%d events forwarded)", self.forwarded)

    async def _forward(self) -> None:
        while True:
            try:
                sent = await self.step()
            except StorageError:
                log.exception("DC-09 bridge cannot read the store; retrying")
                sent = 0
            if sent == 0:
                await asyncio.sleep(self.poll_s)

    async def step(self) -> int:
        """Forward what waits (one batch), or a NULL message when it is due; events sent.

        The first step sends the message a stopped bridge left waiting, before anything."""
        if not self._resumed:
            sent = await self._resume()
            self._resumed = True
            if sent:
                return sent
        waiting = await asyncio.to_thread(self._pending)
        for item in waiting:
            await self._send(item)
        if not waiting and self.clock.monotonic() - self._last_traffic >= self.null_every_s:
            message = self.link.null()
            await asyncio.to_thread(self._take, message.seq, None, None)
            await self.link.deliver(message)
            self._last_traffic = self.clock.monotonic()
        return len(waiting)

    async def _resume(self) -> int:
        """Continue the stored numbering; send again the message left waiting, if any."""
        state = await asyncio.to_thread(self._sender)
        self.link.resume(state.seq)
        event_id, frame = state.event_id, state.frame
        if event_id is None or frame is None or state.forwarded:
            return 0
        try:
            message = self.link.again(frame)
        except Dc09Error as exc:  # e.g. another key: the event goes again as a new message
            log.error("DC-09 message of event %s, left waiting, unreadable: %s", event_id, exc)
            return 0
        log.info("DC-09 event %s waited for its ACK: sent again as seq %04d", event_id, message.seq)
        self._waiting = event_id
        outcome = await self.link.deliver(message)
        await self._done(event_id, outcome, message.seq, "sent again after a restart")
        return 1

    async def _send(self, item: Pending) -> None:
        alarm = item.alarm
        try:
            message = self._message(alarm)
        except Dc09Error as exc:  # no DC-09 message can say it: logged, not retried
            log.error("event %s cannot go as DC-09: %s", alarm.event_id, exc)
            outcome, seq = Outcome.REJECTED, 0  # 0: no message had a number
        else:
            await asyncio.to_thread(self._take, message.seq, alarm.event_id, message.raw)
            self._waiting = alarm.event_id
            outcome, seq = await self.link.deliver(message), message.seq
        await self._done(
            alarm.event_id, outcome, seq, f"from {item.device} ({alarm.cid} {alarm.sia})"
        )

    async def _done(self, event_id: str, outcome: Outcome, seq: int, what: str) -> None:
        # shielded: once answered, the mark is written even if the bridge is stopping
        self._waiting = None  # answered
        await asyncio.shield(asyncio.to_thread(self._mark, event_id, outcome, seq))
        self.forwarded += 1
        self._last_traffic = self.clock.monotonic()
        log.info("DC-09 %s: event %s %s, seq %04d", outcome.value, event_id, what, seq)

    def _message(self, alarm: Alarm) -> Outgoing:
        """The message for ``alarm``; without its video reference if that makes it too long
        for DC-09 (the alarm must go); Dc09Error if no message can say it."""
        try:
            return self.link.event(alarm)
        except FrameTooLong as exc:
            if alarm.video is None:
                raise
            log.warning("event %s goes without its video reference: %s", alarm.event_id, exc)
        return self.link.event(replace(alarm, video=None))

    def _pending(self) -> list[Pending]:
        with self.store.transaction() as db:
            return pending(db, self.batch, self.video_base)

    def _sender(self) -> Sender:
        with self.store.transaction() as db:
            return sender(db)

    def _take(self, seq: int, event_id: str | None, frame: bytes | None) -> None:
        with self.store.transaction() as db:
            take(db, seq, event_id, frame)

    def _mark(self, event_id: str, outcome: Outcome, seq: int) -> None:
        with self.store.transaction() as db:
            mark(db, event_id, outcome, seq, ms(self.clock.time()))
