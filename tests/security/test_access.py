"""Roles and scopes on every route the installed app has: walked from `app.routes` when the test runs,
so a page or endpoint any package adds is checked without being listed here.

tests/api/test_errors.py already checks that each API operation refuses no key (401) and a key
lacking one of its scopes (403). This file adds: the workspace pages (sign-in, roles), each role's
cookie against every API operation, keys holding a single scope, revoked keys, admin functions
staying admin-only, and public routes that never take a sequential id.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub import signing
from hub.api.deps import current_principal
from hub.auth import ROLE_SCOPES, SCOPES, SYSTEM, revoke_api_key
from hub.contacts import IdentityIn, create_contact
from hub.models import ApiKey, Role
from hub.web.pages import current_agent
from tests.api.test_errors import api_routes, assert_problem
from tests.web.conftest import ORIGIN, login

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Paths that are administration whoever adds them: they must need the admin scope.
ADMIN_PATH = re.compile(r"^/(api/v1/)?(admin|users|api-keys|audit|privacy)(/|$)")
# What may be reached without signing in; anything else public must take a signed token or a provider
# signature (webhooks under /channels/<name>/), never a sequential id.
OPEN_PAGES = {"/login", "/logout"}
STREAMS = {"/live", "/api/v1/live"}
STATIC = re.compile(r"/(static|assets)/")  # files shipped with a package, the same for everyone  # never-ending responses, checked by their own tests


class Route:
    def __init__(self, route: Any, method: str) -> None:
        self.route, self.method, self.path = route, method, route.path
        self.web = self.api = False
        self.scopes: set[str] = set()
        self._walk(route.dependant)

    def _walk(self, dependant: Any) -> None:
        for dep in dependant.dependencies:
            call = dep.call
            name = getattr(call, "__name__", "")
            if call is current_principal:
                self.api = True
            if call is current_agent:
                self.web = True
            for prefix in ("page_require_", "require_"):
                if name.startswith(prefix):
                    wanted = name[len(prefix):]
                    scope = next((s for s in SCOPES if s.replace(":", "_") == wanted), None)
                    if scope:
                        self.scopes.add(scope)
            self._walk(dep)

    @property
    def public(self) -> bool:
        return not (self.web or self.api)

    def url(self, value: str = "1") -> str:
        return re.sub(r"\{[^}]+\}", value, self.path)

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


def routes_of(app: Any) -> list[Route]:
    found = [Route(r, m) for r in api_routes(app) for m in sorted(r.methods or ()) if m not in {"HEAD", "OPTIONS"}]
    found = [r for r in found if r.path not in STREAMS and not r.path.startswith("/api/v1/zz")
             and not STATIC.search(r.path)]
    assert len(found) > 40, "the app has suspiciously few routes"
    return found


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


def seed(hub) -> list[int]:  # type: ignore[no-untyped-def]
    """Rows with small ids, so a route that wrongly answers to a sequential id finds something."""
    with hub.session() as s, s.begin():
        return [create_contact(s, actor=SYSTEM, region="RU", display_name=f"Person {n}",
                               identities=[IdentityIn(kind="email", value=f"p{n}@example.org")]).id for n in range(3)]


def test_admin_functions_need_the_admin_scope(app):
    routes = routes_of(app)
    admin = [r for r in routes if ADMIN_PATH.match(r.path)]
    assert {"/admin/users", "/api/v1/users", "/api/v1/privacy/contacts/{contact_id}/erase"} <= {r.path for r in admin}
    for route in admin:
        assert not route.public and route.scopes == {"admin"}, f"{route} is administration but needs {route.scopes}"


def test_signed_out_visitors_are_sent_to_sign_in_or_refused(app, hub, web):
    seed(hub)
    before = counts(hub)
    for route in routes_of(app):
        if route.public:
            continue
        answer = web.request(route.method, route.url(), headers={"Origin": ORIGIN}, follow_redirects=False)
        if route.api:
            assert_problem(answer, 401, route)
        elif route.method in UNSAFE:
            assert answer.status_code in {303, 401, 403}, (route, answer.status_code)
            if answer.status_code == 303:
                assert answer.headers["location"].startswith("/login"), route
        else:
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), (route, answer.status_code)
    assert counts(hub) == before


@pytest.mark.parametrize("role", [Role.AGENT, Role.MARKETER])
def test_a_role_reaches_nothing_outside_its_scopes(app, hub, web, role):
    seed(hub)
    token = login(web, hub, f"{role}@example.com", role=role)
    allowed = ROLE_SCOPES[role]
    before = counts(hub)
    checked = 0
    for route in routes_of(app):
        if route.public or route.scopes <= allowed:
            continue
        headers = {"Origin": ORIGIN, "X-CSRF-Token": token}
        answer = web.request(route.method, route.url(), headers=headers, follow_redirects=False,
                             **({"data": {"csrf_token": token}} if route.method in UNSAFE and route.web else {}))
        assert answer.status_code == 403, f"{role} reached {route} (needs {route.scopes}): {answer.status_code}"
        if route.api:
            assert_problem(answer, 403, route)
        checked += 1
    assert checked >= 10, "no route was outside the role's scopes"
    assert counts(hub) == before
    with hub.session(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 0  # an agent made no API key


# ~3,800 requests refused by the scope check before any query: the store plays no part.
@pytest.mark.any_store
def test_a_key_with_one_scope_reaches_only_what_that_scope_allows(app, hub, client, api_key):
    routes = [r for r in routes_of(app) if r.api]
    keys = {scope: api_key(scope) for scope in SCOPES if scope != "admin"}
    before = counts(hub)
    for route in routes:
        for scope, headers in keys.items():
            if route.scopes <= {scope}:
                continue
            answer = client.request(route.method, route.url("999999"), headers=headers, json={})
            body = assert_problem(answer, 403, f"{route} with only {scope}")
            assert body["scope"] in route.scopes
    assert counts(hub) == before


def test_a_revoked_key_opens_nothing(app, hub, client, api_key):
    headers = api_key("admin")
    with hub.session() as s, s.begin():
        revoke_api_key(s, s.scalars(select(ApiKey)).one())
    for route in (r for r in routes_of(app) if r.api):
        assert_problem(client.request(route.method, route.url("999999"), headers=headers), 401, route)


def test_public_routes_take_signed_tokens_not_sequential_ids(app, hub, client, api_key):
    ids = seed(hub)
    before = counts(hub)
    public = [r for r in routes_of(app) if r.public and r.path not in OPEN_PAGES]
    for route in public:
        params = route.route.dependant.path_params
        for param in params:
            annotation = getattr(param, "annotation", None) or getattr(getattr(param, "field_info", None), "annotation", None)
            assert annotation is not int, f"{route} is public and addressed by an integer {param.name}"
        if not params:
            continue
        forged = [str(i) for i in ids] + [
            signing.sign(hub.settings, "zz.other.purpose", ids[0]),  # a real signature, for another purpose
            signing.sign(hub.settings, "zz.other.purpose", {"contact_id": ids[0]}),
        ]
        for value in forged:
            answer = client.request(route.method, route.url(value), follow_redirects=False,
                                    data={"email": "x@example.org"} if route.method in UNSAFE else None)
            assert answer.status_code >= 400, f"{route} answered {answer.status_code} to {value[:20]}…"
            assert "evil" not in answer.headers.get("location", "")
    assert counts(hub) == before


def test_public_redirects_only_follow_signed_urls(app, hub, client):
    """A click-tracking or "next" parameter cannot send a visitor to an arbitrary site."""
    evil = "https://evil.example/phish"
    for route in (r for r in routes_of(app) if r.public and r.method == "GET"):
        query = {"url": evil, "u": evil, "next": evil, "redirect": evil, "to": evil, "r": evil}
        value = signing.sign(hub.settings, "zz.other.purpose", {"url": evil})
        answer = client.get(route.url(value), params=query, follow_redirects=False)
        assert not answer.headers.get("location", "").startswith(evil), f"{route} redirects to {evil}"
        assert "evil.example" not in answer.headers.get("location", ""), route
