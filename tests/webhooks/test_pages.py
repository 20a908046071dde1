"""The admin's webhook pages over HTTP: add (secret shown once), refusals, log, replay, test, rotate,
pause, delete through the confirm step; Russian and English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hub.models import Role
from tests.web.conftest import ORIGIN, login
from webhooks.models import WebhookEndpoint


@pytest.fixture
def page_client(whub) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from hub.app import create_app

    with TestClient(create_app(whub, check_schema=False, start_worker=False), base_url=ORIGIN) as client:
        yield client


def post(client, path, token, **data):
    return client.post(path, data={"csrf_token": token, **data}, headers={"Origin": ORIGIN}, follow_redirects=False)


def test_an_admin_adds_watches_and_deletes_an_endpoint(page_client, whub, fresh_receiver, frozen_clock):
    token = login(page_client, whub, "admin@example.com", role=Role.ADMIN, locale="en")
    assert "No endpoints yet" in page_client.get("/admin/webhooks").text
    added = post(page_client, "/admin/webhooks", token, url=fresh_receiver.url("/page"), description="Shop",
                 event_types="contact.created")
    assert added.status_code == 201
    secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', added.text).group(1)
    with whub.session(read_only=True) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
    fresh_receiver.set("/page", "ok", secrets=[secret])
    detail = page_client.get(f"/admin/webhooks/{endpoint.id}")
    assert detail.status_code == 200 and secret not in detail.text and secret[-4:] in detail.text

    tested = post(page_client, f"/admin/webhooks/{endpoint.id}/test", token)
    assert tested.status_code == 202 and "A test event is on its way" in tested.text
    whub.extensions["webhooks"].dispatcher().drain(timeout=30)
    log = page_client.get(f"/admin/webhooks/{endpoint.id}").text
    assert "webhook.test" in log and "Delivered" in log and "200" in log
    delivery_link = re.search(rf'/admin/webhooks/{endpoint.id}/deliveries/(\d+)', log).group(0)
    one = page_client.get(delivery_link)
    assert one.status_code == 200 and ("{&#34;ok&#34;:true}" in one.text or '{"ok":true}' in one.text)
    assert post(page_client, delivery_link + "/replay", token).status_code == 303
    assert post(page_client, f"/admin/webhooks/{endpoint.id}/replay", token, since="2020-01-01T00:00").status_code == 202
    assert post(page_client, f"/admin/webhooks/{endpoint.id}/replay", token, since="soon").status_code == 422

    asked = post(page_client, f"/admin/webhooks/{endpoint.id}/rotate", token)
    assert asked.status_code == 200 and "confirmed" in asked.text
    rotated = post(page_client, f"/admin/webhooks/{endpoint.id}/rotate", token, confirmed="yes")
    new_secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', rotated.text).group(1)
    assert new_secret != secret

    assert post(page_client, f"/admin/webhooks/{endpoint.id}/pause", token).status_code == 303
    assert "Paused" in page_client.get(f"/admin/webhooks/{endpoint.id}").text
    assert post(page_client, f"/admin/webhooks/{endpoint.id}/resume", token).status_code == 303

    asked = post(page_client, f"/admin/webhooks/{endpoint.id}/delete", token)
    assert asked.status_code == 200 and "cannot be undone" in asked.text
    with whub.session(read_only=True) as session:
        assert session.scalars(select(WebhookEndpoint)).all(), "the first click deletes nothing"
    assert post(page_client, f"/admin/webhooks/{endpoint.id}/delete", token, confirmed="yes").status_code == 303
    assert page_client.get(f"/admin/webhooks/{endpoint.id}").status_code == 404


@pytest.mark.any_store
def test_refused_urls_are_explained_in_russian_and_change_nothing(page_client, whub):
    token = login(page_client, whub, "admin@example.com", role=Role.ADMIN, locale="ru")
    refused = post(page_client, "/admin/webhooks", token, url="https://169.254.169.254/latest", event_types="*")
    assert refused.status_code == 422 and "локальный адрес канала" in refused.text
    refused = post(page_client, "/admin/webhooks", token, url="https://8.8.8.8/")
    assert refused.status_code == 422 and "Выберите хотя бы один тип событий" in refused.text
    assert "Вебхуки" in refused.text
    with whub.session(read_only=True) as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


@pytest.mark.any_store
def test_agents_cannot_see_the_pages(page_client, whub):
    login(page_client, whub, "agent@example.com", role=Role.AGENT)
    assert page_client.get("/admin/webhooks").status_code == 403


@pytest.mark.any_store
def test_a_disabled_endpoint_shows_a_banner(page_client, whub, frozen_clock):
    with whub.session() as session, session.begin():
        session.add(WebhookEndpoint(url="https://8.8.8.8/hook", event_types=["*"], secret="whsec_AAAA", status="disabled",
                                    disabled_reason="failing since yesterday; last answer: HTTP 500"))
    login(page_client, whub, "admin@example.com", role=Role.ADMIN, locale="en")
    page = page_client.get("/admin/webhooks").text
    assert "The hub disabled an endpoint that kept failing" in page and "HTTP 500" in page
