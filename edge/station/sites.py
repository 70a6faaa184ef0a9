"""Sites: where the boxes are, what to do there, and whom to call.

A site has an id, a name, an address and coordinates, instructions
(*consignes*) per alarm category, a call list in order, and the boxes it
holds (by device id; a box is on one site). Sites come from a TOML or JSON
file (``edge station site load``; ``[[sites]]`` tables, or one site at the top
level) or from the page (supervisors), validated by one model whose errors
name the file, the key path, the value and the rule, as the box's config does.

A box's own birth may tell its address and coordinates
(:class:`edge.protocol.events.BoxSite`): a box on no site is shown with those.
Incidents are keyed by ``site:<id>``, or ``box:<device>`` for a box on no site.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from edge.config.load import format_problem
from edge.config.rules import Problem
from edge.config.schema import Section, Slug
from edge.errors import ConfigError, EdgeError
from edge.protocol.events import BoxSite
from edge.station.sql import Db
from edge.station.triage import Category

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS site_devices (
    device TEXT PRIMARY KEY,
    site_id TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS site_devices_by_site ON site_devices (site_id);
CREATE TABLE IF NOT EXISTS box_sites (
    device TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    at_ms INTEGER NOT NULL
) STRICT;
"""

ROLES = ("keyholder", "guard", "police", "fire_brigade", "technician", "customer", "other")
DEFAULT = "default"  # the instructions for a category the site does not list
MAX_STEPS = 30


def _line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if any(ord(c) < 32 for c in value):
        raise ValueError("must be one line, without control characters")
    return value


def _phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 2 or any(c not in "+0123456789 .-()" for c in value):
        raise ValueError("must be a phone number: digits, spaces, + . - ( )")
    return value


Line = Annotated[str, AfterValidator(_line)]
Step = Annotated[str, Field(max_length=300), AfterValidator(_line)]
InstructionKey = Literal[
    "fire", "panic", "intrusion", "tamper", "technical", "device_lost", "default"
]


class Contact(Section):
    """One line of the call list."""

    name: Annotated[str, Field(max_length=100), AfterValidator(_line)]
    role: Literal["keyholder", "guard", "police", "fire_brigade", "technician", "customer", "other"]
    phone: Annotated[str, Field(max_length=30), AfterValidator(_phone)]
    note: Annotated[str, Field(max_length=300)] = ""


class Site(Section):
    """One site, as a file or the page gives it."""

    id: Slug
    name: Annotated[str, Field(max_length=200), AfterValidator(_line)]
    address: Annotated[str, Field(max_length=300)] = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    devices: tuple[Slug, ...] = ()
    instructions: dict[InstructionKey, Annotated[tuple[Step, ...], Field(max_length=MAX_STEPS)]] = (
        Field(default_factory=dict)
    )
    contacts: Annotated[tuple[Contact, ...], Field(max_length=50)] = ()
    notes: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _together(self) -> Site:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        if len(set(self.devices)) != len(self.devices):
            raise ValueError("a device is listed twice")
        return self

    def steps(self, category: str) -> list[str]:
        """The instructions for an alarm of ``category`` (else the site's default ones)."""
        table: dict[str, tuple[str, ...]] = {str(k): v for k, v in self.instructions.items()}
        return list(table.get(category) or table.get(DEFAULT) or ())


class SiteFile(Section):
    sites: tuple[Site, ...]


_RULES = {
    "string_type": "must be text in quotes",
    "float_type": "must be a number, without quotes",
    "int_type": "must be a whole number, without quotes",
    "tuple_type": 'must be a list: ["a", "b"]',
    "dict_type": "must be a table of lists",
    "model_type": "must be a table",
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "literal_error": "must be one of the listed words",
}


