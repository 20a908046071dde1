"""Website forms in a real browser: the hosted page (errors in Russian and English, at phone width),
and the embed snippet on a page served from ANOTHER origin, both as a plain post without JavaScript
and with the inline script (fetch + CORS); an origin that is not allow-listed gets nowhere."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from hub.models import ConsentRecord, Contact, TimelineEvent

from channels.forms.models import FormSubmission
from channels.forms.views import embed_snippet
from tests.channels.forms.conftest import WORDING, make_form
from tests.web.conftest import _free_port

# What the browser shows here does not depend on the store (the domain's own tests run on both): SQLite only.
pytestmark = [pytest.mark.browser, pytest.mark.any_store]


class OtherSite:
    """A customer's website on another port (so another origin) with the form's snippet pasted in."""

    def __init__(self, port: int, body: str) -> None:
        html = (f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
                f'content="width=device-width, initial-scale=1"><title>Shop</title></head>'
                f"<body><h1>Our shop</h1>{body}</body></html>").encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.origin = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def count(hub: Any, model: Any) -> int:
    with hub.session(read_only=True) as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def site(live_server: Any) -> Iterator[Any]:
    """make(allowed=, locale=) -> (form, OtherSite): a page on another origin carrying the form's snippet."""
    live_server.hub.settings.public_base_url = live_server.url  # the snippet points at this hub
    sites: list[OtherSite] = []

    def make(*, allowed: bool = True, locale: str = "en") -> tuple[Any, OtherSite]:
        port = _free_port()
        origin = f"http://127.0.0.1:{port}"
        form = make_form(live_server.hub, allowed_origins=[origin] if allowed else ["https://elsewhere.example"],
                         thank_you="Thanks, we will be in touch.")
        other = OtherSite(port, embed_snippet(live_server.hub, form, locale=locale))
        sites.append(other)
        return form, other

    yield make
    for other in sites:
        other.close()


def test_the_hosted_form_shows_errors_in_russian_then_accepts(new_page, live_server, frozen_clock):
    form = make_form(live_server.hub)
    page = new_page(locale="ru-RU", viewport={"width": 375, "height": 740})
    page.goto(f"/channels/forms/f/{form.key}")
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling on a phone
    frozen_clock.advance(seconds=10)  # a person takes a while to fill it in
    page.get_by_role("textbox", name="Email", exact=True).fill("не-адрес")
    page.get_by_role("button", name="Отправить").click()
    expect(page.locator("#hubf-name-error")).to_have_text("Обязательное поле.")
    expect(page.locator("#hubf-email-error")).to_have_text("Введите правильный адрес эл. почты.")
    expect(page.get_by_role("textbox", name="Email", exact=True)).to_have_attribute("aria-invalid", "true")
    assert count(live_server.hub, FormSubmission) == 0
    page.get_by_role("textbox", name="Name", exact=True).fill("Анна Смирнова")
    page.get_by_role("textbox", name="Email", exact=True).fill("anna@example.com")
    page.get_by_label(WORDING).check()
    page.get_by_role("button", name="Отправить").click()
    expect(page.get_by_role("status")).to_contain_text("Thanks!")
    assert count(live_server.hub, FormSubmission) == 1 and count(live_server.hub, ConsentRecord) == 1
    with live_server.hub.session(read_only=True) as s:
        contact = s.scalars(select(Contact)).one()
        submission = s.scalars(select(FormSubmission)).one()
        consent = s.scalars(select(ConsentRecord)).one()
    assert contact.display_name == "Анна Смирнова" and contact.locale == "ru"
    hosted = f"{live_server.url}/channels/forms/f/{form.key}"
    assert submission.source_url == consent.source == hosted and consent.wording == WORDING


def test_the_hosted_form_speaks_english_too(new_page, live_server, frozen_clock):
    form = make_form(live_server.hub)
    page = new_page(locale="en-US")
    page.goto(f"/channels/forms/f/{form.key}")
    frozen_clock.advance(seconds=10)
    page.get_by_role("textbox", name="Name", exact=True).fill("Anna")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#hubf-email-error")).to_have_text("Give an email address or a phone number.")
    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()


def test_the_embedded_form_posts_without_javascript_from_another_origin(browser, live_server, site):
    form, other = site()
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(other.origin + "/")
        page.get_by_role("textbox", name="Phone", exact=True).fill("8 (912) 555-44-33")
        page.get_by_role("button", name="Send").click()
        # Without JavaScript the errors come back on the hub's own page, beside the fields.
        expect(page.locator("#hubf-name-error")).to_have_text("This field is required.")
        assert page.url.startswith(live_server.url)
        page.get_by_role("textbox", name="Name", exact=True).fill("Pavel")
        page.get_by_role("button", name="Send").click()
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/channels/forms/f/.+/thanks"))
        expect(page.get_by_role("status")).to_contain_text("Thanks, we will be in touch.")
    finally:
        context.close()
    with live_server.hub.session(read_only=True) as s:
        submission = s.scalars(select(FormSubmission)).one()
        event = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")).one()
    assert submission.source_url.startswith(other.origin)  # the Referer of the post
    assert event.contact_id == submission.contact_id


def test_the_inline_script_submits_in_place_with_errors_beside_fields(browser, live_server, site, frozen_clock):
    form, other = site(locale="ru")
    context = browser.new_context(locale="en-US", viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(other.origin + "/")
        expect(page.locator("form[data-hub-ready]")).to_have_count(1)  # the script took over
        expect(page.locator("form[data-hub-stamped]")).to_have_count(1)  # with a fresh stamp from the hub
        expect(page.locator("input[name=_client_id]")).to_have_count(1)
        frozen_clock.advance(seconds=10)
        page.get_by_role("textbox", name="Email", exact=True).fill("broken@")
        page.get_by_role("button", name="Отправить").click()
        errors = page.locator("[data-error-for=email]")
        expect(errors).to_have_text("Введите правильный адрес эл. почты.")  # the snippet's language
        expect(page.locator("[data-error-for=name]")).to_have_text("Обязательное поле.")
        assert page.url.startswith(other.origin)  # still on the customer's site
        page.get_by_role("textbox", name="Name", exact=True).fill("Olga")
        page.get_by_role("textbox", name="Email", exact=True).fill("olga@example.com")
        page.get_by_role("button", name="Отправить").click()
        expect(page.locator("[data-hub-form-done]")).to_have_text("Thanks, we will be in touch.")
        assert page.url.startswith(other.origin)
    finally:
        context.close()
    with live_server.hub.session(read_only=True) as s:
        submission = s.scalars(select(FormSubmission)).one()
    assert submission.source_url == other.origin + "/"  # the script sends the page's address
    assert submission.values["email"] == "olga@example.com"


def test_a_site_that_is_not_allow_listed_cannot_submit(browser, live_server, site, frozen_clock):
    form, other = site(allowed=False)
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(other.origin + "/")
        frozen_clock.advance(seconds=10)
        page.get_by_role("textbox", name="Name", exact=True).fill("Mallory")
        page.get_by_role("textbox", name="Email", exact=True).fill("mallory@example.com")
        page.get_by_role("button", name="Send").click()
        # CORS blocks the script's request; its fallback plain post is refused by the hub.
        expect(page.get_by_role("heading", name="Not accepted")).to_be_visible()
    finally:
        context.close()
    assert count(live_server.hub, FormSubmission) == 0 and count(live_server.hub, Contact) == 0
