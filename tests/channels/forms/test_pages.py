"""The workspace's form pages: who may see and edit, creating and editing through the HTML form,
the embed snippet, the submission list; and the demo form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.models import AuditEntry, Role

from channels.forms.demo import demo
from channels.forms.models import Form
from tests.channels.forms.conftest import SHOP, make_form, stamp
from tests.web.conftest import ORIGIN, login


@pytest.fixture
def web(app):
    with TestClient(app, base_url=ORIGIN) as client:
        yield client


def new_form_data(token: str, **extra: str) -> dict[str, str]:
    data = {
        "csrf_token": token, "name": "Callback", "title": "Request a call", "is_active": "on",
        "f-0-name": "name", "f-0-type": "text", "f-0-label": "Your name", "f-0-required": "on",
        "f-0-maps_to": "display_name", "f-0-position": "1",
        "f-1-name": "phone", "f-1-type": "phone", "f-1-label": "Phone", "f-1-required": "on", "f-1-position": "2",
        "f-2-name": "when", "f-2-type": "choice", "f-2-label": "When", "f-2-options": "am=Morning\npm=Evening",
        "f-2-maps_to": "attribute:call_time", "f-2-position": "3",
        "f-3-name": "ok", "f-3-type": "consent", "f-3-label": "SMS", "f-3-wording": "You may text me offers.",
        "f-3-consent_channel": "sms", "f-3-position": "4",
        "f-4-name": "", "f-4-label": "",  # an empty row is ignored
        "allowed_origins": "https://Shop.example/\nhttp://localhost:8080", "redirect_url": "",
        "tags": "callback, lead", "thank_you": "We will call you.",
    }
    data.update(extra)
    return data


def form_count(hub) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(Form))


def test_a_marketer_creates_and_edits_a_form(hub, web):
    token = login(web, hub, "mary@example.com", role=Role.MARKETER)
    assert "/forms" in web.get("/").text  # in the navigation
    answer = web.post("/forms/new", data=new_form_data(token), headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    with hub.session(read_only=True) as s:
        form = s.scalars(select(Form)).one()
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "form.create"))
    assert [f["name"] for f in form.fields] == ["name", "phone", "when", "ok"]
    assert form.fields[2]["options"] == [{"value": "am", "label": "Morning"}, {"value": "pm", "label": "Evening"}]
    assert form.fields[3]["wording"] == "You may text me offers." and form.fields[3]["consent_channel"] == "sms"
    assert form.allowed_origins == ["https://shop.example", "http://localhost:8080"]
    assert form.tags == ["callback", "lead"] and audited == 1
    assert len(form.key) >= 20 and not form.key.isdigit()

    detail = web.get(answer.headers["location"])
    assert detail.status_code == 200
    assert f"/channels/forms/f/{form.key}" in detail.text
    snippet = re.search(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', detail.text, re.S).group(1)
    assert "data-hub-form" in snippet and "forms-embed.js" in snippet and "_hp" in snippet

    edit = web.get(f"/forms/{form.id}/edit")
    assert edit.status_code == 200 and "You may text me offers." in edit.text
    changed = new_form_data(token, name="Callback v2", **{"f-2-remove": "on"},
                            redirect_url="https://shop.example/thanks")
    saved = web.post(f"/forms/{form.id}/edit", data=changed, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert saved.status_code == 303
    with hub.session(read_only=True) as s:
        again = s.get(Form, form.id)
    assert again.name == "Callback v2" and [f["name"] for f in again.fields] == ["name", "phone", "ok"]
    assert again.key == form.key and again.redirect_url == "https://shop.example/thanks"


@pytest.mark.parametrize("extra, message", [
    ({"f-1-type": "text", "f-1-maps_to": ""}, "email or a phone field"),
    ({"redirect_url": "https://evil.example/"}, "allowed origins"),
    ({"allowed_origins": "https://shop.example/path"}, "scheme, host and port"),
    ({"f-2-options": "only-one"}, "at least two options"),
    ({"f-3-wording": ""}, "exact wording"),
    ({"f-0-name": "Bad Name"}, "lowercase"),
    ({"f-0-maps_to": "tag"}, "can map to"),
])
def test_an_invalid_definition_is_refused_and_creates_nothing(hub, web, extra, message):
    token = login(web, hub, "mary@example.com", role=Role.MARKETER)
    answer = web.post("/forms/new", data=new_form_data(token, **extra), headers={"Origin": ORIGIN})
    assert answer.status_code == 422 and message in answer.text
    assert form_count(hub) == 0


def test_an_agent_may_look_but_not_edit(hub, web):
    form = make_form(hub)
    token = login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get("/forms").status_code == 200 and form.name in web.get("/forms").text
    assert web.get(f"/forms/{form.id}").status_code == 200
    assert web.get("/forms/new").status_code == 403
    assert web.get(f"/forms/{form.id}/edit").status_code == 403
    refused = web.post("/forms/new", data=new_form_data(token), headers={"Origin": ORIGIN})
    assert refused.status_code == 403 and form_count(hub) == 1
    assert web.get("/forms/999999").status_code == 404


def test_signed_out_visitors_and_foreign_posts_are_refused(hub, web):
    assert web.get("/forms", follow_redirects=False).status_code == 303
    token = login(web, hub, "mary@example.com", role=Role.MARKETER)
    forged = web.post("/forms/new", data=new_form_data(token), headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and form_count(hub) == 0


def test_submissions_are_listed_on_the_form_page(hub, web, client, frozen_clock):
    form = make_form(hub)
    answer = client.post(f"/channels/forms/f/{form.key}/json", headers={"Origin": SHOP},
                         json={"name": "Пётр", "email": "petr@example.com", "message": "Позвоните мне",
                               "_token": stamp(hub, form, frozen_clock), "_source": "https://shop.example/p"})
    assert answer.status_code == 201
    login(web, hub, "agent@example.com", role=Role.AGENT)
    page = web.get(f"/forms/{form.id}")
    assert "Пётр" in page.text and "Позвоните мне" in page.text and "https://shop.example/p" in page.text


def test_the_demo_form_is_created_once(hub):
    first = demo(hub, seed=7)
    second = demo(hub, seed=7)
    assert "created" in first and "kept" in second
    assert form_count(hub) == 1


def test_submissions_download_as_csv_safe_for_spreadsheets(hub, web, client, frozen_clock):
    import csv
    import io

    form = make_form(hub)
    token = stamp(hub, form, frozen_clock)
    for i, message in enumerate(["=HYPERLINK(\"http://evil.example\")", "Перезвоните"]):
        assert client.post(f"/channels/forms/f/{form.key}/json", json={
            "name": f"Person {i}", "email": f"p{i}@example.com", "message": message, "vip": i == 1,
            "_token": token}).status_code == 201
    login(web, hub, "agent@example.com", role=Role.AGENT)
    answer = web.get(f"/forms/{form.id}/submissions.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["submitted_at", "contact_id", "name"] and len(rows) == 3
    by_name = {r[2]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_name["Person 0"]["message"] == "'=HYPERLINK(\"http://evil.example\")"  # not a formula
    assert by_name["Person 1"]["message"] == "Перезвоните" and by_name["Person 1"]["vip"] == "yes"
    assert web.get("/forms/424242/submissions.csv").status_code == 404
