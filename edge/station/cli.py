"""``edge station run | events | show | export | devices | alarms | page | operator | bridge |
site | courante``: the station's CLI (``run``, the receiver, in :mod:`edge.station.runcmd`;
``site`` and ``courante``, the workstation's, in :mod:`edge.station.sitecmd`).

Every command opens the store given by ``--db`` (an SQLite file, or a
``postgresql://`` URL with ``--media``). Bad arguments are errors that say
which argument and why (exit 2); an unknown event is an error (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import re
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from edge import logs
from edge.clock import SystemClock, ms
from edge.errors import ConfigError, EdgeError
from edge.station import runcmd, sitecmd

if TYPE_CHECKING:  # the store (and psycopg) load only when a command runs
    from edge.station.commands import CommandLink
    from edge.station.store import StationStore
    from edge.station.web.gate import Security

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def add_parsers(ssub: Sub) -> None:
    runcmd.add_parser(ssub)
    sitecmd.add_parsers(ssub, _store_parser)
    events = _store_parser(ssub, "events", "list stored events, newest first")
    events.add_argument("--device")
    events.add_argument("--kind", help="alarm, restore, trouble, tamper, arm, disarm, test, ...")
    events.add_argument("--since", help="occurred at or after: ISO 8601 time, or 15m/2h/1d ago")
    events.add_argument("--until", help="occurred before: ISO 8601 time, or 15m/2h/1d ago")
    events.add_argument("--limit", type=int, default=50)
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(func=events_cmd)
    media = _store_parser(ssub, "media", "list the stored stills and clips of an event")
    media.add_argument("event_id")
    media.add_argument("--device")
    media.add_argument("--json", action="store_true", help="one JSON object per line")
    media.set_defaults(func=media_cmd)
    show = _store_parser(ssub, "show", "one event as stored, with its media")
    show.add_argument("event_id")
    show.set_defaults(func=show_cmd)
    export = _store_parser(ssub, "export", "copy an event's media files to a folder, verified")
    export.add_argument("event_id")
    export.add_argument("--to", type=Path, required=True, help="the folder (created if needed)")
    export.set_defaults(func=export_cmd)
    devices = _store_parser(ssub, "devices", "every box with its supervision state")
    devices.add_argument("--json", action="store_true")
    devices.set_defaults(func=devices_cmd)
    alarms = _store_parser(ssub, "alarms", "the station's own alarms: device lost, restored")
    alarms.add_argument("--limit", type=int, default=50)
    alarms.set_defaults(func=alarms_cmd)
    page = _store_parser(ssub, "page", "the operator page (login required)")
    page.add_argument("--host", default="127.0.0.1")
    page.add_argument("--port", type=int, default=8090)
    page.add_argument("--log-level", default="INFO")
    page.add_argument(
        "--session-idle-s",
        type=float,
        default=1800.0,
        help="a session ends after this long without a request (60 to 86400)",
    )
    page.add_argument(
        "--session-max-s",
        type=float,
        default=43_200.0,
        help="and this long after its login, however busy (300 to 604800)",
    )
    page.add_argument(
        "--login-max-failures",
        type=int,
        default=5,
        help="failed logins in a row that lock a client out (3 to 20)",
    )
    page.add_argument(
        "--lockout-s",
        type=float,
        default=300.0,
        help="the first lockout, doubled at each next one up to an hour (10 to 3600)",
    )
    page.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="URL",
        help="another origin the page is reached at, e.g. https://station.example "
        "behind a TLS proxy (repeatable)",
    )
    page.add_argument(
        "--escalate-s",
        type=float,
        default=60.0,
        help="an alarm nobody takes in charge within this long escalates (10 to 3600)",
    )
    page.add_argument(
        "--shift-hours",
        default="6,14,22",
        help="the hours (station time) shifts start at, for the main courante (e.g. 7,19)",
    )
    page.add_argument(
        "--broker",
        help="mqtt://host:port or mqtts://...: lets operators ask a box for a snapshot or "
        "a clip (the page's own MQTT link); without it the page cannot ask",
    )
    page.add_argument("--prefix", default="edge", help="the boxes' topic prefix")
    page.add_argument("--client-id", default="station-page")
    page.add_argument("--ca-file", type=Path, help="with mqtts://: the broker's CA")
    page.add_argument("--cert-file", type=Path, help="with mqtts://: this page's certificate")
    page.add_argument("--key-file", type=Path, help="with mqtts://: its private key")
    page.set_defaults(func=page_cmd)
    operator = _store_parser(
        ssub, "operator", "add an operator or change their password (read from stdin)"
    )
    operator.add_argument("name")
    operator.add_argument(
        "--role",
        choices=("operator", "supervisor"),
        help="a new operator is an operator unless told; "
        "an existing one keeps their role unless told",
    )
    operator.set_defaults(func=operator_cmd)
    bridge = _store_parser(ssub, "bridge", "forward stored events to an alarm receiver (DC-09)")
    bridge.add_argument("--receiver", required=True, help="host:port of the DC-09 receiver (TCP)")
    bridge.add_argument("--account", required=True, help="3 to 16 hex digits")
    bridge.add_argument("--format", choices=("sia-dcs", "adm-cid"), default="sia-dcs")
    bridge.add_argument("--line", default="0")
    bridge.add_argument("--receiver-number")
    bridge.add_argument("--key-file", type=Path, help="AES key as 32, 48 or 64 hex digits")
    bridge.add_argument("--video-base", help="URL of the operator page, for video references")
    bridge.add_argument("--null-every-s", type=float, default=60.0)
    bridge.add_argument("--log-level", default="INFO")
    bridge.set_defaults(func=bridge_cmd)


def _store_parser(ssub: Sub, name: str, help_: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = ssub.add_parser(name, help=help_)
    parser.add_argument("--db", required=True, help="an SQLite file, or a postgresql:// URL")
    parser.add_argument("--media", type=Path, help="media folder (required with PostgreSQL)")
    return parser


def open_store(args: argparse.Namespace) -> StationStore:
    from edge.station.sql import is_postgres
    from edge.station.store import StationStore

    target: str | Path = args.db if is_postgres(args.db) else Path(args.db)
    if isinstance(target, Path) and not target.is_file():
        raise EdgeError(f"{target}: no station store here")
    store = StationStore(target, args.media)
    store.open()
    return store


def parse_when(text: str, name: str, now_s: float) -> int:
    """``--since``/``--until``: ISO 8601 (UTC unless a zone is given) or ``15m`` ago; ms."""
    ago = _AGO.fullmatch(text.strip())
    if ago is not None:
        return ms(now_s - float(ago[1]) * _UNIT_S[ago[2]])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            name, [f"{name} {text!r}: not an ISO 8601 time nor a duration like 15m, 2h, 1d"]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ms(moment.timestamp())


def events_cmd(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError("--limit", [f"--limit {args.limit}: must be at least 1"])
    now = time.time()
    since = None if args.since is None else parse_when(args.since, "--since", now)
    until = None if args.until is None else parse_when(args.until, "--until", now)
    if since is not None and until is not None and since >= until:
        raise ConfigError("--since", ["--since must be before --until"])
    with opened(args) as store:
        rows = store.events(args.device, args.limit, kind=args.kind, since_ms=since, until_ms=until)
    for row in rows:
        if args.json:
            print(json.dumps(vars(row)))
        else:
            print(
                f"{row.received_at}  {row.device}  #{row.seq:<5} {row.kind:<15} "
                f"CID {row.cid} SIA {row.sia}  zone {row.zone or '-'}  media {row.media}"
                f"{'  (historical)' if row.historical else ''}  id {row.id}"
            )
    return 0


def media_cmd(args: argparse.Namespace) -> int:
    with opened(args) as store:
        rows = store.media(args.event_id, args.device)
    for row in rows:
        if args.json:
            print(json.dumps({**vars(row), "path": str(row.path)}))
        else:
            print(
                f"{row.received_at}  {row.device}  {row.kind:<5} {row.media_id}  "
                f"{row.size} bytes  sha256 {row.sha256}  {row.path}"
            )
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    with opened(args) as store:
        body = store.body(args.event_id)
        if body is None:
            raise EdgeError(f"no event {args.event_id!r} in the store")
        (row,) = store.events(event_id=args.event_id, limit=1)
        files = store.media(args.event_id)
    out: dict[str, Any] = {
        "event": body,
        "received_at": row.received_at,
        "deliveries": row.deliveries,
        "media": [
            {k: v for k, v in {**vars(f), "path": str(f.path)}.items() if k != "event_id"}
            for f in files
        ],
    }
    print(json.dumps(out, indent=2))
    return 0


def export_cmd(args: argparse.Namespace) -> int:
    from edge.station import parts

    with opened(args) as store:
        if store.body(args.event_id) is None:
            raise EdgeError(f"no event {args.event_id!r} in the store")
        files = store.media(args.event_id)
    if not files:
        raise EdgeError(f"event {args.event_id!r} has no complete media (yet)")
    try:
        args.to.mkdir(parents=True, exist_ok=True)
        for f in files:
            target = args.to / f.path.name
            shutil.copyfile(f.path, target)
            if parts.digest(target) != (f.size, f.sha256):
                raise EdgeError(f"{target}: copy does not match the stored sha256")
            print(f"{target}  {f.kind}  {f.size} bytes  sha256 {f.sha256}")
    except OSError as exc:
        raise EdgeError(f"cannot export to {args.to}: {exc}") from exc
    return 0


def devices_cmd(args: argparse.Namespace) -> int:
    with opened(args) as store:
        rows = store.device_status(ms(time.time()))
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            age = row["heartbeat_age_s"]
            print(
                f"{row['device']:<20} {row['state'] or '-':<8} supervision {row['supervision']:<5}"
                f" heartbeat {'-' if age is None else f'{age:.0f} s ago'}"
                f" (lost after {row['lost_after_s']} s)"
                f" outbox {'-' if row['outbox_depth'] is None else row['outbox_depth']}"
            )
    return 0


def alarms_cmd(args: argparse.Namespace) -> int:
    with opened(args) as store:
        rows = store.station_alarms(args.limit)
    for row in rows:
        at = datetime.fromtimestamp(int(row["at_ms"]) / 1000, UTC).isoformat()
        print(f"{at}  {row['device']:<20} {row['kind']:<15} {row['reason']}")
    return 0


def page_cmd(args: argparse.Namespace) -> int:
    from edge.station.web.server import serve

    if not 0 < args.port < 65536:
        raise ConfigError("--port", [f"--port {args.port}: must be 1 to 65535"])
    security = _security(args)
    hours = _workstation(args)
    logs.setup(args.log_level, identifier="edge-station-page")
    with opened(args) as store, contextlib.suppress(KeyboardInterrupt):
        commands = _command_link(args, store)
        asyncio.run(serve(store, args.host, args.port, security, escalate_s=args.escalate_s,
                          commands=commands, shift_hours=hours))  # fmt: skip
    return 0


def _workstation(args: argparse.Namespace) -> tuple[int, ...]:
    """The page's workstation options, checked: the shift hours."""
    problems = []
    if not 10 <= args.escalate_s <= 3600:
        problems.append(f"--escalate-s {args.escalate_s:g}: must be 10 to 3600")
    try:
        hours = tuple(sorted({int(h) for h in args.shift_hours.split(",")}))
    except ValueError:
        hours = ()
    if not hours or not all(0 <= h <= 23 for h in hours):
        problems.append(f"--shift-hours {args.shift_hours!r}: hours 0 to 23, comma-separated")
    if args.broker is not None and not re.fullmatch(r"mqtts?://[^/\s]+", args.broker):
        problems.append(f"--broker {args.broker!r}: must be mqtt://host:port or mqtts://host:port")
    if problems:
        raise ConfigError("page", problems)
    return hours


