"""The contacts API: problem details for every bad input (and nothing written), cursor pages, merges
that redirect, and CSV in and out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

import hub.app  # noqa: F401 - registers every table before the test store is built
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import AuditEntry, ConsentRecord, Contact, Identity, MergeRecord, Task, TimelineEvent

TABLES = (Contact, Identity, AuditEntry, ConsentRecord, TimelineEvent, MergeRecord, Task)


def snapshot(hub) -> dict[str, int]:
    with hub.session(read_only=True) as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


@pytest.fixture
def auth(api_key):
    return api_key("contacts:read", "contacts:write", "timeline:read", "timeline:write")


def create(client, auth, **body) -> dict:
    response = client.post("/api/v1/contacts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("/problems/")
    return body


def test_create_read_and_edit_a_contact(client, auth, hub):
    body = create(client, auth, display_name="Иван Петров", identities=[
        {"kind": "phone", "value": "8 (916) 123-45-67"}, {"kind": "email", "value": "Ivan@Example.com"}],
        tags=["vip"], attributes={"city": "Москва"}, locale="ru", time_zone="Europe/Moscow")
    cid = body["id"]
    assert [(i["kind"], i["value"], i["is_primary"]) for i in body["identities"]] == [
        ("phone", "+79161234567", True), ("email", "ivan@example.com", False)]
    card = client.get(f"/api/v1/contacts/{cid}", headers=auth).json()
    assert card["display_name"] == "Иван Петров" and card["open_tasks"] == 0 and card["last_event"] is None

    edited = client.patch(f"/api/v1/contacts/{cid}", json={"display_name": "Иван С. Петров", "locale": None},
                          headers=auth)
    assert edited.status_code == 200 and edited.json()["locale"] is None
    assert client.post(f"/api/v1/contacts/{cid}/tags", json={"tags": ["b2b", "vip"]}, headers=auth).json()["tags"] == [
        "vip", "b2b"]
    assert client.delete(f"/api/v1/contacts/{cid}/tags?tag=vip", headers=auth).json()["tags"] == ["b2b"]
    assert client.put(f"/api/v1/contacts/{cid}/attributes", json={"plan": "gold"}, headers=auth).json()[
        "attributes"] == {"plan": "gold"}
    added = client.post(f"/api/v1/contacts/{cid}/identities", json={"kind": "email", "value": "ivan@work.example"},
                        headers=auth)
    again = client.post(f"/api/v1/contacts/{cid}/identities", json={"kind": "email", "value": "IVAN@work.example"},
                        headers=auth)
    assert (added.status_code, again.status_code) == (201, 200) and added.json()["id"] == again.json()["id"]

    with hub.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.contact_id == cid).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["contact.create", "contact.update", "contact.tags", "contact.tags",
                                           "contact.attributes", "contact.identity.add"]
    assert {e.actor_kind for e in entries} == {"api_key"}


def test_consent_is_recorded_and_listed(client, auth):
    cid = create(client, auth, display_name="C")["id"]
    url = f"/api/v1/contacts/{cid}/consent"
    assert client.post(url, json={"channel": "email", "status": "granted", "source": "form"}, headers=auth).status_code == 201
    assert client.post(url, json={"channel": "email", "status": "withdrawn", "source": "link"}, headers=auth).status_code == 201
    first = client.get(url, params={"limit": 1}, headers=auth).json()
    assert [(c["channel"], c["status"]) for c in first["current"]] == [("email", "withdrawn")]
    second = client.get(url, params={"limit": 1, "cursor": first["next_cursor"]}, headers=auth).json()
    assert [r["source"] for r in first["items"] + second["items"]] == ["link", "form"]
    assert second["next_cursor"] is None


def test_search_pages_and_phone_notations(client, auth):
    for i in range(7):
        create(client, auth, display_name=f"Пётр Номер{i}", identities=[{"kind": "phone", "value": f"+7916000000{i}"}])
    create(client, auth, display_name="Someone Else", identities=[{"kind": "email", "value": "else@example.com"}])
    names, cursor = [], None
    while True:
        params = {"q": "пётр", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/contacts", params=params, headers=auth).json()
        names += [c["display_name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == [f"Пётр Номер{i}" for i in range(7)]
    found = client.get("/api/v1/contacts", params={"q": "8 (916) 000-00-03"}, headers=auth).json()["items"]
    assert [c["display_name"] for c in found] == ["Пётр Номер3"]
    assert [c["display_name"] for c in client.get("/api/v1/contacts", params={"q": "ELSE@"}, headers=auth).json()[
        "items"]] == ["Someone Else"]


def test_caller_lookup(client, auth):
    cid = create(client, auth, display_name="Caller", identities=[{"kind": "phone", "value": "+79161234567"}])["id"]
    card = client.get("/api/v1/contacts/lookup", params={"phone": "8 916 123-45-67"}, headers=auth)
    assert card.status_code == 200 and card.json()["id"] == cid
    is_problem(client.get("/api/v1/contacts/lookup", params={"phone": "+79990000000"}, headers=auth), 404)
    body = is_problem(client.get("/api/v1/contacts/lookup", params={"phone": "12"}, headers=auth), 422)
    assert body["errors"][0]["field"] == "phone"


def seed_timeline(hub, start: datetime) -> int:
    """12 events a minute apart: fake in/out and notes, alternating."""
    contact_id = None
    for i in range(12):
        kind = ("fake", "in", "message") if i % 3 == 0 else ("fake", "out", "message") if i % 3 == 1 else (
            "note", "internal", "note")
        event = InboundEvent(channel=kind[0], direction=kind[1], kind=kind[2], external_id=f"t{i}",
                             occurred_at=start + timedelta(minutes=i), text=f"событие {i}" if i % 2 else f"event {i}",
                             identities=[IdentityRef(kind="phone", value="+79160001122")])
        contact_id = ingest(hub, event).contact.id
    return contact_id  # type: ignore[return-value]


def pages(client, auth, url: str, **params) -> tuple[list[int], int]:
    seen, cursor, count = [], None, 0
    while True:
        response = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [int(e["external_id"][1:]) for e in body["items"]]
        count += 1
        cursor = body["next_cursor"]
        if not cursor:
            return seen, count


def test_timeline_pages_with_filters(client, auth, hub):
    start = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    cid = seed_timeline(hub, start)
    url = f"/api/v1/contacts/{cid}/timeline"
    assert pages(client, auth, url, limit=5) == (list(range(11, -1, -1)), 3)
    assert pages(client, auth, url, limit=2, channel="fake", direction="in") == ([9, 6, 3, 0], 2)
    assert pages(client, auth, url, limit=2, direction=["in", "internal"]) == ([11, 9, 8, 6, 5, 3, 2, 0], 4)
    assert pages(client, auth, url, limit=3, kind="note", since=(start + timedelta(minutes=4)).isoformat(),
                 until=(start + timedelta(minutes=11)).isoformat()) == ([8, 5], 1)
    assert pages(client, auth, url, limit=2, q="СОБЫТИЕ") == ([11, 9, 7, 5, 3, 1], 3)


def test_notes_are_idempotent_on_client_id_and_audited(client, auth, hub):
    cid = create(client, auth, display_name="N")["id"]
    first = client.post(f"/api/v1/contacts/{cid}/notes", json={"text": "Перезвонить", "client_id": "abc"}, headers=auth)
    again = client.post(f"/api/v1/contacts/{cid}/notes", json={"text": "Перезвонить", "client_id": "abc"}, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert first.json()["channel"] == "note" and first.json()["direction"] == "internal"
    other = create(client, auth, display_name="M")["id"]
    is_problem(client.post(f"/api/v1/contacts/{other}/notes", json={"text": "x", "client_id": "abc"}, headers=auth), 409)
    items = client.get(f"/api/v1/contacts/{cid}/timeline", headers=auth).json()["items"]
    assert [e["text"] for e in items] == ["Перезвонить"]
    with hub.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "contact.note")) == 1


def test_merge_redirects_and_undo(client, auth, hub):
    keep = create(client, auth, display_name="Keep", identities=[{"kind": "email", "value": "keep@example.com"}])["id"]
    dupe = create(client, auth, display_name="Dupe", locale="en",
                  identities=[{"kind": "phone", "value": "+79160000077"}])["id"]
    client.post(f"/api/v1/contacts/{dupe}/notes", json={"text": "on the duplicate"}, headers=auth)
    preview = client.post("/api/v1/contacts/merge/preview", json={"survivor_id": keep, "merged_id": dupe}, headers=auth)
    assert preview.status_code == 200 and preview.json()["survivor"]["locale"] == "en"
    assert preview.json()["moves"] == {"identity": 1, "timeline_event": 1}
    merged = client.post("/api/v1/contacts/merge", json={"survivor_id": keep, "merged_id": dupe}, headers=auth)
    assert merged.status_code == 201 and merged.json()["moved"] == {"identity": 1, "timeline_event": 1}

    moved = client.get(f"/api/v1/contacts/{dupe}", headers=auth, follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == f"/api/v1/contacts/{keep}"
    assert moved.json()["survivor_id"] == keep
    assert client.get(f"/api/v1/contacts/{dupe}", headers=auth).json()["id"] == keep  # followed
    timeline = client.get(f"/api/v1/contacts/{dupe}/timeline?limit=5&channel=note", headers=auth, follow_redirects=False)
    assert timeline.headers["location"] == f"/api/v1/contacts/{keep}/timeline?limit=5&channel=note"
    assert client.get(f"/api/v1/contacts/{dupe}/timeline", headers=auth).json()["items"][0]["text"] == "on the duplicate"

    is_problem(client.post("/api/v1/contacts/merge", json={"survivor_id": keep, "merged_id": keep}, headers=auth), 422)
    body = is_problem(client.post("/api/v1/contacts/merge", json={"survivor_id": dupe, "merged_id": keep},
                                  headers=auth), 409)
    assert body["contact_id"] == keep
    is_problem(client.post("/api/v1/contacts/merge", json={"survivor_id": keep, "merged_id": 9999}, headers=auth), 404)

    merge_id = merged.json()["id"]
    undone = client.post(f"/api/v1/merges/{merge_id}/undo", headers=auth)
    assert undone.status_code == 200 and undone.json()["undone_at"]
    assert client.get(f"/api/v1/contacts/{dupe}", headers=auth, follow_redirects=False).json()["locale"] == "en"
    assert "already undone" in is_problem(client.post(f"/api/v1/merges/{merge_id}/undo", headers=auth), 409)["detail"]
    is_problem(client.post("/api/v1/merges/9999/undo", headers=auth), 404)
    history = client.get(f"/api/v1/contacts/{keep}/merges", headers=auth).json()
    assert [m["id"] for m in history] == [merge_id]


# Every bad input: a problem that names what is wrong, and nothing written.

BIG = "x" * 1_100_000


def bad_requests(cid: int) -> list[tuple[str, str, dict, int, str | None]]:
    c = f"/api/v1/contacts/{cid}"
    return [
        ("POST", "/api/v1/contacts", {"json": {"identities": [{"kind": "email", "value": "not-an-email"}]}}, 422,
         "identities.0.value"),
        ("POST", "/api/v1/contacts", {"json": {"identities": [{"kind": "phone", "value": "12"}]}}, 422,
         "identities.0.value"),
        ("POST", "/api/v1/contacts", {"json": {"identities": [{"kind": "fax", "value": "1"}]}}, 422,
         "identities.0.kind"),
        ("POST", "/api/v1/contacts", {"json": {"display_name": "A", "nmae": "typo"}}, 422, "nmae"),
        ("POST", "/api/v1/contacts", {"json": {"display_name": "A", "tags": "vip"}}, 422, "tags"),
        ("POST", "/api/v1/contacts", {"json": {"display_name": 42}}, 422, "display_name"),
        ("POST", "/api/v1/contacts", {"json": {"display_name": "A", "time_zone": "Mars/Base"}}, 422, "time_zone"),
        ("POST", "/api/v1/contacts", {"json": {"display_name": "A", "owner_id": 12345}}, 422, "owner_id"),
        ("POST", "/api/v1/contacts", {"json": {}}, 422, "display_name"),
        ("POST", "/api/v1/contacts", {"content": b'{"display_name": "A",', "headers": {"content-type": "application/json"}},
         400, None),
        ("POST", "/api/v1/contacts", {"json": {"display_name": BIG}}, 413, None),
        ("POST", "/api/v1/contacts", {"json": {"display_name": "Dup", "identities": [
            {"kind": "email", "value": "TAKEN@example.com"}]}}, 409, None),
        ("PATCH", c, {"json": {"locale": "fr"}}, 422, "locale"),
        ("PATCH", c, {"json": {"display_name": None}}, 422, "display_name"),
        ("PATCH", c, {"json": {"merged_into": 1}}, 422, "merged_into"),
        ("PATCH", "/api/v1/contacts/987654", {"json": {"locale": "ru"}}, 404, None),
        ("GET", "/api/v1/contacts/987654", {}, 404, None),
        ("GET", "/api/v1/contacts/abc", {}, 422, "contact_id"),
        ("POST", f"{c}/tags", {"json": {"tags": ["a;b"]}}, 422, "tags"),
        ("POST", f"{c}/tags", {"json": {"tags": []}}, 422, "tags"),
        ("PUT", f"{c}/attributes", {"json": ["not", "an", "object"]}, 422, ""),
        ("POST", f"{c}/identities", {"json": {"kind": "email", "value": "taken@example.com"}}, 409, None),
        ("POST", f"{c}/identities", {"json": {"kind": "email", "value": "@@"}}, 422, "identity.0.value"),
        ("POST", f"{c}/consent", {"json": {"channel": "email", "status": "maybe"}}, 422, "status"),
        ("POST", f"{c}/consent", {"json": {"channel": "email", "status": "granted",
                                           "occurred_at": "2026-01-01T10:00:00"}}, 422, "occurred_at"),
        ("POST", f"{c}/notes", {"json": {"text": ""}}, 422, "text"),
        ("POST", f"{c}/notes", {"json": {"text": "x", "author_id": 1}}, 422, "author_id"),
        ("GET", f"{c}/timeline?since=2026-01-01T10:00:00", {}, 422, "since"),
        ("GET", f"{c}/timeline?direction=sideways", {}, 422, "direction.0"),
        ("GET", f"{c}/timeline?cursor=garbage", {}, 400, None),
        ("GET", f"{c}/timeline?limit=0", {}, 422, None),
        ("GET", "/api/v1/contacts?cursor=Zm9v", {}, 400, None),
        ("POST", "/api/v1/contacts/merge", {"json": {"survivor_id": cid}}, 422, "merged_id"),
        ("POST", "/api/v1/contacts/import", {"json": {"file": "x"}}, 422, "file"),
    ]


def test_bad_inputs_are_problems_and_write_nothing(client, auth, hub):
    cid = create(client, auth, display_name="Target")["id"]
    create(client, auth, display_name="Other", identities=[{"kind": "email", "value": "taken@example.com"}])
    before = snapshot(hub)
    for method, url, kwargs, status, field in bad_requests(cid):
        headers = {**auth, **kwargs.pop("headers", {})}
        response = client.request(method, url, headers=headers, **kwargs)
        body = is_problem(response, status)
        if field is not None:
            fields = [e["field"] for e in body.get("errors", [])]
            assert field in fields, (method, url, body)
        assert snapshot(hub) == before, (method, url)


def test_scopes_are_enforced(client, api_key, hub):
    read_only = api_key("contacts:read")
    is_problem(client.post("/api/v1/contacts", json={"display_name": "A"}, headers=read_only), 403)
    is_problem(client.get("/api/v1/contacts"), 401)
    cid = create(client, api_key("contacts:write"), display_name="B")["id"]
    is_problem(client.get(f"/api/v1/contacts/{cid}/timeline", headers=read_only), 403)
    is_problem(client.post(f"/api/v1/contacts/{cid}/notes", json={"text": "x"}, headers=read_only), 403)


# CSV over HTTP.

def test_import_reports_bad_lines_and_writes_nothing(client, auth, hub):
    before = snapshot(hub)
    text = 'name,email,attr:note\nGood,good@example.com,"two\nlines"\nBad,nope,\n'
    body = is_problem(client.post("/api/v1/contacts/import", files={"file": ("c.csv", text.encode(), "text/csv")},
                                  headers=auth), 422)
    assert body["errors"] == [{"line": 4, "column": "email", "message": body["errors"][0]["message"]}]
    assert body["rejected"] == 1 and body["rows"] == 2
    assert snapshot(hub) == before
    cp1251 = is_problem(client.post("/api/v1/contacts/import", headers=auth,
                                    files={"file": ("c.csv", "name\nИван\n".encode("cp1251"), "text/csv")}), 422)
    assert "not UTF-8" in cp1251["errors"][0]["message"]
    is_problem(client.post("/api/v1/contacts/import", headers=auth,
                           files={"file": ("big.csv", b"name\n" + b"A\n" * 600_000, "text/csv")}), 413)
    assert snapshot(hub) == before


def test_import_then_export(client, auth, hub):
    text = "\ufeffname;phone;tags;attr:city\nИван;8 916 123 45 67;vip,b2b;Москва\nАнна;+7 903 555 00 00;;\n"
    response = client.post("/api/v1/contacts/import", files={"file": ("c.csv", text.encode(), "text/csv")},
                           headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    exported = client.get("/api/v1/contacts/export.csv", headers=auth)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines() == ["name,email,phone,tags,locale,time_zone,owner_email,lifecycle_stage,attr:city",
                                          "Иван,,+79161234567,vip;b2b,,,,lead,Москва",
                                          "Анна,,+79035550000,,,,,lead,"]
    again = client.post("/api/v1/contacts/import", files={"file": ("e.csv", exported.content, "text/csv")},
                        headers=auth)
    assert again.json()["unchanged"] == 2
    with hub.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "contacts.import")) == 2


def test_openapi_documents_the_routes(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/contacts", "/api/v1/contacts/{contact_id}", "/api/v1/contacts/{contact_id}/timeline",
                 "/api/v1/contacts/merge", "/api/v1/merges/{merge_id}/undo", "/api/v1/contacts/import",
                 "/api/v1/contacts/export.csv", "/api/v1/contacts/lookup"):
        assert path in paths, path
    assert "308" in paths["/api/v1/contacts/{contact_id}"]["get"]["responses"]
