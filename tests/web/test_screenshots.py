"""The contact page on a desktop and on a phone: no sideways scrolling, and the pictures for docs/.

Run with HUB_UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots/contact-desktop.png and contact-phone.png;
otherwise the pictures go to the test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.models import Role
from hub.settings import PROJECT_ROOT
from tests.web.conftest import sign_in
from tests.web.seed import seed_customer

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]
DOCS = PROJECT_ROOT / "docs" / "screenshots"


@pytest.mark.parametrize(("name", "viewport", "mobile"), [
    ("contact-desktop", {"width": 1440, "height": 960}, False),
    ("contact-phone", {"width": 390, "height": 844}, True),
])
def test_contact_page_fits_the_screen(live_server, new_page, tmp_path: Path, name, viewport, mobile):
    user = live_server.user("olga@example.com", name="Ольга Смирнова", role=Role.AGENT, locale="ru")
    contact_id = seed_customer(live_server.hub, owner_id=user.id, assignee_id=user.id)
    page = new_page(viewport=viewport, device_scale_factor=2 if mobile else 1, is_mobile=mobile, has_touch=mobile,
                    locale="ru-RU", timezone_id="Europe/Moscow")
    sign_in(page, "olga@example.com", next_path=f"/contacts/{contact_id}")
    page.wait_for_selector("#timeline-items .event")
    page.locator("body[data-live-ready=true]").wait_for(state="attached")

    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {viewport['width']}px wide"
    card = page.locator("#card").bounding_box()
    timeline = page.locator("#timeline").bounding_box()
    if mobile:
        assert timeline["y"] > card["y"] + card["height"] - 1, "on a phone the timeline goes under the card"
    else:
        assert timeline["x"] > card["x"] + card["width"] - 1, "on a desktop the card and the timeline sit side by side"

    target = DOCS if os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    # The phone picture shows two screens' worth: the card, then the composer and the timeline.
    clip = {"x": 0, "y": 0, "width": viewport["width"], "height": 2 * viewport["height"]} if mobile else None
    page.screenshot(path=str(target / f"{name}.png"), full_page=True, clip=clip)
    assert (target / f"{name}.png").stat().st_size > 10_000
