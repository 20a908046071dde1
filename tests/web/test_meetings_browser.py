"""The public booking page in a real browser: book, reschedule and cancel in both languages, on a phone,
as a visitor in another time zone (the browser's zone fills the picker) and without JavaScript."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hub import clock
from channels.meetings.models import Meeting
from tests.channels.meetings.conftest import make_host, make_type

# Time zones, languages and the page without JavaScript do not depend on the store; concurrent bookings
# and the overlap guard are tests/channels/meetings' on both stores: SQLite only.
pytestmark = pytest.mark.any_store

PHONE = {"width": 390, "height": 844}
NOW = datetime(2026, 6, 1, 7, 30, tzinfo=timezone.utc)  # Monday 10:30 in Moscow


@pytest.fixture
def booking_site(live_server: Any, frozen_clock: clock.FrozenClock) -> Any:
    frozen_clock.current = NOW
    host = make_host(live_server.hub, zone="Europe/Moscow", name="Anna Host")
    make_type(live_server.hub, host_ids=[host], name="Consultation", duration_minutes=60, slot_step_minutes=60)
    return live_server


def fits_the_screen(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def only_meeting(server: Any) -> Meeting:
    with server.hub.session() as session:
        [meeting] = session.scalars(select(Meeting)).all()
        return meeting


def test_a_new_york_visitor_books_moves_and_cancels_in_english(booking_site: Any, new_page: Any) -> None:
    page = new_page(viewport=PHONE, timezone_id="America/New_York", locale="en-US", is_mobile=True, has_touch=True)
    page.goto("/channels/meetings/consultation?lang=en")
    # The tiny script puts the browser's zone into the URL; everything is then shown in New York time.
    page.wait_for_url(re.compile(r"tz=America%2FNew_York"))
    assert page.locator("#tz").input_value() == "America/New_York"
    assert page.get_by_text("Times are shown in America/New_York.").is_visible()
    tuesday = page.locator("section.day", has=page.get_by_role("heading", name="Tuesday, June 2, 2026"))
    # Moscow 09:00 is 2:00 AM in New York (EDT).
    assert tuesday.locator("a.slot").first.inner_text() == "2:00\u202fAM"
    assert fits_the_screen(page)
    tuesday.locator("a.slot").first.click()
    assert page.locator("#chosen-time").inner_text().startswith("Tuesday, June 2, 2026, 2:00\u202fAM")
    page.get_by_label("Your name").fill("Jane Visitor")
    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_role("button", name="Book this time").click()
    assert page.get_by_text("Your meeting is booked.").is_visible()
    assert "2:00\u202fAM" in page.locator("#meeting").inner_text()
    meeting = only_meeting(booking_site)
    assert meeting.starts_at == datetime(2026, 6, 2, 6, tzinfo=timezone.utc) and meeting.visitor_time_zone == "America/New_York"
    assert fits_the_screen(page)

    page.get_by_role("link", name="Reschedule").click()
    wednesday = page.locator("section.day", has=page.get_by_role("heading", name="Wednesday, June 3, 2026"))
    wednesday.get_by_role("button", name="4:00\u202fAM").click()
    assert page.get_by_text("Your meeting has been moved.").is_visible()
    assert "Wednesday, June 3, 2026, 4:00\u202fAM" in page.locator("#meeting").inner_text()
    assert only_meeting(booking_site).starts_at == datetime(2026, 6, 3, 8, tzinfo=timezone.utc)

    page.get_by_label("Reason for cancelling (optional)").fill("Plans changed")
    page.get_by_role("button", name="Cancel the meeting").click()
    assert page.get_by_text("Your meeting is cancelled.").is_visible()
    assert only_meeting(booking_site).status == "cancelled"


def test_a_moscow_visitor_books_moves_and_cancels_in_russian_without_javascript(booking_site: Any, new_page: Any) -> None:
    page = new_page(viewport=PHONE, timezone_id="Asia/Tokyo", locale="ru-RU", java_script_enabled=False)
    # Without JavaScript the zone comes from the picker's query parameter, not from the browser.
    page.goto("/channels/meetings/consultation?lang=ru&tz=Europe/Moscow")
    assert page.get_by_text("Europe/Moscow.").is_visible()
    tuesday = page.locator("section.day", has=page.get_by_role("heading", name=re.compile("вторник, 2 июня")))
    tuesday.get_by_role("link", name="09:00").click()
    page.get_by_label("Ваше имя").fill("Мария Соколова")
    page.get_by_label("Телефон").fill("+7 916 555-12-34")
    page.get_by_role("button", name="Записаться на это время").click()
    expect(page.get_by_text("Вы записаны.")).to_be_visible()  # after a navigation: wait for it
    assert "09:00" in page.locator("#meeting").inner_text()
    # The zone picker works as a plain form: choose Berlin and show the times again.
    page.get_by_role("link", name="Перенести").click()
    page.locator("#tz").select_option("Europe/Berlin")
    page.get_by_role("button", name="Показать время").click()
    expect(page.get_by_text("Europe/Berlin.")).to_be_visible()  # after a navigation: wait for it
    thursday = page.locator("section.day", has=page.get_by_role("heading", name=re.compile("четверг, 4 июня")))
    thursday.get_by_role("button", name="10:00").click()  # 11:00 in Moscow
    expect(page.get_by_text("Встреча перенесена.")).to_be_visible()  # after a navigation: wait for it
    meeting = only_meeting(booking_site)
    assert meeting.starts_at == datetime(2026, 6, 4, 8, tzinfo=timezone.utc) and meeting.sequence == 1
    page.get_by_role("button", name="Отменить встречу").click()
    assert page.get_by_text("Встреча отменена.").is_visible()
    assert only_meeting(booking_site).status == "cancelled"
    assert fits_the_screen(page)


def test_on_a_fall_back_night_the_two_1_30_am_slots_can_be_told_apart(live_server: Any, new_page: Any,
                                                                      frozen_clock: clock.FrozenClock) -> None:
    frozen_clock.current = datetime(2026, 10, 30, 12, tzinfo=timezone.utc)
    host = make_host(live_server.hub, zone="America/New_York", name="Night Host", hours={6: [(0, 4 * 60)]})
    make_type(live_server.hub, host_ids=[host], slug="night", name="Night call", duration_minutes=30,
              slot_step_minutes=30, min_notice_minutes=0)
    page = new_page(viewport=PHONE, timezone_id="America/New_York", locale="en-US", is_mobile=True, has_touch=True)
    page.goto("/channels/meetings/night?lang=en&tz=America/New_York&day=2026-11-01")
    sunday = page.locator("section.day", has=page.get_by_role("heading", name="Sunday, November 1, 2026"))
    labels = sunday.locator("a.slot").all_inner_texts()
    assert len(labels) == len(set(labels)) == 10, labels
    assert "1:30\u202fAM GMT-04:00" in labels and "1:30\u202fAM GMT-05:00" in labels and "3:00\u202fAM" in labels
    assert fits_the_screen(page)
    sunday.get_by_role("link", name="1:30\u202fAM GMT-05:00").click()
    assert "1:30\u202fAM GMT-05:00" in page.locator("#chosen-time").inner_text()
