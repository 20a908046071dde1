"""Administration: users, API keys (hashed, scoped, revocable), installed channels, the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from hub.auth import authenticate
from hub.models import ApiKey, AuditEntry, User


def counts(hub) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with hub.session(read_only=True) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in SQLModel.metadata.sorted_tables}


@pytest.fixture
def admin(api_key):  # type: ignore[no-untyped-def]
    return api_key("admin")


def new_user(client, admin, email: str = "agent@example.com", role: str = "agent") -> dict:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/users", headers=admin,
                           json={"email": email, "password": "correct horse battery", "role": role,
                                 "display_name": "Ольга", "locale": "ru", "time_zone": "Europe/Moscow"})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_list_and_sign_in(hub, client, admin):
    user = new_user(client, admin, "Olga@Example.com")
    assert user["email"] == "olga@example.com" and user["role"] == "agent" and user["is_active"]
    assert "password" not in user and "password_hash" not in user
    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["email"] for u in listed["items"]] == ["olga@example.com"]
    with hub.session() as s:
        assert authenticate(s, email="olga@example.com", password="correct horse battery") is not None
        entry = s.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.entity, entry.entity_id) == ("user.created", "user", str(user["id"]))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "correct horse battery", "role": "agent"}, "email"),
        ({"email": "a@example.com", "password": "short", "role": "agent"}, "password"),
        ({"email": "a@example.com", "password": "correct horse battery", "role": "boss"}, "role"),
        ({"email": "a@example.com", "password": "correct horse battery", "role": "agent", "time_zone": "Mars/Base"},
         "time_zone"),
        ({"email": "a@example.com", "password": "correct horse battery", "role": "agent", "is_admin": True},
         "is_admin"),
    ],
)
def test_invalid_users_are_refused(hub, client, admin, body, field):
    before = counts(hub)
    response = client.post("/api/v1/users", headers=admin, json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert "correct horse battery" not in response.text  # a password never echoes back
    assert counts(hub) == before


def test_duplicate_email_is_a_conflict(hub, client, admin):
    new_user(client, admin, "a@example.com")
    response = client.post("/api/v1/users", headers=admin,
                           json={"email": "A@EXAMPLE.COM", "password": "another password", "role": "marketer"})
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


def test_change_role_and_deactivate(hub, client, admin):
    user = new_user(client, admin)
    url = f"/api/v1/users/{user['id']}"
    promoted = client.patch(url, headers=admin, json={"role": "marketer", "display_name": "Ольга П."})
    assert promoted.status_code == 200
    assert (promoted.json()["role"], promoted.json()["display_name"]) == ("marketer", "Ольга П.")
    deactivated = client.patch(url, headers=admin, json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    with hub.session() as s:
        row = s.get(User, user["id"])
        assert row.session_version == 2  # open sessions end
        assert authenticate(s, email="agent@example.com", password="correct horse battery") is None
        changes = [e.changes for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "user.updated")
                                                 .order_by(AuditEntry.id))]
    assert changes == [{"display_name": ["Ольга", "Ольга П."], "role": ["agent", "marketer"]},
                       {"is_active": [True, False]}]
    for body in ({"role": None}, {"is_active": None}, {"role": "boss"}, {"password": "x" * 20}):
        assert client.patch(url, headers=admin, json=body).status_code == 422
    assert client.patch("/api/v1/users/999999", headers=admin, json={"role": "agent"}).status_code == 404


def test_the_last_active_admin_stays(hub, client, admin):
    boss = new_user(client, admin, "boss@example.com", role="admin")
    refused = client.patch(f"/api/v1/users/{boss['id']}", headers=admin, json={"is_active": False})
    assert refused.status_code == 409
    assert client.patch(f"/api/v1/users/{boss['id']}", headers=admin, json={"role": "agent"}).status_code == 409
    second = new_user(client, admin, "second@example.com", role="admin")
    assert client.patch(f"/api/v1/users/{boss['id']}", headers=admin, json={"role": "agent"}).status_code == 200
    assert client.patch(f"/api/v1/users/{second['id']}", headers=admin, json={"is_active": False}).status_code == 409


def test_api_key_lifecycle(hub, client, admin):
    created = client.post("/api/v1/api-keys", headers=admin,
                          json={"name": "Shop", "scopes": ["events:write", "contacts:read", "events:write"]})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(f"hub_{key['prefix']}_") and key["scopes"] == ["contacts:read", "events:write"]
    with hub.session(read_only=True) as s:
        row = s.get(ApiKey, key["id"])
    assert key["key"] not in (row.key_hash, row.prefix)  # only a hash is kept

    shop = {"Authorization": f"Bearer {key['key']}"}
    assert client.get("/api/v1/channels", headers=shop).status_code == 200
    assert client.get("/api/v1/channels", headers={"X-API-Key": key["key"]}).status_code == 200
    assert client.get("/api/v1/users", headers=shop).status_code == 403

    listed = client.get("/api/v1/api-keys", headers=admin).json()["items"]
    assert key["prefix"] in [k["prefix"] for k in listed]
    assert all("key" not in k and "key_hash" not in k for k in listed)

    revoked = client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin).json() == revoked.json()
    after = client.get("/api/v1/channels", headers=shop)
    assert after.status_code == 401 and after.headers["content-type"].startswith("application/problem+json")
    assert client.delete("/api/v1/api-keys/999999", headers=admin).status_code == 404
    with hub.session(read_only=True) as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["api_key.created", "api_key.revoked"]


@pytest.mark.parametrize("body", [{"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]},
                                  {"name": "", "scopes": ["admin"]}, {"name": "x"}])
def test_invalid_keys_are_refused(hub, client, admin, body):
    before = counts(hub)
    response = client.post("/api/v1/api-keys", headers=admin, json=body)
    assert response.status_code == 422
    assert counts(hub) == before


def test_only_admins_administer(hub, client, api_key):
    agentish = api_key("contacts:read", "contacts:write", "timeline:read", "tasks:write")
    for method, url in (("get", "/api/v1/users"), ("post", "/api/v1/users"), ("get", "/api/v1/api-keys"),
                        ("post", "/api/v1/api-keys"), ("get", "/api/v1/audit")):
        response = client.request(method, url, headers=agentish, json={})
        assert response.status_code == 403, (method, url)
        assert response.json()["scope"] == "admin"


def test_channels_list_installed_adapters(hub, client, api_key):
    response = client.get("/api/v1/channels", headers=api_key("contacts:read"))
    channels = {c["name"]: c for c in response.json()}
    assert {"fake", "note"} <= set(channels)
    assert channels["fake"]["capabilities"] == ["receive", "send", "status"]
    assert channels["fake"]["configured"] is True
    assert channels["fake"]["limits"]["max_body_chars"] == 1000
    assert channels["note"]["label"] == "Note"


def test_audit_log_pages_and_filters(hub, client, admin):
    events = [client.post("/api/v1/events", headers=admin, json={
        "event_id": f"e{i}", "type": "subscription.started", "contact": {"email": f"c{i % 2}@example.com"},
    }).json() for i in range(5)]
    first_contact = events[0]["contact_id"]
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/audit", headers=admin,
                          params={"contact_id": first_contact, "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["entity_id"] for e in seen] == [str(events[i]["id"]) for i in (4, 2, 0)]  # newest first
    assert {e["contact_id"] for e in seen} == {first_contact}
    everything = client.get("/api/v1/audit", headers=admin).json()["items"]
    assert len(everything) == 5
    assert client.get("/api/v1/audit", headers=admin, params={"cursor": "nonsense"}).status_code == 400


def test_audit_log_filters_by_actor_action_and_time(hub, client, admin, frozen_clock):
    from datetime import timedelta

    from hub.auth import api_key_principal

    start = frozen_clock.current
    user = new_user(client, admin)  # user.created, by the admin key
    frozen_clock.advance(hours=2)
    client.patch(f"/api/v1/users/{user['id']}", headers=admin, json={"display_name": "Renamed"})
    key = admin["Authorization"].removeprefix("Bearer ")
    with hub.session() as session:
        key_id = api_key_principal(session, key).id  # type: ignore[union-attr]

    def actions(**params: str) -> list[str]:
        answer = client.get("/api/v1/audit", headers=admin, params=params)
        assert answer.status_code == 200, answer.text
        return [e["action"] for e in answer.json()["items"]]

    assert actions() == ["user.updated", "user.created"]
    assert actions(action="user.created") == ["user.created"]
    assert actions(actor=f"api_key:{key_id}") == ["user.updated", "user.created"]
    assert actions(actor="api_key") == ["user.updated", "user.created"]
    assert actions(actor="user") == [] and actions(actor="system") == []
    middle = (start + timedelta(hours=1)).isoformat()
    assert actions(since=middle) == ["user.updated"]
    assert actions(until=middle) == ["user.created"]
    for bad in ({"actor": "robot:1"}, {"since": "2026-01-01T00:00:00"}, {"actor": "user:x"}):
        answer = client.get("/api/v1/audit", headers=admin, params=bad)
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
