"""The box's transmission paths, wired: the primary (``[uplink]``) and its backups
(``[[routes]]``), each supervised, and the panel's path-fault output.

Route 1 is the primary: the Box's own link, sender and supervisor. Each backup
MQTT route has its own link (bound to its interface), sender and supervision
(heartbeat, path loss, refused subscriptions); each DC-09 route its own sender
and supervision (:mod:`edge.uplink.dc09route`). Events go to the primary first;
a backup takes an event the routes before it have not had acknowledged within
its class's failover time, or at once while the primary is down (the policy
lives in :mod:`edge.outbox.routes`). Path fault: only when every route is lost.
A route's trouble (CID 350) carries the route's number as its zone number when
the box has more than one route.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import protocol
from edge.clock import Clock
from edge.config import EdgeConfig
from edge.config.schema import Dc09RouteConfig, MqttRouteConfig
from edge.dc09.link import Dc09Link, Dc09Settings
from edge.dc09.messages import Format
from edge.errors import ConfigError
from edge.model import EventsQueued, OutboxFact
from edge.mqttio import Message, MqttLink
from edge.outbox.aio import AsyncOutbox
from edge.outbox.routes import Failover
from edge.outbox.routeview import Policy, RouteView
from edge.uplink.dc09route import Dc09Route
from edge.uplink.forwarder import Forwarder
from edge.uplink.inbox import dispatch
from edge.uplink.supervision import Profile, Supervisor
from edge.wiring import broker_link, forward_settings

log = logging.getLogger(__name__)
RouteTrouble = Callable[[int, bool, str], Awaitable[object]]  # route number, lost, text
SetOutput = Callable[[str, bool], None]
Spawn = Callable[[str, Any], None]
StateMessage = Callable[[str, int], Message]  # state, route number


def policy_of(cfg: EdgeConfig) -> Policy:
    d = cfg.delivery
    s = d.failover_s

    def ms(value: float | None) -> int:
        return round((value if value is not None else s) * 1000)

    failover = Failover(
        alarm_ms=ms(s),
        trouble_ms=ms(d.failover_trouble_s),
        routine_ms=ms(d.failover_routine_s),
        motion_ms=ms(d.failover_motion_s),
    )
    routes = 1 + len(cfg.routes)
    return Policy(failover, routes if d.done_when == "every" and routes > 1 else None)


class PathFault:
    """The panel's path-fault output: on while every route is lost (with one route, while
    it is); the delivery-failure output as the primary's supervision says."""

    def __init__(self, routes: int, set_output: SetOutput) -> None:
        self.lost: set[int] = set()
        self.routes = routes
        self.set_output = set_output

    def report(self, route: int, lost: bool) -> None:
        before = len(self.lost) >= self.routes
        (self.lost.add if lost else self.lost.discard)(route)
        after = len(self.lost) >= self.routes
        if after != before:
            self.set_output("path_fault", after)

    def output(self, route: int, name: str, on: bool) -> None:
        """What a route's supervisor asks of the outputs."""
        if name == "path_fault":
            self.report(route, on)
        elif route == 1:
            self.set_output(name, on)


@dataclass
class MqttBackup:
    number: int
    name: str
    link: MqttLink
    forwarder: Forwarder
    supervisor: Supervisor


