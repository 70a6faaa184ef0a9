"""The zone state machine, pure: ``step(state, change, zones) -> (state, events)``.

``change`` is an input's new level (:class:`~edge.model.ZoneChanged`) or a
:class:`Tick` when :func:`next_deadline` comes; time arrives with each input
(monotonic for intervals, never the wall clock). The rules, per zone:

* **Glitch:** an activation trips the zone only if still active ``glitch_ms``
  later (exactly ``glitch_ms`` trips).
* **Hold and restore:** an alarm at ``T`` holds until ``T + hold_s`` (a pulse
  train is one alarm); the restore comes ``restore_ms`` after the last
  deactivation, not before the hold ends, so a zone alarms at most once per
  hold window and an input stuck active raises one alarm.
* **Who reports:** 24-hour types always; intrusion and entry/exit only when
  their partition is armed (``alarm_when_disarmed`` overrides); a zone already
  active when its partition arms does not alarm.
* **Swinger shutdown** (not for fire, panic, hold-up, power or armed state):
  past ``swinger_limit`` alarms in one arming period, one trouble and silence
  until the next arm or disarm, which restores it.
* **Armed state:** sends arm and disarm; the level read at start-up sets the
  state without an event. Every event carries its partition's armed state.

Events are stamped with the wall time their timer was due (a busy loop does
not shift the stamps); an input older than the last one is taken at that time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from edge import codes
from edge.codes import TWENTY_FOUR_HOUR, ZONE_CONDITION, Condition, Kind, ZoneType
from edge.config import ZoneConfig
from edge.model import Event, ZoneChanged, ZoneRef, new_event_id

IdFactory = Callable[[int], str]
US_PER_S = 1_000_000
US_PER_MS = 1_000
_REPORTED = frozenset({Kind.ALARM, Kind.TAMPER, Kind.TROUBLE})  # kinds that await a restore
# No swinger shutdown for trouble zones (their troubles are not alarms, and a
# swinger trouble there would look like their own trouble to resume()), nor for
# life-safety zones: a fire, panic or hold-up must reach the station every time.
_NO_SWINGER = frozenset(
    {
        ZoneType.ARMED_STATE,
        ZoneType.AC_POWER,
        ZoneType.BATTERY,
        ZoneType.FIRE,
        ZoneType.PANIC,
        ZoneType.HOLDUP,
    }
)
# Contact ID and SIA have no swinger code in our table (a bypass code, CID 570
# or SIA UB, would be the closest). System trouble (CID 300, SIA YX/YZ) sent
# with the zone's number and a plain text tells the operator which zone went
# quiet and why, and has a restore for the end of the shutdown.
SWINGER = Condition.SYSTEM_TROUBLE


@dataclass(frozen=True)
class Tick:
    """Time has passed up to ``at_s`` (monotonic seconds); ``wall_ms`` is UTC then."""

    at_s: float
    wall_ms: int


@dataclass(frozen=True)
class ZoneState:
    active: bool = False  # the input's raw level
    since_us: int | None = None  # monotonic µs of its last edge; None: unknown (resumed)
    pending: bool = False  # the level since that edge has not passed the glitch filter yet
    reported: bool = False  # an alarm/tamper/trouble was sent and awaits its restore
    hold_until_us: int | None = None  # no restore before this
    alarms: int = 0  # alarms sent in this arming period (swinger count)
    suppressed: bool = False  # swinger shutdown: its trouble was sent and awaits its restore
    due_us: int | None = None  # when this zone's timer fires
    changes: int = 0
    last_change_ms: int | None = None


@dataclass(frozen=True)
class Note:
    """Why :func:`explain` saw an input change nothing, or why it sent an event.

    ``what`` is a short tag (``alarm``, ``restore``, ``swinger``, ``glitch``,
    ``hold``, ``reported``, ``disarmed``, ``suppressed``, ``repeat``,
    ``restore_wait``, ``arming_glitch``, ``initial``); ``event_id`` names the
    event it explains, if any. Only the field tools ask for notes.
    """

    zone: str
    at_us: int
    what: str
    text: str
    event_id: str | None = None


@dataclass(frozen=True)
class PanelState:
    zones: Mapping[str, ZoneState] = field(default_factory=dict)
    armed: Mapping[int, bool] = field(default_factory=dict)  # partition -> armed
    now_us: int | None = None  # the time of the last input processed

    def zone(self, zone_id: str) -> ZoneState:
        return self.zones.get(zone_id, ZoneState())


def step(
    state: PanelState,
    change: ZoneChanged | Tick,
    zones: Mapping[str, ZoneConfig],
    new_id: IdFactory = new_event_id,
) -> tuple[PanelState, list[Event]]:
    """Apply one input change or tick; return the new state and the events it causes."""
    run = _step(state, change, zones, new_id, explain=False)
    return PanelState(run.zones, run.armed, run.at_us), run.events


def explain(
    state: PanelState,
    change: ZoneChanged | Tick,
    zones: Mapping[str, ZoneConfig],
    new_id: IdFactory = new_event_id,
) -> tuple[PanelState, list[Event], list[Note]]:
    """:func:`step`, with a :class:`Note` for each event and each change that made none.

    The same decisions as :func:`step` (it is the same code); for the replay tool.
    """
    run = _step(state, change, zones, new_id, explain=True)
    return PanelState(run.zones, run.armed, run.at_us), run.events, run.notes


def _step(
    state: PanelState,
    change: ZoneChanged | Tick,
    zones: Mapping[str, ZoneConfig],
    new_id: IdFactory,
    explain: bool,
) -> _Run:
    cfg = zones[change.zone] if isinstance(change, ZoneChanged) else None
    at_us = round(change.at_s * US_PER_S)
    if state.now_us is not None:
        at_us = max(at_us, state.now_us)
    run = _Run(state, zones, new_id, at_us, change.wall_ms)
    run.explain = explain
    run.advance()
    if isinstance(change, ZoneChanged) and cfg is not None:
        _edge(run, cfg, change)
        run.advance()
    return run


def next_deadline(state: PanelState) -> float | None:
    """Monotonic seconds at which :func:`step` wants a :class:`Tick`; None: no timer."""
    dues = [z.due_us for z in state.zones.values() if z.due_us is not None]
    return min(dues) / US_PER_S if dues else None


def resume(last: Mapping[str, Kind], zones: Mapping[str, ZoneConfig]) -> PanelState:
    """The state to start from, given the last event committed for each zone.

    A zone whose last event was its alarm, tamper or trouble is still reported:
    found quiet at start-up it sends its restore (it ended while the box was
    down), found active it sends nothing new. Without this a restart between an
    alarm and its restore would leave the zone in alarm at the station for good.
    A zone whose last event was a swinger trouble stays shut down until the
    next arm or disarm, which restores that trouble.
    """
    resumed: dict[str, ZoneState] = {}
    for zone_id, kind in last.items():
        cfg = zones.get(zone_id)
        if cfg is None:
            continue
        own = codes.kind(ZONE_CONDITION[cfg.type], restore=False)
        if kind is own and kind in _REPORTED:
            resumed[zone_id] = ZoneState(active=True, reported=True)
        elif kind is Kind.TROUBLE and cfg.type not in _NO_SWINGER:
            resumed[zone_id] = ZoneState(suppressed=True, alarms=cfg.swinger_limit)
    return PanelState(resumed)


class _Run:
    """One call of :func:`step`: working copies, the time processed, the events made."""

    def __init__(
        self,
        state: PanelState,
        cfg: Mapping[str, ZoneConfig],
        new_id: IdFactory,
        at_us: int,
        wall_ms: int,
    ) -> None:
        self.cfg = cfg
        self.zones = dict(state.zones)
        self.armed = dict(state.armed)
        self.new_id = new_id
        self.at_us = at_us
        self.wall_ms = wall_ms
        self.events: list[Event] = []
        self.explain = False
        self.notes: list[Note] = []

    def note(self, cfg: ZoneConfig, at_us: int, what: str, text: str) -> None:
        """Say why (only when explaining); an event just emitted is the one explained."""
        self.notes.append(Note(cfg.id, at_us, what, text))

    def advance(self) -> None:
        """Fire every timer due by now, earliest first (armed state first on a tie)."""
        while True:
            due = [
                (z.due_us, zone_id)
                for zone_id, z in self.zones.items()
                if z.due_us is not None and z.due_us <= self.at_us
            ]
            if not due:
                return
            due_us, zone_id = min(due, key=self._firing_order)
            _fire(self, self.cfg[zone_id], self.zones[zone_id], due_us)

    def _firing_order(self, due: tuple[int, str]) -> tuple[int, bool, int]:
        due_us, zone_id = due
        arming = self.cfg[zone_id].type is ZoneType.ARMED_STATE
        return due_us, not arming, list(self.cfg).index(zone_id)

    def put(self, cfg: ZoneConfig, zone: ZoneState) -> None:
        self.zones[cfg.id] = replace(zone, due_us=_due(zone, cfg))

    def emit(
        self,
        cfg: ZoneConfig,
        condition: Condition,
        restore: bool,
        at_us: int,
        text: str = "",
        why: str = "",
    ) -> None:
        at_ms = self.wall_ms - (self.at_us - at_us + US_PER_MS // 2) // US_PER_MS
        kind = codes.kind(condition, restore)
        self.events.append(
            Event(
                id=self.new_id(at_ms),
                kind=kind,
                condition=condition,
                codes=codes.codes(condition, restore),
                occurred_at_ms=at_ms,
                partition=cfg.partition,
                armed=self.armed.get(cfg.partition),
                zone=ZoneRef(cfg.id, cfg.name, cfg.type, cfg.number),
                text=text or f"{cfg.name}: {kind.value}",
            )
        )
        if self.explain:
            what = "swinger" if condition is SWINGER and cfg.type not in _NO_SWINGER else kind.value
            self.notes.append(Note(cfg.id, at_us, what, why, self.events[-1].id))


def _due(zone: ZoneState, cfg: ZoneConfig) -> int | None:
    if zone.since_us is None:
        return None
    if zone.pending:
        return zone.since_us + cfg.glitch_ms * US_PER_MS
    if zone.reported and not zone.active:
        quiet = zone.since_us + cfg.restore_ms * US_PER_MS
        return max(quiet, zone.hold_until_us or quiet)
    return None


def _edge(run: _Run, cfg: ZoneConfig, change: ZoneChanged) -> None:
    zone = run.zones.get(cfg.id, ZoneState())
    moved = change.active != zone.active
    if cfg.type is ZoneType.ARMED_STATE and change.initial:
        # The level found at start-up: nobody armed or disarmed just now.
        run.armed[cfg.partition] = change.active
        pending = False
        if run.explain:
            how = "armed" if change.active else "disarmed"
            run.note(cfg, run.at_us, "initial", f"read at start-up: partition {how}, no event")
    elif moved:
        pending = change.active or cfg.type is ZoneType.ARMED_STATE
        if run.explain:
            _explain_edge(run, cfg, zone, change.active)
    else:
        if run.explain and not change.initial:
            level = "active" if change.active else "quiet"
            run.note(cfg, run.at_us, "repeat", f"already {level}: not an edge")
        return  # the same level again: not an edge
    run.put(
        cfg,
        replace(
            zone,
            active=change.active,
            since_us=run.at_us,
            pending=pending,
            changes=zone.changes + moved,
            last_change_ms=change.wall_ms if moved else zone.last_change_ms,
        ),
    )


def _explain_edge(run: _Run, cfg: ZoneConfig, zone: ZoneState, active: bool) -> None:
    """Notes for an edge that ends a glitch or restarts a restore wait (explain only)."""
    held_ms = None if zone.since_us is None else (run.at_us - zone.since_us) / US_PER_MS
    if cfg.type is ZoneType.ARMED_STATE:
        if zone.pending and held_ms is not None:
            text = (
                f"armed-state input changed back after {held_ms:g} ms < glitch_ms {cfg.glitch_ms}"
            )
            run.note(cfg, run.at_us, "arming_glitch", text)
    elif not active and zone.pending and held_ms is not None:
        text = f"glitch filtered: active {held_ms:g} ms < glitch_ms {cfg.glitch_ms}"
        run.note(cfg, run.at_us, "glitch", text)
    elif active and zone.reported:
        text = f"active again before its restore: the restore waits for {cfg.restore_ms} ms quiet"
        run.note(cfg, run.at_us, "restore_wait", text)


def _fire(run: _Run, cfg: ZoneConfig, zone: ZoneState, due_us: int) -> None:
    if cfg.type is ZoneType.ARMED_STATE:
        _settle_arming(run, cfg, replace(zone, pending=False), due_us)
    elif zone.pending:
        _trip(run, cfg, replace(zone, pending=False), due_us)
    else:  # reported, and quiet long enough
        why = ""
        if run.explain:
            quiet_us = (zone.since_us or 0) + cfg.restore_ms * US_PER_MS
            if zone.hold_until_us is not None and zone.hold_until_us > quiet_us:
                why = f"hold window ended ({cfg.hold_s} s after the alarm), input quiet"
            else:
                why = f"input quiet for restore_ms {cfg.restore_ms} ms"
        run.emit(cfg, ZONE_CONDITION[cfg.type], True, due_us, why=why)
        run.put(cfg, replace(zone, reported=False, hold_until_us=None))


def _trip(run: _Run, cfg: ZoneConfig, zone: ZoneState, at_us: int) -> None:
    if zone.reported or zone.suppressed or not _reports_now(cfg, run.armed.get(cfg.partition)):
        if run.explain:
            _explain_silence(run, cfg, zone, at_us)
        run.put(cfg, zone)
        return
    swinger = cfg.type not in _NO_SWINGER
    if swinger and zone.alarms >= cfg.swinger_limit:
        text = (
            f"{cfg.name}: swinger shutdown after {zone.alarms} alarms since the last arm or "
            "disarm; zone silent until the next arm or disarm"
        )
        why = f"trip number {zone.alarms + 1}: swinger_limit {cfg.swinger_limit} reached"
        run.emit(cfg, SWINGER, False, at_us, text, why=why)
        run.put(cfg, replace(zone, suppressed=True))
        return
    why = ""
    if run.explain:
        who = "24-hour zone" if cfg.type in TWENTY_FOUR_HOUR else "partition armed"
        if cfg.alarm_when_disarmed:
            who = "alarm_when_disarmed"
        why = f"active for glitch_ms {cfg.glitch_ms} ms ({who})"
    run.emit(cfg, ZONE_CONDITION[cfg.type], False, at_us, why=why)
    hold_until_us = at_us + cfg.hold_s * US_PER_S
    alarms = zone.alarms + 1 if swinger else 0
    run.put(cfg, replace(zone, reported=True, hold_until_us=hold_until_us, alarms=alarms))


def _explain_silence(run: _Run, cfg: ZoneConfig, zone: ZoneState, at_us: int) -> None:
    """Note why a trip sent nothing (explain only)."""
    if zone.suppressed:
        what, text = "suppressed", "swinger shutdown: zone silent until the next arm or disarm"
    elif zone.reported and zone.hold_until_us is not None and at_us < zone.hold_until_us:
        left_s = (zone.hold_until_us - at_us) / US_PER_S
        what, text = "hold", f"still in alarm: hold window ({left_s:g} s left), one alarm"
    elif zone.reported:
        what, text = "reported", "still in alarm (no restore yet): one alarm"
    else:
        what = "disarmed"
        text = f"partition {cfg.partition} disarmed: a {cfg.type.value} zone reports when armed"
    run.note(cfg, at_us, what, text)


def _settle_arming(run: _Run, cfg: ZoneConfig, zone: ZoneState, at_us: int) -> None:
    run.put(cfg, zone)
    if run.armed.get(cfg.partition) is zone.active:
        return  # back to the level it had before the glitch
    run.armed[cfg.partition] = zone.active
    why = f"armed-state input held for glitch_ms {cfg.glitch_ms} ms" if run.explain else ""
    run.emit(cfg, Condition.OPEN_CLOSE, zone.active, at_us, why=why)
    # A new arming period: swinger counts start again, shut-down zones wake up.
    how = "armed" if zone.active else "disarmed"
    for other in run.cfg.values():
        state = run.zones.get(other.id)
        if other.partition != cfg.partition or state is None:
            continue
        if state.suppressed:
            text = f"{other.name}: swinger shutdown ended, partition {how}"
            run.emit(other, SWINGER, True, at_us, text, why=f"partition {how}")
        if state.suppressed or state.alarms:
            run.put(other, replace(state, alarms=0, suppressed=False))


def _reports_now(zone: ZoneConfig, armed: bool | None) -> bool:
    if zone.alarm_when_disarmed is not None:
        return zone.alarm_when_disarmed or bool(armed)
    return zone.type in TWENTY_FOUR_HOUR or bool(armed)


def zone_level(
    levels: Mapping[str, bool], change: ZoneChanged, inputs: Sequence[str]
) -> tuple[dict[str, bool], ZoneChanged | None]:
    """A zone wired to several inputs is active while any of them is (pure).

    ``levels`` is every input's last level; ``inputs`` are the inputs of the
    change's zone. Returns the new levels and the change to feed :func:`step`
    with the zone's level, or None when the zone's level did not change (an
    initial reading always goes through).
    """
    before = any(levels.get(i, False) for i in inputs)
    after_levels = {**levels, change.input: change.active}
    after = any(after_levels.get(i, False) for i in inputs)
    if after == before and not change.initial and len(inputs) > 1:
        return after_levels, None
    return after_levels, replace(change, active=after)
