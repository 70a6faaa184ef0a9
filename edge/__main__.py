"""Command line: ``edge run | check-config | config-schema | station | simulate | demo``
(and ``provision`` / ``update``, in :mod:`edge.boxcli`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edge import __version__, boxcli, logs
from edge.config import EdgeConfig, load
from edge.errors import ConfigError, EdgeError
from edge.tools import cli as tools_cli

EXIT_CONFIG = 2
EXIT_RESTART = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts the box again


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        for line in exc.messages:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    except EdgeError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `edge config-schema | head`
        sys.stderr.close()
        return 0
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the box")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--state-dir", type=Path, help="default: device.state_dir or $STATE_DIRECTORY")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=_run)

    check = sub.add_parser("check-config", help="validate a config file; exit 2 on errors")
    check.add_argument("path", type=Path)
    check.set_defaults(func=_check_config)

    schema = sub.add_parser("config-schema", help="print the config's JSON Schema")
    schema.set_defaults(func=_config_schema)

    _station_parser(sub)
    _simulate_parser(sub)
    boxcli.register(sub)  # edge provision ..., edge update ...
    tools_cli.register(sub)  # edge diag motion | clip | replay | event | dc09
    setpw = sub.add_parser("set-password", help="set the technician page's password")
    setpw.add_argument("--config", type=Path, required=True)
    setpw.add_argument(
        "--state-dir", type=Path, help="default: device.state_dir or $STATE_DIRECTORY"
    )
    setpw.set_defaults(func=_set_password)
    walk = sub.add_parser("walktest", help="walk test of a running box's intrusion zones")
    walk.add_argument("--config", type=Path, default=Path("config/demo.toml"))
    walk.add_argument("action", choices=("start", "stop", "status"))
    walk.add_argument("--minutes", type=float, default=15.0)
    walk.set_defaults(func=_walktest)

    demo = sub.add_parser("demo", help="broker + station + box on simulated hardware")
    demo.add_argument("--config", type=Path, default=Path("config/demo.toml"))
    demo.add_argument("--work-dir", type=Path, default=Path(".demo"))
    demo.add_argument(
        "--backup",
        action="store_true",
        help="a second broker and receiver, and the box with a backup route to them "
        "(cut the primary's broker to see the backup carry the alarms)",
    )
    demo.set_defaults(func=_demo)
    return parser


def _station_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    station = sub.add_parser("station", help="reference central-station receiver")
    ssub = station.add_subparsers(required=True, metavar="ACTION")
    from edge.station import cli as station_cli  # run, events, media, show, export, ...

    station_cli.add_parsers(ssub)


def _simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="drive the simulated inputs of a running box")
    sim.add_argument("--config", type=Path, default=Path("config/demo.toml"))
    ssub = sim.add_subparsers(required=True, metavar="ACTION")
    trip = ssub.add_parser("trip", help="activate a zone's input, then release it")
    trip.add_argument("zone")
    trip.add_argument("--hold-s", type=float, default=2.0)
    trip.set_defaults(func=_simulate_trip)
    restore = ssub.add_parser("restore", help="release a zone's inputs (after set ... active)")
    restore.add_argument("zone")
    restore.set_defaults(func=_simulate_restore)
    for name, active in (("arm", True), ("disarm", False)):
        cmd = ssub.add_parser(name, help=f"{name} a partition through its armed_state input")
        cmd.add_argument("--partition", type=int, default=1)
        cmd.set_defaults(func=_simulate_arm, active=active)
    pulse = ssub.add_parser("pulse", help="a pulse train on a zone's input (siren-following PGM)")
    pulse.add_argument("zone")
    pulse.add_argument("--count", type=int, default=5)
    pulse.add_argument("--on-ms", type=float, default=500.0)
    pulse.add_argument("--off-ms", type=float, default=500.0)
    pulse.set_defaults(func=_simulate_pulse)
    chatter = ssub.add_parser("chatter", help="a zone's input chattering at a high rate")
    chatter.add_argument("zone")
    chatter.add_argument("--hz", type=float, default=100.0)
    chatter.add_argument("--seconds", type=float, default=5.0)
    chatter.set_defaults(func=_simulate_chatter)
    level = ssub.add_parser("set", help="hold one input active or quiet")
    level.add_argument("input")
    level.add_argument("state", choices=("active", "quiet"))
    level.set_defaults(func=_simulate_set)


def _run(args: argparse.Namespace) -> int:
    from edge import app, wiring
    from edge.boxweb.config_file import roll_back

    logs.setup(args.log_level)
    try:
        cfg = load(args.config)
    except ConfigError:
        # a config applied from the web page that does not even load: put the old one back
        env = os.environ.get("STATE_DIRECTORY", "").split(":", 1)[0]
        state = args.state_dir or (Path(env) if env else None)
        if state is not None and roll_back(args.config, state / "web", "does not load"):
            return EXIT_RESTART
        raise
    state_dir = wiring.state_dir_of(cfg, args.state_dir)
    restart = asyncio.run(app.run(cfg, state_dir, config_path=args.config))
    return EXIT_RESTART if restart else 0


def _set_password(args: argparse.Namespace) -> int:
    """Store the web page's password hash; read from stdin when it is not a terminal."""
    from edge import wiring
    from edge.web import auth

    cfg = load(args.config)
    web_dir = wiring.state_dir_of(cfg, args.state_dir) / "web"
    if sys.stdin.isatty():
        password = getpass.getpass("new web password: ")
        if getpass.getpass("again: ") != password:
            raise EdgeError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        path = auth.write_password(web_dir, password)
    except auth.AuthError as exc:
        raise EdgeError(str(exc)) from exc
    print(f"web password set ({path}); restart the box to log out open sessions")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    cfg = load(args.path)
    cameras = ", ".join(c.id for c in cfg.cameras) or "none"
    print(
        f"{args.path}: OK — device {cfg.device.id}, account {cfg.station.account}, "
        f"{len(cfg.zones)} zones, {len(cfg.inputs)} inputs, cameras: {cameras}, "
        f"broker {cfg.uplink.broker}"
    )
    return 0


