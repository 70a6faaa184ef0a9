"""Load a TOML config, validate it once, and report every problem clearly."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import tomllib
import types
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError

from edge.config.rules import Loc, Problem, check
from edge.config.schema import EdgeConfig
from edge.errors import ConfigError

log = logging.getLogger(__name__)

# Tables and lists inside each other: a real config needs 6 (cameras[0].motion.areas[0]
# .corners[0]); past this a crafted file would only exhaust the parser's recursion.
MAX_DEPTH = 32
BOM = "\ufeff"
BOM_RULE = (
    "the file starts with a byte-order mark (BOM), which TOML does not allow: "
    'save it as "UTF-8" without BOM (Notepad: Save as, Encoding "UTF-8", not '
    '"UTF-8 with BOM")'
)


def load(path: Path) -> EdgeConfig:
    """Read and validate ``path``; raise :class:`ConfigError` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"{path}: not UTF-8 text: {exc}"]) from exc
    return parse(text, str(path))


def parse(text: str, source: str) -> EdgeConfig:
    """Validate TOML ``text``; ``source`` names it in error messages."""
    if text.startswith(BOM):  # Windows Notepad's "UTF-8 with BOM": TOML forbids it
        raise ConfigError(source, [f"{source}: {BOM_RULE}"])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"{source}: TOML syntax error: {exc}"]) from exc
    except RecursionError as exc:  # tomllib recurses once per nested list or inline table
        raise ConfigError(source, [_too_deep(source)]) from exc
    return validate(raw, source)


def validate(raw: dict[str, Any], source: str) -> EdgeConfig:
    if _depth(raw) > MAX_DEPTH:
        raise ConfigError(source, [_too_deep(source)])
    # TOML dates and times are values of their own, not text: validated as their ISO
    # text (so a number key still says "must be a whole number"), then refused where
    # that text was accepted.
    dates = _dates(raw)
    try:
        # Strict JSON-mode validation: TOML already has real types, so "17" is not a pin
        # and true is not 1; strings still become paths, enums and byte sizes.
        cfg = EdgeConfig.model_validate_json(json.dumps(raw, default=_iso), strict=True)
    except ValidationError as exc:
        problems = [_from_pydantic(err, dates) for err in exc.errors()]
        problems += _not_text(dates, problems)
        raise ConfigError(source, [format_problem(source, p, raw) for p in problems]) from exc
    problems = _not_text(dates, [])
    problems += [p for p in check(cfg) if p.loc not in dates]
    if problems:
        raise ConfigError(source, [format_problem(source, p, raw) for p in problems])
    return cfg


def _too_deep(source: str) -> str:
    return f"{source}: nesting is too deep: more than {MAX_DEPTH} tables or lists inside each other"


def _depth(raw: Any) -> int:
    """How many tables and lists sit inside each other in ``raw``, counted without
    recursion and up to ``MAX_DEPTH + 1``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        stack += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return deepest


TomlDate = dt.date | dt.time  # datetime is a date


def _dates(node: Any, loc: Loc = ()) -> dict[Loc, TomlDate]:
    """Every TOML date, time or date-time in ``node``, by key path."""
    if isinstance(node, dt.date | dt.time):
        return {loc: node}
    if isinstance(node, list):
        node = dict(enumerate(node))
    found: dict[Loc, TomlDate] = {}
    if isinstance(node, dict):
        for key, child in node.items():
            found |= _dates(child, (*loc, key))
    return found


def _iso(value: Any) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"not a TOML value: {type(value).__name__}")


def _not_text(dates: dict[Loc, TomlDate], problems: list[Problem]) -> list[Problem]:
    """A problem for each date taken as text: those not already reported, at or above."""
    reported = [p.loc for p in problems]
    return [
        Problem(loc, value, _RULES["string_type"])
        for loc, value in dates.items()
        if not any(loc[: len(r)] == r for r in reported)
    ]


# pydantic messages that name Python types, replaced by what an installer can act on.
_RULES = {
    "model_type": "must be a table ([section] or [[list]] item), not a single value",
    "tuple_type": 'must be a list: ["a", "b"], or repeated [[...]] blocks for tables',
    "path_type": "must be a file or folder path in quotes",
    "string_type": "must be text in quotes",
    "int_type": "must be a whole number, without quotes",
    "int_from_float": "must be a whole number, without quotes",
    "float_type": "must be a number, without quotes",
    "bool_type": "must be true or false, without quotes",
    "byte_size": 'must be a size such as "500MB", "2GiB" or a whole number of bytes',
    "byte_size_unit": "unknown unit: use B, KB, MB, GB, TB (x1000) or KiB, MiB, GiB, TiB (x1024)",
}


def _from_pydantic(err: Any, dates: dict[Loc, TomlDate]) -> Problem:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if loc in dates:  # validated as its text: show it as written
        value = dates[loc]
        if not (kind.endswith("_type") or kind == "extra_forbidden"):
            kind = "string_type"  # the key takes text, and a date is not text
    if kind == "extra_forbidden":
        hint = _did_you_mean(loc)
        rule = "unknown key" + hint
        if "'password'?" in hint or "pass" in str(loc[-1]).lower():
            value = SecretStr(str(value))  # a misspelt password is still a password
    elif kind in _RULES:
        rule = _RULES[kind]
    elif kind == "missing":
        rule = "required key is missing"
        value = None
    else:
        rule = str(err["msg"]).removeprefix("Value error, ")
    return Problem(loc, value, rule)


def _did_you_mean(loc: Loc) -> str:
    known = _fields_at(EdgeConfig, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known keys here: {', '.join(known)}" if known else ""


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the section found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # index into a list of tables: same model
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None`` or ``tuple[X, ...]``, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
    return annotation


def format_loc(loc: Loc, raw: dict[str, Any] | None = None) -> str:
    """``("zones", 2, "cameras", 0)`` -> ``zones[2].cameras[0]``, naming list items by id."""
    out = ""
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = _label(node)
            if label:
                out += f"({label})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _label(node: Any) -> str:
    if isinstance(node, dict):
        for key in ("id", "name"):
            if isinstance(node.get(key), str):
                return f"{key}={node[key]!r}"
    return ""


def format_problem(source: str, problem: Problem, raw: dict[str, Any] | None = None) -> str:
    where = format_loc(problem.loc, raw) or "(top level)"
    value = problem.value
    if isinstance(value, SecretStr) or (problem.loc and problem.loc[-1] == "password"):
        shown = "'***'"
    elif value is None or isinstance(value, dict):
        shown = ""
    elif isinstance(value, str):
        shown = repr(_redact_url(value))
    elif isinstance(value, dt.date | dt.time):
        shown = value.isoformat()  # as written in TOML, without quotes
    else:
        shown = repr(value)
    middle = f" = {shown}" if shown else ""
    return f"{source}: {where}{middle}: {problem.rule}"


def _redact_url(value: str) -> str:
    """Hide the password of ``scheme://user:password@host`` (broker or RTSP URLs)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.password:
        return value
    return value.replace(f":{parts.password}@", ":***@", 1)
