"""Command line of the box's installation: ``edge provision ...`` and ``edge update ...``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edge import logs
from edge.config import load

if TYPE_CHECKING:
    Sub = argparse._SubParsersAction[argparse.ArgumentParser]
    from edge.update.trial import Manager

# The handlers import cryptography and the update machinery when they run, so
# that every other `edge` command starts as fast as before.

ETC = Path("/etc/edge")
PREFIX = Path("/opt/edge")


def register(sub: Sub) -> None:
    _provision(sub)
    _update(sub)


def _provision(sub: Sub) -> None:
    p = sub.add_parser("provision", help="first-boot identity and the station's certificate")
    psub = p.add_subparsers(required=True, metavar="ACTION")
    first = psub.add_parser("first-boot", help="make identity, uplink key + CSR, setup code")
    first.add_argument("--dir", type=Path, default=ETC)
    first.add_argument("--group", default="edge", help="group that may read the key ('' none)")
    first.set_defaults(func=_first_boot)
    inst = psub.add_parser("install", help="install the station's certificate and account")
    inst.add_argument("--dir", type=Path, default=ETC)
    inst.add_argument("--cert", type=Path, required=True, help="this box's certificate (PEM)")
    inst.add_argument("--ca", type=Path, required=True, help="the station's CA (PEM)")
    inst.add_argument("--account", required=True)
    inst.set_defaults(func=_install)
    stat = psub.add_parser("status", help="may the uplink start? why not?")
    stat.add_argument("--dir", type=Path, default=ETC)
    stat.add_argument("--config", type=Path, default=ETC / "edge.toml")
    stat.add_argument("--show-code", action="store_true", help="print the page's setup code")
    stat.set_defaults(func=_status)


def _update(sub: Sub) -> None:
    u = sub.add_parser("update", help="signed update bundles: install with rollback")
    usub = u.add_subparsers(required=True, metavar="ACTION")
    inst = usub.add_parser("install", help="install a bundle; roll back if it is not healthy")
    inst.add_argument("bundle", type=Path)
    inst.add_argument("--keys", type=Path, default=ETC / "update-keys")
    inst.add_argument("--prefix", type=Path, default=PREFIX)
    inst.add_argument("--timeout-s", type=float, default=180.0, help="limit to report healthy")
    inst.add_argument("--settle-s", type=float, default=45.0, help="healthy this long to pass")
    inst.add_argument(
        "--manager",
        choices=("systemd", "direct"),
        default="systemd",
        help="direct: run the box itself for the trial (no systemd running, e.g. a chroot)",
    )
    inst.add_argument("--config", type=Path, default=ETC / "edge.toml", help="direct only")
    inst.add_argument("--state-dir", type=Path, help="direct only")
    inst.set_defaults(func=_update_install)
    roll = usub.add_parser("rollback", help="go back to the previous release")
    roll.add_argument("--prefix", type=Path, default=PREFIX)
    roll.set_defaults(func=_update_rollback)
    stat = usub.add_parser("status", help="current and previous release")
    stat.add_argument("--prefix", type=Path, default=PREFIX)
    stat.set_defaults(func=_update_status)
    keygen = usub.add_parser("keygen", help="a new ed25519 signing key pair (build machine)")
    keygen.add_argument("--private", type=Path, required=True)
    keygen.add_argument("--public", type=Path, required=True)
    keygen.set_defaults(func=_keygen)
    build = usub.add_parser("bundle", help="sign wheels into a bundle (build machine)")
    build.add_argument("--key", type=Path, required=True, help="ed25519 private key (PEM)")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("wheels", type=Path, nargs="+")
    build.set_defaults(func=_bundle)


def _first_boot(args: argparse.Namespace) -> int:
    from edge import provision

    paths = provision.Paths(args.dir)
    existed = paths.identity.exists()
    identity = provision.first_boot(paths, args.group or None)
    if existed:
        print(f"identity already made: serial {identity['serial']} ({paths.identity})")
    else:
        print(f"identity made: serial {identity['serial']}")
        print(f"certificate request for the station: {paths.csr}")
        print(f"technician page setup code: in {paths.setup_code} (edge provision status)")
        print("the uplink stays off until: edge provision install --cert --ca --account")
    return 0


def _install(args: argparse.Namespace) -> int:
    from edge import provision

    paths = provision.Paths(args.dir)
    try:
        cert, ca = args.cert.read_bytes(), args.ca.read_bytes()
    except OSError as exc:
        raise provision.ProvisionError(f"{exc.filename}: {exc.strerror}") from exc
    record = provision.install(paths, cert, ca, args.account)
    print(f"provisioned: account {record['account']}, {record['subject']}")
    print(f"certificate valid until {record['not_after']}")
    print("edge.toml must say:")
    print(f'  station.account = "{record["account"]}"')
    for line in provision.config_hints(paths):
        print(f"  {line}")
    print("then: systemctl restart edge")
    return 0


def _status(args: argparse.Namespace) -> int:
    from edge import provision

    result = provision.check(args.dir, load(args.config))
    print(json.dumps(result.summary(), indent=2))
    if args.show_code:
        paths = provision.Paths(args.dir)
        try:
            print(f"setup code: {paths.setup_code.read_text(encoding='utf-8').strip()}")
        except OSError as exc:
            print(f"setup code: cannot read {paths.setup_code}: {exc.strerror}", file=sys.stderr)
            return 1
    return 0 if result.uplink_allowed else 3


def _manager(args: argparse.Namespace) -> Manager:
    from edge.update.trial import DirectManager, SystemdManager

    if args.manager == "systemd":
        return SystemdManager()
    state_dir = args.state_dir or Path(os.environ.get("STATE_DIRECTORY", "/var/lib/edge"))
    return DirectManager(args.prefix / "venv" / "bin" / "edge", args.config, state_dir)


def _update_install(args: argparse.Namespace) -> int:
    from edge import update
    from edge.update.release import Layout
    from edge.update.trial import DirectManager

    logs.setup("INFO")
    manager = _manager(args)
    try:
        outcome = update.install(
            args.bundle, args.keys, Layout(args.prefix), manager, args.timeout_s, args.settle_s
        )
    except update.UpdateFailed:
        if isinstance(manager, DirectManager):
            logging.getLogger(__name__).error("the failed trial's log:\n%s", manager.failed_output)
        raise
    finally:
        if isinstance(manager, DirectManager):
            manager.stop()  # direct trials do not leave the box running
    print(f"updated to edge-gateway {outcome.version} ({outcome.reason})")
    return 0


def _update_rollback(args: argparse.Namespace) -> int:
    from edge import update
    from edge.update.release import Layout
    from edge.update.trial import SystemdManager

    previous = update.rollback(Layout(args.prefix), SystemdManager())
    print(f"rolled back to {previous.name}")
    return 0


def _update_status(args: argparse.Namespace) -> int:
    from edge import update
    from edge.update.release import Layout

    print(json.dumps(update.status(Layout(args.prefix)), indent=2))
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from edge.update import bundle

    bundle.keygen(args.private, args.public)
    print(f"signing key: {args.private} (keep it off the boxes); public key: {args.public}")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from edge.update import bundle

    manifest = bundle.build(args.wheels, args.key, args.out)
    print(f"{args.out}: edge-gateway {manifest.version}, {len(manifest.files)} wheels, signed")
    return 0
