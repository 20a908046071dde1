"""Segments and templates in a real browser: build a segment and watch the count, save it; edit a
template and see the preview for a real contact; both pages fit a phone's width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from hub.auth import SYSTEM
from hub.contacts import create_contact
from hub.models import Role
from tests.web.conftest import sign_in


def seed(hub) -> None:
    with hub.session() as s, s.begin():
        for name, locale, tags in (("Анна Смирнова", "ru", ["vip"]), ("Ольга Петрова", "ru", []),
                                   ("Иван Орлов", "ru", []), ("Bob Stone", "en", ["vip"])):
            create_contact(s, actor=SYSTEM, region="RU", display_name=name, locale=locale, tags=tags)


def settled(page) -> None:
    """Wait until htmx has swapped, settled and wired the new content (it does so ~20 ms after a swap)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")).to_have_count(0)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_build_a_segment_watch_the_count_and_save_it(new_page, live_server):
    seed(live_server.hub)
    live_server.user("marketer@example.com", role=Role.MARKETER, name="Mila Marketer")
    page = new_page()
    sign_in(page, "marketer@example.com", next_path="/segments")
    page.get_by_role("link", name="New segment").click()
    count = page.locator("#segment-count")
    expect(count).to_have_text("3")  # the first condition: language is Russian
    page.locator("#builder > fieldset > .sg-add").get_by_role("button", name="Condition").click()
    kind = page.locator('select[name="n:r.1:type"]')
    expect(kind).to_be_visible()
    settled(page)
    kind.select_option("tag")
    tag = page.locator('input[name="n:r.1:tag"]')
    expect(tag).to_be_visible()
    settled(page)
    tag.fill("vip")
    expect(count).to_have_text("1")
    expect(page.locator("#segment-preview")).to_contain_text("Анна Смирнова")
    # Exclude instead: Russians who are NOT vip.
    settled(page)
    page.locator('.sg-cond[data-path="r.1"]').get_by_role("button", name="NOT").click()
    expect(page.locator('input[name="n:r.1.0:tag"]')).to_have_value("vip")
    expect(count).to_have_text("2")
    settled(page)
    page.get_by_label("Name", exact=True).fill("Русские без VIP")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator(".alert-ok")).to_contain_text("Segment saved.")
    assert re.search(r"/segments/\d+\?saved=1$", page.url)
    expect(count).to_have_text("2")
    page.goto("/segments")
    row = page.get_by_role("row", name=re.compile("Русские без VIP"))
    expect(row).to_contain_text("2")


@pytest.mark.any_store
def test_edit_a_template_and_see_the_preview_for_a_contact(new_page, live_server):
    seed(live_server.hub)
    live_server.user("marketer@example.com", role=Role.MARKETER, name="Mila Marketer")
    page = new_page()
    sign_in(page, "marketer@example.com", next_path="/message-templates")
    page.get_by_role("link", name="New email").click()
    page.get_by_label("Name", exact=True).fill("Welcome")
    page.locator('input[name="v:ru:subject"]').fill("Привет, {{ contact.first_name }}!")
    page.locator('textarea[name="v:ru:html"]').fill("<p>Здравствуйте, {{ contact.name }}</p>")
    subject = page.locator("#mt-preview-subject")
    expect(subject).to_have_text("Привет, Анна!")  # the sample person until a contact is picked
    page.get_by_label("Preview for a contact").fill("Ольга")
    expect(subject).to_have_text("Привет, Ольга!")
    frame = page.frame_locator("#mt-preview iframe")
    expect(frame.locator("p")).to_have_text("Здравствуйте, Ольга Петрова")
    page.locator('input[name="v:ru:subject"]').fill("Привет, {{ contact.nme }}!")
    expect(page.locator("#mt-preview-error")).to_contain_text("Subject (ru), line 1")
    page.locator('input[name="v:ru:subject"]').fill("Скидка для {{ contact.first_name }}")
    expect(subject).to_have_text("Скидка для Ольга")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-ok")).to_contain_text("Template saved.")


@pytest.mark.any_store
def test_pages_fit_a_phone(new_page, live_server):
    seed(live_server.hub)
    live_server.user("marketer@example.com", role=Role.MARKETER, name="Mila Marketer")
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page, "marketer@example.com", next_path="/segments/new")
    expect(page.locator("#segment-count")).to_have_text("3")
    page.locator("#builder > fieldset > .sg-add").get_by_role("button", name="Group").click()
    expect(page.locator('select[name="n:r.1:type"]')).to_be_visible()
    settled(page)
    assert no_sideways_scroll(page)
    page.goto("/message-templates/new?channel=sms")
    page.locator('textarea[name="v:ru:text"]').fill("Код для {{ contact.first_name }}")
    expect(page.locator("#mt-preview-text")).to_have_text("Код для Анна")
    assert no_sideways_scroll(page)
