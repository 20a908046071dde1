"""A key-account manager's morning in Chromium: the Pareto page shows the unprofitable "VIP" in the
trap, its account page loads the profit panel with the rows behind the loss, the flag comes off with
one audited click; the pages fit a phone and pass axe-core."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hub.models import Account, AuditEntry
from tests.accounts.test_key_account_pages import seed_base
from tests.web.conftest import sign_in

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]


def test_the_pareto_page_shows_an_unprofitable_vip_and_the_manager_unflags_it(new_page, live_server):
    ids = seed_base(live_server.hub)
    live_server.user()
    page = new_page()
    sign_in(page, "agent@example.com", next_path="/key-accounts")
    expect(page.locator("#pareto-chart")).to_be_visible()
    expect(page.locator("#pareto-share")).to_contain_text("The top 2 of 10")
    trap = page.locator("#costly-vips")
    expect(trap).to_contain_text("Газпромбанк VIP")
    expect(page.locator("#overlooked")).to_contain_text("Тихий завод")
    trap.get_by_role("link", name="Газпромбанк VIP").click()
    page.wait_for_url(re.compile(rf"/accounts/{ids['Газпромбанк VIP']}$"))
    profit = page.locator("#profit-value")
    expect(profit).to_have_class(re.compile("is-loss"))  # loaded by htmx into the account page
    page.locator("#profit-trace summary").click()
    expect(page.locator("#profit-trace")).to_contain_text("margin RUB 1,000.00 (from the shop)")
    page.goto("/key-accounts")
    row = page.locator(f'tr[data-owner="account-{ids["Газпромбанк VIP"]}"]')
    row.get_by_role("button", name="Unflag").click()
    expect(page.locator(f'tr[data-owner="account-{ids["Газпромбанк VIP"]}"]').get_by_role("button")).to_have_text(
        "Flag as key")
    with live_server.hub.session(read_only=True) as s:
        assert not s.get(Account, ids["Газпромбанк VIP"]).is_key
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "account.key",
                                                  AuditEntry.actor_kind == "user")).one()


def test_account_pages_fit_a_phone_and_pass_axe(new_page, live_server):
    from axe_playwright_python.sync_playwright import Axe

    ids = seed_base(live_server.hub)
    live_server.user()
    page = new_page(viewport={"width": 375, "height": 812})
    sign_in(page, "agent@example.com", next_path="/key-accounts")
    axe = Axe()
    found = {}
    for path, ready in (("/key-accounts", "#ranking"), ("/accounts", "#account-table"),
                        (f"/accounts/{ids['Тихий завод']}", "#profit-value"),
                        (f"/accounts/{ids['Тихий завод']}/edit", "form")):
        page.goto(path)
        page.wait_for_selector(ready)
        wide = page.evaluate("""[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className)""")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (path, wide)
        bad = [v for v in axe.run(page).response["violations"] if v.get("impact") in ("serious", "critical")]
        if bad:
            found[path] = [f"{v['id']}: {v['help']} {[n['html'][:80] for n in v['nodes']]}" for v in bad]
    assert found == {}, found
