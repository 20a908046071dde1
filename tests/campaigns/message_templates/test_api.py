"""REST /api/v1/templates: CRUD, preview for a contact, test sends, and bad input that changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.message_templates.models import MessageTemplate
from hub.models import Delivery
from tests.campaigns.segments.conftest import person

EMAIL = {"name": "Welcome", "channel": "email", "default_locale": "ru", "variants": {
    "ru": {"subject": "Здравствуйте, {{ contact.first_name }}", "html": "<p>Привет, {{ contact.name }}!</p>"},
    "en": {"subject": "Hello, {{ contact.first_name }}", "text": "Hi {{ contact.name }}"}}}


def templates(hub) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(MessageTemplate))


def deliveries(hub) -> list[Delivery]:
    with hub.session(read_only=True) as s:
        return list(s.scalars(select(Delivery)))


def test_crud(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    created = client.post("/api/v1/templates", json=EMAIL, headers=headers)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.json()["variants"]["en"] == {"subject": "Hello, {{ contact.first_name }}", "text": "Hi {{ contact.name }}"}
    listed = client.get("/api/v1/templates?channel=email", headers=headers).json()["items"]
    assert [t["id"] for t in listed] == [tid]
    assert client.get("/api/v1/templates?channel=sms", headers=headers).json()["items"] == []
    patched = client.patch(f"/api/v1/templates/{tid}", json={"default_locale": "en", "name": "Hello"}, headers=headers)
    assert patched.status_code == 200 and patched.json()["default_locale"] == "en"
    assert client.delete(f"/api/v1/templates/{tid}", headers=headers).status_code == 204
    assert templates(hub) == 0


def test_syntax_errors_and_bad_variants_are_422_and_write_nothing(client, hub, api_key):
    headers = api_key("campaigns:write")
    broken = {**EMAIL, "variants": {"ru": {"subject": "x", "html": "<p>\n{% for x in %}</p>"}}}
    answer = client.post("/api/v1/templates", json=broken, headers=headers)
    assert answer.status_code == 422 and "ru.html, line 2" in answer.json()["detail"]
    sms_with_subject = {"name": "s", "channel": "sms", "variants": {"ru": {"subject": "x", "text": "y"}}}
    assert client.post("/api/v1/templates", json=sms_with_subject, headers=headers).status_code == 422
    no_default = {"name": "s", "channel": "sms", "default_locale": "en", "variants": {"ru": {"text": "y"}}}
    assert client.post("/api/v1/templates", json=no_default, headers=headers).status_code == 422
    german = {"name": "s", "channel": "sms", "variants": {"de": {"text": "y"}}}
    assert client.post("/api/v1/templates", json=german, headers=headers).status_code == 422
    assert templates(hub) == 0
    tid = client.post("/api/v1/templates", json=EMAIL, headers=headers).json()["id"]
    assert client.patch(f"/api/v1/templates/{tid}", json={"variants": broken["variants"]},
                        headers=headers).status_code == 422
    assert client.patch(f"/api/v1/templates/{tid}", json={"channel": "sms"}, headers=headers).status_code == 422


def test_preview_for_a_real_contact_picks_their_language(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    tid = client.post("/api/v1/templates", json=EMAIL, headers=headers).json()["id"]
    with hub.session() as s, s.begin():
        bob = person(s, "Bob Stone", email="bob@example.com", locale="en").id
        anna = person(s, "Анна Смирнова", locale="ru").id
    answer = client.post(f"/api/v1/templates/{tid}/preview", json={"contact_id": bob}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == {"subject": "Hello, Bob", "html": None, "text": "Hi Bob Stone"}
    assert answer.json()["locale_used"] == "en" and answer.json()["contact"]["email"] == "bob@example.com"
    ru = client.post(f"/api/v1/templates/{tid}/preview", json={"contact_id": anna}, headers=headers).json()
    assert ru["content"]["html"] == "<p>Привет, Анна Смирнова!</p>"
    forced = client.post(f"/api/v1/templates/{tid}/preview", json={"contact_id": anna, "locale": "en"},
                         headers=headers).json()
    assert forced["content"]["subject"] == "Hello, Анна"
    sample = client.post(f"/api/v1/templates/{tid}/preview", json={}, headers=headers).json()
    assert sample["contact"] is None and sample["content"]["subject"] == "Здравствуйте, Анна"
    missing = client.post(f"/api/v1/templates/{tid}/preview", json={"contact_id": 999999}, headers=headers)
    assert missing.status_code == 404


def test_a_template_that_fails_for_a_contact_is_a_clear_422(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    body = {"name": "attr", "channel": "sms", "variants": {"ru": {"text": "Город: {{ contact.attributes.city }}"}}}
    tid = client.post("/api/v1/templates", json=body, headers=headers).json()["id"]
    with hub.session() as s, s.begin():
        cid = person(s, "Без города", locale="ru").id
    answer = client.post(f"/api/v1/templates/{tid}/preview", json={"contact_id": cid}, headers=headers)
    assert answer.status_code == 422 and "ru.text, line 1" in answer.json()["detail"]


def test_test_send_needs_a_configured_channel(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    sms = {"name": "sms", "channel": "sms", "variants": {"ru": {"text": "Код {{ contact.first_name }}"}}}
    tid = client.post("/api/v1/templates", json=sms, headers=headers).json()["id"]
    answer = client.post(f"/api/v1/templates/{tid}/test-send", json={"to": "+79161234567"}, headers=headers)
    assert answer.status_code == 409 and "not configured" in answer.json()["detail"]
    assert deliveries(hub) == []


def test_test_email_from_an_api_key_is_refused(client, hub, api_key):
    headers = api_key("campaigns:write")
    tid = client.post("/api/v1/templates", json=EMAIL, headers=headers).json()["id"]
    answer = client.post(f"/api/v1/templates/{tid}/test-send", json={}, headers=headers)
    assert answer.status_code in (409, 422)
    assert deliveries(hub) == []


def test_scopes(client, hub, api_key):
    reader = api_key("campaigns:read")
    assert client.post("/api/v1/templates", json=EMAIL, headers=reader).status_code == 403
    assert client.get("/api/v1/templates", headers=api_key("tasks:read")).status_code == 403
    assert templates(hub) == 0




def test_a_template_that_cannot_render_for_the_sample_contact_is_not_saved(client, hub, api_key):
    headers = api_key("campaigns:write", "campaigns:read")
    for text, says in [("Leave: {{ unsubscribe_url }}", "'unsubscribe_url' is undefined"),
                       ("{{ ''.__class__.__mro__ }}", "not allowed in a message template"),
                       ("{% for i in range(10**9) %}{{ i }}{% endfor %}", "range()"),
                       ("{{ contact.name.no_such_thing() }}", "ru.text, line 1")]:
        answer = client.post("/api/v1/templates", json={"name": "t", "channel": "sms",
                                                        "variants": {"ru": {"text": text}}}, headers=headers)
        assert answer.status_code == 422, (text, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert says in answer.json()["detail"], answer.json()
    assert templates(hub) == 0
    # What every campaign message has, and attributes the sample lacks, are fine.
    fine = {"name": "ok", "channel": "sms", "variants": {"ru": {
        "text": "{{ campaign.name }}: {{ contact.first_name }}, {{ contact.attributes.company or 'друг' }}"}}}
    made = client.post("/api/v1/templates", json=fine, headers=headers)
    assert made.status_code == 201, made.text
    broken = {"variants": {"ru": {"text": "{{ unsubscribe_url }}"}}}
    assert client.patch(f"/api/v1/templates/{made.json()['id']}", json=broken, headers=headers).status_code == 422
