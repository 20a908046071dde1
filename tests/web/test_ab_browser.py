"""A/B tests in the browser at phone width: a marketer adds and removes variants in the editor (with
the script), saves, and the campaign page shows the results per variant, fits 375 px and passes axe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import Campaign, CampaignVariant
from hub.models import Role
from tests.campaigns.helpers import add_contacts, email_set_up, make_segment, make_template, tick
from tests.web.conftest import sign_in


@pytest.mark.any_store
def test_a_marketer_adds_variants_on_a_phone_and_reads_the_results(hub, live_server, new_page):
    from axe_playwright_python.sync_playwright import Axe

    email_set_up(hub)
    add_contacts(hub, 12)
    segment, template = make_segment(hub), make_template(hub, name="Spring")
    live_server.user("mk@example.com", role=Role.MARKETER, name="Maria Marketer")
    page = new_page(viewport={"width": 375, "height": 800}, is_mobile=True, has_touch=True)
    sign_in(page, "mk@example.com", next_path="/campaigns/new")
    expect(page.locator("#cp-ab-body")).to_be_hidden()  # off until asked for
    page.get_by_label("Name", exact=True).fill("Spring test")
    page.get_by_label("Segment").select_option(str(segment))
    page.locator("#f-step1").select_option(str(template))
    page.locator("#f-ab-enabled").check()
    expect(page.locator("#f-ab-B-subject")).to_be_visible()
    expect(page.locator('.cp-ab-variant[data-variant="C"]')).to_be_hidden()
    page.get_by_role("button", name="Add variant").click()
    page.get_by_role("button", name="Add variant").click()
    expect(page.get_by_role("button", name="Add variant")).to_be_hidden()  # all four in use
    page.locator("#f-ab-B-subject").fill("Last days of spring")
    page.locator("#f-ab-C-time").fill("18:30")
    page.locator("#f-ab-D-subject").fill("Will go")
    page.locator('.cp-ab-variant[data-variant="D"] .cp-ab-remove').click()
    expect(page.locator('.cp-ab-variant[data-variant="D"]')).to_be_hidden()
    page.locator("#f-ab-share").fill("50")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("button", name="Save and schedule").click()
    page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    with hub.session(read_only=True) as s:
        cid = s.scalars(select(Campaign.id)).one()
        variants = s.scalars(select(CampaignVariant).order_by(CampaignVariant.label)).all()
    assert [(v.label, v.subject, v.send_time) for v in variants] == [
        ("A", None, None), ("B", "Last days of spring", None), ("C", None, "18:30")]
    tick(hub)
    page.goto(f"/campaigns/{cid}")
    expect(page.locator("#campaign-ab-table tbody tr")).to_have_count(4)  # A, B, C and the rest
    expect(page.locator("#campaign-ab-verdict")).to_contain_text("Too few recipients to tell")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    bad = [v for v in Axe().run(page).response["violations"] if v.get("impact") in ("serious", "critical")]
    assert bad == [], bad
    page.get_by_role("button", name="Send C to the rest").click()
    expect(page.locator("#campaign-ab-winner")).to_contain_text("Variant C was chosen")
