"""Shared pieces of the wire format: version, timestamps, strict JSON objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from edge.errors import ProtocolError

VERSION = 2


def dumps(body: dict[str, Any]) -> bytes:
    """Compact JSON, as every payload is sent."""
    return json.dumps(body, separators=(",", ":")).encode()


def iso_ms(epoch_ms: int) -> str:
    """UTC ISO 8601 with milliseconds: ``2026-11-28T14:23:10.123Z``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_iso_ms(text: object) -> int:
    """Inverse of :func:`iso_ms`; ProtocolError unless an ISO 8601 string with a zone."""
    if not isinstance(text, str):
        raise ProtocolError(f"timestamp must be a string, not {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"bad timestamp {text!r}") from exc
    if moment.tzinfo is None:
        raise ProtocolError(f"timestamp {text!r} has no time zone")
    return round(moment.timestamp() * 1000)


def as_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name} must be an integer, not {value!r}")
    return value


def as_bool(value: object, name: str, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} must be true or false, not {value!r}")
    return value


def load(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to convert
        raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("payload must be a JSON object")
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("payload has no integer protocol version 'v'")
    if version > VERSION:
        raise ProtocolError(f"protocol version {version} is newer than {VERSION}")
    return data
