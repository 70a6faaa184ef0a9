"""A broker that refuses one of the box's subscriptions (issue 14): the box must say so.

Refused its ``ack`` subscription, the box could publish every event and never
delete one from its outbox; refused ``cmd``, it would never hear a command. The
box logs the refusal at ERROR naming the topic, shows it in its link status
(``last_error`` on the status page), and raises a communication trouble
(Contact ID 350) once per refusal, with its restore when a later SUBACK grants
the subscription.

What mosquitto 2.0.11 answers to a subscription its rules do not allow:

- with ``acl_file`` it never refuses: SUBACK 0x01 Granted QoS 1, even for a
  topic the file grants only ``topic write``, or names with ``topic deny``. It
  filters at delivery time, so the subscriber just never receives anything
  (test_broker_security.py pins this for the shipped ACL). No acl_file
  option changes that.
- with the dynamic security plugin (shipped with mosquitto 2.0), a client
  whose roles do not allow the subscription gets SUBACK 0x87 Not authorized
  for that filter, the others in the same SUBSCRIBE are granted, and the
  connection stays up. These tests run mosquitto with that plugin.
- (``max_qos 0`` on the listener grants every subscription at QoS 0: a
  success code lower than asked, which the box only warns about.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import codes, protocol
from edge.codes import Condition
from edge.config import EdgeConfig, parse
from edge.station.receiver import Receiver, StationSettings
from tests.conftest import Broker, free_port, wait_for
from tests.integration.test_end_to_end import demo_text, until
from tests.integration.test_uplink import BoxRun, outbox_bodies, rows

pytestmark = pytest.mark.broker

DEVICE = "demo-box-01"
TOPICS = protocol.Topics("edge", DEVICE)
# Debian's mosquitto package ships the plugin beside libmosquitto (any architecture).
DYNSEC = next(iter(sorted(Path("/usr/lib").glob("**/mosquitto_dynamic_security.so"))), None)
BOX_USER, BOX_PASSWORD = "box", "box-secret"
STATION_USER, STATION_PASSWORD = "station", "station-secret"


def _client(username: str, password: str, role: str) -> dict[str, Any]:
    """A dynamic security client entry: PBKDF2-SHA512 as mosquitto_ctrl writes it."""
    salt, iterations = os.urandom(12), 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
        "roles": [{"rolename": role}],
    }


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def dynsec_rules(box_reads: tuple[str, ...]) -> dict[str, Any]:
    """The box may publish under its own prefix and subscribe only to ``box_reads``;
    the station may do anything. Anything not granted is denied."""
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [
            _client(BOX_USER, BOX_PASSWORD, "box"),
            _client(STATION_USER, STATION_PASSWORD, "station"),
        ],
        "groups": [],
        "roles": [
            {
                "rolename": "box",
                "acls": [
                    _acl("publishClientSend", f"edge/{DEVICE}/#"),
                    *(_acl("subscribeLiteral", topic) for topic in box_reads),
                ],
            },
            {
                "rolename": "station",
                "acls": [_acl("publishClientSend", "#"), _acl("subscribePattern", "#")],
            },
        ],
    }


def start_dynsec_broker(tmp: Path, box_reads: tuple[str, ...], port: int | None = None) -> Broker:
    """mosquitto with the dynamic security plugin and ``dynsec_rules(box_reads)``."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists() or DYNSEC is None:
        pytest.fail("mosquitto and its dynamic security plugin are not installed")
    port = port or free_port()
    rules = tmp / f"dynsec-{port}.json"
    rules.write_text(json.dumps(dynsec_rules(box_reads)))
    conf = tmp / f"mosquitto-dynsec-{port}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n"
        f"plugin {DYNSEC}\nplugin_opt_config_file {rules}\n"
        # the plugin reads its file after mosquitto dropped root: stay who we are
        f"user {getpass.getuser()}\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    log = tmp / f"mosquitto-dynsec-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    broker = Broker("127.0.0.1", port, proc, log)

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_for(listening, 10, "mosquitto (dynamic security) to listen")
    return broker


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[list[Broker]]:
    """Every broker a test starts, stopped at the end."""
    started: list[Broker] = []
    yield started
    for b in started:
        b.stop()


def box_config(broker: Broker) -> EdgeConfig:
    text = demo_text(broker.port, free_port(), ack_timeout_s=2)
    head = "[uplink]\n"
    assert head in text
    credentials = f'username = "{BOX_USER}"\npassword = "{BOX_PASSWORD}"\nreconnect_max_s = 2\n'
    return parse(text.replace(head, head + credentials), "test.toml")


