"""Composition root: build the stages, wire them, run them in one TaskGroup.

Start order is sinks first (outbox, web, uplink, zones, then the sources:
inputs and cameras), so nothing a source produces has nowhere to go. Stop
order is the reverse: sources first, then the zone queue drains into the
outbox, then the uplink says goodbye, then the outbox closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge import __version__, protocol
from edge.boxweb import (
    Cameras,
    ConfigFile,
    JournaledOutbox,
    pending_previous,
    roll_back,
)
from edge.boxweb import confirm as confirm_config
from edge.clock import Clock, SystemClock, ms
from edge.codes import Condition, Kind, ZoneType
from edge.config import EdgeConfig
from edge.errors import HardwareError, StorageError
from edge.health import Health, sd_notify, watchdog_interval_s
from edge.inputs import trace, walktest
from edge.inputs.gpio import GpioInputs
from edge.inputs.outputs import GpioOutputs
from edge.inputs.relay import EdgeRelay
from edge.inputs.zones import PanelState, Tick, next_deadline, resume, step, zone_level
from edge.model import Event, MediaDue, ZoneChanged, box_event, new_event_id
from edge.motion.settings import motion_params, stage_settings, tamper_params
from edge.motion.stage import MotionStage
from edge.mqttio import Message, MqttLink
from edge.outbox.reserve import Reserve
from edge.outbox.store import Limits, Outbox
from edge.protocol.commands import ClipArgs, Detail, HoldArgs, ReleaseArgs, SnapshotArgs
from edge.provision import NOT_CHECKED, Paths, managed_dir
from edge.provision import check as check_provisioning
from edge.status import inputs_view, register_status
from edge.uplink.commands import CommandHandler
from edge.uplink.forwarder import Forwarder
from edge.uplink.inbox import dispatch
from edge.uplink.supervision import Supervisor
from edge.video.service import VideoService
from edge.web.hooks import Hooks
from edge.web.journal import Journal
from edge.web.server import WebServer, WebSettings
from edge.wiring import forward_settings, link_settings, profile_of

log = logging.getLogger(__name__)
VIDEO_KINDS = (Kind.ALARM, Kind.TAMPER)  # events that get a clip and stills
YIELD_EVERY = 64  # input changes handled before the zones task lets others run


class Box:
    """Every stage of one box, wired. Construction does no I/O."""

    def __init__(
        self,
        cfg: EdgeConfig,
        state_dir: Path,
        clock: Clock | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.state_dir = state_dir
        self.config_path = config_path
        self.stop_event: asyncio.Event | None = None  # set by run(): what ends the box
        self.restart_requested = False
        self.clock = clock or SystemClock()
        self.boot_id = str(uuid.uuid4())
        self.started_s = self.clock.monotonic()
        self.health = Health()
        self.topics = protocol.Topics(cfg.uplink.topic_prefix, cfg.device.id)
        limits = Limits(
            cfg.outbox.max_events, int(cfg.outbox.media_quota_bytes), cfg.uplink.chunk_bytes
        )
        self.journal = Journal(days=cfg.web.journal_days)
        self.outbox = JournaledOutbox(
            Outbox(state_dir / "outbox.sqlite", limits),
            self.clock,
            Reserve(state_dir / "outbox.reserve", int(cfg.outbox.reserve_bytes)),
            free_disk=lambda need: self.video.free_disk(need, state_dir),  # footage, then media
        )
        self.outbox.journal = self.journal
        settings = link_settings(cfg, self.topics, will=self._state_message("offline"))
        self.link = MqttLink(settings, birth=lambda: self._state_message("online"))
        self.forwarder = Forwarder(
            self.link, self.outbox, self.topics, forward_settings(cfg), self.clock
        )
        self.outbox.on_stored = self.forwarder.kick
        self.inputs = GpioInputs(cfg.inputs, cfg.gpio.backend, self.clock)
        self.outputs = GpioOutputs(cfg.outputs, cfg.gpio.backend)
        self.supervisor = Supervisor(
            self.link,
            self.outbox,
            self.topics,
            profile_of(cfg),
            self.clock,
            lambda: self.outbox.depth,
            self._path_trouble,
            self.outputs.set,
            lambda text: self.raise_event(Condition.PERIODIC_TEST, False, text),
        )
        self.commands = CommandHandler(
            self.link,
            self.topics,
            self.clock,
            self.raise_event,
            self._video_command if cfg.cameras else None,
            tuple(c.id for c in cfg.cameras),
            self._hold_command if cfg.cameras and cfg.recording.enabled else None,
        )
        self.video = VideoService(
            cfg,
            state_dir,
            self.clock,
            self.outbox.put_media,
            self._camera_trouble,
            put_lost=self.outbox.put_lost,
        )
        self.cameras = [cam.runner for cam in self.video.cameras.values()]
        self.motion = self._motion_stage() if cfg.motion.enabled and cfg.cameras else None
        self.changes: asyncio.Queue[ZoneChanged] = asyncio.Queue(maxsize=10_000)
        self.panel = PanelState()
        self.trace = trace.TraceLog()  # every input change and tick the zones see, logged
        self.zones = {z.id: z for z in cfg.zones}
        self.inputs_of = {z.id: [i.name for i in cfg.inputs if i.zone == z.id] for z in cfg.zones}
        self.input_levels: dict[str, bool] = {}
        self.walk: walktest.WalkTest | None = None
        self.resync_pending = False  # edges were dropped: re-read the pins when caught up
        self.edges_dropped = 0
        self._handled = 0
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.web = self._web_server() if cfg.web.enabled else None
        self.provisioning = NOT_CHECKED  # the uplink's gate, decided in start()
        register_status(self)

    # -- lifecycle ---------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        if self.web is not None:  # the page's event journal (memory only if its file fails)
            await self.journal.open(self.state_dir / "journal.sqlite", ms(self.clock.time()))
        await self.outbox.open()
        # media announced before a stop or power cut and never queued (before new alarms)
        owed = await self.outbox.media_due()
        # Zones resume from what was committed, so a restore missed while down is sent.
        kinds = await self.outbox.zone_kinds()
        self.trace.resume(kinds)  # the input trace's start (edge diag replay)
        self.panel = resume(kinds, {z.id: z for z in self.cfg.zones})
        if self.web is not None:
            await self.web.start()
        # A box set up by the image but not yet provisioned by its station keeps
        # recording alarms in the outbox, but does not start its uplink (edge/provision.py).
        self.provisioning = check_provisioning(managed_dir(), self.cfg)
        if self.provisioning.uplink_allowed:
            await self.link.start()
            routes = {self.topics.ack: self.forwarder.on_ack, self.topics.cmd: self.commands.handle}
            self._spawn(tg, "uplink.inbox", dispatch(self.link, routes))
            self._spawn(tg, "uplink.sender", self.forwarder.run_sender())
            self._spawn(tg, "uplink.heartbeat", self.supervisor.run_heartbeat())
            self._spawn(tg, "uplink.supervision", self.supervisor.run_watch())
            self._spawn(tg, "uplink.periodic_test", self.supervisor.run_periodic_test())
        else:
            log.error(
                "uplink NOT started: this box is not provisioned: %s",
                "; ".join(self.provisioning.problems),
            )
        self._spawn(tg, "zones", self._run_zones())
        self._spawn(tg, "zones.walktest", self._run_walk_clock())
        loop = asyncio.get_running_loop()

        self.inputs.open(EdgeRelay(loop, self._on_edges).push)  # push: gpiozero's thread
        self.outputs.open(self.inputs.factory)
        # Armed state first, so a zone already active at start-up is judged armed or not.
        arming = {z.id for z in self.cfg.zones if z.type is ZoneType.ARMED_STATE}
        for change in sorted(self.inputs.levels(), key=lambda c: c.zone not in arming):
            self._on_change(change)
        if self.motion is not None:  # the lores frames' sink before the cameras start
            self._spawn(tg, "motion", self.motion.run())
            self.video.add_lores_sink(self.motion.offer)
        self.video.start()  # each camera captures on its own thread (parts salvaged first)
        self._spawn(tg, "video.retention", self.video.run_retention())
        if owed:
            self._spawn(tg, "video.owed", self._owed_media(owed))
        interval = watchdog_interval_s()
        if interval is not None:
            self._spawn(tg, "watchdog", self.health.run_watchdog(interval))
        if pending_previous(self.state_dir / "web") is not None:
            self._spawn(tg, "web.config_probation", self._config_probation())

    async def shutdown(self) -> None:
        """Ordered stop: sources, then zones (drained), uplink, outbox, web. Each step
        runs whatever the one before it did (a failing disk or camera is logged), so
        the retained ``offline`` state is always published and the outbox closed."""
        sd_notify("STOPPING=1")
        await self._stop_step("inputs", self.inputs.close)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changes.join(), 2.0)
        await self._stop_step("video", self.video.stop)
        await self._cancel("camera.", "video.", "motion", "zones", "watchdog")
        await self._cancel("uplink.")
        offline = self._state_message("offline")
        await self._stop_step("uplink", lambda: self.link.stop(last_words=offline, timeout_s=2.0))
        try:
            await asyncio.wait_for(self.forwarder.settle(), 2.0)
        except TimeoutError:  # unsettled sends stay leased: they are sent again at start
            log.warning("uplink did not settle in 2 s; closing the outbox anyway")
        await self._stop_step("outbox", self.outbox.close)
        await self._stop_step("journal", self.journal.close)
        if self.web is not None:
            await self._stop_step("web", self.web.stop)
        log.info("stopped")

    async def _stop_step(self, what: str, step: Callable[[], Any]) -> None:
        """One step of the stop; its failure is logged and the stop goes on."""
        started = self.clock.monotonic()
        try:
            result = step()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("stop: %s did not stop cleanly; going on", what)
        took = self.clock.monotonic() - started
        if took > 0.5:
            log.info("stop: %s took %.1f s", what, took)

    async def close(self) -> None:
        """Release whatever is still held (after a crash); safe to call twice."""
        for camera in self.cameras:
            camera.stop_flag.set()
        self.outputs.close()
        self.inputs.release()
        await self.link.stop()
        await self.outbox.close()
        await self.journal.close()
        if self.web is not None:
            await self.web.stop()

    # -- events ------------------------------------------------------------

    def _on_change(self, change: ZoneChanged) -> None:
        self._on_edges([change], 0)

    def _on_edges(self, changes: list[ZoneChanged], dropped: int) -> None:
        """On the loop: queue edges for the zones task; on overflow, re-read the pins later."""
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

    async def _run_zones(self) -> None:
        zones = self.zones
        while True:
            change = await self._next_zone_input()
            try:
                if isinstance(change, ZoneChanged):  # a zone is active while any input is
                    walked = self.walk is not None and self.walk.covers(change.zone)
                    self.trace.edge(change, walked and not change.initial)
                    inputs = self.inputs_of[change.zone]
                    self.input_levels, leveled = zone_level(self.input_levels, change, inputs)
                    if leveled is None:
                        continue
                    change = leveled
                if (
                    isinstance(change, ZoneChanged)
                    and self.walk is not None
                    and self.walk.covers(change.zone)
                    and not change.initial
                ):
                    self.walk = walktest.observe(self.walk, change)
                    log.info(
                        "walk test: %s %s", change.zone, "active" if change.active else "quiet"
                    )
                    continue
                if isinstance(change, Tick):
                    self.trace.tick(change)
                self.panel, events = step(self.panel, change, zones)
                for event in events:
                    await self.store(event)
            finally:
                if isinstance(change, ZoneChanged):
                    self.changes.task_done()

    async def _next_zone_input(self) -> ZoneChanged | Tick:
        """The next input change, or a tick if the zones' next timer comes first."""
        self._handled += 1
        if self.changes.empty():
            self.trace.flush()  # caught up: what the zones saw goes to the log now
        if self._handled % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a backlog of edges must not starve the rest of the loop
        if self.resync_pending and self.changes.empty():
            self._resync()
        deadline = next_deadline(self.panel)
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
        for change in self.inputs.levels():
            self.changes.put_nowait(replace(change, initial=False))
        log.info("re-read the pins after %d dropped edge(s)", self.edges_dropped)

    async def store(self, event: Event) -> None:
        """Commit an event to the outbox; it is sent even if the disk refuses it (held in
        memory, committed later), so an alarm never waits for the disk.

        An alarm or tamper of a zone with cameras starts its clip and stills
        first (which never waits) and carries their ids in ``extra``."""
        due: tuple[MediaDue, ...] = ()
        zone = self.zones.get(event.zone.id) if event.zone is not None else None
        if zone is not None and zone.cameras and event.kind in VIDEO_KINDS:
            event, due = self.video.plan(event, zone.cameras)
        if zone is not None and zone.cameras and event.kind is Kind.ALARM and self.motion:
            event = self.motion.evidence(event, zone.cameras)  # what they saw before it
        await self._put(event, due)

    async def _put(self, event: Event, due: tuple[MediaDue, ...] = ()) -> None:
        try:
            stored = await self.outbox.put(event, ms(self.clock.time()), due)
        except StorageError as exc:  # the outbox is closed (stopping), or refused this event
            log.critical("event %s NOT queued: %s: %s", event.id, exc, event)
            return
        log.info(
            "event %s seq %d%s: %s %s %s",
            event.id,
            stored.seq,
            "" if stored.durable else " (held in memory: the disk refused it)",
            event.kind.value,
            event.codes.cid,
            event.text,
            extra={"journal": {"EVENT_ID": event.id, "EVENT_SEQ": stored.seq}},
        )

    def _motion_stage(self) -> MotionStage:
        settings = stage_settings(self.cfg)
        cameras = {
            c.id: (motion_params(self.cfg, c.id), (c.width, c.height)) for c in self.cfg.cameras
        }
        return MotionStage(
            cameras, tamper_params(self.cfg), settings, self.clock, self._camera_event, self._armed
        )

    def _armed(self, camera: str) -> bool:
        """Whether a partition a camera watches is armed (any, if no zone names the camera)."""
        partitions = {z.partition for z in self.cfg.zones if camera in z.cameras}
        armed = self.panel.armed
        return any(armed.get(p) for p in partitions) if partitions else any(armed.values())

    async def _camera_event(self, event: Event, camera: str) -> None:
        """A motion or camera-tamper event: its clip and stills first (motion-only ones
        sit in the lowest priority class with their event), then the outbox."""
        due: tuple[MediaDue, ...] = ()
        if event.kind in (Kind.TAMPER, Kind.MOTION):
            event, due = self.video.plan(event, (camera,))
        await self._put(event, due)

    async def raise_event(self, condition: Condition, restore: bool, text: str) -> Event:
        """An event of the box itself (no zone): path trouble, manual test, ..."""
        event = box_event(condition, restore, text, ms(self.clock.time()))
        await self.store(event)
        return event

    # -- walk test ---------------------------------------------------------

    def start_walk(self, duration_s: float) -> dict[str, Any]:
        """Begin a walk test of the intrusion zones; ValueError if one runs already."""
        if self.walk is not None:
            raise ValueError("a walk test is already running")
        self.walk = walktest.start(self.zones, self.clock.monotonic(), duration_s)
        log.info("walk test started for %.0f s: %s", duration_s, ", ".join(self.walk.zones))
        return self.walk_status() or {}

    def walk_status(self) -> dict[str, Any] | None:
        walk = self.walk
        if walk is None:
            return None
        return {
            "zones": list(walk.zones),
            "seen": [z for z in walk.zones if z in walk.seen],
            "not_seen": list(walk.not_seen),
            "activations": walk.activations,
            "remaining_s": round(max(0.0, walk.ends_s - self.clock.monotonic())),
        }

    async def stop_walk(self, ended_by: str = "stopped") -> dict[str, Any] | None:
        """End the walk test: summary logged and sent as a manual test (601)."""
        walk, self.walk = self.walk, None
        if walk is None:
            return None
        summary = walktest.finish(walk, self.clock.monotonic(), ended_by)
        log.info("%s", summary.text)
        # the zones under test resume from their present level
        for change in self.inputs.levels():
            if walk.covers(change.zone):
                self._on_change(change)
        await self.raise_event(Condition.MANUAL_TEST, False, summary.text)
        return {
            "seen": list(summary.seen),
            "not_seen": list(summary.not_seen),
            "text": summary.text,
        }

    async def _run_walk_clock(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.walk is not None and walktest.expired(self.walk, self.clock.monotonic()):
                await self.stop_walk("timeout")

    async def _video_command(
        self, args: ClipArgs | SnapshotArgs, command_id: str
    ) -> tuple[str, list[str]]:
        """A station's snapshot or clip command; a manual test event (601) carries the file."""
        if isinstance(args, SnapshotArgs):
            data = await self.video.snapshot_jpeg(args.camera)
            kind, ctype, what = "still", "image/jpeg", f"snapshot of camera {args.camera}"
        else:
            who = f"station command {command_id}"
            data = await self.video.export_clip(args.camera, args.from_ms, args.to_ms, who)
            kind, ctype, what = "clip", "video/mp4", f"recording of camera {args.camera}"
        event = await self.raise_event(
            Condition.MANUAL_TEST, False, f"{what} for station command {command_id}"
        )
        media_id = new_event_id(ms(self.clock.time()))
        try:
            await self.outbox.put_media(event, media_id, kind, ctype, data)
        except StorageError as exc:
            raise HardwareError(f"could not queue the {kind}: {exc}") from exc
        return event.id, [media_id]

    async def _hold_command(
        self, args: HoldArgs | ReleaseArgs, command_id: str
    ) -> dict[str, Detail]:
        """A station's incident hold on recorded footage, or its release (access log)."""
        who = f"station command {command_id}"
        if isinstance(args, ReleaseArgs):
            await self.video.release(args.hold, who, args.reason)
            return {"hold_id": args.hold}
        covered = await self.video.hold(
            args.camera, args.from_ms, args.to_ms, args.until_ms, who, args.reason, command_id
        )
        return {"hold_id": command_id, "segments": covered}

    async def _owed_media(self, owed: list[MediaDue]) -> None:
        """Stills and clips that events announced before a stop or power cut and that
        were never queued: cut from the recordings still on disk, or the station is told
        plainly that they are lost (a lost notice, PROTOCOL.md 3.4)."""
        for due in owed:
            try:
                content_type, data = await self.video.cut(due)
            except HardwareError as exc:
                why = (
                    f"not recorded: the box stopped (power cut or restart) before this "
                    f"{due.kind} was complete, and no recording on the box covers it ({exc})"
                )
                log.warning("%s %s of event %s: %s", due.kind, due.id, due.event_id, why)
                with contextlib.suppress(StorageError):  # else: told at the next start
                    await self.outbox.lose_due(due, why)
                continue
            try:
                await self.outbox.put_due_media(due, content_type, data)
            except StorageError as exc:  # still owed: tried again at the next start
                log.error("%s %s of event %s not queued: %s", due.kind, due.id, due.event_id, exc)
                continue
            log.warning(
                "%s %s of event %s cut from the recordings after a restart (%d bytes)",
                due.kind,
                due.id,
                due.event_id,
                len(data),
            )

    async def _camera_trouble(self, lost: bool, text: str) -> None:
        await self.raise_event(Condition.SYSTEM_TROUBLE, restore=not lost, text=text)

    async def _path_trouble(self, lost: bool, text: str) -> None:
        await self.raise_event(Condition.COMM_TROUBLE, restore=not lost, text=text)

    # -- wiring helpers ----------------------------------------------------

    def _web_server(self) -> WebServer:
        w, simulated = self.cfg.web, self.inputs.simulated
        settings = WebSettings(
            host=w.host,
            port=w.port,
            web_dir=self.state_dir / "web",
            device_id=self.cfg.device.id,
            tls=w.tls,
            api_token=w.api_token.get_secret_value() if w.api_token else None,
            session_idle_s=w.session_idle_s,
            login_max_failures=w.login_max_failures,
            lockout_s=w.lockout_s,
            secrets=tuple(
                v.get_secret_value() for v in (self.cfg.uplink.password,) if v is not None
            ),
            setup_code_file=_setup_code_file(),
        )
        hooks = Hooks(
            status=self.health.snapshot,
            inputs=lambda: inputs_view(self),
            simulate=self.inputs.simulate if simulated else None,
            pulses=self.inputs.pulses if simulated else None,
            walk=self,
            journal=self.journal,
            send_test=self._test_event,
            cameras=Cameras(self.video, self.cfg, self._motion_status)
            if self.video.camera_ids()
            else None,
            config=ConfigFile(
                self.cfg, self.config_path, self.state_dir / "web", self.request_restart
            ),
            monotonic=self.clock.monotonic,
        )
        return WebServer(settings, hooks)

    def _motion_status(self) -> dict[str, Any]:
        return self.motion.status() if self.motion is not None else {}

    async def _test_event(self, text: str) -> str:
        return (await self.raise_event(Condition.MANUAL_TEST, False, text)).id

    def request_restart(self) -> None:
        """Stop, and have the process exit with EXIT_RESTART so systemd starts it again."""
        self.restart_requested = True
        if self.stop_event is not None:
            self.stop_event.set()

    async def _config_probation(self) -> None:
        """A config applied from the page is kept only if the box stays healthy."""
        await asyncio.sleep(self.cfg.web.apply_confirm_s)
        web_dir = self.state_dir / "web"
        problems = self.health.problems()
        if "uplink.sender" in self.tasks and not self.link.status.connected:
            problems["uplink"] = "not connected to the broker"  # the likeliest config mistake
        if not problems:
            confirm_config(web_dir)
        elif self.config_path is not None and roll_back(
            self.config_path, web_dir, "; ".join(problems.values())
        ):
            self.request_restart()

    def _spawn(self, tg: asyncio.TaskGroup, name: str, coro: Any) -> None:
        self.tasks[name] = tg.create_task(coro, name=name)

    async def _cancel(self, *prefixes: str) -> None:
        chosen = [t for n, t in self.tasks.items() if n.startswith(prefixes)]
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)

    def _state_message(self, state: str) -> Message:
        profile = profile_of(self.cfg)  # announced, so the station supervises to it
        payload = protocol.encode_state(
            state,
            boot_id=self.boot_id,
            version=__version__,
            at_ms=ms(self.clock.time()),
            supervision={"heartbeat_s": profile.heartbeat_s, "lost_s": profile.path_loss_s},
        )
        return Message(self.topics.state, payload, qos=1, retain=True)


def _setup_code_file() -> Path | None:
    """The technician page's setup code that first boot wrote (an installed box)."""
    managed = managed_dir()
    return None if managed is None else Paths(managed).setup_code


async def run(
    cfg: EdgeConfig,
    state_dir: Path,
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    ready: Callable[[Box], None] | None = None,
    config_path: Path | None = None,
) -> bool:
    """Run the box until SIGTERM/SIGINT (or ``stop`` is set), then stop in order.
    True when the box asked to be restarted (a config applied from the page)."""
    box = Box(cfg, state_dir, clock, config_path)
    stop = stop or asyncio.Event()
    box.stop_event = stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tg:
            await box.start(tg)
            sd_notify("READY=1")
            sd_notify(f"STATUS=running, device {cfg.device.id}")
            log.info("box %s up (version %s, boot %s)", cfg.device.id, __version__, box.boot_id)
            if ready is not None:
                ready(box)
            await stop.wait()
            await box.shutdown()
    finally:
        await box.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return box.restart_requested
