"""Every route of the page, and the OpenAPI 3.1 document made from the same table.

Response schemas come from the same pydantic models the box builds its answers
with (:mod:`edge.snapshot` for the status); every state-changing request with a
session cookie must carry the session's CSRF token in ``X-CSRF-Token`` (the
``csrf`` security scheme), a bearer token needs none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from edge import __version__, snapshot

CSRF_HEADER = "X-CSRF-Token"
SCHEMA_REF = "#/components/schemas/{model}"


class Healthz(BaseModel):
    """What a probe reads: healthy or not, and the same verdict as the page's badge."""

    healthy: bool
    problems: dict[str, str]
    verdict: snapshot.Verdict
    faults: list[snapshot.Verdict]


class Inputs(BaseModel):
    """What the live inputs page reads (also each Server-Sent Event's data)."""

    zones: list[snapshot.Zone]
    armed: dict[str, bool]
    walktest: snapshot.WalkTest


class Error(BaseModel):
    error: str


class Problems(BaseModel):
    """A config that does not load: every problem, as ``edge check-config`` prints it."""

    ok: bool
    problems: list[str]


# Tags, in the order the document lists them, with the paths they group.
TAGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "session",
        "Login, setup code, logout, CSRF token",
        ("/login", "/api/login", "/api/setup", "/api/logout", "/api/session"),
    ),
    ("status", "Health and every figure of the box", ("/healthz", "/api/status", "/metrics")),
    ("inputs", "Zones live, and simulated inputs on a mock box", ("/api/inputs", "/api/sim/")),
    ("walk test", "A technician's walk test of the intrusion zones", ("/api/walktest",)),
    (
        "events",
        "The local event journal, its stills and clips; a manual test event",
        ("/api/events", "/api/media"),
    ),
    ("cameras", "Frames, overlays, snapshots, incident holds", ("/api/cameras", "/api/holds")),
    ("config", "The config: view, check, apply with rollback", ("/api/config",)),
    ("diagnostics", "Logs, bundle, this document", ("/api/diagnostics", "/api/openapi.json")),
    ("page", "The page itself, its words in French and English", ("/",)),
)


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
    response: type[BaseModel] | None = None  # the JSON body of a success

    @property
    def tag(self) -> str:
        if self.tags:
            return self.tags[0]
        return next(name for name, _d, prefixes in TAGS if self.path.startswith(prefixes))

    @property
    def changes_state(self) -> bool:
        return self.method not in ("GET", "HEAD") and not self.public


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
TEXT = _obj(
    ["text"],
    text={"type": "string", "maxLength": 1_000_000},
    name={"type": "string", "pattern": "^[^/\\\\\\u0000-\\u001f\\u007f]{1,100}$"},
)
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
LANG = {"name": "lang", "in": "path", "required": True, "schema": {"type": "string"}}
CAMERA = {"name": "camera", "in": "path", "required": True, "schema": {"type": "string"}}
MEDIA = {"name": "media", "in": "path", "required": True, "schema": {"type": "string"}}
HOLD = _obj(
    ["camera", "minutes", "keep_days", "why"],
    camera={"type": "string"},
    minutes={"type": "integer", "enum": [5, 15, 30, 60, 120]},
    keep_days={"type": "integer", "enum": [7, 30, 90]},
    why={"type": "string", "minLength": 1, "maxLength": 200},
)

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
        "/i18n/{lang}.json",
        "i18n_words",
        "The page's words in one language (fr, en), and the box's time zone",
        public=True,
        statuses=(200, 404),
    ),
    Route(
        "GET",
        "/i18n/i18n.js",
        "i18n_script",
        "The page's words and clocks (script)",
        public=True,
        produces="text/javascript",
    ),
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Healthy or not, and why (for probes)",
        public=True,
        statuses=(200, 503),
        response=Healthz,
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
    Route(
        "GET",
        "/api/status",
        "status",
        "Every figure of the box (overview)",
        response=snapshot.Status,
    ),
    Route(
        "GET",
        "/api/status/stream",
        "status_stream",
        "The status as Server-Sent Events, on every change (every page's verdict)",
        produces="text/event-stream",
    ),
    Route(
        "GET",
        "/api/inputs",
        "inputs",
        "Zones with live state, type, last change and count",
        response=Inputs,
    ),
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
    Route(
        "GET",
        "/api/media/{media}",
        "media",
        "A still (JPEG) or clip (MP4) of an event, while it is still on the box",
        produces="application/octet-stream",
        statuses=(200, 404),
    ),
    Route("GET", "/api/cameras", "cameras", "Cameras with state, overlays and recording state"),
    Route(
        "GET",
        "/api/cameras/{camera}/frame",
        "camera_frame",
        "Latest frame (JPEG, else PNG); X-Frame-At says when it was taken",
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
    Route("GET", "/api/holds", "holds", "Incident holds on recorded footage", statuses=(200, 404)),
    Route(
        "POST",
        "/api/holds",
        "hold_place",
        "Hold the last minutes of a camera's footage past retention",
        body=HOLD,
        statuses=(201, 400, 404, 409),
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
    schemas: dict[str, Any] = {"Error": Error.model_json_schema(ref_template=SCHEMA_REF)}
    for route in ROUTES:
        op: dict[str, Any] = {
            "operationId": route.handler,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {
                str(code): _response(route, code, schemas)
                for code in (*route.statuses, 401, 403, 413)
            },
        }
        if route.public:
            op["security"] = []
            for code in ("401",):
                op["responses"].pop(code, None)
        elif route.changes_state:  # a session needs its CSRF token too; a bearer token not
            op["security"] = [{"session": [], "csrf": []}, {"token": []}]
        params = [NAME] if "{name}" in route.path else []
        params += [LANG] if "{lang}" in route.path else []
        params += [CAMERA] if "{camera}" in route.path else []
        params += [MEDIA] if "{media}" in route.path else []
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
        "tags": [{"name": name, "description": text} for name, text, _p in TAGS],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "edge_session"},
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CSRF_HEADER,
                    "description": "The session's CSRF token (GET /api/session), on every "
                    "state-changing request made with the session cookie; a foreign Origin "
                    "is refused too",
                },
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"session": []}, {"token": []}],
    }


def _response(route: Route, code: int, schemas: dict[str, Any]) -> dict[str, Any]:
    if code == 422:
        _register(Problems, schemas)
        return {"description": "422", "content": {"application/json": {"schema": _ref(Problems)}}}
    if code >= 400 and not (code == 503 and route.response is Healthz):
        return {"description": str(code), "content": {"application/json": {"schema": _ref(Error)}}}
    if route.response is not None:
        _register(route.response, schemas)
        return {
            "description": str(code),
            "content": {"application/json": {"schema": _ref(route.response)}},
        }
    return {"description": str(code), "content": {route.produces: {"schema": {}}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(model=model.__name__)}


def _register(model: type[BaseModel], schemas: dict[str, Any]) -> None:
    """The model's JSON Schema in components, its nested models beside it."""
    if model.__name__ in schemas:
        return
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
