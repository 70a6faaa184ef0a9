"""``edge demo``: a broker, the station receiver and the box on simulated hardware.

Each runs as its own process, as in the field. Their logs are shown with a
prefix. The station's workstation (``edge station page``) gets the demo site
(``demo-site.toml`` beside the config: its instructions and call list), an
operator and a supervisor, and its own MQTT link so that operators can ask the
box for a fresh still or clip. After start-up the demo trips one 24-hour zone so
that an alarm is seen arriving in the workstation's queue; then it waits for
Ctrl-C and stops the box, the station and the broker, in that order.

With ``--backup`` a second broker and a second receiver (on the same station
store, as a centre's second ingress) are started and the box runs with a backup
route to them (``[[routes]]``, written beside the demo's state): freezing the
primary broker (the banner gives the command) shows the backup carry the alarms
after ``[delivery] failover_s``, and the status page's routes and category.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from edge.codes import TWENTY_FOUR_HOUR
from edge.config import EdgeConfig, load
from edge.errors import EdgeError
from edge.web import auth

DEMO_PASSWORD = "demo-technician"  # noqa: S105 - the demo's, printed on its banner
DEMO_OPERATOR, DEMO_OPERATOR_PASSWORD = "operator", "demo-operator"  # the station page's
DEMO_SUPERVISOR, DEMO_SUPERVISOR_PASSWORD = "supervisor", "demo-supervisor"
OPERATOR_PORT = 8090
MOSQUITTO_CONF = """\
# Demo broker: loopback only, anonymous, no persistence.
listener {port} {host}
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
"""


class Process:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
        )
        threading.Thread(target=self._pump, name=f"log-{name}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            print(f"[{self.name:7}] {line}", end="", flush=True)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_port(host: str, port: int, proc: Process, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise EdgeError(f"{proc.name} exited with {proc.proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        time.sleep(0.1)
    raise EdgeError(f"{proc.name} did not open {host}:{port} in {timeout_s} s")


def _wait_box(cfg: EdgeConfig, box: Process, timeout_s: float = 20.0) -> None:
    url = f"http://{cfg.web.host}:{cfg.web.port}/api/status"
    token = cfg.web.api_token.get_secret_value() if cfg.web.api_token else ""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if box.proc.poll() is not None:
            raise EdgeError(f"the box exited with {box.proc.returncode}")
        with (
            contextlib.suppress(OSError, ValueError, KeyError),
            urllib.request.urlopen(request, timeout=1) as response,  # noqa: S310
        ):
            if json.load(response)["uplink"]["connected"]:
                return
        time.sleep(0.2)
    raise EdgeError(f"the box did not connect to the broker in {timeout_s} s")


BACKUP_FAILOVER_S = 5  # the demo's: the backup takes an alarm 5 s after the primary did not


def run(config: Path, work_dir: Path, backup: bool = False) -> int:
    cfg = load(config)
    if cfg.gpio.backend != "mock":
        raise EdgeError(f"{config}: the demo needs gpio.backend = 'mock'")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        raise EdgeError("mosquitto is not installed (make demo installs it)")
    host, port = cfg.uplink.host, cfg.uplink.port
    backup_port = port + 1
    busy = [(host, port, "broker"), (cfg.web.host, cfg.web.port, "web page")]
    if backup:
        busy.append((host, backup_port, "backup broker"))
    for h, p, what in busy:
        if not _port_free(h, p):
            raise EdgeError(
                f"{h}:{p} ({what}) is already in use; stop what uses it or edit {config}"
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "edge"]
    station_db = work_dir / "station.sqlite"
    box_config = _with_backup(config, work_dir, host, backup_port) if backup else config
    started: list[Process] = []
    try:
        pairs = [("", port), ("-backup", backup_port)] if backup else [("", port)]
        for suffix, p in pairs:
            conf = work_dir / f"mosquitto{suffix}.conf"
            conf.write_text(MOSQUITTO_CONF.format(host=host, port=p))
            broker = Process(f"broker{suffix}", [mosquitto, "-c", str(conf)])
            started.append(broker)
            _wait_port(host, p, broker)
            receiver = [*py, "station", "run", "--broker", f"mqtt://{host}:{p}"]
            receiver += ["--db", str(station_db), "--prefix", cfg.uplink.topic_prefix]
            if suffix:  # the second ingress: its own client id, the same store
                receiver += ["--client-id", "station-receiver-backup"]
            started.append(Process(f"station{suffix}", receiver))
        broker_url = f"mqtt://{host}:{port}"
        site = config.with_name("demo-site.toml")
        started.append(
            _operator_page(py, station_db, started[1], broker_url, cfg.uplink.topic_prefix, site)
        )
        auth.write_password(work_dir / "box" / "web", DEMO_PASSWORD)
        box = Process(
            "box", [*py, "run", "--config", str(box_config), "--state-dir", str(work_dir / "box")]
        )
        started.append(box)
        _wait_box(cfg, box)
        _banner(cfg, config, station_db)
        if backup:
            _backup_banner(box_config, started[0].proc.pid)
        _self_test(cfg, config)
        _wait_for_stop(started)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping: box, station, broker ...", flush=True)
        for proc in reversed(started):
            proc.stop()
    return 0


def _with_backup(config: Path, work_dir: Path, host: str, port: int) -> Path:
    """The demo config with a backup route to the second broker, beside the demo's state."""
    text = config.read_text(encoding="utf-8") + (
        "\n# Added by edge demo --backup: a second path to a second broker.\n"
        f'[[routes]]\nname = "backup"\ntype = "mqtt"\nbroker = "mqtt://{host}:{port}"\n'
        "heartbeat_s = 10\npath_loss_s = 60\n\n"
        f"[delivery]\nfailover_s = {BACKUP_FAILOVER_S}\n"
    )
    out = work_dir / "demo-backup.toml"
    out.write_text(text, encoding="utf-8")
    load(out)  # the demo's own config must stay valid with the route
    return out


