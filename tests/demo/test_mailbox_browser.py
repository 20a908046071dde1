"""The test mailbox in Chromium: the admin sees the email and the SMS the demo's stand-ins received,
opens a message as the customer's mail app would, and answers it as the customer; the answer shows on
the contact's timeline. HUB_UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/test-mailbox.png."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from hub.models import Role
from hub.settings import PROJECT_ROOT
from hub.worker import Worker
from tests.demo.conftest import Demo, wait
from tests.web.conftest import PASSWORD, login
from tests.web.test_pages import HX, _contact, _post

# The demo runs on SQLite (`make run`), and nothing here depends on the store: SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]
DOCS = PROJECT_ROOT / "docs" / "screenshots"


def _sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label(re.compile("^(Email|Эл. почта)$")).fill(email)
    page.get_by_label(re.compile("^(Password|Пароль)$")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile("^(Sign in|Войти)$")).click()
    page.wait_for_url(lambda url: "/login" not in url)


def _send_some(demo: Demo) -> int:
    token = login(demo.web, demo.hub, "agent@example.com", role=Role.AGENT)
    contact_id = _contact(demo.hub, "Olga Orlova", email="olga@example.com", phone="+1 201 555 0123")
    for url, data in ((f"/contacts/{contact_id}/compose/email",
                       {"to": "olga@example.com", "subject": "Your order #1042", "text": "It ships today.",
                        "client_id": "e1"}),
                      (f"/contacts/{contact_id}/compose/sms", {"text": "Your order ships today", "client_id": "s1"})):
        assert _post(demo.web, token, url, data, **HX).status_code == 200
    assert Worker(demo.hub).tick() == 2
    return contact_id


def test_the_admin_reads_the_test_mailbox_and_answers_as_the_customer(demo: Demo, browser: Any,
                                                                       tmp_path: Path) -> None:
    contact_id = _send_some(demo)
    with demo.hub.session() as session, session.begin():
        from hub.auth import create_user

        create_user(session, email="admin@example.com", password=PASSWORD, role=Role.ADMIN,
                    display_name="Demo Admin", locale="en", time_zone="Europe/Moscow")
    context = browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 860}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        _sign_in(page, "admin@example.com")
        page.get_by_role("link", name="Test mailbox").first.click()
        page.wait_for_url("**/admin/test-mailbox")
        # The SMS's status moves to delivered through local Twilio's callbacks; reload until it shows.
        wait(lambda: page.reload() or "Delivered" in page.locator("#test-sms").inner_text())
        assert "olga@example.com" in page.locator("#test-mail").inner_text()
        assert "Your order ships today" in page.locator("#test-sms").inner_text()
        target = DOCS if os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1" else tmp_path
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / "test-mailbox.png"), full_page=True)

        from axe_playwright_python.sync_playwright import Axe

        axe = Axe()
        for path in ("/admin/test-mailbox", "/admin/channels"):
            page.goto(path)
            violations = axe.run(page).response["violations"]
            bad = [f"{v['id']}: {v['help']}" for v in violations if v.get("impact") in ("serious", "critical")]
            assert bad == [], (path, bad)
        page.goto("/admin/test-mailbox")
        page.get_by_role("link", name="Your order #1042").click()
        assert "It ships today." in page.locator(".mail-text").inner_text()
        with context.expect_page() as opened:
            page.get_by_role("link", name="Open as the customer's mail app would").click()
        assert "It ships today." in opened.value.content()
        opened.value.close()

        page.get_by_role("button", name="Send the answer").click()  # empty: refused, nothing sent
        assert "Write the customer's answer first." in page.locator("#reply-error").inner_text()
        page.get_by_label("Answer", exact=True).fill("Thank you, I will be home after six.")
        page.get_by_role("button", name="Send the answer").click()
        page.wait_for_url(f"**/contacts/{contact_id}")
        page.wait_for_selector("#timeline-items .event")
        assert "I will be home after six" in page.locator("#timeline").inner_text()

        phone = browser.new_context(base_url=demo.url, viewport={"width": 375, "height": 800}, locale="en-US")
        small = phone.new_page()
        _sign_in(small, "admin@example.com")
        small.goto("/admin/test-mailbox")
        overflow = small.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the test mailbox scrolls sideways by {overflow}px on a phone"
        phone.close()
    finally:
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