class Station:
    """The reference station receiver, logged in as the station."""

    def __init__(self, broker: Broker, db: Path) -> None:
        settings = StationSettings(
            broker.host, broker.port, db, username=STATION_USER, password=STATION_PASSWORD
        )
        self.receiver = Receiver(settings)
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receiver:
        self.task = asyncio.create_task(self.receiver.run(self.ready.set), name="station")
        await asyncio.wait_for(self.ready.wait(), 10)
        return self.receiver

    async def __aexit__(self, *_exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def wire(*, restore: bool) -> tuple[str, str]:
    """Contact ID 1350 / 3350 (communication trouble) and their SIA codes."""
    c = codes.codes(Condition.COMM_TROUBLE, restore)
    return c.cid, c.sia


def troubles(station: Receiver, kind: str, topic: str) -> list[dict[str, Any]]:
    """The station's events of ``kind`` whose text names ``topic``."""
    found = []
    for row in rows(station, kind=kind):
        body = json.loads(row["body"])
        if topic in body.get("text", ""):
            found.append(row | {"text": body["text"]})
    return found


def errors_naming(caplog: pytest.LogCaptureFixture, topic: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and topic in r.getMessage()
    ]


async def test_a_refused_ack_subscription_is_a_trouble_until_a_later_suback_grants_it(
    brokers: list[Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broker = start_dynsec_broker(tmp_path, box_reads=(TOPICS.cmd,))
    brokers.append(broker)
    state = tmp_path / "box"
    async with (
        Station(broker, tmp_path / "station.sqlite") as station,
        BoxRun(box_config(broker), state) as box,
    ):
        await until(
            lambda: TOPICS.ack in box.link.status.refused_subscriptions, 5, "the refused SUBACK"
        )
        assert box.link.status.refused_subscriptions == {TOPICS.ack: "Not authorized (0x87)"}
        assert box.link.status.connected  # the link itself is up: publishing still works
        # the status page's uplink section says why nothing is acknowledged
        last_error = box.status.json()["uplink"]["last_error"]
        assert TOPICS.ack in last_error and "Not authorized" in last_error
        [logged] = errors_naming(caplog, TOPICS.ack)
        assert "Not authorized" in logged

        # The trouble reaches the station (publishing is allowed) ...
        await until(lambda: troubles(station, "trouble", TOPICS.ack), 5, "the trouble")
        [trouble] = troubles(station, "trouble", TOPICS.ack)
        assert (trouble["cid"], trouble["sia"]) == wire(restore=False)
        assert "refused" in trouble["text"] and "Not authorized" in trouble["text"]
        assert box.supervisor.watch.refused == frozenset({TOPICS.ack})
        # ... but its ack cannot come back: it stays in the outbox and is sent again.
        await until(lambda: trouble_resent(station, trouble["id"]), 8, "the trouble sent again")
        assert trouble["id"] in {e["id"] for e in outbox_bodies(state)}
        assert len(troubles(station, "trouble", TOPICS.ack)) == 1  # once per refusal

        # The broker is set right and restarted: the next SUBACK grants the subscription.
        broker.stop()
        await until(lambda: not box.link.status.connected, 5, "the box to see the loss")
        fixed = start_dynsec_broker(tmp_path, (TOPICS.cmd, TOPICS.ack), port=broker.port)
        brokers.append(fixed)
        await until(lambda: box.link.status.connected, 10, "the box to reconnect")
        await until(lambda: not box.link.status.refused_subscriptions, 5, "the granted SUBACK")
        await until(lambda: troubles(station, "trouble_restore", TOPICS.ack), 10, "the restore")
        [restore] = troubles(station, "trouble_restore", TOPICS.ack)
        assert (restore["cid"], restore["sia"]) == wire(restore=True)
        assert box.supervisor.watch.refused == frozenset()
        # and now the station's acks arrive: the outbox drains, the trouble included
        await until(lambda: box.outbox.depth == 0, 10, "the outbox to drain")
        assert box.status.json()["uplink"]["last_error"] is None
        assert len(troubles(station, "trouble", TOPICS.ack)) == 1


def trouble_resent(station: Receiver, event_id: str) -> bool:
    found = rows(station, id=event_id)
    return bool(found) and found[0]["deliveries"] > 1


async def test_a_refused_cmd_subscription_is_a_trouble_the_station_acknowledges(
    brokers: list[Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broker = start_dynsec_broker(tmp_path, box_reads=(TOPICS.ack,))
    brokers.append(broker)
    async with (
        Station(broker, tmp_path / "station.sqlite") as station,
        BoxRun(box_config(broker), tmp_path / "box") as box,
    ):
        await until(lambda: troubles(station, "trouble", TOPICS.cmd), 5, "the trouble")
        [trouble] = troubles(station, "trouble", TOPICS.cmd)
        assert "commands" in trouble["text"]
        assert box.link.status.refused_subscriptions == {TOPICS.cmd: "Not authorized (0x87)"}
        assert errors_naming(caplog, TOPICS.cmd)
        # acks do arrive: the trouble leaves the outbox like any event
        await until(lambda: box.outbox.depth == 0, 10, "the trouble acknowledged")
        assert TOPICS.ack not in box.link.status.refused_subscriptions
