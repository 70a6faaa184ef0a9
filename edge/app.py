"""Composition root: build the stages, wire them, run them in one TaskGroup.

Start order is sinks first (outbox, web, uplink, the panel, then the sources:
inputs and cameras), so nothing a source produces has nowhere to go. Stop
order is the reverse: sources first, then the panel's queued changes are
committed, then the uplink says goodbye, then the outbox closes.
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
from edge.boxweb.cameras import Cameras
from edge.boxweb.config_file import ConfigFile, Probation
from edge.boxweb.holds import Holds
from edge.boxweb.walk import WalkTestView
from edge.clock import Clock, SystemClock, ms
from edge.codes import Condition, Kind, ZoneType
from edge.config import EdgeConfig
from edge.errors import StorageError
from edge.health import Health, sd_notify, watchdog_interval_s
from edge.inputs.gpio import GpioInputs
from edge.inputs.outputs import GpioOutputs
from edge.inputs.panel import Panel
from edge.inputs.relay import EdgeRelay
from edge.model import Event, MediaDue, OutboxFact, ZoneRef, box_event
from edge.motion.settings import motion_params, stage_settings, tamper_params
from edge.motion.stage import MotionStage
from edge.mqttio import Message, MqttLink
from edge.outbox.aio import AsyncOutbox
from edge.outbox.reserve import Reserve
from edge.outbox.routeview import RouteView
from edge.outbox.store import Limits, Outbox
from edge.provision import NOT_CHECKED, Paths, managed_dir
from edge.provision import check as check_provisioning
from edge.routing import Routes, policy_of
from edge.status import CAMERA_START_S, UNPROVISIONED, Stages, StatusView
from edge.uplink.commands import CommandHandler
from edge.uplink.forwarder import Forwarder
from edge.uplink.inbox import dispatch
from edge.uplink.supervision import Supervisor
from edge.video.service import VideoService
from edge.videolink import VideoLink
from edge.web.hooks import Hooks
from edge.web.journal import Journal
from edge.web.server import WebServer, WebSettings
from edge.wiring import forward_settings, link_settings, profile_of

log = logging.getLogger(__name__)
VIDEO_KINDS = (Kind.ALARM, Kind.TAMPER)  # events that get a clip and stills
DRAIN_S = 2.0  # at a stop, how long the panel's queued changes may take to commit


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
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.provisioning = NOT_CHECKED  # the uplink's gate, decided in start()

        # the durable path: outbox (its facts to the journal and the sender), uplink
        self.journal = Journal(days=cfg.web.journal_days)
        limits = Limits(
            cfg.outbox.max_events, int(cfg.outbox.media_quota_bytes), cfg.uplink.chunk_bytes
        )
        self.outbox = AsyncOutbox(
            Outbox(state_dir / "outbox.sqlite", limits),
            self.clock,
            Reserve(state_dir / "outbox.reserve", int(cfg.outbox.reserve_bytes)),
            free_disk=lambda need: self.video.free_disk(need, state_dir),  # footage first
            observers=(self.journal.observe, self._outbox_fact),
        )
        settings = link_settings(cfg, self.topics, will=self._state_message("offline"))
        self.link = MqttLink(
            settings, birth=lambda: self._state_message("online"), clock=self.clock
        )
        self.policy = policy_of(cfg)  # how events use the primary and its backups
        primary = (
            RouteView(self.outbox, 1, self.policy, lambda: not self.link.status.connected)
            if self.policy.every
            else self.outbox
        )
        self.forwarder = Forwarder(
            self.link, primary, self.topics, forward_settings(cfg), self.clock
        )

        # the panel: inputs, zones, feedback outputs
        self.inputs = GpioInputs(cfg.inputs, cfg.gpio.backend, self.clock)
        self.outputs = GpioOutputs(cfg.outputs, cfg.gpio.backend)
        self.panel = Panel(
            cfg.zones,
            cfg.inputs,
            self.clock,
            self.inputs.levels,
            self.store,
            self._walk_report,
        )
        self.walk_view = WalkTestView(self.panel, lambda: ms(self.clock.time()))
        self.supervisor = Supervisor(
            self.link,
            self.outbox,
            self.topics,
            profile_of(cfg),
            self.clock,
            lambda: self.outbox.depth,
            lambda lost, text: self._route_trouble(1, lost, text),
            lambda name, on: self.routes.fault.output(1, name, on),
            lambda text: self.raise_event(Condition.PERIODIC_TEST, False, text),
            label="route 1 (primary)" if cfg.routes else "",
        )
        self.routes = Routes(  # the backups ([[routes]]), and the path-fault output
            cfg,
            self.clock,
            self.outbox,
            self.topics,
            self.link,
            self._route_trouble,
            self.outputs.set,
            lambda: self.outbox.depth,
            self._state_message,
        )

        # video and motion, and the station's commands
        self.video = VideoService(
            cfg,
            state_dir,
            self.clock,
            self.outbox.put_media,
            self._camera_trouble,
            put_lost=self.outbox.put_lost,
        )
        self.videolink = VideoLink(self.video, self.outbox, self.raise_event, self.clock)
        self.motion = self._motion_stage() if cfg.motion.enabled and cfg.cameras else None
        self.commands = CommandHandler(
            self.link,
            self.topics,
            self.clock,
            self.raise_event,
            self.videolink.command if cfg.cameras else None,
            tuple(c.id for c in cfg.cameras),
            self.videolink.hold if cfg.cameras and cfg.recording.enabled else None,
        )

        # what the page and /metrics read
        self.status = StatusView(self._stages(), self.health)
        self.probation = Probation(
            config_path,
            state_dir / "web",
            cfg.web.apply_confirm_s,
            self._probation_problems,
            self.request_restart,
            settling=self.status.settling,
            settle_max_s=self.supervisor.profile.path_loss_s + CAMERA_START_S,
        )
        self.web = self._web_server() if cfg.web.enabled else None

    # -- lifecycle ---------------------------------------------------------

    async def start(self, tg: asyncio.TaskGroup) -> None:
        if self.web is not None:  # the page's event journal (memory only if its file fails)
            await self.journal.open(self.state_dir / "journal.sqlite", ms(self.clock.time()))
        await self.outbox.open()
        # media announced before a stop or power cut and never queued (before new alarms)
        owed = await self.outbox.media_due()
        # the zones resume from what was committed, so a restore missed while down is sent
        self.panel.resume(await self.outbox.zone_kinds())
        if self.web is not None:
            await self.web.start()
        # A box set up by the image but not yet provisioned by its station keeps
        # recording alarms in the outbox, but does not start its uplink (edge/provision.py).
        self.provisioning = check_provisioning(managed_dir(), self.cfg)
        if self.provisioning.uplink_allowed:
            await self.link.start()
            acks = {self.topics.ack: self.forwarder.on_ack}
            commands = {self.topics.cmd: self.commands.handle_message}  # with its v5 properties
            self._spawn(tg, "uplink.inbox", dispatch(self.link, acks, commands))
            self._spawn(tg, "uplink.sender", self.forwarder.run_sender())
            self._spawn(tg, "uplink.heartbeat", self.supervisor.run_heartbeat())
            self._spawn(tg, "uplink.supervision", self.supervisor.run_watch())
            self._spawn(tg, "uplink.periodic_test", self.supervisor.run_periodic_test())
            await self.routes.start(lambda name, coro: self._spawn(tg, name, coro))
        else:
            log.error(
                "uplink NOT started: this box is not provisioned: %s",
                "; ".join(self.provisioning.problems),
            )
        self._spawn(tg, "zones", self.panel.run())
        self._spawn(tg, "zones.walktest", self.panel.run_walk_clock())
        loop = asyncio.get_running_loop()
        self.inputs.open(EdgeRelay(loop, self.panel.on_edges).push)  # push: gpiozero's thread
        self.outputs.open(self.inputs.factory)
        self.panel.take_levels()
        if self.motion is not None:  # the lores frames' sink before the cameras start
            self._spawn(tg, "motion", self.motion.run())
            self.video.add_lores_sink(self.motion.offer)
        self.video.start()  # each camera captures on its own thread (parts salvaged first)
        self._spawn(tg, "video.retention", self.video.run_retention())
        if owed:
            self._spawn(tg, "video.owed", self.videolink.owed(owed))
        interval = watchdog_interval_s()
        if interval is not None:
            self._spawn(tg, "watchdog", self.health.run_watchdog(interval))
        if self.probation.pending():
            self._spawn(tg, "web.config_probation", self.probation.run())

    async def shutdown(self) -> None:
        """Ordered stop: sources, then the panel (drained), uplink, outbox, web. Each step
        runs whatever the one before it did (a failing disk or camera is logged), so
        the retained ``offline`` state is always published and the outbox closed."""
        sd_notify("STOPPING=1")
        await self._stop_step("inputs", self.inputs.close)
        await self.panel.drain(DRAIN_S)
        await self._stop_step("video", self.video.stop)
        await self._cancel("camera.", "video.", "motion", "zones", "watchdog")
        await self._cancel("uplink.", "route")
        offline = self._state_message("offline")
        await self._stop_step("uplink", lambda: self.link.stop(last_words=offline, timeout_s=2.0))
        await self._stop_step("routes", lambda: self.routes.stop(self._offline))
        try:
            await asyncio.wait_for(self.forwarder.settle(), 2.0)
        except TimeoutError:  # unsettled sends stay leased: they are sent again at start
            log.warning("uplink did not settle in 2 s; closing the outbox anyway")
        await self._stop_step("outbox", self.outbox.close)
        await self._stop_step("journal", self.journal.close)
        if self.web is not None:
            await self._stop_step("web", self.web.stop)
        log.info("stopped")

    async def close(self) -> None:
        """Release whatever is still held (after a crash); safe to call twice."""
        for cam in self.video.cameras.values():
            cam.runner.stop_flag.set()
        self.outputs.close()
        self.inputs.release()
        await self.link.stop()
        for backup in self.routes.mqtt:
            await backup.link.stop()
        await self.outbox.close()
        await self.journal.close()
        if self.web is not None:
            await self.web.stop()

    def request_restart(self) -> None:
        """Stop, and have the process exit with EXIT_RESTART so systemd starts it again."""
        self.restart_requested = True
        if self.stop_event is not None:
            self.stop_event.set()

    # -- the alarm path --------------------------------------------------------

    async def store(self, event: Event) -> None:
        """A zone's event to the outbox. An alarm or tamper of a zone with cameras starts
        its clip and stills first (never waiting) and carries their ids in ``extra``;
        an alarm carries the motion its cameras saw before it."""
        due: tuple[MediaDue, ...] = ()
        zone = self.panel.zones.get(event.zone.id) if event.zone is not None else None
        if zone is not None and zone.cameras and event.kind in VIDEO_KINDS:
            event, due = self.video.plan(event, zone.cameras)
        if zone is not None and zone.cameras and event.kind is Kind.ALARM and self.motion:
            event = self.motion.evidence(event, zone.cameras)
        await self._put(event, due)

    async def raise_event(self, condition: Condition, restore: bool, text: str) -> Event:
        """An event of the box itself (no zone): path trouble, manual test, ..."""
        event = box_event(condition, restore, text, ms(self.clock.time()))
        await self._put(event)
        return event

    async def _camera_event(self, event: Event, camera: str) -> None:
        """A motion or camera-tamper event: its clip and stills first (motion-only ones
        sit in the lowest priority class with their event), then the outbox."""
        due: tuple[MediaDue, ...] = ()
        if event.kind in (Kind.TAMPER, Kind.MOTION):
            event, due = self.video.plan(event, (camera,))
        await self._put(event, due)

    async def _put(self, event: Event, due: tuple[MediaDue, ...] = ()) -> None:
        """Commit; an event the disk refuses is held in memory and sent all the same."""
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

    async def _route_trouble(self, number: int, lost: bool, text: str) -> None:
        """A route lost or back (CID 350); with several routes, its number is the zone's."""
        if not self.cfg.routes:
            await self.raise_event(Condition.COMM_TROUBLE, not lost, text)
            return
        name = "primary" if number == 1 else self.cfg.routes[number - 2].name
        event = box_event(Condition.COMM_TROUBLE, not lost, text, ms(self.clock.time()))
        zone = ZoneRef(f"route-{number}", f"route {number} ({name})", ZoneType.TECHNICAL, number)
        await self._put(replace(event, zone=zone))

    async def _camera_trouble(self, lost: bool, text: str) -> None:
        await self.raise_event(Condition.SYSTEM_TROUBLE, not lost, text)

    def _outbox_fact(self, fact: OutboxFact) -> None:
        self.forwarder.observe(fact)  # new events or media: the sender looks at once
        self.routes.observe(fact)  # and each backup route's

    # -- wiring helpers ----------------------------------------------------

    def _motion_stage(self) -> MotionStage:
        cameras = {
            c.id: (motion_params(self.cfg, c.id), (c.width, c.height)) for c in self.cfg.cameras
        }
        return MotionStage(
            cameras,
            tamper_params(self.cfg),
            stage_settings(self.cfg),
            self.clock,
            self._camera_event,
            self._camera_armed,
        )

    def _camera_armed(self, camera: str) -> bool:
        """Whether a partition a camera watches is armed (any, if no zone names the camera)."""
        return self.panel.armed({z.partition for z in self.cfg.zones if camera in z.cameras})

    def _stages(self) -> Stages:
        return Stages(
            cfg=self.cfg,
            clock=self.clock,
            boot_id=self.boot_id,
            started_s=self.started_s,
            state_dir=self.state_dir,
            inputs=self.inputs,
            panel=self.panel,
            outputs=self.outputs,
            link=self.link,
            forwarder=self.forwarder,
            supervisor=self.supervisor,
            commands=self.commands,
            outbox=self.outbox,
            journal=self.journal,
            video=self.video,
            motion=self.motion,
            provisioning=lambda: self.provisioning,
            tasks=self.tasks,
            routes=self.routes.status,
        )

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
            status=self.status.json,
            inputs=self.status.inputs_json,
            simulate=self.inputs.simulate if simulated else None,
            pulses=self.inputs.pulses if simulated else None,
            walk=self.walk_view,
            journal=self.journal,
            send_test=self._test_event,
            cameras=Cameras(self.video, self.cfg, self._motion_status)
            if self.video.camera_ids()
            else None,
            config=ConfigFile(
                self.cfg, self.config_path, self.state_dir / "web", self.request_restart
            ),
            holds=Holds(self.video, lambda: ms(self.clock.time())) if self.cfg.cameras else None,
            monotonic=self.clock.monotonic,
        )
        return WebServer(settings, hooks)

    def _motion_status(self) -> dict[str, Any]:
        return self.motion.status() if self.motion is not None else {}

    async def _walk_report(self, text: str) -> None:
        """A walk test's summary: to the station as a manual test (601), and to the page."""
        event = await self.raise_event(Condition.MANUAL_TEST, False, text)
        self.walk_view.ended(text, event.id)

    async def _test_event(self, text: str) -> str:
        return (await self.raise_event(Condition.MANUAL_TEST, False, text)).id

    def _probation_problems(self) -> dict[str, str]:
        """What makes a config applied from the page roll back: any health problem (a link
        that does not come up is the likeliest config mistake) but what is still starting
        (the probation waits for it: ``status.settling``) and a box its station has not
        provisioned yet (no config cures that)."""
        problems: dict[str, str] = {}
        for found in self.status.faults()[1]:
            if found.level == "starting" or found.key == UNPROVISIONED:
                continue
            name = found.check or "health"
            problems[name] = f"{problems[name]}; {found.text}" if name in problems else found.text
        return problems

    def _spawn(self, tg: asyncio.TaskGroup, name: str, coro: Any) -> None:
        self.tasks[name] = tg.create_task(coro, name=name)

    async def _cancel(self, *prefixes: str) -> None:
        chosen = [t for n, t in self.tasks.items() if n.startswith(prefixes)]
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)

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

    def _offline(self, route: int) -> Message:
        return self._state_message("offline", route)

    def _state_message(self, state: str, route: int = 1) -> Message:
        """Birth and will: with several routes, each names its route, so that the station
        takes the box for offline only when every route says so."""
        profile = profile_of(self.cfg)  # announced, so the station supervises to it
        device = self.cfg.device
        payload = protocol.encode_state(
            state,
            boot_id=self.boot_id,
            version=__version__,
            at_ms=ms(self.clock.time()),
            supervision={"heartbeat_s": profile.heartbeat_s, "lost_s": profile.path_loss_s},
            site=protocol.BoxSite(  # where the box is: a new box appears with its location
                device.site, device.address, device.latitude, device.longitude
            )
            if state == "online"
            else None,
            route=route if self.cfg.routes else None,
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
