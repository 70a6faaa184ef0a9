"""``edge station site check | load | list | show | remove`` and ``edge station courante``:
the workstation's sites and its main courante from the command line.

A site file is TOML or JSON (``[[sites]]`` tables, or one site at the top level;
see ``config/demo-site.toml``); ``check`` validates one without a store, and
every problem is one line ``<file>: <key path> = <value>: <rule>`` (exit 2).
``load`` creates or replaces its sites and writes a line per site in the main
courante. ``courante`` writes the main courante of a period as CSV on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from edge.clock import ms
from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.station.store import StationStore

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def opened(args: argparse.Namespace) -> contextlib.AbstractContextManager[StationStore]:
    """The store the station CLI's options name, closed after use."""
    from edge.station import cli

    return cli.opened(args)


def add_parsers(ssub: Sub, make: Callable[[Sub, str, str], argparse.ArgumentParser]) -> None:
    """``make(ssub, name, help)``: the station CLI's parser with ``--db`` and ``--media``,
    so that every command opens the store alike."""
    site = ssub.add_parser("site", help="the workstation's sites: instructions, call lists, boxes")
    sub = site.add_subparsers(dest="site_command", required=True)
    check = sub.add_parser("check", help="validate a site file (TOML or JSON), no store needed")
    check.add_argument("file", type=Path)
    check.set_defaults(func=check_cmd)
    load = make(sub, "load", "create or replace the sites of a file")
    load.add_argument("file", type=Path)
    load.add_argument("--by", help="who loads it, for the main courante (default: the user)")
    load.set_defaults(func=load_cmd)
    listing = make(sub, "list", "every site")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=list_cmd)
    show = make(sub, "show", "one site, as JSON")
    show.add_argument("site_id")
    show.set_defaults(func=show_cmd)
    remove = make(sub, "remove", "remove a site (its boxes are then on no site)")
    remove.add_argument("site_id")
    remove.add_argument("--by", help="who removes it, for the main courante (default: the user)")
    remove.set_defaults(func=remove_cmd)
    export = make(ssub, "courante", "the main courante of a period, as CSV on stdout")
    export.add_argument("--since", help="ISO 8601 time, or 15m/2h/1d ago (default: all)")
    export.add_argument("--until", help="ISO 8601 time, or 15m/2h/1d ago (default: now)")
    export.add_argument("--site", help="a site id")
    export.add_argument("--operator")
    export.add_argument("--lang", choices=("fr", "en"), default="fr")
    export.set_defaults(func=courante_cmd)


def check_cmd(args: argparse.Namespace) -> int:
    from edge.station import sites

    found = sites.parse_file(args.file)
    print(f"{args.file}: OK, {len(found)} site(s): {', '.join(s.id for s in found)}")
    return 0


def _by(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def load_cmd(args: argparse.Namespace) -> int:
    from edge.station import courante, sites

    found = sites.parse_file(args.file)
    now, who = ms(time.time()), _by(args)
    with opened(args) as store, store.transaction() as db:
        for site in found:
            try:
                new = sites.put(db, site, who, now)
            except sites.SiteConflict as exc:
                raise EdgeError(f"{args.file}: site {site.id!r}: {exc}") from exc
            change = "created" if new else "updated"
            courante.append(db, now, who, "site", site_key=f"site:{site.id}",
                            detail={"site": site.id, "change": change})  # fmt: skip
            print(f"site {site.id} {change}: {site.name} ({len(site.devices)} box(es))")
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    from edge.station import sites

    with opened(args) as store, store.read() as db:
        rows = sites.listing(db)
    for row in rows:
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            boxes = ", ".join(row["devices"]) or "-"
            print(f"{row['id']:<24} {row['name']}  ({row['address'] or 'no address'})  {boxes}")
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    from edge.station import sites

    with opened(args) as store, store.read() as db:
        site = sites.get(db, args.site_id)
    if site is None:
        raise EdgeError(f"no site {args.site_id!r} in the store")
    print(json.dumps(site.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


def remove_cmd(args: argparse.Namespace) -> int:
    from edge.station import courante, sites

    now, who = ms(time.time()), _by(args)
    with opened(args) as store, store.transaction() as db:
        if not sites.remove(db, args.site_id):
            raise EdgeError(f"no site {args.site_id!r} in the store")
        courante.append(db, now, who, "site", site_key=f"site:{args.site_id}",
                        detail={"site": args.site_id, "change": "removed"})  # fmt: skip
    print(f"site {args.site_id} removed")
    return 0


def courante_cmd(args: argparse.Namespace) -> int:
    from edge.station import courante, sites
    from edge.station.cli import parse_when
    from edge.station.web.exports import csv_lines

    now_s = time.time()
    since = 0 if args.since is None else parse_when(args.since, "--since", now_s)
    until = ms(now_s) + 1 if args.until is None else parse_when(args.until, "--until", now_s)
    where = courante.Filter(since, until, f"site:{args.site}" if args.site else None,
                            args.operator)  # fmt: skip
    out = sys.stdout.buffer
    with opened(args) as store:
        out.write(csv_lines(args.lang, None, header=True))
        after = None
        while True:
            with store.read() as db:
                entries = courante.page(db, where, after, 5000)
                names = sites.names(db, [e.site_key for e in entries if e.site_key])
            if not entries:
                break
            out.write(csv_lines(args.lang, (entries, names)))
            after = (entries[-1].at_ms, entries[-1].id)
    out.flush()
    return 0