def parse_file(path: Path) -> list[Site]:
    """The sites of a ``.toml`` or ``.json`` file; ConfigError listing every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"{source}: cannot read: {exc}"]) from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(source, [f"{source}: syntax error: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"{source}: must be a table (an object) of sites"])
    if "sites" not in raw:
        raw = {"sites": [raw]}  # one site at the top level
    return validate(raw, source)


def validate(raw: dict[str, Any], source: str) -> list[Site]:
    """``{"sites": [...]}`` validated; ConfigError naming key paths, values and rules."""
    try:
        parsed = SiteFile.model_validate_json(json.dumps(raw), strict=True)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise ConfigError(source, [format_problem(source, p, raw) for p in problems]) from exc
    problems = []
    owner: dict[str, str] = {}
    for i, site in enumerate(parsed.sites):
        if site.id in [s.id for s in parsed.sites[:i]]:
            problems.append(Problem(("sites", i, "id"), site.id, "another site has this id"))
        for j, device in enumerate(site.devices):
            if device in owner:
                rule = f"already on site {owner[device]!r}: a box is on one site"
                problems.append(Problem(("sites", i, "devices", j), device, rule))
            owner.setdefault(device, site.id)
    if problems:
        raise ConfigError(source, [format_problem(source, p, raw) for p in problems])
    return list(parsed.sites)


def parse_site(raw: object, source: str = "site") -> Site:
    """One site sent by the page."""
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"{source}: must be an object"])
    (site,) = validate({"sites": [raw]}, source)
    return site


def _problem(err: Any) -> Problem:
    loc = tuple(part for part in err["loc"] if part != "[key]")  # a table's key itself
    kind = err["type"]
    rule = _RULES.get(kind) or str(err["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        rule = str(err["msg"]).replace("Input should be", "must be")
    value = None if kind == "missing" else err.get("input")
    return Problem(loc, value, rule)


# -- the store ---------------------------------------------------------------------


class SiteConflict(EdgeError):
    """A box already on another site."""


def put(db: Db, site: Site, by: str, at_ms: int) -> bool:
    """Create or replace ``site`` and its boxes; True when it is new.

    SiteConflict when one of its boxes is on another site (remove it there first).
    """
    taken = _owners(db, site.devices)
    clash = {d: s for d, s in taken.items() if s != site.id}
    if clash:
        raise SiteConflict(", ".join(f"{d} is on site {s!r}" for d, s in sorted(clash.items())))
    body = site.model_dump_json(exclude={"id", "name"})
    cur = db.execute(
        "INSERT INTO sites (id, name, body, updated_ms, updated_by) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (site.id, site.name, body, at_ms, by),
    )
    new = cur.rowcount == 1
    if not new:
        db.execute(
            "UPDATE sites SET name = ?, body = ?, updated_ms = ?, updated_by = ? WHERE id = ?",
            (site.name, body, at_ms, by, site.id),
        )
    db.execute("DELETE FROM site_devices WHERE site_id = ?", (site.id,))
    for device in site.devices:
        db.execute("INSERT INTO site_devices (device, site_id) VALUES (?, ?)", (device, site.id))
    return new


def remove(db: Db, site_id: str) -> bool:
    db.execute("DELETE FROM site_devices WHERE site_id = ?", (site_id,))
    return db.execute("DELETE FROM sites WHERE id = ?", (site_id,)).rowcount == 1


def get(db: Db, site_id: str) -> Site | None:
    row = db.execute("SELECT id, name, body FROM sites WHERE id = ?", (site_id,)).fetchone()
    if row is None:
        return None
    devices = [
        r[0]
        for r in db.execute(
            "SELECT device FROM site_devices WHERE site_id = ? ORDER BY device", (site_id,)
        )
    ]
    return Site.model_validate(
        {**json.loads(row[2]), "id": row[0], "name": row[1], "devices": devices}
    )


def listing(db: Db) -> list[dict[str, Any]]:
    """Every site: id, name, address and boxes, by name."""
    devices: dict[str, list[str]] = {}
    for device, site_id in db.execute("SELECT device, site_id FROM site_devices ORDER BY device"):
        devices.setdefault(site_id, []).append(device)
    out = []
    for site_id, name, body, updated_ms, by in db.execute(
        "SELECT id, name, body, updated_ms, updated_by FROM sites ORDER BY name, id"
    ):
        data = json.loads(body)
        out.append(
            {
                "id": site_id,
                "name": name,
                "address": data.get("address", ""),
                "devices": devices.get(site_id, []),
                "updated_ms": updated_ms,
                "updated_by": by,
            }
        )
    return out


def _owners(db: Db, devices: Sequence[str]) -> dict[str, str]:
    if not devices:
        return {}
    marks = ", ".join("?" for _ in devices)
    rows = db.execute(
        f"SELECT device, site_id FROM site_devices WHERE device IN ({marks})",  # noqa: S608
        list(devices),
    )
    return {str(d): str(s) for d, s in rows}


def key_of(db: Db, device: str) -> str:
    """The incident key of a box's site: ``site:<id>``, or ``box:<device>``."""
    row = db.execute("SELECT site_id FROM site_devices WHERE device = ?", (device,)).fetchone()
    return f"site:{row[0]}" if row else f"box:{device}"


