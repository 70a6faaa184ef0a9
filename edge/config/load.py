"""Load a TOML config, validate it once, and report every problem clearly."""

from __future__ import annotations

import difflib
import json
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
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"{source}: TOML syntax error: {exc}"]) from exc
    return validate(raw, source)


def validate(raw: dict[str, Any], source: str) -> EdgeConfig:
    try:
        # Strict JSON-mode validation: TOML already has real types, so "17" is not a pin
        # and true is not 1; strings still become paths, enums and byte sizes.
        cfg = EdgeConfig.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as exc:
        problems = [_from_pydantic(err) for err in exc.errors()]
        raise ConfigError(source, [format_problem(source, p, raw) for p in problems]) from exc
    cross = check(cfg)
    if cross:
        raise ConfigError(source, [format_problem(source, p, raw) for p in cross])
    return cfg


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


def _from_pydantic(err: Any) -> Problem:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
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
