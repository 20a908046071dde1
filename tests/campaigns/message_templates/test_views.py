"""The template pages without a browser: editor, live preview for a contact, test sends, roles."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.message_templates.models import MessageTemplate
from hub.models import Delivery, Role
from tests.campaigns.segments.conftest import person
from tests.channels.email.conftest import configure
from tests.web.conftest import ORIGIN, login

H = {"Origin": ORIGIN}
EMAIL_FORM = {"channel": "email", "name": "Welcome", "default_locale": "ru",
              "v:ru:subject": "Привет, {{ contact.first_name }}", "v:ru:html": "<p>Здравствуйте, {{ contact.name }}</p>",
              "v:ru:text": "", "v:en:subject": "Hi {{ contact.first_name }}", "v:en:html": "",
              "v:en:text": "Hello {{ contact.name }}"}


def saved_template(hub) -> MessageTemplate:
    with hub.session(read_only=True) as s:
        return s.scalars(select(MessageTemplate)).one()


def test_editor_saves_variants_and_previews_for_a_real_contact(web, hub):
    with hub.session() as s, s.begin():
        bob = person(s, "Bob <b>Stone</b>", email="bob@example.com", locale="en").id
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    assert 'name="v:en:subject"' in web.get("/message-templates/new?channel=email").text
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    sample = web.post("/message-templates/preview", data=EMAIL_FORM, headers=hx)
    assert "Привет, Анна" in sample.text and "srcdoc=" in sample.text
    found = web.get("/message-templates/contact-options?q=bob", headers=hx)
    assert f'value="{bob}"' in found.text and found.headers["HX-Trigger-After-Swap"] == "mt-contact-changed"
    for_bob = web.post("/message-templates/preview", data={**EMAIL_FORM, "contact_id": str(bob)}, headers=hx)
    assert "Hi Bob" in for_bob.text and "Hello Bob &lt;b&gt;Stone&lt;/b&gt;" in for_bob.text
    forced = web.post("/message-templates/preview", data={**EMAIL_FORM, "contact_id": str(bob), "preview_locale": "ru"},
                      headers=hx)
    assert "Привет, Bob" in forced.text
    saved = web.post("/message-templates/new", data={**EMAIL_FORM, "csrf_token": csrf}, headers=H,
                     follow_redirects=False)
    assert saved.status_code == 303, saved.text
    template = saved_template(hub)
    assert template.variants == {"ru": {"subject": "Привет, {{ contact.first_name }}",
                                        "html": "<p>Здравствуйте, {{ contact.name }}</p>", "text": ""},
                                 "en": {"subject": "Hi {{ contact.first_name }}", "text": "Hello {{ contact.name }}"}}
    assert "Welcome" in web.get("/message-templates").text
    page = web.get(f"/message-templates/{template.id}")
    assert "Template saved." not in page.text and "Hello {{ contact.name }}" in page.text


def test_errors_are_shown_with_their_line_and_nothing_is_saved(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    broken = {**EMAIL_FORM, "v:ru:html": "<p>\n{{ contact.name }\n</p>"}
    preview = web.post("/message-templates/preview", data=broken, headers=hx)
    assert "HTML body (ru), line 2" in preview.text
    escape = {**EMAIL_FORM, "v:ru:html": "{{ ''.__class__.__mro__ }}"}
    refused = web.post("/message-templates/preview", data=escape, headers=hx)
    assert "not allowed" in refused.text and "&lt;class" not in refused.text
    answer = web.post("/message-templates/new", data={**broken, "csrf_token": csrf}, headers=H)
    assert answer.status_code == 422 and "HTML body (ru), line 2" in answer.text
    with hub.session(read_only=True) as s:
        assert s.scalars(select(MessageTemplate)).all() == []


def test_test_send_goes_to_the_marketers_own_address(web, hub, tmp_path):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    web.post("/message-templates/new", data={**EMAIL_FORM, "csrf_token": csrf}, headers=H)
    template = saved_template(hub)
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    refused = web.post(f"/message-templates/{template.id}/test-send", data={}, headers=hx)
    assert refused.status_code == 422 and "not configured" in refused.text
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery)).all() == []
    configure(hub, smtp_host="127.0.0.1", smtp_port=2525)
    with hub.session() as s, s.begin():
        anna = person(s, "Анна Смирнова", locale="ru").id
    sent = web.post(f"/message-templates/{template.id}/test-send", data={"contact_id": str(anna),
                                                                         "to": "someone@else.example"}, headers=hx)
    assert sent.status_code == 422 and "your own address" in sent.text  # not a relay to anyone else
    sent = web.post(f"/message-templates/{template.id}/test-send", data={"contact_id": str(anna)}, headers=hx)
    assert sent.status_code == 200 and "m@example.com" in sent.text
    with hub.session(read_only=True) as s:
        delivery = s.scalars(select(Delivery)).one()
    assert delivery.address == "m@example.com" and delivery.purpose == "transactional"
    assert delivery.contact_id is None  # a test is not part of the customer's timeline
    assert delivery.content["subject"] == "[TEST] Привет, Анна"
    assert delivery.content["html"] == "<p>Здравствуйте, Анна Смирнова</p>"


def test_sms_test_send_needs_a_valid_number(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    web.post("/message-templates/new", data={"channel": "sms", "name": "Code", "default_locale": "ru",
                                             "v:ru:text": "Код: 1234", "csrf_token": csrf}, headers=H)
    template = saved_template(hub)
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    page = web.get(f"/message-templates/{template.id}")
    assert 'name="to"' in page.text
    answer = web.post(f"/message-templates/{template.id}/test-send", data={"to": "+79161234567"}, headers=hx)
    assert answer.status_code == 422  # SMS is not configured in tests
    with hub.session(read_only=True) as s:
        assert s.scalars(select(Delivery)).all() == []


def test_agents_are_refused(web, hub):
    login(web, hub, "agent@example.com", role=Role.AGENT)
    assert web.get("/message-templates").status_code == 403
    assert web.get("/message-templates/new").status_code == 403


def test_template_errors_are_shown_in_the_marketers_language(web, hub):
    """Where and why, in Russian for a Russian marketer (Jinja's own detail stays as Jinja wrote it);
    the API keeps English."""
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER, locale="ru")
    hx = {**H, "HX-Request": "true", "X-CSRF-Token": csrf}
    undefined = web.post("/message-templates/preview", headers=hx,
                         data={**EMAIL_FORM, "v:ru:html": "<p>{{ contact.frist_name }}</p>"})
    assert "Текст в HTML (ru), строка 1:" in undefined.text
    assert "проверьте имя переменной; см. список переменных" in undefined.text
    looping = web.post("/message-templates/preview", headers=hx,
                       data={**EMAIL_FORM, "v:ru:text": "{% for i in range(10**9) %}{{ i }}{% endfor %}"})
    assert "Текст (ru), строка 1: range() ограничен" in looping.text
    empty = web.post("/message-templates/preview", headers=hx, data={**EMAIL_FORM, "v:ru:subject": "{{ '' }}"})
    assert "Тема (ru): тема получилась пустой" in empty.text
    refused = web.post("/message-templates/new", headers=H,
                       data={**EMAIL_FORM, "v:ru:subject": "", "csrf_token": csrf})
    assert refused.status_code == 422 and "Тема (ru): письму нужна тема" in refused.text

    from campaigns.message_templates.rendering import TemplateRenderError, validate_variants
    import pytest

    with pytest.raises(TemplateRenderError, match=r"^ru.subject: an email needs a subject$"):
        validate_variants("email", {"ru": {"subject": "", "html": "<p>x</p>", "text": ""}})


def test_a_template_that_cannot_render_is_not_saved_and_the_page_says_why_in_russian(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER, locale="ru")
    answer = web.post("/message-templates/new", headers=H,
                      data={**EMAIL_FORM, "v:ru:text": "Отписаться: {{ unsubscribe_url }}", "csrf_token": csrf})
    assert answer.status_code == 422
    assert "Текст (ru), строка 1:" in answer.text and "unsubscribe_url" in answer.text
    assert "проверьте имя переменной" in answer.text
    with hub.session(read_only=True) as s:
        assert s.scalars(select(MessageTemplate)).all() == []


def test_deleting_a_template_asks_first_on_a_page_of_its_own(web, hub):
    csrf = login(web, hub, "m@example.com", role=Role.MARKETER)
    web.post("/message-templates/new", data={**EMAIL_FORM, "csrf_token": csrf}, headers=H)
    template = saved_template(hub)
    assert 'action="/message-templates/%d/delete"' % template.id in web.get(f"/message-templates/{template.id}").text
    asked = web.post(f"/message-templates/{template.id}/delete", data={"csrf_token": csrf}, headers=H,
                     follow_redirects=False)
    assert asked.status_code == 200 and "Delete the template “Welcome”?" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text and "onsubmit" not in asked.text
    assert saved_template(hub).id == template.id  # still there
    done = web.post(f"/message-templates/{template.id}/delete", data={"csrf_token": csrf, "confirmed": "yes"},
                    headers=H, follow_redirects=False)
    assert done.status_code == 303
    with hub.session(read_only=True) as s:
        assert s.scalars(select(MessageTemplate)).all() == []