def devices_of(db: Db, key: str) -> list[str]:
    kind, _, name = key.partition(":")
    if kind == "box":
        return [name]
    rows = db.execute("SELECT device FROM site_devices WHERE site_id = ? ORDER BY device", (name,))
    return [str(r[0]) for r in rows]


def put_box_site(db: Db, device: str, site: BoxSite, at_ms: int) -> None:
    """What a box's birth says of where it is."""
    body = json.dumps(site.as_dict(), separators=(",", ":"))
    db.execute(
        "INSERT INTO box_sites (device, body, at_ms) VALUES (?, ?, ?) ON CONFLICT (device) "
        "DO UPDATE SET body = excluded.body, at_ms = excluded.at_ms",
        (device, body, at_ms),
    )


def box_site(db: Db, device: str) -> dict[str, Any] | None:
    row = db.execute("SELECT body FROM box_sites WHERE device = ?", (device,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def view(db: Db, key: str, category: str | None = None) -> dict[str, Any]:
    """The site of an incident for the page: the site's own record, else what its box
    said in its birth. ``steps``: the instructions for ``category``."""
    kind, _, name = key.partition(":")
    site = get(db, name) if kind == "site" else None
    if site is not None:
        data = site.model_dump(mode="json")
        return {
            **data,
            "key": key,
            "linked": True,
            "steps": site.steps(category) if category else [],
        }
    told = (box_site(db, name) or {}) if kind == "box" else {}
    return {
        "key": key,
        "linked": False,
        "id": None,
        "name": told.get("name") or name,
        "address": told.get("address", ""),
        "latitude": told.get("latitude"),
        "longitude": told.get("longitude"),
        "devices": devices_of(db, key),
        "instructions": {},
        "contacts": [],
        "notes": "",
        "steps": [],
    }


def names(db: Db, keys: Sequence[str]) -> dict[str, str]:
    """The name to show for each incident key (the queue's rows)."""
    out: dict[str, str] = {}
    ids = [k[5:] for k in keys if k.startswith("site:")]
    boxes = [k[4:] for k in keys if k.startswith("box:")]
    for table, column, wanted, prefix in (
        ("sites", "id", ids, "site:"),
        ("box_sites", "device", boxes, "box:"),
    ):
        for start in range(0, len(wanted), 500):
            part = list(dict.fromkeys(wanted[start : start + 500]))
            marks = ", ".join("?" for _ in part)
            what = "name" if table == "sites" else "body"
            for key, value in db.execute(
                f"SELECT {column}, {what} FROM {table} WHERE {column} IN ({marks})",  # noqa: S608
                part,
            ):
                name = value if table == "sites" else json.loads(value).get("name")
                if name:
                    out[prefix + key] = str(name)
    for key in keys:
        out.setdefault(key, key.partition(":")[2])
    return out


CATEGORIES = tuple(c.value for c in Category)