def _command_link(args: argparse.Namespace, store: StationStore) -> CommandLink | None:
    from urllib.parse import urlsplit

    from edge.mqttio import LinkSettings
    from edge.station.commands import CommandLink

    if args.broker is None:
        return None
    url = urlsplit(args.broker)
    tls = url.scheme == "mqtts"
    settings = LinkSettings(
        host=url.hostname or "",
        port=url.port or (8883 if tls else 1883),
        client_id=args.client_id,
        tls=tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )
    return CommandLink(settings, args.prefix, store, SystemClock())


_LIMITS = {  # option: (lowest, highest)
    "session_idle_s": (60, 86_400),
    "session_max_s": (300, 604_800),
    "login_max_failures": (3, 20),
    "lockout_s": (10, 3600),
}
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _security(args: argparse.Namespace) -> Security:
    from edge.station.web.gate import Security

    problems = []
    for key, (low, high) in _LIMITS.items():
        value = getattr(args, key)
        if not low <= value <= high:
            option = "--" + key.replace("_", "-")
            problems.append(f"{option} {value:g}: must be {low} to {high}")
    if args.session_max_s < args.session_idle_s:
        problems.append("--session-max-s must be at least --session-idle-s")
    for origin in args.origin:
        if not _ORIGIN.fullmatch(origin):
            problems.append(f"--origin {origin!r}: scheme://host[:port], no path")
    if problems:
        raise ConfigError("page", problems)
    return Security(
        args.session_idle_s,
        args.session_max_s,
        args.login_max_failures,
        args.lockout_s,
        tuple(o.lower() for o in args.origin),
    )


