"""Messages people read are in their language and in plain words (issue 17, section 2): error pages
for browsers, validation errors named by their labels, translated; API clients keep problem details."""

from __future__ import annotations

import pytest

from hub.models import Role
from tests.web.conftest import ORIGIN, login

# The words of refusals and error pages come before any store work (validation, 404s, problem
# details): they run on SQLite only (any_store). A page that reads a contact's timeline or a merge
# preview runs on both stores: hub/timeline.py and the merge have statements of each store's own.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def _page(web, url: str, language: str = "en"):
    return web.get(url, headers={"Accept": BROWSER_ACCEPT, "Accept-Language": language})


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [("en", "There is no page at this address"),
                                                   ("ru", "По этому адресу нет страницы")])
def test_a_browser_gets_an_error_page_for_an_unknown_address(web, language, words):
    for url in ("/nonexistent-page", "/static/nothing-here.css"):
        answer = _page(web, url, language)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert words in answer.text
        assert f'<html lang="{language}">' in answer.text
        assert "/problems/" not in answer.text


@pytest.mark.any_store
@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_signed_in_agent_gets_the_apps_layout_and_a_way_back(web, hub, language):
    login(web, hub, locale=language)
    answer = _page(web, "/contacts/abc", language)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert 'class="sidebar"' in answer.text  # the app's layout, with its navigation
    assert ("Back to contacts" if language == "en" else "К контактам") in answer.text
    assert "/problems/" not in answer.text


@pytest.mark.any_store
def test_api_clients_keep_problem_details(web, hub):
    login(web, hub)
    for url, accept in (("/nonexistent-page", "*/*"), ("/nonexistent-page", "application/json"),
                        ("/api/v1/nothing", BROWSER_ACCEPT), ("/contacts/abc", "application/problem+json")):
        answer = web.get(url, headers={"Accept": accept})
        assert answer.status_code in (401, 404, 422), (url, answer.status_code)
        assert answer.headers["content-type"] == "application/problem+json", url
        assert answer.json()["type"].startswith("/problems/")


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [
    ("en", "“Name” is too long: at most 200 characters. Shorten it."),
    ("ru", "Поле «Имя» слишком длинное: не больше 200 символов. Сократите его."),
])
def test_a_too_long_name_in_add_user_is_a_page_naming_the_field(web, hub, language, words):
    token = login(web, hub, "admin@example.com", role=Role.ADMIN, locale=language)
    answer = web.post("/admin/users", data={"csrf_token": token, "email": "new@example.com",
                                            "display_name": "x" * 201, "role": "agent", "password": "long enough pw"},
                      headers={"Origin": ORIGIN, "Accept": BROWSER_ACCEPT, "Referer": f"{ORIGIN}/admin/users"})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert words in answer.text
    assert 'href="/admin/users"' in answer.text  # back to the form
    assert "String should have" not in answer.text


@pytest.mark.any_store
def test_a_validation_problem_keeps_its_machine_readable_errors(web, hub):
    login(web, hub)
    answer = web.get("/contacts/abc", headers={"Accept": "application/json"})
    body = answer.json()
    assert body["type"] == "/problems/validation"
    assert body["errors"][0]["type"] == "int_parsing"


@pytest.mark.parametrize(("language", "amount", "raw"), [("ru", "18 490,00 ₽", "18490.00 RUB"),
                                                         ("en", "RUB 18,490.00", "18490.00 RUB")])
def test_order_amounts_on_the_timeline_read_as_money_in_the_page_locale(web, hub, language, amount, raw):
    from tests.web.seed import seed_customer

    login(web, hub, locale=language)
    contact_id = seed_customer(hub)
    page = _page(web, f"/contacts/{contact_id}", language).text
    timeline = page.split('id="timeline"', 1)[1]
    assert amount.replace(" ", "\xa0") in timeline or amount in timeline
    assert raw not in timeline


@pytest.mark.any_store
def test_every_page_names_an_icon_that_exists(web, hub):
    login(web, hub)
    for url in ("/", "/login"):
        assert 'rel="icon" href="/static/favicon.svg' in web.get(url).text
    icon = web.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert web.get("/favicon.ico").status_code == 200