class Routes:
    """Every backup route of a box. Construction does no I/O."""

    def __init__(
        self,
        cfg: EdgeConfig,
        clock: Clock,
        outbox: AsyncOutbox,
        topics: protocol.Topics,
        primary: MqttLink,
        route_trouble: RouteTrouble,
        set_output: SetOutput,
        depth: Callable[[], int],
        state_message: StateMessage,
    ) -> None:
        self.cfg = cfg
        self.policy = policy_of(cfg)
        self.primary = primary
        self.fault = PathFault(1 + len(cfg.routes), set_output)
        self.mqtt: list[MqttBackup] = []
        self.dc09: list[Dc09Route] = []  # built at start: their keys are read then
        self._later: list[tuple[int, Dc09RouteConfig, RouteView, Callable[[bool, str], Any]]] = []
        self._clock = clock
        for number, route in enumerate(cfg.routes, start=2):
            view = RouteView(outbox, number, self.policy, self.primary_down)
            trouble = self._trouble(route_trouble, number)
            if isinstance(route, MqttRouteConfig):
                self.mqtt.append(
                    self._mqtt(number, route, view, clock, topics, trouble, depth, state_message)
                )
            else:
                self._later.append((number, route, view, trouble))

    @property
    def many(self) -> bool:
        return bool(self.cfg.routes)

    def primary_down(self) -> bool:
        return not self.primary.status.connected

    def primary_view(self, outbox: AsyncOutbox) -> RouteView:
        return RouteView(outbox, 1, self.policy, self.primary_down)

    async def start(self, spawn: Spawn) -> None:
        for m in self.mqtt:
            acks = {m.forwarder.topics.ack: m.forwarder.on_ack}
            await m.link.start()
            spawn(f"route{m.number}.inbox", dispatch(m.link, acks))
            spawn(f"route{m.number}.sender", m.forwarder.run_sender())
            spawn(f"route{m.number}.heartbeat", m.supervisor.run_heartbeat())
            spawn(f"route{m.number}.supervision", m.supervisor.run_watch())
        self.dc09 = [self._dc09(n, r, v, self._clock, t) for n, r, v, t in self._later]
        for d in self.dc09:
            spawn(f"route{d.number}.dc09", d.run())

    async def stop(self, offline: Callable[[int], Message]) -> None:
        for m in self.mqtt:
            await m.link.stop(last_words=offline(m.number), timeout_s=2.0)
        for m in self.mqtt:
            try:
                await asyncio.wait_for(m.forwarder.settle(), 2.0)
            except TimeoutError:
                log.warning("route %d did not settle in 2 s", m.number)

    def observe(self, fact: OutboxFact) -> None:
        """An outbox observer: each backup's sender looks at once (and works out when the
        new event is due on its route)."""
        for m in self.mqtt:
            m.forwarder.observe(fact)
        if isinstance(fact, EventsQueued):
            for d in self.dc09:
                d.kick()

    def status(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in self.mqtt:
            out.append(
                {
                    "number": m.number,
                    "name": m.name,
                    "kind": "mqtt",
                    "connected": m.link.status.connected,
                    "lost": m.supervisor.watch.path_lost,
                    "path_loss_s": m.supervisor.profile.path_loss_s,
                    "published": m.forwarder.stats.published,
                    "acknowledged": m.forwarder.stats.acked,
                }
            )
        for d in self.dc09:
            out.append(
                {
                    "number": d.number,
                    "name": d.name,
                    "kind": "dc09",
                    "connected": d.status.connected,
                    "lost": d.status.lost,
                    "path_loss_s": round(d.path_loss_s),
                    "published": d.status.sent,
                    "acknowledged": d.status.acked,
                }
            )
        return sorted(out, key=lambda r: int(r["number"]))

    # -- building ------------------------------------------------------------------

    def _trouble(self, route_trouble: RouteTrouble, number: int) -> Callable[[bool, str], Any]:
        async def trouble(lost: bool, text: str) -> None:
            await route_trouble(number, lost, text)

        return trouble

    def _mqtt(
        self,
        number: int,
        route: MqttRouteConfig,
        view: RouteView,
        clock: Clock,
        topics: protocol.Topics,
        trouble: Callable[[bool, str], Any],
        depth: Callable[[], int],
        state_message: StateMessage,
    ) -> MqttBackup:
        client_id = route.client_id or self.cfg.uplink.client_id or self.cfg.device.id
        settings = broker_link(
            self.cfg,
            route,
            client_id,
            ((topics.ack, 1),),
            state_message("offline", number),
            route.bind_interface,
            route.bind_address,
        )
        link = MqttLink(settings, birth=lambda: state_message("online", number), clock=clock)
        forwarder = Forwarder(link, view, topics, forward_settings(self.cfg), clock)
        profile = Profile(route.heartbeat_s, route.path_loss_s, periodic_test_s=0)
        supervisor = Supervisor(
            link,
            view,
            topics,
            profile,
            clock,
            depth,
            trouble,
            lambda name, on: self.fault.output(number, name, on),
            label=f"route {number} ({route.name})",
        )
        return MqttBackup(number, route.name, link, forwarder, supervisor)

    def _dc09(
        self,
        number: int,
        route: Dc09RouteConfig,
        view: RouteView,
        clock: Clock,
        trouble: Callable[[bool, str], Any],
    ) -> Dc09Route:
        host, _, port = route.receiver.rpartition(":")
        account = route.account or self.cfg.station.account
        settings = Dc09Settings(
            host=host,
            port=int(port),
            account=account,
            fmt=Format.ADM_CID if route.format == "adm-cid" else Format.SIA_DCS,
            line=route.line_prefix,
            receiver=route.receiver_number,
            key=_key(route.key_file) if route.key_file else None,
            ack_timeout_s=route.ack_timeout_s,
            transport=route.transport,
            bind_interface=route.bind_interface,
            bind_address=route.bind_address,
        )
        return Dc09Route(
            number,
            route.name,
            Dc09Link(settings, clock),
            view,
            clock,
            account=account,
            video_base=route.video_base,
            null_s=route.null_s,
            path_loss_s=route.path_loss_s,
            trouble=trouble,
            path_state=lambda lost: self.fault.report(number, lost),
        )


def _key(path: Path) -> bytes:
    """The AES key of a DC-09 route: hex on one line (16, 24 or 32 bytes)."""
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(path), [f"{path}: cannot read a hex AES key: {exc}"]) from exc
    if len(key) not in (16, 24, 32):
        raise ConfigError(str(path), [f"{path}: an AES key is 16, 24 or 32 bytes, not {len(key)}"])
    return key
