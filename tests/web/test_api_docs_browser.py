"""The REST API's docs page works on a machine without internet: Swagger UI comes from the hub."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

# What this checks does not depend on the store: it runs on SQLite only.
pytestmark = pytest.mark.any_store
RENDER_TIMEOUT_MS = 120_000  # 6 s alone; CI once took over 45 s with four workers busy


def test_the_api_docs_render_every_tag_with_nothing_loaded_from_elsewhere(new_page: Any, live_server: Any):
    page = new_page()
    elsewhere: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(live_server.url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto("/api/docs")
    # Both pages render a large document in JavaScript: seconds of CPU when workers share the cores.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Hub", timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(".opblock-tag").first).to_be_visible()
    assert page.locator(".opblock-tag").count() >= 5
    assert elsewhere == []


def test_redoc_renders_too_without_the_internet(new_page: Any, live_server: Any):
    page = new_page()
    elsewhere: list[str] = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server.url)
               else (elsewhere.append((route.request.resource_type, route.request.url)), route.abort()))
    page.goto("/api/redoc")
    expect(page.locator("h1").first).to_contain_text("Hub", timeout=RENDER_TIMEOUT_MS)
    expect(page.get_by_text("/api/v1/contacts").first).to_be_attached()
    # Only ReDoc's own "powered by" logo is an image from its CDN; nothing the page needs.
    assert [url for kind, url in elsewhere if kind != "image"] == []
