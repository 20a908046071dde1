"""The audit log page (/admin/audit) in Chromium: filters by actor, action and days, pages of 50, a phone's
width, Russian and English; only admins see it."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from hub import audit
from hub.auth import SYSTEM, Principal, api_key_principal, create_api_key, user_principal
from hub.models import AuditEntry, Role
from tests.web.conftest import sign_in

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]
UTC = timezone.utc


@pytest.fixture
def log(live_server):  # type: ignore[no-untyped-def]
    """An admin, an agent, an API key and 56 entries over three days."""
    admin = live_server.user("admin@example.com", role=Role.ADMIN, name="Ada Admin")
    agent = live_server.user("agent@example.com", role=Role.AGENT, name="Boris Agent")
    live_server.user("olga@example.com", role=Role.ADMIN, name="Ольга Админ", locale="ru")
    hub = live_server.hub
    with hub.session() as session, session.begin():
        _key, plain = create_api_key(session, name="Shop", scopes=["contacts:write"])
        by_key: Principal = api_key_principal(session, plain)  # type: ignore[assignment]
        by_agent = user_principal(agent)
        for i in range(53):
            audit.record(session, actor=by_agent, action="contact.update", entity="contact", entity_id=i,
                         changes={"display_name": [f"Old {i}", f"Новое имя {i}"]})
        audit.record(session, actor=user_principal(admin), action="user.created", entity="user", entity_id=agent.id,
                     changes={"role": [None, "agent"]})
        audit.record(session, actor=by_key, action="contact.create", entity="contact", entity_id=99)
        audit.record(session, actor=SYSTEM, action="form.create", entity="form", entity_id=1)
        session.flush()
        # Three days (Moscow time): the agent's edits on 10 March, the admin's on 11, the key's and system's on 12.
        for action, when in (("contact.update", datetime(2026, 3, 10, 9, tzinfo=UTC)),
                             ("user.created", datetime(2026, 3, 11, 9, tzinfo=UTC)),
                             ("contact.create", datetime(2026, 3, 12, 9, tzinfo=UTC)),
                             ("form.create", datetime(2026, 3, 12, 10, tzinfo=UTC))):
            session.execute(update(AuditEntry).where(AuditEntry.action == action).values(occurred_at=when))
    return live_server, agent


def entries(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [" ".join(t.split()) for t in page.locator(".audit-entry").all_inner_texts()]


def test_an_admin_filters_and_pages_the_log_on_a_phone(log, new_page) -> None:  # type: ignore[no-untyped-def]
    live_server, agent = log
    page = new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(page, "admin@example.com")
    page.goto("/admin/audit")
    assert page.get_by_role("heading", name="Audit log").is_visible()
    shown = entries(page)
    assert len(shown) == 50  # a page
    assert "user.login" in shown[0] and "Ada Admin" in shown[0]  # newest first: signing in just now
    assert "form.create" in shown[1] and "System" in shown[1]
    assert "API key Shop" in shown[2] and "contact.create" in shown[2]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v.get("impact") in ("serious", "critical")] == []
    page.get_by_role("link", name="Older").click()
    assert len(entries(page)) == 7
    assert page.get_by_role("link", name="Newest").is_visible()

    # By actor: the agent's 53 edits, with what changed.
    page.goto("/admin/audit")
    page.get_by_label("Who").select_option(label="Boris Agent")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"actor=user%3A\d+"))
    first = entries(page)
    assert len(first) == 50 and all("Boris Agent" in e and "contact.update" in e for e in first)
    assert "Old 52 → Новое имя 52" in first[0]
    page.get_by_role("link", name="Older").click()  # the filter is kept across pages
    assert [re.search(r"contact #(\d+)", e).group(1) for e in entries(page)] == ["2", "1", "0"]  # type: ignore[union-attr]

    # By action, then by days (in the admin's zone, Moscow).
    page.goto("/admin/audit")
    page.get_by_label("Action").select_option("user.created")
    page.get_by_role("button", name="Show").click()
    assert len(entries(page)) == 1 and "Ada Admin" in entries(page)[0]
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label("First day").fill("2026-03-11")
    page.get_by_label("Last day").fill("2026-03-12")
    page.get_by_role("button", name="Show").click()
    assert [re.search(r"[a-z_]+\.[a-z_]+", e).group(0) for e in entries(page)] == [  # type: ignore[union-attr]
        "form.create", "contact.create", "user.created"]
    page.get_by_label("Who").select_option("api_key")
    page.get_by_role("button", name="Show").click()
    assert len(entries(page)) == 1 and "Shop" in entries(page)[0]
    page.get_by_label("First day").fill("2026-03-01")
    page.get_by_label("Last day").fill("2026-03-09")
    page.get_by_label("Who").select_option("")
    page.get_by_role("button", name="Show").click()
    assert entries(page) == [] and page.get_by_text("No entries match these filters.").is_visible()


def test_russian_and_only_for_admins(log, new_page) -> None:  # type: ignore[no-untyped-def]
    live_server, _agent = log
    page = new_page(locale="ru-RU")
    sign_in(page, "olga@example.com")
    page.get_by_role("link", name="Журнал аудита").click()
    assert page.get_by_role("heading", name="Журнал аудита").is_visible()
    assert page.get_by_label("Кто", exact=True).is_visible() and page.get_by_label("С какого дня").is_visible()
    assert "Система" in entries(page)[1] and "Ключ API Shop" in entries(page)[2]
    page.goto("/admin/audit?since=2026-03-12&until=2026-03-01")
    assert page.get_by_text("Первый день не может быть позже последнего.").is_visible()

    agent_page = new_page()
    sign_in(agent_page, "agent@example.com")
    assert agent_page.get_by_role("link", name="Audit log").count() == 0
    assert agent_page.goto("/admin/audit").status == 403
