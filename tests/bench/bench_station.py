"""Station receiver throughput: events stored and acknowledged per second, media MB/s.

Everything real: mosquitto on a free loopback port, ``edge station run`` in
its own process (SQLite; PostgreSQL from Debian with fsync on; two
instances on one shared subscription), boxes played by one paho client that
publishes pre-encoded events (QoS 1) as fast as the broker takes them and
counts the ids in the acks. The floor is plain paho QoS 1 publishing of the
same payloads to the same broker (nobody storing anything).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_uplink import _broker, _raw_publish_rate

from edge.protocol import Chunk, chunk_properties, decode_ack, encode_event
from tests.postgres import start_postgres
from tests.unit.test_station_store import event_message

Row = tuple[str, float, float, str, str]
BOXES = 20


@contextlib.contextmanager
def _receivers(port: int, db: str, media: Path, n: int) -> Iterator[None]:
    procs = []
    for i in range(n):
        client_id = f"bench-station-{i}-{time.monotonic_ns()}"
        argv = [sys.executable, "-m", "edge", "station", "run", "--broker",
                f"mqtt://127.0.0.1:{port}", "--db", db, "--media", str(media),
                "--client-id", client_id, "--log-level", "WARNING"]  # fmt: skip
        if n > 1:
            argv += ["--share-group", "bench"]
        procs.append(subprocess.Popen(argv, stderr=subprocess.DEVNULL))
    try:
        time.sleep(2.0)  # connected and subscribed before the boxes send
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)


class Boxes:
    """One paho client speaking for ``BOXES`` boxes; counts what the acks confirm."""

    def __init__(self, port: int) -> None:
        self.ids: set[str] = set()
        self.complete: set[str] = set()
        self.changed = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-boxes", protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("edge/+/ack", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        ack = decode_ack(message.payload)
        with self.changed:
            self.ids.update(ack.ids)
            self.complete.update(m.media_id for m in ack.media if m.complete)
            self.changed.notify_all()

    def wait(self, events: int, media: int, timeout_s: float = 300) -> None:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: len(self.ids) >= events and len(self.complete) >= media, timeout_s
            )
        if not ok:
            raise RuntimeError(f"acked {len(self.ids)}/{events} events, {len(self.complete)}")

    def publish(self, topic: str, payload: bytes, props: Properties | None = None) -> None:
        self.client.publish(topic, payload, qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _events(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        device = f"gw-{i % BOXES:02d}"
        message = event_message(f"{device}-{i}", device, i // BOXES + 1)
        out.append((f"edge/{device}/events", encode_event(message)))
    return out


def _events_per_s(port: int, db: str, media: Path, instances: int, n: int) -> float:
    messages = _events(n)
    with _receivers(port, db, media, instances):
        boxes = Boxes(port)
        start = time.perf_counter()
        for topic, payload in messages:
            boxes.publish(topic, payload)
        boxes.wait(n, 0)
        elapsed = time.perf_counter() - start
        boxes.close()
    return n / elapsed


def _media_mb_s(port: int, db: str, media: Path, files: int, size: int) -> float:
    chunk = 256 * 1024
    with _receivers(port, db, media, 1):
        boxes = Boxes(port)
        start = time.perf_counter()
        for f in range(files):
            data = os.urandom(size)
            digest, count = hashlib.sha256(data).hexdigest(), -(-size // chunk)
            for i in range(count):
                props = Properties(PacketTypes.PUBLISH)
                head = Chunk(i, count, size, digest, "video/mp4", "clip")
                props.UserProperty = list(chunk_properties(head))
                part = data[i * chunk : (i + 1) * chunk]
                boxes.publish(f"edge/gw-00/media/ev-{f}/clip-{f}", part, props)
        boxes.wait(0, files)
        elapsed = time.perf_counter() - start
        boxes.close()
    return files * size / 1e6 / elapsed


def throughput(n: int = 5_000) -> list[Row]:
    rows: list[Row] = []
    server = start_postgres(fsync=True)
    try:
        with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as port:
            folder = Path(tmp)
            floor = _raw_publish_rate(port, n, len(_events(1)[0][1]))
            floor_name = "raw paho QoS1 publishes, same payloads"
            for label, db, instances in (
                ("SQLite, 1 receiver", str(folder / "s.sqlite"), 1),
                ("PostgreSQL, 1 receiver", server.fresh("bench1"), 1),
                ("PostgreSQL, 2 shared", server.fresh("bench2"), 2),
            ):
                rate = _events_per_s(port, db, folder / f"media-{instances}", instances, n)
                rows.append((f"events {label}", rate, floor, "ev/s", floor_name))
            files, size = 8, 4 * 1024 * 1024
            chunk_floor = max(_raw_publish_rate(port, 64, 256 * 1024) for _ in range(3))
            floor_mb = chunk_floor * 256 * 1024 / 1e6
            for label, db in (
                ("SQLite", str(folder / "m.sqlite")),
                ("PostgreSQL", server.fresh("benchm")),
            ):
                rate = _media_mb_s(port, db, folder / f"media-{label}", files, size)
                rows.append((f"media {label} (8x4 MiB)", rate, floor_mb, "MB/s",
                             "raw paho QoS1 256 KiB publishes"))  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(server.data, ignore_errors=True)
    return rows


CASES = [("station receiver", throughput)]
