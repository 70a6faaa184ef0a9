"""What every route handler answers with: JSON errors, request bodies, JSON text."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError, LookupError)  # LookupError: charset


class BadRequest(Exception):
    """A request body that is not what the route takes."""


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


async def json_object(request: web.Request, usage: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except _JSON_ERRORS as exc:
        raise BadRequest(usage) from exc
    if not isinstance(body, dict):
        raise BadRequest(usage)
    return body


def whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