def operator_cmd(args: argparse.Namespace) -> int:
    from edge.station import oplog

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    with opened(args) as store, store.transaction() as db:
        oplog.set_operator(db, args.name, password, args.role)
        found = oplog.account(db, args.name)
    print(f"operator {args.name} set ({found.role if found else args.role})")
    return 0


def bridge_cmd(args: argparse.Namespace) -> int:
    from edge.dc09.link import Dc09Link, Dc09Settings
    from edge.dc09.messages import Format
    from edge.station.dc09.bridge import Dc09Bridge

    host, _, port = args.receiver.rpartition(":")
    problems = []
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(f"--receiver {args.receiver!r}: must be host:port")
    if not re.fullmatch(r"[0-9A-F]{3,16}", args.account):
        problems.append(f"--account {args.account!r}: 3 to 16 upper-case hex digits")
    base = args.video_base
    if base is not None and (not base.isascii() or not base.isprintable() or set(base) & set("[]")):
        problems.append(f"--video-base {base!r}: printable ASCII without [ ]")
    key = None if args.key_file is None else _key(args.key_file, problems)
    if problems:
        raise ConfigError("bridge", problems)
    logs.setup(args.log_level, identifier="edge-station-bridge")
    settings = Dc09Settings(
        host,
        int(port),
        args.account,
        Format(args.format.upper()),
        line=args.line,
        receiver=args.receiver_number,
        key=key,
    )
    clock = SystemClock()
    with opened(args) as store, contextlib.suppress(KeyboardInterrupt):
        bridge = Dc09Bridge(
            store,
            Dc09Link(settings, clock),
            clock,
            video_base=args.video_base,
            null_every_s=args.null_every_s,
        )
        asyncio.run(_until_signalled(bridge.run))
    return 0


async def _until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """``run(stop)``, with ``stop`` set by SIGTERM or SIGINT: a clean stop, exit code 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _key(path: Path, problems: list[str]) -> bytes | None:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        problems.append(f"--key-file {path}: {exc}")
        return None
    if len(key) not in (16, 24, 32):
        problems.append(f"--key-file {path}: {len(text)} hex digits; need 32, 48 or 64")
    return key


@contextlib.contextmanager
def opened(args: argparse.Namespace) -> Iterator[StationStore]:
    store = open_store(args)
    try:
        yield store
    finally:
        store.close()
