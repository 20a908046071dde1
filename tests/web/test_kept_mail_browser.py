"""Kept mail in a real browser: an admin finds a message the hub could not read whole, on a phone."""

from __future__ import annotations

from typing import Any

import pytest

from hub.models import Role
from tests.channels.email.conftest import configure
from tests.channels.email.test_webhooks import BAD_FIRST_LINE, TOKEN
from tests.web.conftest import sign_in

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]


def test_an_admin_finds_kept_mail_on_a_phone(live_server: Any, new_page: Any) -> None:
    import httpx

    configure(live_server.hub, inbound_token=TOKEN)
    answer = httpx.post(f"{live_server.url}/channels/email/inbound", content=BAD_FIRST_LINE,
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "message/rfc822"})
    assert answer.status_code == 201, answer.text
    live_server.user("admin@example.com", role=Role.ADMIN, locale="ru")
    page = new_page(viewport={"width": 375, "height": 740}, locale="ru-RU", is_mobile=True, has_touch=True)
    sign_in(page, "admin@example.com")
    page.goto("/admin/email/kept")
    assert page.get_by_role("heading", name="Сохранённая почта").is_visible()
    row = page.locator("#kept-mail tbody tr").first
    assert "Счёт не пришёл" in row.inner_text() and "Не удалось прочитать целиком" in row.inner_text()
    with page.expect_download() as download:
        row.get_by_role("link", name="Скачать").click()
    assert download.value.suggested_filename.endswith(".eml")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
