"""The status snapshot, built from the stages: the typed view the page, ``/healthz`` and
``/metrics`` read (:mod:`edge.snapshot` holds its models).

:class:`Stages` names every stage the view reads, typed; :class:`StatusView`
turns them into a :class:`edge.snapshot.Status` and registers the health checks
(``tasks`` is the only one that stops the systemd watchdog: a dead stage task is
what a restart cures; ``path``, ``outbox``, ``inputs``, ``cameras`` and
``subscriptions`` make the box unhealthy but a restart would not cure them).

Each check finds :class:`edge.snapshot.Verdict` s: a level, a catalogue key and
its values (the page says them in French or English) and the same in English
words (``/healthz``, the log). The status' ``verdict`` is the worst of them:
faults before warnings before what is still starting, and within a level the
path to the station first, then the outbox, the inputs, the cameras.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge import __version__, i18n, protocol, snapshot, sysinfo
from edge.clock import Clock, ms
from edge.codes import ZoneType
from edge.config import EdgeConfig
from edge.health import Health
from edge.inputs.gpio import GpioInputs
from edge.inputs.outputs import GpioOutputs
from edge.inputs.panel import Panel
from edge.motion.stage import MotionStage
from edge.mqttio import MqttLink
from edge.outbox.aio import AsyncOutbox
from edge.provision import Provisioning
from edge.uplink import ats
from edge.uplink.commands import CommandHandler
from edge.uplink.forwarder import Forwarder
from edge.uplink.supervision import Supervisor
from edge.video.service import VideoService
from edge.web.journal import Journal

RECORDING_SCAN_S = 60.0  # the recordings' folder is listed at most once a minute
CAMERA_START_S = 30.0  # a camera without a picture this long after the start is silent
LEVELS = {"fault": 3, "warning": 2, "starting": 1}
ORDER = ("tasks", "path", "outbox", "inputs", "cameras", "subscriptions")  # within a level
# zones whose activity is a trouble of the panel's own, not an alarm to walk past
TROUBLE_ZONES = frozenset(
    {
        ZoneType.TAMPER,
        ZoneType.PANEL_TAMPER,
        ZoneType.ENCLOSURE_TAMPER,
        ZoneType.AC_POWER,
        ZoneType.BATTERY,
    }
)
UNPROVISIONED = "box.health.unprovisioned"
TICKING = frozenset({"down_s"})  # values that change every second: not in the watchdog's words

Found = list[snapshot.Verdict]


@dataclass(frozen=True)
class Stages:
    """What the status is built from: the stages of one box, and its identity."""

    cfg: EdgeConfig
    clock: Clock
    boot_id: str
    started_s: float  # monotonic
    state_dir: Path
    inputs: GpioInputs
    panel: Panel
    outputs: GpioOutputs
    link: MqttLink
    forwarder: Forwarder
    supervisor: Supervisor
    commands: CommandHandler
    outbox: AsyncOutbox
    journal: Journal
    video: VideoService
    motion: MotionStage | None
    provisioning: Callable[[], Provisioning]
    tasks: Mapping[str, asyncio.Task[Any]]
    routes: Callable[[], list[dict[str, Any]]] = list  # the backups' states (edge.routing)


class StatusView:
    def __init__(self, stages: Stages, health: Health) -> None:
        self.s = stages
        self.health = health
        self._peak = 0  # the outbox's deepest since it was last empty
        self._oldest: tuple[float, str | None] | None = None  # (when listed, oldest footage)
        self.checks: dict[str, Callable[[], Found]] = {
            "tasks": self._dead_tasks,
            "path": self._path,
            "outbox": self._outbox_problem,
            "inputs": self._inputs,
            "cameras": self._cameras,
            "subscriptions": self._refused,
        }
        for name, fn in self.checks.items():  # only a dead task is cured by a restart
            health.check(name, _words(fn), watchdog=name == "tasks")

    def faults(self) -> tuple[dict[str, str], Found]:
        """Every health problem (check -> words) and the same as verdicts, worst first.
        A check registered by someone else is a fault in its own words."""
        problems = self.health.problems()
        found: Found = []
        for name, text in list(problems.items()):
            if name not in self.checks:
                found.append(verdict(name, "fault", "box.health.other", name=name, problem=text))
                continue
            mine = self.checks[name]()  # read again: the same instant as the words
            if mine:
                problems[name] = "; ".join(v.text for v in mine)
                found += mine
            else:
                del problems[name]  # cleared between the two reads
        found.sort(key=_severity)
        return problems, found

    def settling(self) -> bool:
        """Whether something is still starting (a camera before its first picture, the
        link's first connection): a config on probation waits for it."""
        _problems, found = self.faults()
        return any(v.level == "starting" for v in found)

    def current(self) -> snapshot.Status:
        problems, found = self.faults()
        return snapshot.Status(
            device=self.device(),
            uplink=self.uplink(),
            provisioning=snapshot.Provisioning(**self.s.provisioning().summary()),
            outbox=self.outbox(),
            journal=snapshot.Journal(**self.s.journal.status()),
            zones=self.zones(),
            outputs=dict(self.s.outputs.state),
            walktest=self.walktest(),
            cameras=self.cameras(),
            video=self.video(),
            motion=self.motion(),
            system=self.system(),
            problems=problems,
            healthy=not problems,
            verdict=found[0] if found else healthy(),
            faults=found,
        )

    def json(self) -> dict[str, Any]:
        status = self.current()
        body = status.model_dump(mode="json")
        body["walktest"] = status.walktest.model_dump(mode="json", exclude_none=True)
        return body

    def inputs_json(self) -> dict[str, Any]:
        """Only what the live inputs page needs: cheap enough to read many times a second."""
        return {
            "zones": self.zones().model_dump(mode="json"),
            "walktest": self.walktest().model_dump(mode="json", exclude_none=True),
        }

    # -- sections ----------------------------------------------------------------------

    def device(self) -> snapshot.Device:
        s = self.s
        return snapshot.Device(
            id=s.cfg.device.id,
            site=s.cfg.device.site,
            account=s.cfg.station.account,
            version=__version__,
            boot_id=s.boot_id,
            uptime_s=round(s.clock.monotonic() - s.started_s),
            simulated_inputs=s.inputs.simulated,
        )

    def uplink(self) -> snapshot.Uplink:
        s = self.s
        link, stats, watch = s.link.status, s.forwarder.stats, s.supervisor.watch
        backups = [snapshot.Route(**r) for r in s.routes()]
        primary = snapshot.Route(
            number=1,
            name="primary",
            kind="mqtt",
            connected=link.connected,
            lost=watch.path_lost,
            path_loss_s=s.supervisor.profile.path_loss_s,
            published=stats.published,
            acknowledged=stats.acked,
        )
        routes = [primary, *backups]
        return snapshot.Uplink(
            broker=s.cfg.uplink.broker,
            connected=link.connected,
            connects=link.connects,
            last_error=link.last_error,
            in_flight=link.in_flight,
            window=link.window,
            published=stats.published,
            acknowledged=stats.acked,
            refused=stats.refused,
            media_chunks=stats.chunks,
            media_done=stats.media_done,
            last_ack_at=None if stats.last_ack_ms is None else protocol.iso_ms(stats.last_ack_ms),
            connected_since=self._wall_iso(link.connected_since),
            margin_s=self._margin_s(),
            profile=s.cfg.supervision.profile,
            heartbeat_s=s.supervisor.profile.heartbeat_s,
            path_loss_s=s.supervisor.profile.path_loss_s,
            path_lost=watch.path_lost,
            delivery_failed=watch.delivery_failed,
            refused_subscriptions=dict(link.refused_subscriptions),
            commands=s.commands.handled,
            commands_rejected=s.commands.rejected,
            routes=routes,
            category=ats.summary(
                [ats.RouteFacts(r.name, r.path_loss_s, not r.lost) for r in routes]
            ),
            ats=ats.category(routes[0].path_loss_s, [r.path_loss_s for r in routes[1:]]),
        )

    def outbox(self) -> snapshot.Outbox:
        o = self.s.outbox
        now = ms(self.s.clock.time())
        age = None if o.oldest_ms is None else round(now - o.oldest_ms) / 1000
        self._peak = 0 if o.depth == 0 else max(o.depth, self._peak)
        return snapshot.Outbox(
            depth=o.depth,
            oldest_age_s=age,
            media=o.media_count,
            media_bytes=o.media_bytes,
            peak_depth=self._peak,
            held_in_memory=len(o.held),
            reserve_held=o.reserve is None or o.reserve.held,
        )

    def zones(self) -> snapshot.Zones:
        panel = self.s.panel
        zones = []
        for z in self.s.cfg.zones:
            st = panel.state.zone(z.id)
            changed = st.last_change_ms
            zones.append(
                snapshot.Zone(
                    id=z.id,
                    name=z.name,
                    type=z.type.value,
                    number=z.number,
                    active=st.active,
                    changes=st.changes,
                    last_change_at=None if changed is None else protocol.iso_ms(changed),
                )
            )
        armed = {str(k): v for k, v in panel.state.armed.items()}
        return snapshot.Zones(armed=armed, zones=zones, edges_dropped=panel.edges_dropped)

    def walktest(self) -> snapshot.WalkTest:
        walk = self.s.panel.walk_status()
        if walk is None:
            return snapshot.WalkTest(running=False)
        return snapshot.WalkTest(running=True, **asdict(walk))

    def cameras(self) -> dict[str, snapshot.Camera]:
        return {
            cid: snapshot.Camera(**asdict(cam.runner.status))
            for cid, cam in self.s.video.cameras.items()
        }

    def video(self) -> snapshot.Video:
        v = self.s.video
        rec = v.recorder
        return snapshot.Video(
            lores_dropped=v.lores_dropped,
            media_failed=v.media_failed,
            media_lost=v.media_lost,
            media_waiting=len(v.media_waiting),
            stills_pending=v.stills_pending,
            recorder=snapshot.Recorder(
                mode=rec.settings.mode, kept=rec.kept, failing=rec.failing, yielding=rec.yielding
            ),
        )

    def motion(self) -> snapshot.Motion:
        if self.s.motion is None:
            return snapshot.Motion(enabled=False)
        return snapshot.Motion(enabled=True, **self.s.motion.status())

    def system(self) -> snapshot.System:
        clock = sysinfo.clock_sync(time.time())  # the system clock itself, not the box's
        return snapshot.System(
            clock_synchronized=clock.synchronized,
            clock_offset_ms=clock.offset_ms,
            clock_source=clock.source,
            load_1m=os.getloadavg()[0],
            cpu_temp_c=sysinfo.cpu_temp_c(),
            retention_days=self.s.cfg.recording.retention_days,
            oldest_recording_at=self._oldest_recording(),
            **sysinfo.memory(),
            **sysinfo.disk(self.s.state_dir),
            **sysinfo.process(),
        )

    # -- checks (each: what is wrong, in verdicts; [] when fine) -------------------------

    def _dead_tasks(self) -> Found:
        dead = [n for n, t in self.s.tasks.items() if t.done() and not t.cancelled()]
        return (
            [verdict("tasks", "fault", "box.health.tasks", tasks=", ".join(dead))] if dead else []
        )

    def _path(self) -> Found:
        """The path to the station: provisioned, the link up, the alarms acknowledged.
        With backup routes, a primary down while a backup carries the events is a
        warning (the service goes on, on one path fewer), and each backup route lost is
        one too."""
        s = self.s
        provisioning = s.provisioning()
        if not provisioning.uplink_allowed:
            why = "; ".join(provisioning.problems)
            return [verdict("path", "fault", UNPROVISIONED, problems=why)]
        link, watch, profile = s.link.status, s.supervisor.watch, s.supervisor.profile
        backups = s.routes()
        carrying = [str(r["name"]) for r in backups if r["connected"]]
        found: Found = []
        if not link.connected:
            now = s.clock.monotonic()
            since = watch.down_since_s  # supervision's, once a second; else since the start
            if since is None:
                since = s.started_s if link.connects == 0 else now
            down_s = round(max(0.0, now - since))
            if carrying and (link.connects or link.failed_attempts or link.last_error):
                found.append(
                    verdict(
                        "path",
                        "warning",
                        "box.health.primary_down",
                        down_s=down_s,
                        routes=", ".join(carrying),
                    )
                )
            elif watch.path_lost:
                found.append(verdict("path", "fault", "box.health.path_lost", down_s=down_s))
            elif link.connects == 0 and link.failed_attempts == 0 and link.last_error is None:
                found.append(verdict("path", "starting", "box.health.connecting"))
            else:
                error = link.last_error or "-"
                found.append(
                    verdict("path", "warning", "box.health.link_down", down_s=down_s, error=error)
                )
        for r in backups:
            if r["lost"]:
                found.append(
                    verdict(
                        "path",
                        "warning",
                        "box.health.route_lost",
                        route=f"{r['number']} ({r['name']})",
                        path_loss_s=int(r["path_loss_s"]),
                    )
                )
        if watch.delivery_failed:
            found.append(
                verdict("path", "fault", "box.health.not_acknowledged", max_ack_s=profile.max_ack_s)
            )
        return found

    def _outbox_problem(self) -> Found:
        o = self.s.outbox
        if o.held:
            return [
                verdict(
                    "outbox",
                    "fault",
                    "box.health.held",
                    events=len(o.held),
                    error=str(o.held.error),
                )
            ]
        if o.reserve is not None and not o.reserve.held:
            return [verdict("outbox", "warning", "box.health.disk_full")]
        return []

    def _inputs(self) -> Found:
        """Zones the panel reports in trouble or tamper, shut down after too many alarms,
        and edges dropped that the pins have not been read again for yet."""
        panel = self.s.panel
        found: Found = []
        for z in self.s.cfg.zones:
            state = panel.state.zone(z.id)
            if state.suppressed:
                found.append(
                    verdict("inputs", "warning", "box.health.zone_suppressed", zone=z.name)
                )
            elif z.type in TROUBLE_ZONES and state.active:
                key = f"box.health.zone_{z.type.value}"
                found.append(verdict("inputs", "warning", key, zone=z.name))
        if panel.resync_pending:
            dropped = panel.edges_dropped
            found.append(verdict("inputs", "warning", "box.health.edges_dropped", edges=dropped))
        return found

    def _cameras(self) -> Found:
        """A camera lost, or still without a picture long after the start; the recorder
        failing to write."""
        s = self.s
        found: Found = []
        up_s = s.clock.monotonic() - s.started_s
        for cid, cam in s.video.cameras.items():
            state = cam.runner.status.state
            if state == "lost":
                error = cam.runner.status.error or "-"
                found.append(
                    verdict("cameras", "warning", "box.health.camera_lost", camera=cid, error=error)
                )
            elif state == "stopped" and up_s < CAMERA_START_S:
                found.append(
                    verdict("cameras", "starting", "box.health.camera_starting", camera=cid)
                )
            elif state == "stopped":
                found.append(verdict("cameras", "warning", "box.health.camera_silent", camera=cid))
        failing = s.video.recorder.failing
        if failing:
            found.append(
                verdict("cameras", "warning", "box.health.recording_failing", error=failing)
            )
        return found

    def _refused(self) -> Found:
        refused = self.s.link.status.refused_subscriptions
        if not refused:
            return []
        topics = "; ".join(f"{t} ({r})" for t, r in refused.items())
        return [verdict("subscriptions", "warning", "box.health.subscriptions", topics=topics)]

    # -- helpers --------------------------------------------------------------------------

    def _wall_iso(self, monotonic_s: float | None) -> str | None:
        """A monotonic instant of this process as UTC wall time."""
        if monotonic_s is None:
            return None
        clock = self.s.clock
        wall_ms = ms(clock.time()) - round((clock.monotonic() - monotonic_s) * 1000)
        return protocol.iso_ms(wall_ms)

    def _margin_s(self) -> float:
        """Seconds left before a down link becomes a path-loss trouble (all of it if up)."""
        profile, watch = self.s.supervisor.profile, self.s.supervisor.watch
        path_loss_s = float(profile.path_loss_s)
        if watch.down_since_s is None:
            return path_loss_s
        down_s = float(self.s.clock.monotonic() - watch.down_since_s)
        return round(max(0.0, path_loss_s - down_s), 1)

    def _oldest_recording(self) -> str | None:
        """When the oldest footage kept on disk starts: how far back the box can look."""
        now = self.s.clock.monotonic()
        if self._oldest is not None and now - self._oldest[0] < RECORDING_SCAN_S:
            return self._oldest[1]
        try:
            segments = self.s.video.recorder.segments()
        except OSError:
            segments = []
        oldest = protocol.iso_ms(segments[0].start_ms) if segments else None
        self._oldest = (now, oldest)
        return oldest


# -- verdicts ------------------------------------------------------------------------------


def verdict(check: str, level: str, key: str, **values: str | int | float) -> snapshot.Verdict:
    """One thing wrong, with its words in English (the page says it in its language)."""
    shown = {k: duration_en(v) if k.endswith("_s") else v for k, v in values.items()}
    text = i18n.t("en", key, **shown)
    return snapshot.Verdict(check=check, level=level, key=key, values=values, text=text)


def healthy() -> snapshot.Verdict:
    text = i18n.t("en", "box.health.ok")
    return snapshot.Verdict(check=None, level="ok", key="box.health.ok", values={}, text=text)


def duration_en(seconds: float | str) -> str:
    """Seconds in words as the page says them (``i18n.js`` duration): 4 min 05 s, 1 h 05 min."""
    s = max(0, round(float(seconds)))
    d, h, m, s = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    if d:
        return f"{d} d {h} h"
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s" if s else f"{m} min"
    return f"{s} s"


def _severity(v: snapshot.Verdict) -> tuple[int, int]:
    check = v.check or ""
    return -LEVELS.get(v.level, 3), ORDER.index(check) if check in ORDER else len(ORDER)


def _words(fn: Callable[[], Found]) -> Callable[[], str | None]:
    """A check as :class:`edge.health.Health` takes it: its words, or None when fine;
    steady words (no ticking duration), so the watchdog's log and ``STATUS=`` change
    with what is wrong, not every second."""

    def check() -> str | None:
        return "; ".join(_steady(v) for v in fn()) or None

    return check


def _steady(v: snapshot.Verdict) -> str:
    if not any(k in TICKING for k in v.values):
        return v.text
    shown = {k: "…" if k in TICKING else x for k, x in v.values.items()}
    return i18n.t(
        "en",
        v.key,
        **{
            k: duration_en(x) if k.endswith("_s") and k not in TICKING else x
            for k, x in shown.items()
        },
    )
