"""The status snapshot, built from the stages: the typed view the page, ``/healthz`` and
``/metrics`` read (:mod:`edge.snapshot` holds its models).

:class:`Stages` names every stage the view reads, typed; :class:`StatusView`
turns them into a :class:`edge.snapshot.Status` and registers the health checks
(``tasks`` is the only one that stops the systemd watchdog: a dead stage task is
what a restart cures).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge import __version__, protocol, snapshot, sysinfo
from edge.clock import Clock, ms
from edge.config import EdgeConfig
from edge.health import Health
from edge.inputs.gpio import GpioInputs
from edge.inputs.outputs import GpioOutputs
from edge.inputs.panel import Panel
from edge.motion.stage import MotionStage
from edge.mqttio import MqttLink
from edge.outbox.aio import AsyncOutbox
from edge.provision import Provisioning
from edge.uplink.commands import CommandHandler
from edge.uplink.forwarder import Forwarder
from edge.uplink.supervision import Supervisor
from edge.video.service import VideoService
from edge.web.journal import Journal

RECORDING_SCAN_S = 60.0  # the recordings' folder is listed at most once a minute


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


class StatusView:
    def __init__(self, stages: Stages, health: Health) -> None:
        self.s = stages
        self.health = health
        self._peak = 0  # the outbox's deepest since it was last empty
        self._oldest: tuple[float, str | None] | None = None  # (when listed, oldest footage)
        health.check("tasks", self._dead_tasks)  # the only fault a restart would cure
        health.check("outbox", self._outbox_problem, watchdog=False)
        health.check("subscriptions", self._refused, watchdog=False)

    def current(self) -> snapshot.Status:
        problems = self.health.problems()
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

    # -- checks -------------------------------------------------------------------------

    def _dead_tasks(self) -> str | None:
        dead = [n for n, t in self.s.tasks.items() if t.done() and not t.cancelled()]
        return f"stage task ended: {', '.join(dead)}" if dead else None

    def _outbox_problem(self) -> str | None:
        o = self.s.outbox
        if o.held:
            return (
                f"{len(o.held)} event(s) held in memory, not yet on disk ({o.held.error}): "
                "sent all the same"
            )
        if o.reserve is not None and not o.reserve.held:
            return "disk full: the outbox reserve is in use (room is being made)"
        return None

    def _refused(self) -> str | None:
        refused = self.s.link.status.refused_subscriptions
        return "; ".join(f"{t} refused: {r}" for t, r in refused.items()) or None

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
