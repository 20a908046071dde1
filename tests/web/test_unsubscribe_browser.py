"""A customer on a phone: the unsubscribe link from an email, the confirmation button, then the
preferences page, in a real browser against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.unsubscribe import preferences_url, unsubscribe_url
from hub.contacts import consent_status
from hub.models import Contact, Purpose, TimelineEvent
from hub.runtime import Hub
from hub.triggers import TriggerRegistry
from tests.campaigns.unsubscribe.conftest import mount_public_routes
from tests.campaigns.unsubscribe.test_unsubscribe import make_contact
from tests.web.conftest import LiveServer, serve

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = pytest.mark.any_store

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def public_server(hub: Hub) -> Iterator[LiveServer]:
    """A real server with the public routes (on a hub of its own over the same store and settings)."""
    bare = Hub(hub.settings, registry=hub.registry, triggers=TriggerRegistry(), db=hub.db, broker=hub.broker,
               extensions=False)
    with serve(bare) as server:
        mount_public_routes(server.app)
        yield server


@pytest.fixture
def phone_page(browser: Any, public_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=public_server.url, locale="ru-RU", **PHONE)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def path(url: str, hub: Hub) -> str:
    return url.removeprefix(hub.settings.public_base_url)


def test_unsubscribe_on_a_phone_then_change_preferences(hub, phone_page):
    contact = make_contact(hub)
    page = phone_page
    page.goto(path(unsubscribe_url(hub.settings, contact_id=contact, channel="email", campaign_id=4), hub))
    assert page.locator("h1").inner_text() == "Отписаться"
    with hub.session(read_only=True) as s:  # opening the page changed nothing
        assert consent_status(s, contact_id=contact, channel="email", purpose=Purpose.MARKETING) is None
    button = page.get_by_test_id("unsubscribe")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44  # a finger-sized target
    button.click()
    page.wait_for_selector("text=Вы отписаны")
    with hub.session(read_only=True) as s:
        assert consent_status(s, contact_id=contact, channel="email", purpose=Purpose.MARKETING) == "withdrawn"
        kinds = s.scalars(select(TimelineEvent.kind).where(TimelineEvent.contact_id == contact)).all()
        assert "campaign.unsubscribed" in kinds

    page.get_by_role("link", name="Все мои настройки рассылок").click()
    page.wait_for_selector("text=Ваши настройки")
    assert not page.get_by_label("Эл. почта").is_checked()
    assert page.get_by_label("SMS", exact=True).is_checked()
    page.get_by_label("SMS", exact=True).uncheck()
    page.get_by_label("Эл. почта").check()
    page.get_by_label("Язык наших сообщений").select_option("en")
    page.get_by_test_id("save").click()
    page.wait_for_selector("text=Your preferences are saved.")
    with hub.session(read_only=True) as s:
        assert consent_status(s, contact_id=contact, channel="email", purpose=Purpose.MARKETING) == "granted"
        assert consent_status(s, contact_id=contact, channel="sms", purpose=Purpose.MARKETING) == "withdrawn"
        assert s.get(Contact, contact).locale == "en"


def test_a_tampered_link_shows_one_plain_sentence(hub, phone_page):
    contact = make_contact(hub)
    url = path(preferences_url(hub.settings, contact_id=contact), hub)
    response = phone_page.goto(url[:-4] + "abcd")
    assert response is not None and response.status == 404
    assert phone_page.locator("h1").inner_text() == "Ссылка недействительна"
    assert "Анна" not in phone_page.content()