def test_the_timeline_filter_is_in_the_contact_pages_address(web, hub):
    from tests.web.seed import seed_customer

    login(web, hub)
    contact_id = seed_customer(hub)
    page = web.get(f"/contacts/{contact_id}?channel=sms").text
    form = page.split('id="timeline-filters"', 1)[1].split(">", 1)[0]
    assert 'method="get"' in form and f'action="/contacts/{contact_id}"' in form  # works without JavaScript
    assert 'value="sms" checked' in page
    assert page.split('id="timeline"', 1)[1].count('class="event ch-sms') >= 1
    assert 'class="event ch-email' not in page.split('id="timeline"', 1)[1]
    answer = web.get(f"/contacts/{contact_id}/timeline?channel=sms&q=", headers={"HX-Request": "true",
                                                                              "HX-Trigger": "timeline-filters"})
    assert answer.headers["HX-Push-Url"] == f"/contacts/{contact_id}?channel=sms"


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [
    ("en", "Enter a name, an email or a phone: a contact needs at least one of them."),
    ("ru", "Укажите имя, почту или телефон: у контакта должно быть хотя бы что-то одно."),
])
def test_a_contact_without_name_or_identity_is_refused_in_plain_words(web, hub, language, words):
    token = login(web, hub, locale=language)
    answer = web.post("/contacts/new", data={"csrf_token": token, "display_name": " "}, headers={"Origin": ORIGIN})
    assert answer.status_code == 422
    alert = answer.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
    assert words in alert and "display_name" not in alert


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [
    ("en", "“maria@@example” is not a valid email address. Check it for typos"),
    ("ru", "«maria@@example» — не адрес электронной почты. Проверьте, нет ли опечатки"),
])
def test_a_bad_email_is_refused_in_plain_words_not_the_validators(web, hub, language, words):
    token = login(web, hub, locale=language)
    answer = web.post("/contacts/new", data={"csrf_token": token, "display_name": "Maria", "email": "maria@@example"},
                      headers={"Origin": ORIGIN})
    assert answer.status_code == 422
    assert words.replace("“", "&#8220;") in answer.text or words in answer.text
    assert "@-sign" not in answer.text  # email-validator's own sentence stays out of pages


@pytest.mark.any_store
def test_the_api_keeps_field_and_type_for_a_bad_email(client, api_key):
    answer = client.post("/api/v1/contacts", headers=api_key("contacts:write"),
                         json={"display_name": "Maria", "identities": [{"kind": "email", "value": "maria@@example"}]})
    assert answer.status_code == 422
    body = answer.json()
    assert body["type"] == "/problems/validation"
    assert body["errors"][0]["field"] == "identities.0.value" and body["errors"][0]["type"] == "value_error"


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [("en", "A password needs at least 10 characters."),
                                                   ("ru", "В пароле должно быть не меньше 10 символов.")])
def test_add_user_says_what_is_wrong_in_the_admins_language(web, hub, language, words):
    token = login(web, hub, "admin@example.com", role=Role.ADMIN, locale=language)
    answer = web.post("/admin/users", data={"csrf_token": token, "email": "new@example.com", "display_name": "New",
                                            "role": "agent", "password": "short"}, headers={"Origin": ORIGIN})
    assert answer.status_code == 422 and words in answer.text


def _pair(hub) -> tuple[int, int]:
    from hub.auth import SYSTEM
    from hub.contacts import create_contact

    with hub.session() as session, session.begin():
        one = create_contact(session, actor=SYSTEM, region="RU", display_name="Мария", time_zone="Europe/Moscow",
                             lifecycle_stage="lead", locale="ru", attributes={"city": "Москва"})
        two = create_contact(session, actor=SYSTEM, region="RU", display_name="Мария С.", time_zone="Asia/Tokyo",
                             lifecycle_stage="opportunity", locale="en", attributes={"city": "Тверь"})
        return one.id, two.id


@pytest.mark.parametrize(("language", "words"), [
    ("en", ["Time zone", "Lifecycle stage", "Attribute “city”", "Opportunity", "Lead", "English", "Русский"]),
    ("ru", ["Часовой пояс", "Стадия", "Атрибут «city»", "Сделка", "Лид", "English", "Русский"]),
])
def test_the_merge_preview_shows_labels_and_values_in_words(web, hub, language, words):
    login(web, hub, locale=language)
    one, two = _pair(hub)
    page = web.get(f"/contacts/{one}/merge/{two}").text
    table = page.split('class="subhead"', 1)[1].split("</table>", 1)[0]
    for word in words:
        assert word in table, word
    for raw in ("time_zone", "lifecycle_stage", "attributes.city", "opportunity", ">lead<", ">ru<"):
        assert raw not in table, raw


def test_the_lifecycle_badge_is_translated(web, hub):
    login(web, hub, locale="ru")
    _one, two = _pair(hub)
    card = web.get(f"/contacts/{two}").text
    assert '<span class="badge badge-stage">Сделка</span>' in card


@pytest.mark.any_store
@pytest.mark.parametrize(("language", "words"), [
    ("en", ["Field 1: Use 1–40 lowercase letters", "Field 2: Fill in “Label”."]),
    ("ru", ["Поле 1: Используйте от 1 до 40 строчных", "Поле 2: Заполните поле «"]),
])
def test_the_form_editor_names_the_field_and_says_what_to_do(web, hub, language, words):
    from tests.channels.forms.test_pages import new_form_data

    token = login(web, hub, "mary@example.com", role=Role.MARKETER, locale=language)
    answer = web.post("/forms/new", data=new_form_data(token, **{"f-0-name": "Bad Name", "f-1-label": ""}),
                      headers={"Origin": ORIGIN})
    assert answer.status_code == 422
    for word in words:
        assert word in answer.text, word
    assert "fields.0" not in answer.text and "String should" not in answer.text
