"""The main courante read back: per shift, site, operator or period, as JSON pages (the
printable page) or as one CSV file streamed as it is read.

A shift is the span between two of the station's shift hours (``--shift-hours``,
default 6, 14 and 22 o'clock) in the station's time zone. The CSV is UTF-8 with
a byte-order mark (so a spreadsheet reads the accents), one line per entry, its
time in the station's time zone with the offset, its words in the asked language.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from edge import i18n
from edge.clock import Clock, ms
from edge.errors import ProtocolError
from edge.protocol import parse_iso_ms
from edge.station import courante, sites
from edge.station.courante import Entry, Filter
from edge.station.store import StationStore

PAGE = 5000  # lines per transaction of an export
JSON_LIMIT = 1000


def zone() -> ZoneInfo:
    try:
        return ZoneInfo(i18n.time_zone() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def shift_bounds(now_ms: int, hours: Sequence[int], tz: ZoneInfo, back: int = 0) -> tuple[int, int]:
    """The shift holding ``now_ms`` (``back`` = 1: the one before), as UTC ms."""
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    starts = []
    for day in (-2, -1, 0, 1):
        base = (now + timedelta(days=day)).date()
        starts += [datetime(base.year, base.month, base.day, h, tzinfo=tz) for h in hours]
    starts.sort()
    current = max(i for i, s in enumerate(starts) if s <= now) - back
    return ms(starts[current].timestamp()), ms(starts[current + 1].timestamp())


class Exports:
    def __init__(self, store: StationStore, clock: Clock, shift_hours: Sequence[int]) -> None:
        self.store = store
        self.clock = clock
        self.shift_hours = tuple(sorted(shift_hours))

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/courante", self.json)
        app.router.add_get("/api/courante.csv", self.csv)

    def where(self, query: Any) -> Filter:
        """The filter of a request: ``shift`` (current, previous) or ``since``/``until``
        (ISO 8601 or UTC ms), ``site`` (a site id or an incident's site key), ``operator``."""
        now = ms(self.clock.time())
        shift = query.get("shift")
        if shift in ("current", "previous"):
            since, until = shift_bounds(now, self.shift_hours, zone(), shift == "previous")
        else:
            since = _when(query.get("since"), 0)
            until = _when(query.get("until"), 2**62)
        site = query.get("site") or None
        if site is not None and ":" not in site:
            site = f"site:{site}"
        if since >= until:
            raise web.HTTPBadRequest(text="since must be before until")
        return Filter(since, until, site, query.get("operator") or None)

    async def json(self, request: web.Request) -> web.Response:
        where = self.where(request.query)
        after = _after(request.query.get("after"))
        entries = await asyncio.to_thread(self._page, where, after, JSON_LIMIT)
        names = await asyncio.to_thread(self._names, entries)
        lang = i18n.choose(request.query.get("lang"), request.cookies.get(i18n.COOKIE))
        rows = [
            {
                **e.as_dict(),
                "site": names.get(e.site_key or "", ""),
                "words": courante.describe(lang, e),
            }
            for e in entries
        ]
        more = len(entries) == JSON_LIMIT
        return web.json_response(
            {
                "since_ms": where.since_ms,
                "until_ms": where.until_ms,
                "entries": rows,
                "after": f"{entries[-1].at_ms}.{entries[-1].id}" if more else None,
            }
        )

    async def csv(self, request: web.Request) -> web.StreamResponse:
        where = self.where(request.query)
        lang = i18n.choose(request.query.get("lang"), request.cookies.get(i18n.COOKIE))
        tz = zone()
        name = f"courante-{_stamp(where.since_ms, tz)}-{_stamp(where.until_ms, tz)}.csv"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(request)
        await response.write(csv_lines(lang, None, header=True))
        after = None
        while True:
            entries = await asyncio.to_thread(self._page, where, after, PAGE)
            if not entries:
                break
            names = await asyncio.to_thread(self._names, entries)
            await response.write(csv_lines(lang, (entries, names), tz))
            after = (entries[-1].at_ms, entries[-1].id)
        await response.write_eof()
        return response

    def _page(self, where: Filter, after: tuple[int, int] | None, limit: int) -> list[Entry]:
        with self.store.read() as db:
            return courante.page(db, where, after, limit)

    def _names(self, entries: list[Entry]) -> dict[str, str]:
        keys = list({e.site_key for e in entries if e.site_key})
        with self.store.read() as db:
            return sites.names(db, keys)


COLUMNS = ("time", "operator", "site", "incident", "action", "what", "text", "line", "corrects")


def csv_lines(
    lang: str,
    batch: tuple[list[Entry], dict[str, str]] | None,
    tz: ZoneInfo | None = None,
    header: bool = False,
) -> bytes:
    """CSV lines (CRLF) of a batch of entries with their sites' names; with ``header``,
    the byte-order mark and the column names instead."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow([i18n.t(lang, f"station.export.{c}") for c in COLUMNS])
        return b"\xef\xbb\xbf" + out.getvalue().encode()
    entries, names = batch or ([], {})
    where = tz or zone()
    for e in entries:
        at = datetime.fromtimestamp(e.at_ms / 1000, where).isoformat(timespec="seconds")
        writer.writerow(
            [
                at,
                courante.operator_name(lang, e.operator),
                names.get(e.site_key or "", ""),
                e.incident_id or "",
                i18n.t(lang, f"station.action.{e.action}"),
                courante.describe(lang, e),
                e.text,
                str(e.id),
                "" if e.corrects is None else str(e.corrects),
            ]
        )
    return out.getvalue().encode()


def _when(text: str | None, default: int) -> int:
    if not text:
        return default
    if text.isdigit():
        return int(text)
    try:
        return parse_iso_ms(text if text[-1] == "Z" or "+" in text[10:] else text + "Z")
    except ProtocolError:
        raise web.HTTPBadRequest(text=f"not a time: {text!r}") from None


def _after(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    at, _, entry = text.partition(".")
    if not (at.isdigit() and entry.isdigit()):
        raise web.HTTPBadRequest(text="after is <at_ms>.<id>")
    return int(at), int(entry)


def _stamp(at_ms: int, tz: ZoneInfo) -> str:
    if at_ms <= 0 or at_ms >= 2**62:
        return "all"
    return datetime.fromtimestamp(at_ms / 1000, tz).strftime("%Y%m%d-%H%M")
