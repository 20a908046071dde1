"""Accounts in the REST API: CRUD with problem details, contacts linked through the contact's own
PATCH (audited), the merged timeline in keyset pages, search, and the key flag's history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

import hub.app  # noqa: F401 - registers every table before the test store is built
from hub.ingest import InboundEvent, ingest
from hub.models import AuditEntry, Contact


@pytest.fixture
def auth(api_key):
    return api_key("contacts:read", "contacts:write", "timeline:read", "timeline:write")


def new_account(client, auth, **body) -> dict:
    response = client.post("/api/v1/accounts", json={"name": "ООО Ромашка", **body}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def new_contact(client, auth, name: str, **body) -> int:
    response = client.post("/api/v1/contacts", json={"display_name": name, **body}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_create_read_edit_and_delete_an_account(client, auth, hub):
    body = new_account(client, auth, kind="company", attributes={"inn": "7700000000", "domain": "romashka.ru"},
                       expected_profit="1500000.00", cooperation_until="2027-12-31",
                       fallback_plan="Переключить на дилера", interaction_notes="Звонить директору по вторникам")
    aid = body["id"]
    assert body["attributes"]["inn"] == "7700000000" and body["contacts"] == 0 and body["is_key"] is False
    assert client.get(f"/api/v1/accounts/{aid}", headers=auth).json()["expected_profit"] == "1500000.00"
    edited = client.patch(f"/api/v1/accounts/{aid}", json={"name": "ООО «Ромашка»", "fallback_plan": None},
                          headers=auth)
    assert edited.status_code == 200 and edited.json()["fallback_plan"] is None
    cid = new_contact(client, auth, "Пётр", account_id=aid)
    assert client.delete(f"/api/v1/accounts/{aid}", headers=auth).status_code == 204
    assert client.get(f"/api/v1/accounts/{aid}", headers=auth).status_code == 404
    card = client.get(f"/api/v1/contacts/{cid}", headers=auth).json()
    assert card["account_id"] is None  # the contact stays, unlinked
    with hub.session(read_only=True) as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.entity == "account")
                                               .order_by(AuditEntry.id))]
    assert actions == ["account.create", "account.update", "account.delete"]


def test_bad_input_is_a_problem_and_writes_nothing(client, auth, hub):
    assert client.post("/api/v1/accounts", json={"name": ""}, headers=auth).status_code == 422
    assert client.post("/api/v1/accounts", json={"name": "X", "kind": "tribe"}, headers=auth).status_code == 422
    assert client.post("/api/v1/accounts", json={"name": "X", "owner_id": 999}, headers=auth).status_code == 422
    assert client.post("/api/v1/accounts", json={"name": "X", "colour": "red"}, headers=auth).status_code == 422
    assert client.post("/api/v1/accounts", json={"name": "X", "expected_profit": "1.234"},
                       headers=auth).status_code == 422
    assert client.get("/api/v1/accounts", headers=auth).json()["items"] == []
    cid = new_contact(client, auth, "Анна")
    bad = client.patch(f"/api/v1/contacts/{cid}", json={"account_id": 12345}, headers=auth)
    assert bad.status_code == 422 and "account_id" in bad.json()["detail"]
    assert client.patch("/api/v1/accounts/777", json={"name": "Y"}, headers=auth).status_code == 404
    assert client.get("/api/v1/accounts?cursor=garbage", headers=auth).status_code == 400
    with hub.session(read_only=True) as s:
        assert s.get(Contact, cid).account_id is None


def test_scopes_are_enforced(client, api_key):
    reader = api_key("contacts:read")
    assert client.get("/api/v1/accounts", headers=reader).status_code == 200
    assert client.post("/api/v1/accounts", json={"name": "X"}, headers=reader).status_code == 403


def test_linking_contacts_is_audited_on_the_contact(client, auth, hub):
    aid = new_account(client, auth)["id"]
    cid = new_contact(client, auth, "Мария")
    linked = client.patch(f"/api/v1/contacts/{cid}", json={"account_id": aid}, headers=auth)
    assert linked.status_code == 200 and linked.json()["account_id"] == aid
    assert [c["id"] for c in client.get(f"/api/v1/accounts/{aid}/contacts", headers=auth).json()] == [cid]
    assert client.get(f"/api/v1/accounts/{aid}", headers=auth).json()["contacts"] == 1
    client.patch(f"/api/v1/contacts/{cid}", json={"account_id": None}, headers=auth)
    with hub.session(read_only=True) as s:
        changes = [e.changes.get("account_id") for e in s.scalars(
            select(AuditEntry).where(AuditEntry.contact_id == cid, AuditEntry.action == "contact.update")
            .order_by(AuditEntry.id))]
    assert changes == [[None, aid], [aid, None]]


def test_search_pages_and_filters(client, auth):
    names = ["Альфа", "альфа-банк", "Бета", "Гамма", "АЛЬФАСТРОЙ"]
    for name in names:
        new_account(client, auth, name=name, is_key=name == "Бета")
    found = client.get("/api/v1/accounts?q=альфа&limit=2", headers=auth).json()
    assert len(found["items"]) == 2 and found["next_cursor"]
    rest = client.get(f"/api/v1/accounts?q=альфа&limit=2&cursor={found['next_cursor']}", headers=auth).json()
    assert sorted(a["name"] for a in found["items"] + rest["items"]) == sorted(["Альфа", "альфа-банк", "АЛЬФАСТРОЙ"])
    assert rest["next_cursor"] is None
    assert [a["name"] for a in client.get("/api/v1/accounts?key=true", headers=auth).json()["items"]] == ["Бета"]


def test_the_key_flag_history_is_on_the_audit_log(client, auth, hub):
    aid = new_account(client, auth, is_key=True)["id"]
    client.patch(f"/api/v1/accounts/{aid}", json={"is_key": False}, headers=auth)
    client.patch(f"/api/v1/accounts/{aid}", json={"is_key": False}, headers=auth)  # no change, no entry
    from hub.accounts import key_history

    with hub.session(read_only=True) as s:
        history = [e.changes["is_key"] for e in reversed(key_history(s, account_id=aid))]
    assert history == [[False, True], [True, False]]


def test_the_account_timeline_merges_its_contacts_in_pages(client, auth, hub):
    aid = new_account(client, auth)["id"]
    first, second, outsider = (new_contact(client, auth, n) for n in ("Один", "Два", "Чужой"))
    for cid in (first, second):
        client.patch(f"/api/v1/contacts/{cid}", json={"account_id": aid}, headers=auth)
    start = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    for i in range(7):
        cid = (first, second, outsider)[i % 3]
        ingest(hub, InboundEvent(channel="note", kind="note", direction="internal", contact_id=cid,
                                 external_id=f"n{i}", text=f"event {i}", occurred_at=start + timedelta(hours=i)))
    seen, cursor = [], None
    while True:
        url = f"/api/v1/accounts/{aid}/timeline?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).json()
        seen += [e["text"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"event {i}" for i in (6, 4, 3, 1, 0)]  # newest first, the outsider's left out
    empty = new_account(client, auth, name="Пусто")["id"]
    assert client.get(f"/api/v1/accounts/{empty}/timeline", headers=auth).json() == {"items": [], "next_cursor": None}


def test_privacy_export_holds_the_account_and_erasure_unlinks_it(hub):
    from hub.accounts import create_account
    from hub.auth import SYSTEM
    from hub.contacts import create_contact
    from hub.privacy import erase_person, export_person

    with hub.session() as s, s.begin():
        account = create_account(s, actor=SYSTEM, name="Семья Петровых", kind="household")
        person = create_contact(s, actor=SYSTEM, region="RU", display_name="Пётр", account_id=account.id)
        other = create_contact(s, actor=SYSTEM, region="RU", display_name="Ирина", account_id=account.id)
        aid, pid, oid = account.id, person.id, other.id
    with hub.session(read_only=True) as s:
        exported = export_person(s, hub=hub, contact_id=pid)
    assert exported["contacts"][0]["account_id"] == aid
    assert [a["name"] for a in exported["accounts"]] == ["Семья Петровых"]
    assert all(row.get("display_name") != "Ирина" for row in exported["contacts"])  # the household's others stay out
    with hub.session() as s, s.begin():
        erase_person(s, hub=hub, contact_id=pid, actor=SYSTEM)
    with hub.session(read_only=True) as s:
        assert s.get(Contact, pid).account_id is None
        assert s.get(Contact, oid).account_id == aid
        assert export_person(s, hub=hub, contact_id=pid)["accounts"] == []
