"""The panel stage: input changes in, zone events out.

One task (:meth:`Panel.run`) takes the changes the GPIO relay queues, folds the
inputs of a zone into its level (a zone is active while any of its inputs is),
records the walk test's activations instead of alarming, runs the pure zone
state machine (:mod:`edge.inputs.zones`) on each change and on its timers, and
hands every event to ``store``. If edges were ever dropped (a queue overflow),
the pins are read again once the queue is empty: a lost edge can delay a
change, never leave a zone wrong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from edge.clock import Clock, ms
from edge.codes import Kind, ZoneType
from edge.config import InputConfig, ZoneConfig
from edge.errors import Conflict
from edge.inputs import trace, walktest
from edge.inputs.zones import PanelState, Tick, next_deadline, resume, step, zone_level
from edge.model import Event, ZoneChanged

log = logging.getLogger(__name__)
YIELD_EVERY = 64  # input changes handled before the task lets others run
QUEUE_SIZE = 10_000

Store = Callable[[Event], Awaitable[None]]
Levels = Callable[[], list[ZoneChanged]]  # the pins' present levels, as changes
TestReport = Callable[[str], Awaitable[object]]  # a manual test (601) with this text


@dataclass(frozen=True)
class WalkStatus:
    """A walk test in progress, for the page."""

    zones: list[str]
    seen: list[str]
    not_seen: list[str]
    activations: int
    remaining_s: int


@dataclass(frozen=True)
class WalkResult:
    seen: list[str]
    not_seen: list[str]
    text: str


class Panel:
    """The zones of one box. Construction does no I/O; :meth:`resume` then :meth:`run`."""

    def __init__(
        self,
        zones: tuple[ZoneConfig, ...],
        inputs: tuple[InputConfig, ...],
        clock: Clock,
        levels: Levels,
        store: Store,
        test_report: TestReport,
    ) -> None:
        self.zones: Mapping[str, ZoneConfig] = {z.id: z for z in zones}
        self.clock = clock
        self.levels = levels
        self.store = store
        self.test_report = test_report
        self.inputs_of = {z.id: [i.name for i in inputs if i.zone == z.id] for z in zones}
        self.changes: asyncio.Queue[ZoneChanged] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.state = PanelState()
        self.trace = trace.TraceLog()  # every change and tick the zones see, logged
        self.input_levels: dict[str, bool] = {}
        self.walk: walktest.WalkTest | None = None
        self.resync_pending = False  # edges were dropped: re-read the pins when caught up
        self.edges_dropped = 0
        self._handled = 0

    # -- start ------------------------------------------------------------------

    def resume(self, kinds: dict[str, Kind]) -> None:
        """Resume from the last event committed per zone, so a restore missed while the
        box was down is sent (see :func:`edge.inputs.zones.resume`)."""
        self.trace.resume(kinds)  # the input trace's start (edge diag replay)
        self.state = resume(kinds, dict(self.zones))

    def take_levels(self) -> None:
        """The pins' levels at start, the armed state first, so a zone already active at
        start-up is judged armed or not."""
        arming = {z.id for z in self.zones.values() if z.type is ZoneType.ARMED_STATE}
        for change in sorted(self.levels(), key=lambda c: c.zone not in arming):
            self.on_edges([change], 0)

    # -- from the GPIO relay (on the loop) --------------------------------------------

    def on_edges(self, changes: list[ZoneChanged], dropped: int) -> None:
        """Queue edges for the zones task; on overflow, re-read the pins later."""
        for change in changes:
            try:
                self.changes.put_nowait(change)
            except asyncio.QueueFull:
                dropped += 1
        if dropped:
            if not self.resync_pending:
                log.error("input edges arriving faster than handled: re-reading the pins")
            self.resync_pending = True
            self.edges_dropped += dropped
        if self.resync_pending and self.changes.empty():
            self._resync()  # the zones task is idle: nothing else would

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until every queued change has been handled."""
        try:
            await asyncio.wait_for(self.changes.join(), timeout_s)
        except TimeoutError:
            log.warning("stop: %d input change(s) not handled", self.changes.qsize())

    # -- the zones task ----------------------------------------------------------------

    async def run(self) -> None:
        while True:
            change = await self._next()
            try:
                await self._handle(change)
            finally:
                if isinstance(change, ZoneChanged):
                    self.changes.task_done()

    async def _handle(self, change: ZoneChanged | Tick) -> None:
        if isinstance(change, ZoneChanged):  # a zone is active while any input is
            walked = self.walk is not None and self.walk.covers(change.zone)
            self.trace.edge(change, walked and not change.initial)
            inputs = self.inputs_of[change.zone]
            self.input_levels, leveled = zone_level(self.input_levels, change, inputs)
            if leveled is None:
                return
            if self.walk is not None and self.walk.covers(change.zone) and not change.initial:
                self.walk = walktest.observe(self.walk, leveled)
                log.info("walk test: %s %s", change.zone, "active" if change.active else "quiet")
                return
            change = leveled
        else:
            self.trace.tick(change)
        self.state, events = step(self.state, change, self.zones)
        for event in events:
            await self.store(event)

    async def _next(self) -> ZoneChanged | Tick:
        """The next input change, or a tick if the zones' next timer comes first."""
        self._handled += 1
        if self.changes.empty():
            self.trace.flush()  # caught up: what the zones saw goes to the log now
        if self._handled % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a backlog of edges must not starve the rest of the loop
        if self.resync_pending and self.changes.empty():
            self._resync()
        deadline = next_deadline(self.state)
        if deadline is None or not self.changes.empty():
            return await self.changes.get()
        try:
            timeout_s = max(0.0, deadline - self.clock.monotonic())
            return await asyncio.wait_for(self.changes.get(), timeout_s)
        except TimeoutError:
            return Tick(self.clock.monotonic(), ms(self.clock.time()))

    def _resync(self) -> None:
        """After dropped edges: the pins' present levels, as ordinary changes."""
        self.resync_pending = False
        for change in self.levels():
            self.changes.put_nowait(replace(change, initial=False))
        log.info("re-read the pins after %d dropped edge(s)", self.edges_dropped)

    # -- state for others ----------------------------------------------------------------

    def armed(self, partitions: set[int]) -> bool:
        """Whether any of ``partitions`` is armed (any partition at all if empty)."""
        armed = self.state.armed
        return any(armed.get(p) for p in partitions) if partitions else any(armed.values())

    # -- walk test -----------------------------------------------------------------------

    def start_walk(self, duration_s: float) -> WalkStatus:
        """Begin a walk test of the intrusion zones; Conflict if one runs already."""
        if self.walk is not None:
            raise Conflict("a walk test is already running")
        self.walk = walktest.start(self.zones, self.clock.monotonic(), duration_s)
        log.info("walk test started for %.0f s: %s", duration_s, ", ".join(self.walk.zones))
        status = self.walk_status()
        assert status is not None
        return status

    def walk_status(self) -> WalkStatus | None:
        walk = self.walk
        if walk is None:
            return None
        return WalkStatus(
            zones=list(walk.zones),
            seen=[z for z in walk.zones if z in walk.seen],
            not_seen=list(walk.not_seen),
            activations=walk.activations,
            remaining_s=round(max(0.0, walk.ends_s - self.clock.monotonic())),
        )

    async def stop_walk(self, ended_by: str = "stopped") -> WalkResult | None:
        """End the walk test: summary logged and sent as a manual test (601)."""
        walk, self.walk = self.walk, None
        if walk is None:
            return None
        summary = walktest.finish(walk, self.clock.monotonic(), ended_by)
        log.info("%s", summary.text)
        for change in self.levels():  # the zones under test resume from their level
            if walk.covers(change.zone):
                self.on_edges([change], 0)
        await self.test_report(summary.text)
        return WalkResult(list(summary.seen), list(summary.not_seen), summary.text)

    async def run_walk_clock(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.walk is not None and walktest.expired(self.walk, self.clock.monotonic()):
                await self.stop_walk("timeout")
