"""What a person sees, in Chromium, in Russian and English (issue 17, section 2): the segment builder
says nothing before anything was typed, starts a new kind of condition blank, and names a field by
its label in the marketer's language; attributes are escaped once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hub.models import Role
from tests.web.conftest import sign_in
from tests.web.test_segments_browser import seed, settled

# Words, languages and layout do not depend on the store: SQLite only.
pytestmark = pytest.mark.any_store

WORDS = {
    "en": {"fill_tag": "Fill in “Tag”.", "save": "Save segment", "name": "Name"},
    "ru": {"fill_tag": "Заполните поле «Тег».", "save": "Сохранить сегмент", "name": "Название"},
}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_segment_builder_speaks_plainly_and_only_when_asked(new_page, live_server, language):
    seed(live_server.hub)
    live_server.user("marketer@example.com", role=Role.MARKETER, name="Mila", locale=language)
    page = new_page(locale="ru-RU" if language == "ru" else "en-US")
    sign_in(page, "marketer@example.com", next_path="/segments/new")
    expect(page.locator("#segment-count")).to_have_text("3")
    page.locator("#builder > fieldset > .sg-add button").first.click()
    kind = page.locator('select[name="n:r.1:type"]')
    expect(kind).to_be_visible()
    settled(page)

    # Orders: the value box starts empty, not with the "ru" of the Language condition it replaced.
    kind.select_option("orders")
    value = page.locator('input[name="n:r.1:value"]')
    expect(value).to_be_visible()
    settled(page)
    expect(value).to_have_value("")
    assert value.get_attribute("inputmode") == "decimal"
    expect(page.locator(".sg-error")).to_have_count(0)
    expect(page.locator("#segment-preview .alert-bad")).to_have_count(0)

    # A tag condition: no error before anything is typed; its box allows 60 characters.
    page.locator('select[name="n:r.1:type"]').select_option("tag")
    tag = page.locator('input[name="n:r.1:tag"]')
    expect(tag).to_be_visible()
    settled(page)
    assert tag.get_attribute("maxlength") == "60"
    expect(page.locator(".sg-error")).to_have_count(0)
    expect(page.locator("#segment-preview .alert-bad")).to_have_count(0)
    assert page.evaluate("""[...document.querySelectorAll('#builder input')].every(
        e => [...e.attributes].every(a => !a.value.includes('"')))""")

    # Saving with the tag still blank: the error names the field by its label, in the page's language.
    page.locator("#sg-name").fill("VIP")
    page.get_by_role("button", name=WORDS[language]["save"]).click()
    error = page.locator('.sg-cond[data-path="r.1"] .sg-error')
    expect(error).to_have_text(WORDS[language]["fill_tag"])
    assert "String should" not in page.content()


SURVEY = {"ru": {"send": "Отправить ответы", "nps": "Порекомендуете ли вы нас друзьям"},
          "en": {"send": "Send answers", "nps": "How likely are you to recommend us"}}


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_survey_answer_clears_its_error_and_the_link_keeps_its_language(live_server, new_page, language):
    import re

    from tests.campaigns.surveys.conftest import configure, invite_now, make_contact, make_survey

    hub = live_server.hub
    configure(hub, smtp_host="127.0.0.1", smtp_port=1)
    survey = make_survey(hub, delay_minutes=0)
    contact = make_contact(hub)  # a Russian-speaking contact; the English visitor picks English
    _, token = invite_now(hub, survey, contact)
    page = new_page(locale="ru-RU")
    page.goto(f"/s/{token}?lang={language}")
    page.get_by_role("button", name=SURVEY[language]["send"]).click()
    nps = page.get_by_role("group", name=re.compile(SURVEY[language]["nps"]))
    error = nps.locator(".field-error")
    expect(error).to_be_visible()
    expect(page.locator("#error-summary")).to_be_visible()
    nps.locator("label").nth(9).click()  # a score of 9: the question is answered
    expect(error).to_have_count(0)
    expect(page.locator("#error-summary")).to_have_count(0)
    assert nps.get_attribute("aria-invalid") is None
    page.get_by_role("button", name=SURVEY[language]["send"]).click()
    expect(page.locator(".notice.ok")).to_be_visible()

    # Reopened later from the invitation's link (no ?lang): the page stays in the language answered in.
    page.goto(f"/s/{token}")
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize(("language", "heading"), [("en", "Not found"), ("ru", "Не найдено")])
def test_a_mistyped_address_shows_a_page_in_the_agents_language(new_page, live_server, language, heading):
    live_server.user(locale=language)
    page = new_page(locale="ru-RU" if language == "ru" else "en-US")
    sign_in(page, "agent@example.com")
    for url in ("/nonexistent-page", "/contacts/abc"):
        answer = page.goto(url)
        assert answer.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator("nav.sidebar")).to_be_visible()  # the app's own layout, with a way back
        assert "/problems/" not in page.content()
    page.get_by_role("link", name="Back to contacts" if language == "en" else "К контактам").click()
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_compose_tab_is_whole_at_1280_px(new_page, live_server, language):
    from tests.web.seed import seed_customer

    live_server.user(locale=language)
    contact_id = seed_customer(live_server.hub)
    page = new_page(viewport={"width": 1280, "height": 800}, locale="ru-RU" if language == "ru" else "en-US")
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: failed.append(response.url) if response.status == 404 else None)
    sign_in(page, "agent@example.com", next_path=f"/contacts/{contact_id}")
    tabs = page.locator('[role="tablist"]')
    expect(tabs).to_be_visible()
    box = tabs.bounding_box()
    for tab in page.get_by_role("tab").all():
        edge = tab.bounding_box()
        assert edge["x"] >= box["x"] - 1 and edge["x"] + edge["width"] <= box["x"] + box["width"] + 1, tab.inner_text()
    assert not [url for url in failed if "favicon" in url], failed  # the page's icon exists


RU_FIELDS = [{"name": "name", "type": "text", "label": "Имя", "required": True, "maps_to": "display_name"},
             {"name": "email", "type": "email", "label": "Эл. почта", "required": True}]


@pytest.mark.parametrize("visitor", ["en-US", "ru-RU"])
def test_a_form_written_in_russian_speaks_russian_to_every_visitor(new_page, live_server, frozen_clock, visitor):
    from tests.channels.forms.conftest import make_form

    form = make_form(live_server.hub, fields=RU_FIELDS, locale="ru", title="Свяжитесь с нами")
    page = new_page(locale=visitor)
    page.goto(f"/channels/forms/f/{form.key}")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    button = page.get_by_role("button", name="Отправить")
    expect(button).to_be_visible()
    page.get_by_label("Имя").fill("Анна")
    frozen_clock.advance(seconds=10)  # a person takes a while; faster posts are taken for bots
    button.click()  # no email: a required field is missing
    expect(page.locator("#form-errors")).to_contain_text("Эл. почта")
    errors = page.locator("#form-errors").inner_text()
    assert not any(word in errors for word in ("Some answers", "required", "Fill in")), errors
    expect(page.locator(".languages a")).to_have_count(0)  # no switch to a language the form is not in


def test_a_form_without_a_language_follows_the_visitor(new_page, live_server):
    from tests.channels.forms.conftest import make_form

    form = make_form(live_server.hub)
    page = new_page(locale="en-US")
    page.goto(f"/channels/forms/f/{form.key}")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_the_timeline_filter_goes_into_the_address_and_a_bookmark_reopens_it(new_page, live_server):
    from tests.web.seed import seed_customer

    live_server.user()
    contact_id = seed_customer(live_server.hub)
    page = new_page()
    sign_in(page, "agent@example.com", next_path=f"/contacts/{contact_id}")
    page.locator('#timeline-filters input[name="channel"][value="sms"]').check()
    page.wait_for_url(f"**/contacts/{contact_id}?channel=sms")
    expect(page.locator("#timeline .event.ch-email")).to_have_count(0)
    shared = page.url
    other = new_page(java_script_enabled=False)  # a colleague opening the shared link, even without JavaScript
    address = shared.split(live_server.url, 1)[1]
    sign_in(other, "agent@example.com", next_path=address.replace("?", "%3F").replace("=", "%3D"))
    expect(other.locator('#timeline-filters input[value="sms"]')).to_be_checked()
    expect(other.locator("#timeline .event.ch-email")).to_have_count(0)
    expect(other.locator("#timeline .event.ch-sms").first).to_be_visible()
