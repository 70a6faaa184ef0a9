"""Supervision: the heartbeat the station watches, and the box watching its own path.

EN 50136-1 style profiles: the box sends a heartbeat every ``heartbeat_s``;
when it has had no working path to the broker for ``path_loss_s`` it raises
a communication trouble (kept in the outbox until the path is back), drives
the "path fault" output to the panel, and sends the restore on recovery. An
alarm the station has not acknowledged within ``max_ack_s`` drives the
"delivery failure" output until every alarm is acknowledged.

A subscription the broker refuses (its ACL does not let the box read ``ack``
or ``cmd``) is a communication trouble too, raised once per topic while the
link reports it refused and restored when a later SUBACK grants it: with
``ack`` refused the station's acknowledgements never arrive and nothing leaves
the outbox; with ``cmd`` refused no command does. The link stays up, so the
trouble reaches the station at once (it stays in the outbox, unacknowledged,
when ``ack`` is the refused topic). It does not drive the path-fault output:
events still reach the station, and an alarm left unacknowledged drives the
delivery-failure output as usual.

The decisions are pure functions, :func:`assess` and :func:`refusals`;
:class:`Supervisor` runs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace

from edge import protocol
from edge.clock import Clock, ms
from edge.errors import StorageError, UplinkError
from edge.model import EventStore
from edge.mqttio import Message, MqttLink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    heartbeat_s: int = 60
    path_loss_s: int = 180
    max_ack_s: int = 30
    periodic_test_s: int = 86_400  # 0: no periodic test report


PROFILES = {"standard": Profile(60, 180), "strict": Profile(20, 90)}


@dataclass(frozen=True)
class Watch:
    """What supervision knows: since when the path is down, what it already reported."""

    down_since_s: float | None = None
    path_lost: bool = False
    delivery_failed: bool = False
    refused: frozenset[str] = frozenset()  # refused subscriptions raised as a trouble


@dataclass(frozen=True)
class Change:
    path_lost: bool | None = None  # True: raise the trouble; False: send its restore
    delivery_failed: bool | None = None  # new state of the delivery-failure output
    refused: tuple[str, ...] = ()  # subscriptions newly refused: raise their trouble
    granted: tuple[str, ...] = ()  # subscriptions granted again: send their restore


def assess(
    watch: Watch, now_s: float, connected: bool, oldest_alarm_age_s: float | None, profile: Profile
) -> tuple[Watch, Change]:
    """Pure: the new watch state and what changed, given the link and the oldest alarm."""
    down_since: float | None = None
    if not connected:  # a clock may read 0.0: test for None, not truth
        down_since = now_s if watch.down_since_s is None else watch.down_since_s
    lost = down_since is not None and now_s - down_since >= profile.path_loss_s
    failed = oldest_alarm_age_s is not None and oldest_alarm_age_s >= profile.max_ack_s
    change = Change(
        path_lost=lost if lost != watch.path_lost else None,
        delivery_failed=failed if failed != watch.delivery_failed else None,
    )
    return replace(watch, down_since_s=down_since, path_lost=lost, delivery_failed=failed), change


def refusals(raised: frozenset[str], refused: Collection[str]) -> Change:
    """Pure: the refused subscriptions not raised yet, and the raised ones granted since."""
    now = frozenset(refused)
    return Change(refused=tuple(sorted(now - raised)), granted=tuple(sorted(raised - now)))


# Raise (True) or restore (False) the communication trouble, with its text: for a
# lost path and for a refused subscription alike (the box wires Contact ID 350).
RaisePathTrouble = Callable[[bool, str], Awaitable[None]]
PeriodicTest = Callable[[str], Awaitable[object]]
SetOutput = Callable[[str, bool], None]


class Supervisor:
    def __init__(
        self,
        link: MqttLink,
        store: EventStore,
        topics: protocol.Topics,
        profile: Profile,
        clock: Clock,
        depth: Callable[[], int],
        path_trouble: RaisePathTrouble,
        set_output: SetOutput,
        periodic_test: PeriodicTest | None = None,
        label: str = "",
    ) -> None:
        self.label = label  # a backup route's name in its troubles: "route 2 (4g)"
        self.link = link
        self.store = store
        self.topics = topics
        self.profile = profile
        self.clock = clock
        self.depth = depth
        self.path_trouble = path_trouble
        self.set_output = set_output
        self.watch = Watch()
        self.heartbeats = 0
        self.periodic_test = periodic_test
        self.next_test_s = clock.monotonic() + profile.periodic_test_s
        self.tests_sent = 0

    async def run_heartbeat(self) -> None:
        """Publish the supervision heartbeat every ``heartbeat_s`` while connected."""
        while True:
            await self.link.wait_connected()
            self.heartbeats += 1
            payload = protocol.encode_heartbeat(
                seq=self.heartbeats,
                at_ms=ms(self.clock.time()),
                interval_s=self.profile.heartbeat_s,
                outbox_depth=self.depth(),
            )
            try:
                await self.link.publish(
                    Message(self.topics.heartbeat, payload), timeout_s=self.profile.heartbeat_s
                )
            except UplinkError as exc:
                log.warning("heartbeat %d not sent: %s", self.heartbeats, exc)
            await asyncio.sleep(self.profile.heartbeat_s)

    async def run_periodic_test(self, period_s: float = 1.0) -> None:
        """Send the periodic test report (602) every ``periodic_test_s``, link up or not:
        it waits in the outbox like any event, so a silent path shows at the station."""
        while True:
            await self.periodic_check()
            await asyncio.sleep(period_s)

    async def periodic_check(self) -> bool:
        """Raise the periodic test if it is due (monotonic time); True if raised."""
        interval = self.profile.periodic_test_s
        if not interval or self.periodic_test is None:
            return False
        now = self.clock.monotonic()
        if now < self.next_test_s:
            return False
        # the next one is a whole interval after this one was due: no drift, no burst
        # of catch-up reports after a long stall
        missed = int((now - self.next_test_s) // interval)
        self.next_test_s += (missed + 1) * interval
        self.tests_sent += 1
        await self.periodic_test(f"periodic test report #{self.tests_sent}")
        return True

    async def run_watch(self, period_s: float = 1.0) -> None:
        while True:
            try:
                await self.check()
            except StorageError:  # like the sender: an unreadable outbox must not stop the box
                log.exception("supervision could not read the outbox; retrying in %s s", period_s)
            await asyncio.sleep(period_s)

    async def check(self) -> Change:
        now_ms = ms(self.clock.time())
        oldest = await self.store.oldest_alarm_ms()
        age = None if oldest is None else (now_ms - oldest) / 1000
        self.watch, change = assess(
            self.watch, self.clock.monotonic(), self.link.status.connected, age, self.profile
        )
        if change.path_lost is not None:
            self.set_output("path_fault", change.path_lost)
            text = (
                f"no path to the station for {self.profile.path_loss_s} s"
                if change.path_lost
                else "path to the station restored"
            )
            text = f"{self.label}: {text}" if self.label else text
            log.log(logging.ERROR if change.path_lost else logging.INFO, text)
            await self.path_trouble(change.path_lost, text)
        if change.delivery_failed is not None and not self.label:  # the primary's to say
            self.set_output("delivery_failure", change.delivery_failed)
            log.log(
                logging.ERROR if change.delivery_failed else logging.INFO,
                "alarm delivery %s",
                f"not acknowledged within {self.profile.max_ack_s} s"
                if change.delivery_failed
                else "acknowledged again",
            )
        subscriptions = await self.check_subscriptions()
        return replace(change, refused=subscriptions.refused, granted=subscriptions.granted)

    async def check_subscriptions(self) -> Change:
        """A communication trouble per refused subscription (the link logged why), and
        its restore when the broker grants it; the watch notes each once it is raised."""
        reasons = dict(self.link.status.refused_subscriptions)
        change = refusals(self.watch.refused, reasons)
        for topic in change.refused:
            await self.path_trouble(True, self._refused_text(topic, reasons[topic]))
            self.watch = replace(self.watch, refused=self.watch.refused | {topic})
        for topic in change.granted:
            await self.path_trouble(False, f"subscription to {topic} granted again")
            self.watch = replace(self.watch, refused=self.watch.refused - {topic})
        return change

    def _refused_text(self, topic: str, reason: str) -> str:
        text = f"subscription to {topic} refused by the broker: {reason}"
        if topic == self.topics.ack:
            return f"{text}; the station's acknowledgements cannot reach the box"
        if topic == self.topics.cmd:
            return f"{text}; the station's commands cannot reach the box"
        return text