def _config_schema(_args: argparse.Namespace) -> int:
    print(json.dumps(EdgeConfig.model_json_schema(), indent=2))
    return 0


def _box_url(cfg: EdgeConfig, path: str) -> str:
    host = "127.0.0.1" if cfg.web.host in ("0.0.0.0", "::") else cfg.web.host  # noqa: S104
    scheme = "https" if cfg.web.tls else "http"
    return f"{scheme}://{host}:{cfg.web.port}{path}"


def _post_input(cfg: EdgeConfig, name: str, active: bool) -> None:
    _post(cfg, f"/api/sim/inputs/{name}", {"active": active})


def _inputs_of_zone(cfg: EdgeConfig, zone: str) -> list[str]:
    names = [i.name for i in cfg.inputs if i.zone == zone]
    if not names:
        known = ", ".join(z.id for z in cfg.zones)
        raise EdgeError(f"no input wired to zone {zone!r}; zones: {known}")
    return names


def _simulate_trip(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    names = _inputs_of_zone(cfg, args.zone)
    for name in names:
        _post_input(cfg, name, True)
    print(f"zone {args.zone}: active for {args.hold_s} s")
    time.sleep(args.hold_s)
    for name in names:
        _post_input(cfg, name, False)
    print(f"zone {args.zone}: quiet again")
    return 0


def _post(cfg: EdgeConfig, path: str, body: dict[str, object] | None, method: str = "POST") -> Any:
    headers = {"Content-Type": "application/json"}
    if cfg.web.api_token is not None:
        headers["Authorization"] = f"Bearer {cfg.web.api_token.get_secret_value()}"
    request = urllib.request.Request(  # noqa: S310 (always http(s):// to the box)
        _box_url(cfg, path),
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
        method=method,
    )
    context = None
    if cfg.web.tls:  # the box's own self-signed certificate, on the box itself
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        if exc.code == 401:
            detail += " (set web.api_token in the config: scripts use it instead of a login)"
        raise EdgeError(f"the box refused: {exc.code} {detail}") from exc
    except urllib.error.URLError as exc:
        raise EdgeError(f"no box answering at {_box_url(cfg, '/')}: {exc.reason}") from exc


def _pulse_zone(cfg: EdgeConfig, zone: str, count: int, on_ms: float, off_ms: float) -> None:
    for name in _inputs_of_zone(cfg, zone):
        _post(
            cfg,
            f"/api/sim/inputs/{name}/pulses",
            {"count": count, "on_ms": on_ms, "off_ms": off_ms},
        )


def _simulate_pulse(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    _pulse_zone(cfg, args.zone, args.count, args.on_ms, args.off_ms)
    total = args.count * (args.on_ms + args.off_ms) / 1000
    print(f"zone {args.zone}: {args.count} pulses over {total:.1f} s")
    return 0


def _simulate_chatter(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    if not 0 < args.hz <= 1000 or args.seconds <= 0:
        raise EdgeError("--hz must be in (0, 1000] and --seconds positive")
    half_ms = 500.0 / args.hz
    count = max(1, round(args.hz * args.seconds))
    _pulse_zone(cfg, args.zone, count, half_ms, half_ms)
    print(f"zone {args.zone}: chattering at {args.hz:g} Hz for {args.seconds:g} s")
    return 0


def _walktest(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    if args.action == "start":
        answer = _post(cfg, "/api/walktest", {"minutes": args.minutes})
        running = answer["running"]
        print(f"walk test running for {args.minutes:g} min: {', '.join(running['zones'])}")
    elif args.action == "stop":
        print(_post(cfg, "/api/walktest", None, method="DELETE")["summary"]["text"])
    else:
        running = _post(cfg, "/api/walktest", None, method="GET")["running"]
        if running is None:
            print("no walk test running")
        else:
            seen = ", ".join(running["seen"]) or "none"
            missing = ", ".join(running["not_seen"]) or "none"
            print(f"{running['remaining_s']} s left; seen: {seen}; not seen: {missing}")
    return 0


def _simulate_restore(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    for name in _inputs_of_zone(cfg, args.zone):
        _post_input(cfg, name, False)
    print(f"zone {args.zone}: quiet")
    return 0


def _simulate_arm(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    zone = next(
        (z.id for z in cfg.zones if z.type == "armed_state" and z.partition == args.partition),
        None,
    )
    if zone is None:
        raise EdgeError(f"partition {args.partition} has no armed_state zone")
    for name in _inputs_of_zone(cfg, zone):
        _post_input(cfg, name, args.active)
    print(f"partition {args.partition}: {'armed' if args.active else 'disarmed'}")
    return 0


def _simulate_set(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    _post_input(cfg, args.input, args.state == "active")
    print(f"input {args.input}: {args.state}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from edge import demo

    return demo.run(args.config, args.work_dir, backup=bool(args.backup))


if __name__ == "__main__":
    sys.exit(main())
