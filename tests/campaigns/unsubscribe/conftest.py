"""A client for the public unsubscribe and tracking routes, on an https public base URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.runtime import Hub

BASE = "https://hub.example.com"


def mount_public_routes(app) -> None:  # type: ignore[no-untyped-def]
    """Mount the routers unless the campaigns extension's public_router() already did."""
    from campaigns.tracking.routes import router as tracking
    from campaigns.unsubscribe.routes import router as unsubscribe

    paths = {getattr(route, "path", "") for route in app.routes}
    if "/u/{token}" not in paths:
        app.include_router(unsubscribe)
    if "/t/c/{token}" not in paths:
        app.include_router(tracking)


@pytest.fixture
def public(hub: Hub) -> Iterator[TestClient]:
    """The public routes on an app of their own over the test's store and settings: only these
    routers, so the pages under test do not depend on the rest of the campaigns extension."""
    from hub.app import create_app
    from hub.triggers import TriggerRegistry

    hub.settings.public_base_url = BASE
    bare = Hub(hub.settings, registry=hub.registry, triggers=TriggerRegistry(), db=hub.db, broker=hub.broker,
               extensions=False)
    app = create_app(bare, check_schema=False, start_worker=False)
    mount_public_routes(app)
    # base_url on the hub's host; follow_redirects off so tests see the redirects themselves.
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        yield client
