"""Sessions, CSRF, the sign-in rate limit, roles and security headers, without a browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.models import Role, TimelineEvent
from hub.web import ratelimit, sessions
from hub.web.models import LoginAttempt
from tests.conftest import make_settings
from tests.web.conftest import ORIGIN, PASSWORD, csrf_of, login


def _contact(hub) -> int:
    with hub.session() as session, session.begin():
        contact = create_contact(session, actor=SYSTEM, region="RU", display_name="Someone")
    return contact.id


def _notes(hub, contact_id: int) -> int:
    with hub.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(TimelineEvent)
                              .where(TimelineEvent.contact_id == contact_id, TimelineEvent.channel == "note"))


# ---- CSRF ----------------------------------------------------------------------------------------

def test_a_form_post_needs_the_token_and_a_same_origin(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub)
    url = f"/contacts/{contact_id}/notes"
    cases = [
        ({"text": "no token"}, {"Origin": ORIGIN}),
        ({"text": "wrong token", "csrf_token": "x" * 43}, {"Origin": ORIGIN}),
        ({"text": "other site", "csrf_token": token}, {"Origin": "http://evil.example"}),
        ({"text": "same site, other port", "csrf_token": token}, {"Origin": "http://testserver:8081"}),
        ({"text": "no origin at all", "csrf_token": token}, {}),
        ({"text": "referer elsewhere", "csrf_token": token}, {"Referer": "http://evil.example/page"}),
    ]
    for data, headers in cases:
        answer = web.post(url, data=data, headers=headers, follow_redirects=False)
        assert answer.status_code == 403, (data, headers, answer.status_code)
        assert "did not come from a page of this hub" in answer.text
    assert _notes(hub, contact_id) == 0

    ok = web.post(url, data={"text": "legit", "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert ok.status_code == 303
    by_header = web.post(url, data={"text": "htmx style"}, headers={"Referer": f"{ORIGIN}/contacts/{contact_id}",
                                                                    "X-CSRF-Token": token, "HX-Request": "true"})
    assert by_header.status_code == 200
    assert _notes(hub, contact_id) == 2


def test_the_sign_in_form_is_protected_too(web, hub):
    login(web, hub)  # creates the user
    fresh = TestClient(web.app, base_url=ORIGIN)
    fresh.get("/login")
    answer = fresh.post("/login", data={"email": "agent@example.com", "password": PASSWORD},
                        headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 403
    token = csrf_of(fresh.get("/login").text)
    answer = fresh.post("/login", data={"email": "agent@example.com", "password": PASSWORD, "csrf_token": token},
                        headers={"Origin": "http://evil.example"}, follow_redirects=False)
    assert answer.status_code == 403


def test_the_api_accepts_the_cookie_only_with_the_token(web, hub):
    token = login(web, hub)
    contact_id = _contact(hub)
    assert web.get(f"/api/v1/contacts/{contact_id}").status_code == 200  # reads need no token
    body = {"display_name": "Renamed"}
    refused = web.patch(f"/api/v1/contacts/{contact_id}", json=body, headers={"Origin": ORIGIN})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/csrf"
    foreign = web.patch(f"/api/v1/contacts/{contact_id}", json=body,
                        headers={"Origin": "http://evil.example", "X-CSRF-Token": token})
    assert foreign.status_code == 403
    allowed = web.patch(f"/api/v1/contacts/{contact_id}", json=body, headers={"Origin": ORIGIN, "X-CSRF-Token": token})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["display_name"] == "Renamed"


# ---- sessions ------------------------------------------------------------------------------------

@pytest.mark.any_store
def test_session_cookie_flags(web, hub):
    login(web, hub)
    answer = web.get("/login?next=/", follow_redirects=False)
    assert answer.status_code == 303  # already signed in
    fresh = TestClient(web.app, base_url=ORIGIN)
    set_cookie = fresh.get("/login").headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and "Path=/" in set_cookie
    assert "Secure" not in set_cookie  # served over http here


@pytest.mark.any_store
def test_cookie_is_secure_when_the_hub_is_served_over_https(hub, tmp_path):
    from fastapi import Response

    settings = make_settings(str(hub.settings.database_url), tmp_path, public_base_url="https://hub.example.com")
    response = Response()
    sessions.write(response, settings, sessions.new_session())
    assert "Secure" in response.headers["set-cookie"]


def test_a_forged_or_expired_cookie_is_no_session(hub, monkeypatch):
    good = sessions.encode(hub.settings, sessions.WebSession(csrf="t", user_id=1, version=1))
    assert sessions.decode(hub.settings, good).user_id == 1
    assert sessions.decode(hub.settings, good[:-2] + "xx") is None
    assert sessions.decode(hub.settings, "garbage") is None
    import time as time_module

    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + sessions.MAX_AGE_SECONDS + 60)
    assert sessions.decode(hub.settings, good) is None


def test_password_change_ends_the_other_sessions_only(app, hub):
    laptop, phone = TestClient(app, base_url=ORIGIN), TestClient(app, base_url=ORIGIN)
    token = login(laptop, hub)
    login(phone, hub, create=False)
    answer = laptop.post("/account/password", data={"current": PASSWORD, "new": "a brand new passphrase",
                                                    "confirm": "a brand new passphrase", "csrf_token": token},
                         headers={"Origin": ORIGIN})
    assert answer.status_code == 200 and "Password changed" in answer.text
    assert laptop.get("/tasks", follow_redirects=False).status_code == 200
    assert phone.get("/tasks", follow_redirects=False).headers["location"] == "/login?next=%2Ftasks"
    assert phone.get("/api/v1/contacts").status_code == 401
    assert laptop.get("/api/v1/contacts").status_code == 200


def test_wrong_current_password_changes_nothing(web, hub):
    token = login(web, hub)
    answer = web.post("/account/password", data={"current": "wrong", "new": "a brand new passphrase",
                                                 "confirm": "a brand new passphrase", "csrf_token": token},
                      headers={"Origin": ORIGIN})
    assert answer.status_code == 422 and "The current password is not right." in answer.text
    short = web.post("/account/password", data={"current": PASSWORD, "new": "short", "confirm": "short",
                                                "csrf_token": token}, headers={"Origin": ORIGIN})
    assert short.status_code == 422
    assert web.get("/tasks", follow_redirects=False).status_code == 200  # still signed in, same password


@pytest.mark.any_store
def test_logout_clears_the_cookie(web, hub):
    token = login(web, hub)
    answer = web.post("/logout", data={"csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert 'hub_session=""' in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers["set-cookie"]


@pytest.mark.any_store
def test_next_cannot_leave_the_site(web, hub):
    login(web, hub)
    fresh = TestClient(web.app, base_url=ORIGIN)
    token = csrf_of(fresh.get("/login").text)
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        answer = fresh.post("/login", data={"email": "agent@example.com", "password": PASSWORD, "next": evil,
                                            "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
        assert answer.headers["location"] == "/", evil
        fresh.cookies.clear()
        token = csrf_of(fresh.get("/login").text)


# ---- the sign-in rate limit ----------------------------------------------------------------------

def _try(client: TestClient, email: str, password: str, ip_token: str) -> int:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": ip_token},
                       headers={"Origin": ORIGIN}, follow_redirects=False).status_code


def test_sign_in_is_rate_limited_per_account(web, hub, frozen_clock):
    login(web, hub)
    web.cookies.clear()
    token = csrf_of(web.get("/login").text)
    for _ in range(ratelimit.MAX_FAILURES_PER_EMAIL):
        assert _try(web, "agent@example.com", "wrong password", token) == 401
    blocked = web.post("/login", data={"email": "Agent@Example.com", "password": PASSWORD, "csrf_token": token},
                       headers={"Origin": ORIGIN}, follow_redirects=False)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Слишком много неудачных попыток входа" in blocked.text  # no preference, no Accept-Language: ru
    frozen_clock.advance(minutes=16)
    assert _try(web, "agent@example.com", PASSWORD, token) == 303
    # A success starts the count again.
    web.cookies.clear()
    token = csrf_of(web.get("/login").text)
    for _ in range(ratelimit.MAX_FAILURES_PER_EMAIL - 1):
        assert _try(web, "agent@example.com", "wrong password", token) == 401
    assert _try(web, "agent@example.com", PASSWORD, token) == 303


def test_the_limit_is_kept_in_the_store_across_processes(app, hub, frozen_clock):
    """Two apps (two API processes) on one store share the count."""
    from hub.app import create_app

    login(TestClient(app, base_url=ORIGIN), hub)
    second = create_app(hub, check_schema=False, start_worker=False)
    clients = [TestClient(app, base_url=ORIGIN), TestClient(second, base_url=ORIGIN)]
    tokens = [csrf_of(c.get("/login").text) for c in clients]
    for n in range(ratelimit.MAX_FAILURES_PER_EMAIL):
        assert _try(clients[n % 2], "agent@example.com", "wrong", tokens[n % 2]) == 401
    assert _try(clients[1], "agent@example.com", PASSWORD, tokens[1]) == 429
    with hub.session(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) >= ratelimit.MAX_FAILURES_PER_EMAIL


def test_password_spraying_from_one_address_is_limited(web, hub, frozen_clock, monkeypatch):
    monkeypatch.setattr(ratelimit, "MAX_FAILURES_PER_ADDRESS", 8)  # each try costs a password hash
    token = csrf_of(web.get("/login").text)
    for n in range(ratelimit.MAX_FAILURES_PER_ADDRESS):
        assert _try(web, f"user{n}@example.com", "guess", token) == 401
    assert _try(web, "someone.else@example.com", "guess", token) == 429


def test_old_attempts_are_forgotten(hub, frozen_clock):
    with hub.session() as session, session.begin():
        ratelimit.record(session, email="a@example.com", address="1.2.3.4", succeeded=False)
    frozen_clock.advance(days=2)
    with hub.session() as session, session.begin():
        ratelimit.record(session, email="b@example.com", address="1.2.3.4", succeeded=False)
    with hub.session(read_only=True) as session:
        assert [a.email for a in session.scalars(select(LoginAttempt))] == ["b@example.com"]
        assert ratelimit.retry_after(session, email="a@example.com", address="1.2.3.4") is None
    assert ratelimit.WINDOW < timedelta(days=1)


# ---- roles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "admin_pages", "nav_has_users"), [
    (Role.AGENT, 403, False), (Role.MARKETER, 403, False), (Role.ADMIN, 200, True),
])
def test_roles_decide_what_is_shown_and_allowed(web, hub, role, admin_pages, nav_has_users):
    token = login(web, hub, f"{role}@example.com", role=role)
    home = web.get("/")
    assert home.status_code == 200
    assert ('href="/admin/users"' in home.text) is nav_has_users
    for path in ("/admin/users", "/admin/api-keys", "/admin/channels"):
        assert web.get(path).status_code == admin_pages, path
    created = web.post("/admin/users", data={"email": f"new-{role}@example.com", "password": "a long password 1",
                                             "role": "admin", "csrf_token": token}, headers={"Origin": ORIGIN},
                       follow_redirects=False)
    assert created.status_code == (303 if role == Role.ADMIN else 403)
    assert web.get("/tasks").status_code == 200
    assert web.get("/api/v1/users").status_code == (200 if role == Role.ADMIN else 403)


def test_admin_creates_and_revokes_an_api_key(web, hub):
    token = login(web, hub, "admin@example.com", role=Role.ADMIN)
    created = web.post("/admin/api-keys", data={"name": "Shop", "scopes": ["events:write"], "csrf_token": token},
                       headers={"Origin": ORIGIN})
    assert created.status_code == 201
    plain = created.text.split('<code class="secret">')[1].split("</code>")[0]
    assert plain.startswith("hub_")
    assert web.get("/admin/api-keys").text.count(plain) == 0  # shown once only
    with hub.session(read_only=True) as session:
        from hub.models import ApiKey

        key_id = session.scalars(select(ApiKey.id)).one()
    # The first click asks (hub.web.confirm); the key still works until the answer is yes.
    asked = web.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token}, headers={"Origin": ORIGIN},
                     follow_redirects=False)
    assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text and "Shop" in asked.text
    assert TestClient(web.app).get("/api/v1/contacts", headers={"Authorization": f"Bearer {plain}"}).status_code != 401
    assert web.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token, "confirmed": "yes"},
                    headers={"Origin": ORIGIN}, follow_redirects=False).status_code == 303
    fresh = TestClient(web.app)
    assert fresh.get("/api/v1/contacts", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    bad = web.post("/admin/api-keys", data={"name": "Nothing", "csrf_token": token}, headers={"Origin": ORIGIN})
    assert bad.status_code == 422 and "Choose at least one permission." in bad.text


def test_a_deactivated_user_is_signed_out(app, hub):
    admin, agent = TestClient(app, base_url=ORIGIN), TestClient(app, base_url=ORIGIN)
    token = login(admin, hub, "admin@example.com", role=Role.ADMIN)
    login(agent, hub)
    with hub.session(read_only=True) as session:
        from hub.models import User

        agent_id = session.scalars(select(User.id).where(User.email == "agent@example.com")).one()
    admin.post(f"/admin/users/{agent_id}/active", data={"active": "0", "csrf_token": token}, headers={"Origin": ORIGIN})
    assert agent.get("/", follow_redirects=False).status_code == 303


# ---- headers -------------------------------------------------------------------------------------

@pytest.mark.any_store
def test_pages_carry_security_headers(web, hub):
    login(web, hub)
    page = web.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    static = web.get("/static/htmx.min.js")
    assert static.status_code == 200 and static.text.startswith("/*! htmx 2.")
    assert web.get("/healthz").headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in web.get("/api/docs").headers  # Swagger UI keeps working
