"""Every route of the page, and the OpenAPI 3.1 document made from the same table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge import __version__


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str  # method name on edge.web.api.Api
    summary: str
    public: bool = False
    big_body: bool = False  # config upload: up to 1 MiB instead of 64 KiB
    body: dict[str, Any] | None = None  # JSON Schema of a JSON request body
    query: tuple[tuple[str, dict[str, Any]], ...] = ()
    produces: str = "application/json"
    statuses: tuple[int, ...] = (200,)
    tags: tuple[str, ...] = field(default=())


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
TEXT = _obj(
    ["text"],
    text={"type": "string", "maxLength": 1_000_000},
    name={"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}$"},
)
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
CAMERA = {"name": "camera", "in": "path", "required": True, "schema": {"type": "string"}}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/",
        "index",
        "The page (redirects to /login when logged out)",
        produces="text/html",
        statuses=(200, 302),
    ),
    Route("GET", "/login", "login_page", "The login page", public=True, produces="text/html"),
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Healthy or not, and why (for probes)",
        public=True,
        statuses=(200, 503),
    ),
    Route("GET", "/api/login", "login_state", "Whether a password is set", public=True),
    Route(
        "POST",
        "/api/login",
        "login",
        "Log in; sets the session cookie",
        public=True,
        body=_obj(["password"], password=PASSWORD),
        statuses=(200, 400, 401, 409, 429),
    ),
    Route(
        "POST",
        "/api/setup",
        "setup",
        "Set the first password with the one-time setup code",
        public=True,
        body=_obj(["code", "password"], code={"type": "string"}, password=PASSWORD),
        statuses=(200, 400, 401, 409, 429),
    ),
    Route("POST", "/api/logout", "logout", "End the session"),
    Route("GET", "/api/session", "session", "This session's CSRF token"),
    Route("GET", "/api/status", "status", "Every figure of the box (overview)"),
    Route("GET", "/api/inputs", "inputs", "Zones with live state, type, last change and count"),
    Route(
        "GET",
        "/api/inputs/stream",
        "inputs_stream",
        "Zones as Server-Sent Events, on every change",
        produces="text/event-stream",
    ),
    Route(
        "POST",
        "/api/sim/inputs/{name}",
        "simulate",
        "Drive a simulated input (mock GPIO only)",
        body=_obj(["active"], active={"type": "boolean"}),
        statuses=(200, 400, 404),
    ),
    Route(
        "POST",
        "/api/sim/inputs/{name}/pulses",
        "pulses",
        "A pulse train on a simulated input",
        body=_obj(
            ["count", "on_ms", "off_ms"],
            count={"type": "integer", "minimum": 1, "maximum": 100000},
            on_ms={"type": "number", "exclusiveMinimum": 0},
            off_ms={"type": "number", "exclusiveMinimum": 0},
        ),
        statuses=(202, 400, 404, 409),
    ),
    Route(
        "GET", "/api/walktest", "walk_status", "The running walk test, if any", statuses=(200, 404)
    ),
    Route(
        "POST",
        "/api/walktest",
        "walk_start",
        "Start a walk test of the intrusion zones",
        body=_obj(["minutes"], minutes={"type": "number", "exclusiveMinimum": 0, "maximum": 240}),
        statuses=(201, 400, 404, 409),
    ),
    Route(
        "DELETE",
        "/api/walktest",
        "walk_stop",
        "Stop the walk test: its summary",
        statuses=(200, 404, 409),
    ),
    Route(
        "GET",
        "/api/events",
        "events",
        "The local event journal with delivery state",
        query=(
            ("kind", {"type": "string"}),
            ("zone", {"type": "string"}),
            ("state", {"type": "string", "enum": ["queued", "sent", "acked"]}),
            ("since", {"type": "string", "format": "date-time"}),
            ("until", {"type": "string", "format": "date-time"}),
            ("before", {"type": "integer", "minimum": 1}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        statuses=(200, 400, 404),
    ),
    Route(
        "POST",
        "/api/events/test",
        "test_event",
        "Send a manual test event (601) to the station",
        statuses=(201, 404),
    ),
    Route("GET", "/api/cameras", "cameras", "Cameras with state, frame rate and overlays"),
    Route(
        "GET",
        "/api/cameras/{camera}/frame",
        "camera_frame",
        "Latest lores frame (JPEG, else PNG)",
        produces="image/*",
        statuses=(200, 404),
    ),
    Route(
        "GET",
        "/api/cameras/{camera}/snapshot",
        "camera_snapshot",
        "A fresh full-size still (JPEG download)",
        produces="image/jpeg",
        statuses=(200, 404),
    ),
    Route(
        "GET", "/api/config", "config", "The running config, secrets redacted", statuses=(200, 404)
    ),
    Route(
        "POST",
        "/api/config/check",
        "config_check",
        "Validate a config as edge check-config does",
        big_body=True,
        body=TEXT,
        statuses=(200, 400, 404, 422),
    ),
    Route(
        "POST",
        "/api/config/apply",
        "config_apply",
        "Validate, apply, roll back if the box is not healthy",
        big_body=True,
        body=TEXT,
        statuses=(202, 400, 404, 409, 422),
    ),
    Route(
        "GET",
        "/api/diagnostics/{name}",
        "diagnostics",
        "Download logs.txt or bundle.zip",
        produces="application/octet-stream",
        statuses=(200, 404),
    ),
    Route("GET", "/api/openapi.json", "openapi", "This document"),
    Route("GET", "/metrics", "metrics", "Prometheus text format", produces="text/plain"),
)


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "operationId": route.handler,
            "summary": route.summary,
            "responses": {
                str(code): _response(route, code) for code in (*route.statuses, 401, 403, 413)
            },
        }
        if route.public:
            op["security"] = []
            for code in ("401",):
                op["responses"].pop(code, None)
        params = [NAME] if "{name}" in route.path else []
        params += [CAMERA] if "{camera}" in route.path else []
        params += [
            {"name": n, "in": "query", "required": False, "schema": s} for n, s in route.query
        ]
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Edge gateway technician API", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "edge_session"},
                "token": {"type": "http", "scheme": "bearer"},
            }
        },
        "security": [{"session": []}, {"token": []}],
    }


def _response(route: Route, code: int) -> dict[str, Any]:
    if code >= 400 or route.produces == "application/json":
        return {"description": str(code), "content": {"application/json": {"schema": {}}}}
    return {"description": str(code), "content": {route.produces: {"schema": {}}}}