def _backup_banner(box_config: Path, primary_pid: int) -> None:
    print(
        f"""\
 Two paths:        the box runs {box_config} (a backup route to a second broker)
   cut the primary:  kill -STOP {primary_pid}   (its broker goes silent, as a pulled cable)
   mend it:          kill -CONT {primary_pid}
   an alarm tripped while it is cut reaches the workstation over the backup after
   {BACKUP_FAILOVER_S} s; the technician page's status shows each route and the category
================================================================================
""",
        flush=True,
    )


def _operator_page(
    py: list[str], station_db: Path, station: Process, broker: str, prefix: str, site: Path
) -> Process:
    """The station's workstation, with the demo operator and supervisor and the demo site
    (once the store exists); its own MQTT link asks the box for fresh video."""
    deadline = time.monotonic() + 15
    while not station_db.is_file():
        if station.proc.poll() is not None or time.monotonic() > deadline:
            raise EdgeError(f"the station did not create {station_db}")
        time.sleep(0.1)
    store = ["--db", str(station_db)]
    for name, password, role in (
        (DEMO_OPERATOR, DEMO_OPERATOR_PASSWORD, "operator"),
        (DEMO_SUPERVISOR, DEMO_SUPERVISOR_PASSWORD, "supervisor"),
    ):
        subprocess.run(
            [*py, "station", "operator", name, "--role", role, *store],
            input=password + "\n",
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if site.is_file():
        subprocess.run(
            [*py, "station", "site", "load", str(site), "--by", DEMO_SUPERVISOR, *store],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    page = ["--port", str(OPERATOR_PORT), "--broker", broker, "--prefix", prefix]
    return Process("page", [*py, "station", "page", *store, *page])


def _wait_for_stop(started: list[Process]) -> None:
    """Until Ctrl-C or SIGTERM, or until one of the processes dies."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    while True:
        for proc in started:
            if proc.proc.poll() is not None:
                print(f"demo: {proc.name} exited with {proc.proc.returncode}", flush=True)
                return
        time.sleep(0.5)


def _banner(cfg: EdgeConfig, config: Path, station_db: Path) -> None:
    web = f"http://{cfg.web.host}:{cfg.web.port}/"
    zones = ", ".join(z.id for z in cfg.zones)
    print(
        f"""
================================================================================
 Demo running. Technician page: {web}
   log in with the demo password: {DEMO_PASSWORD}
 Trip a zone:      .venv/bin/edge simulate --config {config} trip ZONE
 Arm / disarm:     .venv/bin/edge simulate --config {config} arm | disarm
 Zones:            {zones}
 Workstation:      http://127.0.0.1:{OPERATOR_PORT}/ (the station's operators, in French;
                   the queue, take an alarm, verify on video, call, close)
   log in as {DEMO_OPERATOR} / {DEMO_OPERATOR_PASSWORD}, or as the supervisor
   {DEMO_SUPERVISOR} / {DEMO_SUPERVISOR_PASSWORD} (who handles what, the sites)
 Main courante:    http://127.0.0.1:{OPERATOR_PORT}/courante (print it, or CSV)
 Station events:   .venv/bin/edge station events --db {station_db}
 Stills and clip:  .venv/bin/edge station media --db {station_db} EVENT_ID
 Stop:             Ctrl-C
================================================================================
""",
        flush=True,
    )


def _self_test(cfg: EdgeConfig, config: Path) -> None:
    """Trip the first 24-hour zone so an alarm is seen arriving at the station."""
    zone = next((z for z in cfg.zones if z.type in TWENTY_FOUR_HOUR), None)
    if zone is None:
        return
    print(f"demo: tripping zone {zone.id!r} ({zone.name}) to show an alarm end to end", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "simulate",
            "--config",
            str(config),
            "trip",
            zone.id,
            "--hold-s",
            "1.5",
        ],
        check=False,
    )
