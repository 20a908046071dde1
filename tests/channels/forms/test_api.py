"""The forms REST API (/api/v1/forms, /api/v1/form-submissions) on both stores: CRUD, scopes, bad input
changing nothing, and submissions filtered by form and time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hub import clock
from hub.models import AuditEntry
from hub.runtime import Hub
from hub.timeline import encode_cursor

from channels.forms.models import Form
from tests.channels.forms.conftest import FIELDS, SHOP, make_form, stamp

BODY = {"name": "Callback", "title": "Call me back", "fields": [
    {"name": "name", "type": "text", "label": "Name", "required": True, "maps_to": "display_name"},
    {"name": "phone", "type": "phone", "label": "Phone", "required": True},
], "tags": ["callback"]}


def forms_count(hub: Hub) -> int:
    with hub.session() as session:
        return session.scalar(select(func.count()).select_from(Form))


def submit(hub: Hub, client, form: Form, clk, email: str) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(f"/channels/forms/f/{form.key}", follow_redirects=False,
                         data={"name": "Anna", "email": email, "_token": stamp(hub, form, clk)})
    assert answer.status_code == 303, answer.text


def test_forms_crud(hub: Hub, client, api_key) -> None:  # type: ignore[no-untyped-def]
    headers = api_key("forms:read", "forms:write")
    created = client.post("/api/v1/forms", headers=headers, json=BODY)
    assert created.status_code == 201, created.text
    form = created.json()
    assert form["public_url"].endswith(f"/channels/forms/f/{form['key']}") and form["submissions"] == 0
    assert form["fields"][1]["type"] == "phone" and form["is_active"] is True
    assert client.get(form["public_url"].split("127.0.0.1:8000")[-1]).status_code == 200  # the hosted page is live
    make_form(hub)
    page = client.get("/api/v1/forms?limit=1", headers=headers).json()
    rest = client.get(f"/api/v1/forms?limit=1&cursor={page['next_cursor']}", headers=headers).json()
    assert [f["name"] for f in page["items"] + rest["items"]] == ["Contact us", "Callback"]  # newest first
    replaced = client.put(f"/api/v1/forms/{form['id']}", headers=headers, json={**BODY, "name": "Call back", "is_active": False})
    assert replaced.status_code == 200 and replaced.json()["key"] == form["key"]
    got = client.get(f"/api/v1/forms/{form['id']}", headers=headers).json()
    assert (got["name"], got["is_active"]) == ("Call back", False)
    assert client.delete(f"/api/v1/forms/{form['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/forms/{form['id']}", headers=headers).status_code == 404
    with hub.session() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == str(form["id"]))
                                       .order_by(AuditEntry.id)))
    assert actions == ["form.create", "form.update", "form.delete"]


def test_bad_input_is_a_4xx_and_changes_nothing(hub: Hub, client, api_key) -> None:  # type: ignore[no-untyped-def]
    headers = api_key("forms:read", "forms:write")
    existing = make_form(hub)
    before = client.get(f"/api/v1/forms/{existing.id}", headers=headers).json()
    no_contact_field = {**BODY, "fields": [BODY["fields"][0]]}
    for body, field in (
        (no_contact_field, ""),
        ({**BODY, "fields": [{**BODY["fields"][1], "name": "Bad Name"}]}, "fields.0.name"),
        ({**BODY, "allowed_origins": ["javascript:alert(1)"]}, "allowed_origins"),
        ({**BODY, "redirect_url": "https://evil.example/"}, ""),
        ({**BODY, "task_assignee_id": 999}, "task_assignee_id"),
        ({**BODY, "surprise": True}, "surprise"),
        ({k: v for k, v in BODY.items() if k != "name"}, "name"),
    ):
        for method, url in (("post", "/api/v1/forms"), ("put", f"/api/v1/forms/{existing.id}")):
            answer = getattr(client, method)(url, headers=headers, json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert any(e["field"].startswith(field) for e in answer.json()["errors"]), answer.json()
    assert client.get(f"/api/v1/forms/{existing.id}", headers=headers).json() == before
    assert client.put("/api/v1/forms/999", headers=headers, json=BODY).status_code == 404
    assert client.delete("/api/v1/forms/999", headers=headers).status_code == 404
    assert forms_count(hub) == 1


def test_scopes(hub: Hub, client, api_key) -> None:  # type: ignore[no-untyped-def]
    form = make_form(hub)
    reader = api_key("forms:read")
    assert client.get("/api/v1/forms", headers=reader).status_code == 200
    assert client.get("/api/v1/form-submissions", headers=reader).status_code == 200
    for method, url in (("post", "/api/v1/forms"), ("put", f"/api/v1/forms/{form.id}")):
        denied = getattr(client, method)(url, headers=reader, json=BODY)
        assert denied.status_code == 403 and denied.json()["scope"] == "forms:write"
    assert client.delete(f"/api/v1/forms/{form.id}", headers=reader).status_code == 403
    assert client.get("/api/v1/forms", headers=api_key("meetings:read")).status_code == 403
    assert client.get("/api/v1/forms").status_code == 401
    assert forms_count(hub) == 1


def test_submissions_by_form_and_time(hub: Hub, client, api_key, frozen_clock) -> None:  # type: ignore[no-untyped-def]
    headers = api_key("forms:read", "forms:write")
    first, second = make_form(hub), make_form(hub, name="Second", fields=FIELDS, allowed_origins=[SHOP])
    start = clock.now()
    submit(hub, client, first, frozen_clock, "a@example.com")
    middle = clock.now()
    frozen_clock.advance(hours=1)
    submit(hub, client, first, frozen_clock, "b@example.com")
    submit(hub, client, second, frozen_clock, "c@example.com")

    def emails(query: str) -> list[str]:
        answer = client.get(f"/api/v1/form-submissions?{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return [s["values"]["email"] for s in answer.json()["items"]]

    assert emails("") == ["c@example.com", "b@example.com", "a@example.com"]
    assert emails(f"form_id={first.id}") == ["b@example.com", "a@example.com"]
    since = (middle + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert emails(f"form_id={first.id}&since={since}") == ["b@example.com"]
    until = (middle + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert emails(f"until={until}") == ["a@example.com"]
    assert emails(f"since={start.isoformat().replace('+00:00', 'Z')}&form_id={second.id}") == ["c@example.com"]
    page = client.get(f"/api/v1/form-submissions?form_id={first.id}&limit=1", headers=headers).json()
    rest = client.get(f"/api/v1/form-submissions?form_id={first.id}&limit=1&cursor={page['next_cursor']}",
                      headers=headers).json()
    assert [s["values"]["email"] for s in page["items"] + rest["items"]] == ["b@example.com", "a@example.com"]
    one = page["items"][0]
    assert client.get(f"/api/v1/form-submissions/{one['id']}", headers=headers).json() == one
    assert one["contact_id"] and one["event_id"]
    assert client.get(f"/api/v1/forms/{first.id}", headers=headers).json()["submissions"] == 2
    # Bad filters: 4xx problem details.
    assert client.get("/api/v1/form-submissions?since=2026-01-01T00:00:00", headers=headers).status_code == 422
    assert client.get(f"/api/v1/form-submissions?since={since}&until={until}", headers=headers).status_code == 422
    assert client.get("/api/v1/form-submissions?form_id=999", headers=headers).status_code == 404
    naive = encode_cursor("2026-01-01T00:00:00|1")
    assert client.get(f"/api/v1/form-submissions?cursor={naive}", headers=headers).status_code == 400
    assert client.get(f"/api/v1/form-submissions?cursor={encode_cursor(5)}", headers=headers).status_code == 400
    assert client.get("/api/v1/form-submissions?cursor=garbage", headers=headers).status_code == 400
    assert client.get("/api/v1/form-submissions/999", headers=headers).status_code == 404
    # A form with submissions is closed, not deleted.
    refused = client.delete(f"/api/v1/forms/{first.id}", headers=headers)
    assert refused.status_code == 409 and "close it" in refused.json()["detail"]
    assert forms_count(hub) == 2
