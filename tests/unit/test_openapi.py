"""The OpenAPI document (edge/web/openapi.py): tags on every operation, the CSRF header
on every state change made with a session, response schemas from the box's models."""

from __future__ import annotations

from edge import snapshot
from edge.web.openapi import CSRF_HEADER, ROUTES, document


def test_every_operation_has_a_declared_tag() -> None:
    doc = document()
    declared = [t["name"] for t in doc["tags"]]
    assert len(declared) == len(set(declared))
    used = {op["tags"][0] for ops in doc["paths"].values() for op in ops.values()}
    assert used <= set(declared)
    assert doc["paths"]["/api/walktest"]["post"]["tags"] == ["walk test"]
    assert doc["paths"]["/metrics"]["get"]["tags"] == ["status"]


def test_state_changes_with_a_session_need_the_csrf_header() -> None:
    doc = document()
    scheme = doc["components"]["securitySchemes"]["csrf"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": CSRF_HEADER}
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        if route.public:
            assert op["security"] == []
        elif route.method in ("POST", "PUT", "PATCH", "DELETE"):
            assert op["security"] == [{"session": [], "csrf": []}, {"token": []}], route.path
        else:
            assert "security" not in op  # the document's default: session or token


def test_the_status_schema_is_the_status_model_s() -> None:
    doc = document()
    ok = doc["paths"]["/api/status"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/Status"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["Status"]["properties"]) == set(snapshot.Status.model_fields)
    assert set(schemas["Outbox"]["properties"]) == set(snapshot.Outbox.model_fields)
    # every reference points at a schema that is there
    text = str(doc)
    refs = {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs <= set(schemas), refs - set(schemas)
