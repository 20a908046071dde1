"""Every API error is a problem-details 4xx, and bad input writes nothing.

These tests walk the app's own OpenAPI document, so every /api/v1 operation any package adds is
covered without being listed here: unauthenticated calls, keys without the needed scope, malformed
JSON, unknown fields, wrong types, oversized bodies and wrong query types, each answered with
application/problem+json, and the row count of every table unchanged afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.api.deps import current_principal
from hub.auth import SCOPES

# The store plays no part in these refusals: each comes from the app's own checks (the key's principal
# and scope, FastAPI's body and query validation, the body-size limit, the problem handler) before any
# handler runs; the one store statement on the way, the key's plain SELECT, has no PostgreSQL branch and
# is tests/api's on both stores. So SQLite only (any_store), as tests/web/test_plain_words.py's refusals.
pytestmark = pytest.mark.any_store

METHODS = ("get", "post", "put", "patch", "delete")
# A path parameter no row has: the checks below must be answered before any handler looks it up.
MISSING_ID = "999999"
# /api/v1 operations anyone may call. Public pages belong under /channels/<name>/ or the web UI.
PUBLIC_OPERATIONS: set[tuple[str, str]] = set()


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


def assert_problem(response, status: int, context: object) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, f"{context}: expected {status}, got {response.status_code} {response.text[:300]}"
    assert response.headers.get("content-type", "").startswith("application/problem+json"), (
        f"{context}: content-type {response.headers.get('content-type')!r}"
    )
    body = response.json()
    for field in ("type", "title", "status", "detail"):
        assert field in body, f"{context}: problem without {field!r}: {body}"
    assert body["status"] == status, f"{context}: status field {body['status']} != {status}"
    assert isinstance(body["detail"], str) and body["detail"], f"{context}: empty detail"
    return body


class Operation:
    def __init__(self, path: str, method: str, spec: dict[str, Any], doc: dict[str, Any], route: Any):
        self.path, self.method, self.spec, self.doc, self.route = path, method, spec, doc, route

    def __repr__(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", MISSING_ID, self.path)

    @property
    def body_media_type(self) -> str | None:
        return next(iter(self.spec.get("requestBody", {}).get("content", {})), None)

    @property
    def body_schema(self) -> dict[str, Any] | None:
        """The JSON body's schema (None for operations without one, or with a form body)."""
        content = self.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return None if media is None else resolve(self.doc, media.get("schema", {}))

    def query_params(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for param in self.spec.get("parameters", []):
            param = resolve(self.doc, param)
            if param.get("in") == "query":
                yield param["name"], resolve(self.doc, param.get("schema", {}))

    def dependencies(self) -> tuple[bool, set[str]]:
        """(needs a principal, the scopes it must hold), read from the route's dependency tree."""
        by_name = {f"require_{s.replace(':', '_')}": s for s in SCOPES}
        authenticated, scopes = False, set()

        def walk(dependant: Any) -> None:
            nonlocal authenticated
            for dep in dependant.dependencies:
                if dep.call is current_principal:
                    authenticated = True
                name = getattr(dep.call, "__name__", "")
                if name in by_name:
                    scopes.add(by_name[name])
                walk(dep)

        if self.route is not None:
            walk(self.route.dependant)
        return authenticated, scopes


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        section = "parameters" if "/parameters/" in schema["$ref"] else "schemas"
        schema = doc["components"][section][name]
    return schema


def json_types(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits ("any" when it admits everything), null left out."""
    schema = resolve(doc, schema)
    if not schema:
        return {"any"}
    types: set[str] = set()
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            types |= json_types(doc, option)
    for option in schema.get("allOf", []):
        types |= json_types(doc, option)
    declared = schema.get("type")
    if isinstance(declared, list):
        types |= set(declared)
    elif declared:
        types.add(declared)
    elif "enum" in schema or "const" in schema:
        types.add("string")
    elif "properties" in schema:
        types.add("object")
    return types - {"null"}


def wrong_value(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON value the schema refuses by type, or None when no such value is certain."""
    types = json_types(doc, schema)
    if not types or "any" in types:
        return None
    if not types & {"object", "array"}:
        return {"zz": [1]}  # an object where a scalar belongs
    if not types & {"string", "integer", "number", "boolean"}:
        return "zz-not-a-container"
    return None


def api_routes(app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Every route with its effective dependencies (FastAPI >= 0.160 nests included routers)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into app.routes
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    yield from (r for r in iter_route_contexts(app.routes) if hasattr(r, "dependant"))


# The OpenAPI document of an app whose routes are the same (the same code at the same paths), worked
# out once per process: FastAPI makes it anew for every app (0.4-0.7 s of CPU, most of each test's
# set-up here), and every test of this module builds an app of the same routes on either store.
_documents: dict[tuple[Any, ...], dict[str, Any]] = {}


def route_table(app) -> tuple[Any, ...]:  # type: ignore[no-untyped-def]
    """What the document is made from, route by route: any route added, removed or changed differs."""
    return tuple(
        (type(r).__name__, getattr(r, "path", None), tuple(sorted(getattr(r, "methods", None) or ())),
         getattr(getattr(r, "endpoint", None), "__code__", None), getattr(r, "include_in_schema", None),
         getattr(r, "response_model", None), getattr(r, "name", None))
        for r in app.routes
    )


@pytest.fixture
def operations(app, client) -> list[Operation]:  # type: ignore[no-untyped-def]
    key = route_table(app)
    if key in _documents:
        app.openapi_schema = _documents[key]  # what app.openapi() keeps once it has made the document
    doc = client.get("/api/openapi.json").json()  # still the document the app serves
    _documents.setdefault(key, app.openapi_schema)
    routes = {(r.path, m.lower()): r for r in api_routes(app) for m in (r.methods or ())}
    found = [
        Operation(path, method, spec, doc, routes.get((path, method)))
        for path, item in doc["paths"].items() if path.startswith("/api/v1/")
        for method, spec in item.items() if method in METHODS
    ]
    assert found, "the OpenAPI document lists no /api/v1 operations"
    return found


@pytest.fixture
def keys(api_key):  # type: ignore[no-untyped-def]
    """Keys made before any row count is taken: one admin, and one per scope lacking just that scope."""
    everything = [s for s in SCOPES if s != "admin"]
    lacking = {scope: api_key(*[s for s in everything if s != scope]) for scope in everything}
    lacking["admin"] = api_key(*everything)
    return {"admin": api_key("admin"), "lacking": lacking}


def test_every_operation_needs_a_principal(hub, client, operations, keys):
    before = counts(hub)
    for op in operations:
        authenticated, _ = op.dependencies()
        if (op.method, op.path) in PUBLIC_OPERATIONS:
            continue
        assert authenticated, f"{op} takes no principal; protect it with require(scope) or list it as public"
        for headers in ({}, {"Authorization": "Bearer hub_deadbeef_not-a-real-key"}, {"X-API-Key": "wrong"}):
            response = client.request(op.method.upper(), op.url, headers=headers)
            body = assert_problem(response, 401, f"{op} with {headers or 'no credentials'}")
            assert response.headers.get("www-authenticate", "").startswith("Bearer"), op
            assert body["type"].startswith("/problems/")
    assert counts(hub) == before


def test_a_key_without_the_scope_gets_403(hub, client, operations, keys):
    before = counts(hub)
    checked = 0
    for op in operations:
        _, scopes = op.dependencies()
        for scope in scopes:
            response = client.request(op.method.upper(), op.url, headers=keys["lacking"][scope], json={})
            body = assert_problem(response, 403, f"{op} with a key lacking {scope}")
            assert body.get("scope") == scope, f"{op}: 403 names {body.get('scope')!r}, not {scope!r}"
            checked += 1
    assert checked, "no operation declares a scope"
    assert counts(hub) == before


def test_bodies_that_are_not_valid_json_are_400(hub, client, operations, keys):
    before = counts(hub)
    for op in operations:
        if op.body_schema is None:
            continue
        for raw in (b'{"title": ', b"{'single': 'quotes'}", b"\xff\xfe not utf-8"):
            response = client.request(op.method.upper(), op.url, content=raw,
                                      headers={**keys["admin"], "Content-Type": "application/json"})
            assert_problem(response, 400, f"{op} with body {raw!r}")
    assert counts(hub) == before


def test_unknown_fields_are_422_naming_them(hub, client, operations, keys):
    before = counts(hub)
    for op in operations:
        schema = op.body_schema
        if schema is None:
            continue
        if "properties" in schema:
            payload, field = {"zz_unknown_field": 1}, "zz_unknown_field"
        elif "properties" in resolve(op.doc, schema.get("items", {})):
            payload, field = [{"zz_unknown_field": 1}], "0.zz_unknown_field"
        else:
            continue  # a free-form object (a dict of attributes): any key is allowed
        response = client.request(op.method.upper(), op.url, json=payload, headers=keys["admin"])
        body = assert_problem(response, 422, f"{op} with an unknown field")
        unknown = [e for e in body.get("errors", []) if e.get("field") == field]
        assert unknown and unknown[0]["type"] == "extra_forbidden", (
            f"{op} accepts unknown fields (give its body model extra='forbid'): {body}"
        )
    assert counts(hub) == before


def test_wrong_types_are_422_naming_the_field(hub, client, operations, keys):
    before = counts(hub)
    checked = 0
    for op in operations:
        schema = op.body_schema
        if schema is None:
            continue
        types = json_types(op.doc, schema)
        whole = [1, 2, 3] if "object" in types else {"zz": 1} if "array" in types else None
        if whole is not None:
            assert_problem(client.request(op.method.upper(), op.url, json=whole, headers=keys["admin"]), 422,
                           f"{op} with a body of the wrong JSON type")
        for name, prop in resolve(op.doc, schema).get("properties", {}).items():
            value = wrong_value(op.doc, prop)
            if value is None:
                continue
            response = client.request(op.method.upper(), op.url, json={name: value}, headers=keys["admin"])
            body = assert_problem(response, 422, f"{op} with {name}={value!r}")
            fields = [e.get("field", "") for e in body.get("errors", [])]
            assert any(f == name or f.startswith(f"{name}.") for f in fields), f"{op}: no error names {name}: {body}"
            checked += 1
    assert checked, "no body property was checked"
    assert counts(hub) == before


def test_query_parameters_of_the_wrong_type_are_422(hub, client, operations, keys):
    before = counts(hub)
    for op in operations:
        for name, schema in op.query_params():
            types = json_types(op.doc, schema)
            if types and types <= {"integer", "number", "boolean"} or types == {"array"} and json_types(
                op.doc, schema.get("items", {})
            ) <= {"integer", "number", "boolean"}:
                response = client.request(op.method.upper(), op.url, params={name: "zz-not-a-number"},
                                          headers=keys["admin"])
                body = assert_problem(response, 422, f"{op} with ?{name}=zz-not-a-number")
                assert any(e.get("field", "").split(".")[0] == name for e in body.get("errors", [])), (op, body)
    assert counts(hub) == before


def oversized(media_type: str | None, limit: int) -> tuple[bytes, str]:
    """A body over the limit in the operation's own media type, so the route really reads it."""
    filler = b"x" * (limit + 1)
    if media_type == "multipart/form-data":
        head = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        return head + filler + b"\r\n--zz--\r\n", "multipart/form-data; boundary=zz"
    if media_type == "application/x-www-form-urlencoded":
        return b"field=" + filler, media_type
    return b'{"title": "' + filler + b'"}', "application/json"


def test_oversized_bodies_are_413_with_or_without_content_length(hub, client, operations, keys):
    limit = hub.settings.api.max_body_bytes
    before = counts(hub)
    checked = 0
    for op in operations:
        if op.method == "get":
            continue
        body, content_type = oversized(op.body_media_type, limit)
        headers = {**keys["admin"], "Content-Type": content_type}
        declared = client.request(op.method.upper(), op.url, content=body, headers=headers)
        assert_problem(declared, 413, f"{op} with Content-Length")
        if op.body_media_type is None:
            continue  # nothing reads a body the operation does not take

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start:start + 64 * 1024]

        streamed = client.request(op.method.upper(), op.url, content=chunks(), headers=headers)
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, f"{op} with a chunked body")
        checked += 1
    assert checked, "no operation takes a body"
    assert counts(hub) == before


def test_unknown_routes_are_404_and_wrong_methods_405(hub, client, operations, keys):
    for url in ("/api/v1/no-such-thing", "/api/v2/tasks", "/nowhere"):
        assert_problem(client.get(url, headers=keys["admin"]), 404, url)
    paths: dict[str, set[str]] = {}
    for op in operations:
        paths.setdefault(op.url, set()).add(op.method)
    for url, methods in paths.items():
        wrong = next(m for m in ("put", "patch", "delete", "post") if m not in methods)
        response = client.request(wrong.upper(), url, headers=keys["admin"])
        assert_problem(response, 405, f"{wrong.upper()} {url}")
        assert response.headers.get("allow"), f"{url}: a 405 should list the allowed methods"


@pytest.mark.parametrize(("contact", "field"), [({"email": "anna@@example"}, "contact.email"),
                                                 ({"phone": "+7 12"}, "contact.phone")])
def test_invalid_email_or_phone_in_an_event_names_the_field(hub, client, keys, contact, field):
    before = counts(hub)
    response = client.post("/api/v1/events", headers=keys["admin"],
                           json={"event_id": "e1", "type": "subscription.started", "contact": contact})
    body = assert_problem(response, 422, contact)
    assert [e["field"] for e in body["errors"]] == [field]
    assert field in body["detail"]
    assert counts(hub) == before


def test_a_crash_is_a_500_problem_without_internals(hub, app, keys):
    from fastapi.testclient import TestClient

    @app.get("/api/v1/zz-crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/zz-crash")
    body = assert_problem(response, 500, "a crashing route")
    assert "secret internals" not in response.text and body["title"] == "Internal server error"


def test_the_document_kept_for_a_route_table_is_the_one_each_such_app_makes(hub, app):
    from hub.app import create_app

    other = create_app(hub, check_schema=False, start_worker=False)
    assert route_table(other) == route_table(app)
    assert other.openapi() == app.openapi()  # each made anew

    @other.get("/api/v1/zz-added")
    def added() -> None: ...

    assert route_table(other) != route_table(app)  # a route more: a document of its own
