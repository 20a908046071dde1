"""Russian and English: negotiation, complete catalogs, and formatting in the agent's locale and zone."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from babel.messages.pofile import read_po

from hub.web import i18n
from tests.web.conftest import ORIGIN, login

# What this checks does not depend on the store: it runs on SQLite only.
pytestmark = pytest.mark.any_store


def test_negotiation_order():
    assert i18n.negotiate("en", "ru-RU,ru;q=0.9", "ru") == "en"  # the user's own choice first
    assert i18n.negotiate(None, "de-DE,de;q=0.9,en;q=0.8,ru;q=0.7", "ru") == "en"
    assert i18n.negotiate(None, "ru;q=0.2, en;q=0.1", "en") == "ru"
    assert i18n.negotiate(None, "en;q=0, ru", "en") == "ru"  # q=0 means "not this one"
    assert i18n.negotiate(None, "fr, *;q=0.5", "ru") == "ru"
    assert i18n.negotiate(None, None, "en") == "en"
    assert i18n.negotiate("xx", "garbage;;q=abc", "en") == "en"
    assert i18n.parse_accept_language("en-GB;q=0.8, ru-RU, de;q=0.9") == ["ru-ru", "de", "en-gb"]


def _extracted() -> set[str | tuple[str, str]]:
    return {m if isinstance(m, str) else tuple(m) for m, _f, _l, _c in i18n.hub_messages()}


def _gaps(path, messages) -> tuple[list, list, object]:
    """(messages missing from the Russian catalog at `path`, ones without a translation, the catalog)."""
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="ru")
    missing, untranslated = [], []
    for message in messages:
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        if entry is None:
            missing.append(message)
        elif entry.fuzzy or not entry.string or (isinstance(entry.string, tuple) and not all(entry.string)):
            untranslated.append(message)
    return missing, untranslated, catalog


def test_every_message_is_translated_into_russian():
    missing, untranslated, catalog = _gaps(i18n.catalog_path("ru"), _extracted())
    assert not missing, f"run `python -m hub.web.i18n` and translate: {missing}"
    assert not untranslated, f"translate these in hub/web/locale/ru: {untranslated}"
    assert catalog.num_plurals == 3


@pytest.mark.parametrize("package", i18n.package_catalogs(), ids=lambda p: p.name)
def test_every_package_message_is_translated_into_russian(package):
    missing, untranslated, _ = _gaps(package.path("ru"), [m for m, _f, _l, _c in i18n.package_messages(package)])
    assert not missing, f"run `python -m hub.web.i18n` and translate: {missing}"
    assert not untranslated, f"translate these in {package.path('ru')}: {untranslated}"


def test_plural_forms_follow_russian_grammar():
    ru = i18n.translations("ru")
    forms = [ru.ngettext("%(num)d contact found", "%(num)d contacts found", n) % {"num": n} for n in (1, 3, 5, 21, 11)]
    assert forms == ["Найден 1 контакт", "Найдено 3 контакта", "Найдено 5 контактов", "Найден 21 контакт",
                     "Найдено 11 контактов"]
    en = i18n.translations("en")
    assert en.ngettext("%(num)d contact found", "%(num)d contacts found", 1) % {"num": 1} == "1 contact found"


def test_formatting_uses_the_agents_zone_and_locale():
    moment = datetime(2026, 1, 15, 21, 30, tzinfo=timezone.utc)
    moscow = i18n.Formatter("ru", i18n.zone("Europe/Moscow", "UTC"))
    new_york = i18n.Formatter("en", i18n.zone("America/New_York", "UTC"))
    assert moscow.date(moment) == "16 янв. 2026\u202fг."  # already the next day in Moscow
    assert moscow.time(moment) == "00:30"
    assert new_york.date(moment) == "Jan 15, 2026"
    assert new_york.time(moment) == "4:30\u202fPM"
    assert moscow.money(Decimal("25740.5"), "RUB") == "25\xa0740,50\xa0₽"
    assert new_york.money("25740.5", "RUB") == "RUB\xa025,740.50"
    assert moscow.number(1234567) == "1\xa0234\xa0567"
    assert i18n.zone("Not/AZone", "Europe/Moscow").key == "Europe/Moscow"


def test_short_dates_show_the_year_when_it_is_not_this_one(frozen_clock):
    frozen_clock.current = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
    moscow = i18n.Formatter("ru", i18n.zone("Europe/Moscow", "UTC"))
    new_york = i18n.Formatter("en", i18n.zone("America/New_York", "UTC"))
    assert moscow.short_datetime(datetime(2026, 3, 1, 7, 0, tzinfo=timezone.utc)) == "1 мар., 10:00"
    assert moscow.short_datetime(datetime(2020, 1, 1, 7, 0, tzinfo=timezone.utc)) == "1 янв. 2020\u202fг., 10:00"
    assert new_york.short_datetime(datetime(2027, 1, 2, 15, 0, tzinfo=timezone.utc)).startswith("Jan 2, 2027, ")
    # The year is the reader's: 31 December 23:30 in New York is already next year in UTC.
    assert "2026" not in new_york.short_datetime(datetime(2027, 1, 1, 4, 30, tzinfo=timezone.utc))


def test_pages_speak_the_negotiated_language(web, hub):
    assert "Войти" in web.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).text
    english = web.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert ">Sign in<" in english and 'lang="en"' in english
    assert "Войти" in web.get("/login?lang=ru", headers={"Accept-Language": "en"}).text

    token = login(web, hub, locale=None)
    assert "My tasks" in web.get("/tasks", headers={"Accept-Language": "en"}).text
    answer = web.post("/account/preferences", data={"locale": "ru", "back": "/tasks", "csrf_token": token},
                      headers={"Origin": ORIGIN, "Accept-Language": "en"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/tasks"
    page = web.get("/tasks", headers={"Accept-Language": "en"}).text
    assert "Мои задачи" in page and 'lang="ru"' in page
    bad = web.post("/account/preferences", data={"locale": "de", "csrf_token": token}, headers={"Origin": ORIGIN})
    assert bad.status_code == 422
    zone = web.post("/account/preferences", data={"locale": "ru", "time_zone": "Mars/Olympus", "csrf_token": token},
                    headers={"Origin": ORIGIN})
    assert zone.status_code == 422


def test_back_after_a_language_switch_stays_on_the_site(web, hub):
    token = login(web, hub)
    answer = web.post("/account/preferences", data={"locale": "en", "back": "//evil.example/", "csrf_token": token},
                      headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_each_package_speaks_its_own_words_where_catalogs_differ():
    """The merged catalog keeps the first translation of a msgid; a package's pages, messages and
    errors read its own catalog first, so "Completed" is a finished campaign on the campaign pages
    and a meeting that took place on the meetings pages."""
    ru = "ru"
    assert i18n.template_translations(ru, "campaigns/list.html").gettext("Completed") == "Завершена"
    assert i18n.template_translations(ru, "meetings/index.html").gettext("Completed") == "Состоялась"
    assert i18n.template_translations(ru, "campaigns/list.html").gettext("Name") == "Название"
    assert i18n.template_translations(ru, "admin_keys.html").gettext("Name") == "Имя"
    assert i18n.template_translations(ru, "public/meetings/book.html").gettext("Email") == "Почта"
    # A package template still finds the hub's own words (its layout, its navigation).
    assert i18n.template_translations(ru, "campaigns/list.html").gettext("Sign out") == \
        i18n.translations(ru).gettext("Sign out") != "Sign out"
    assert i18n.template_translations(ru, "error.html") is i18n.translations(ru)


def test_campaign_errors_are_shown_in_the_marketers_language(hub, web):
    from hub.models import Role
    from tests.campaigns.helpers import make_campaign, make_segment, make_template
    from tests.web.conftest import ORIGIN, login

    token = login(web, hub, "mk@example.com", role=Role.MARKETER, locale="ru")
    segment, template = make_segment(hub), make_template(hub)
    form = {"name": "Осень", "channel": "email", "segment_id": str(segment), "schedule_kind": "now",
            "time_zone": "Atlantis/City", "step1_template_id": str(template), "step2_template_id": "",
            "step3_template_id": "", "csrf_token": token}
    answer = web.post("/campaigns/new", data=form, headers={"Origin": ORIGIN})
    assert answer.status_code == 422 and "«Atlantis/City» — не часовой пояс" in answer.text
    answer = web.post("/campaigns/new", data={**form, "time_zone": "UTC", "quiet_hours_start": "9 утра",
                                              "quiet_hours_end": "21:00"}, headers={"Origin": ORIGIN})
    assert answer.status_code == 422 and "Укажите время суток, например 09:00." in answer.text
    cid = make_campaign(hub, segment_id=segment, template_ids=[template], schedule=False)
    answer = web.post(f"/campaigns/{cid}/resume", data={"csrf_token": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 409
    assert "Возобновить можно только приостановленную рассылку; эта — черновик." in answer.text
    # The API answers in English, as before.
    from campaigns import service
    from campaigns.models import Campaign

    with hub.session() as s, pytest.raises(service.CampaignError, match="this one is a draft"):
        service.resume(s, campaign=s.get(Campaign, cid))
