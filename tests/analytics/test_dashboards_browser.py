"""Each dashboard opened in a real browser, in Russian and English, on a desktop and at 375 px: it
renders its charts, nothing scrolls sideways, axe-core finds nothing serious (on the phone, in Russian),
and the pictures go to docs/screenshots/.

Run with HUB_UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots/analytics-*.png; otherwise they go to
the test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

from analytics.dashboards import PAGES
from hub.models import Role
from hub.settings import PROJECT_ROOT
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.any_store]
DOCS = PROJECT_ROOT / "docs" / "screenshots"
HEADINGS = {"ru": "Аналитика", "en": "Analytics"}


@pytest.fixture
def demo_hub(live_server):
    """The live server's store with the analytics demo in it (recomputed), once per test."""
    from analytics.demo import demo

    demo(live_server.hub, seed=1)
    return live_server


@pytest.mark.parametrize("locale", ["ru", "en"])
@pytest.mark.parametrize(("width", "height", "mobile"), [(1440, 960, False), (375, 812, True)], ids=["desktop", "phone"])
def test_every_dashboard_opens_and_fits(demo_hub, new_page, tmp_path: Path, locale, width, height, mobile):
    email = f"marketer-{locale}-{width}@example.com"
    demo_hub.user(email, name="Мария Маркетолог", role=Role.MARKETER, locale=locale)
    page = new_page(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile,
                    locale=f"{locale}-{'RU' if locale == 'ru' else 'US'}", timezone_id="Europe/Moscow")
    sign_in(page, email, next_path="/analytics")
    # axe-core once per page, on the phone in Russian (the longest words, the narrowest screen).
    axe = Axe() if mobile and locale == "ru" else None
    found = {}
    target = DOCS if os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        page.goto(f"{demo_hub.url}{'/analytics' if name == 'rfm' else '/analytics/' + name}")
        heading = page.locator("h1")
        assert HEADINGS[locale] in heading.inner_text(), name
        if name != "value":
            assert page.locator("svg.chart").count() >= 1, name
        assert page.locator("a[download]").count() >= 1, name
        shot = target / f"analytics-{name}-{locale}-{'phone' if mobile else 'desktop'}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5_000
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        wide = page.evaluate("""() => {
            const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'hidden' || o === 'scroll') return true; }
                return false; };
            return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
                > document.documentElement.clientWidth + 1 && !clipped(e)).slice(0, 5)
                .map(e => e.tagName + '.' + e.className + '#' + e.id + ':' + Math.round(e.getBoundingClientRect().right)); }""")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px: {wide}"
        if axe is not None:
            bad = [v for v in axe.run(page).response["violations"] if v.get("impact") in ("serious", "critical")]
            if bad:
                found[name] = [f"{v['id']}: {v['help']} {[n['html'][:80] for n in v['nodes']]}" for v in bad]
    assert found == {}, found

