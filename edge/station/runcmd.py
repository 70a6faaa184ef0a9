"""``edge station run``: the receiver, as a command (the other station commands are in
:mod:`edge.station.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit

from edge import logs
from edge.errors import ConfigError

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DB_HELP = "an SQLite file, or a postgresql://user@host/db URL"


def add_parser(ssub: Sub) -> None:
    run = ssub.add_parser("run", help="receive, store and acknowledge events")
    run.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    run.add_argument("--db", type=db_target, required=True, help=DB_HELP)
    run.add_argument("--media", type=Path, help="media folder (required with PostgreSQL)")
    run.add_argument("--prefix", default="edge")
    run.add_argument("--client-id", default="station-receiver")
    run.add_argument(
        "--share-group", help="MQTT v5 shared subscription: receivers of a group split the load"
    )
    run.add_argument("--ca-file", type=Path, help="with mqtts://: the broker's CA")
    run.add_argument("--cert-file", type=Path, help="with mqtts://: this receiver's certificate")
    run.add_argument("--key-file", type=Path, help="with mqtts://: its private key")
    run.add_argument("--log-level", default="INFO")
    run.add_argument(
        "--batch-max", type=int, default=500, help="messages stored per transaction, at most"
    )
    run.add_argument(
        "--batch-max-bytes",
        type=int,
        default=8 * 1024 * 1024,
        help="payload bytes stored per transaction, about",
    )
    run.set_defaults(func=run_cmd)


def db_target(value: str) -> Path | str:
    return value if value.startswith(("postgresql://", "postgres://")) else Path(value)


def run_cmd(args: argparse.Namespace) -> int:
    from edge.station.receiver import Receiver, StationSettings

    logs.setup(args.log_level, identifier="edge-station")
    url = urlsplit(args.broker)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise ConfigError(
            "--broker", [f"--broker {args.broker!r}: must be mqtt://host:port or mqtts://host:port"]
        )
    tls = url.scheme == "mqtts"
    if (args.cert_file is None) != (args.key_file is None):
        raise ConfigError("--cert-file", ["--cert-file and --key-file go together"])
    settings = StationSettings(
        host=url.hostname,
        port=url.port or (8883 if tls else 1883),
        tls=tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        db=args.db,
        media=args.media,
        share_group=args.share_group,
        prefix=args.prefix,
        client_id=args.client_id,
        batch_max=args.batch_max,
        batch_max_bytes=args.batch_max_bytes,
    )
    if settings.batch_max < 1 or settings.batch_max_bytes < 1:
        raise ConfigError("--batch-max", ["--batch-max and --batch-max-bytes must be positive"])
    if settings.share_group is not None and isinstance(settings.db, Path):
        # the chunks of one media land on every receiver of the group: they must meet
        raise ConfigError("--share-group", ["--share-group needs a shared PostgreSQL --db"])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Receiver(settings).run())
    return 0
